"""``whyzero recheck``: the checks run again on a stored diagnosis, without the model.

New thresholds apply to old sessions; a diagnosis rechecked by the version that made it comes out with
the same findings.  Proofs (they need the model) are kept for the findings that are found again.

Imports inside functions are deliberately lazy: the engine (and TensorFlow with it) loads only when a re-check runs.
"""

from __future__ import annotations

import datetime as dt

from whyzero import __version__, catalog
from whyzero.diagnosis import Diagnosis
from whyzero.errors import WhyzeroError, first_line
from whyzero.measurements import Measurements

UNDECIDED_NOTE = "The evidence fits two root causes equally"


def recheck(diagnosis: Diagnosis) -> Diagnosis:
    """The same diagnosis with its findings recomputed from its stored measurements.

    Raises:
        WhyzeroError: a diagnosis stored without measurements (by a whyzero before the record existed).
    """
    from whyzero.engine import conclude

    data = diagnosis.summaries.get("measurements")
    if not data:
        raise WhyzeroError("This diagnosis holds no measurements to re-check (it was made by an older whyzero); "
                           f"diagnose the model again. Received: a diagnosis by whyzero {diagnosis.version or '?'}")
    try:
        measured = Measurements.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise WhyzeroError(f"The stored measurements are malformed ({first_line(err, 150)}). Received: a diagnosis by "
                           f"whyzero {diagnosis.version or '?'}") from None
    run = catalog.run_all(measured)
    proofs = {(f.cause, f.layer): f.proof for f in diagnosis.findings if f.proof}
    for f in run.findings:
        f.proof = proofs.get((f.cause, f.layer))
    findings, notes = conclude(run.findings, measured)
    kept = [n for n in diagnosis.notes if not n.startswith(UNDECIDED_NOTE)]
    return Diagnosis(model=diagnosis.model, inputs=diagnosis.inputs, findings=findings,
                     summaries={**diagnosis.summaries, "skipped": run.skipped}, errors=run.errors, notes=kept + notes,
                     version=__version__, created=diagnosis.created,
                     rechecked=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
