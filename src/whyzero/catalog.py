"""Every declared cause and the checks that report them, and what attribution derives from them.

The check modules declare their causes (``whyzero.causes.declare``) beside the checks that report them;
importing them here fills the taxonomy.  The stage order, what each cause explains and the reference read
the declarations from here: nothing is kept beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from whyzero import checks
from whyzero.causes import SYMPTOM, SYMPTOM_LIKE, Cause, Stage, declared, get_cause
from whyzero.checks import (
    CheckResult,
    Registered,
    Skipped,
    activations,
    gradients,
    inputs,
    labels,
    model,
    outputs,
    training,
)
from whyzero.findings import CheckError, Finding
from whyzero.measurements import Measurements, ModelMemory

# The modules that declare causes beside their checks: importing them fills the taxonomy.
DECLARING_MODULES = (inputs, labels, model, activations, gradients, outputs, training)
# Upstream first, then by precedence within a stage (see ``whyzero.causes.Stage``).
CAUSES: dict[str, Cause] = dict(sorted(declared().items(), key=lambda kv: (kv[1].stage, kv[1].precedence)))
STAGES: tuple[tuple[str, ...], ...] = tuple(tuple(c.id for c in CAUSES.values() if c.stage == s) for s in Stage)
STAGE: dict[str, int] = {c.id: int(c.stage) for c in CAUSES.values()}
CAUSE_ORDER: dict[str, int] = {cause_id: i for i, cause_id in enumerate(CAUSES)}
# What the user sees: never a root cause.
SYMPTOMS = frozenset(c.id for c in CAUSES.values() if c.role == SYMPTOM)
# Output findings that restate the symptom: a consequence when a root explains them, else a symptom.
SYMPTOM_LIKES = frozenset(c.id for c in CAUSES.values() if c.role == SYMPTOM_LIKE)


def ids_of_kind(kind: str) -> frozenset[str]:
    """The cause ids of one kind."""
    return frozenset(c.id for c in CAUSES.values() if kind in c.kinds)


def explained_ids(cause_id: str) -> frozenset[str]:
    """The cause ids a cause can explain by its kinds (its evidence may narrow or widen that: ``Cause.refine``)."""
    wanted = CAUSES[cause_id].explains
    return frozenset(c.id for c in CAUSES.values() if c.kinds & wanted)


# The table of what each cause can explain by its kinds, for the reference and the tests.
EXPLAINS: dict[str, frozenset[str]] = {cause_id: explained_ids(cause_id) for cause_id in CAUSES}


def covered_causes() -> set[str]:
    """The cause ids some check reports."""
    return {c for r in checks.REGISTRY for c in r.causes}


@dataclass(frozen=True)
class Skip:
    """A check that did not run on a diagnosis: which, the causes it reports, and why."""

    check: str
    causes: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict:
        return {"check": self.check, "causes": list(self.causes), "reason": self.reason}


@dataclass
class CheckRun:
    """What running every check gave: findings, skips and errors."""

    findings: list[Finding]
    skips: list[Skip]
    errors: list[CheckError]

    @property
    def skipped(self) -> list[dict]:
        """The skips as stored in a diagnosis' summaries."""
        return [s.to_dict() for s in self.skips]


# The stored arrays a check may need, and why they can be missing from a stored diagnosis.
_TOO_LARGE = "the {} were too large to store with the diagnosis"
_TEXT = "text inputs: their checks read numbers (only the texts' lengths are measured)"


def run_all(m: Measurements) -> CheckRun:
    """Runs every registered check on the measurements."""
    run = CheckRun([], [], [])
    for r in checks.REGISTRY:
        missing = [name for name in r.needs if getattr(m, name) is None and not m.stored.get(name, True)]
        if missing:
            run.skips.append(Skip(r.name, r.causes, _TOO_LARGE.format(", ".join(missing))))
            continue
        if m.is_text and _inputs_only(r):
            run.skips.append(Skip(r.name, r.causes, _TEXT))
            continue
        result = _call(r, m, run)
        if isinstance(result, Skipped):
            run.skips.append(Skip(r.name, r.causes, result.reason))
        elif result is not None:
            run.findings.extend(result)
    for other in m.other_inputs:
        if _is_text_dtype(other["dtype"]):
            continue  # a text input: its lengths are measured, its values are not numbers to check
        run.findings.extend(_input_checks_on(m, other, run))
    return run


def _inputs_only(r: Registered) -> bool:
    return all(get_cause(c).panel == "inputs" for c in r.causes)


def _is_text_dtype(dtype: str) -> bool:
    try:
        return np.dtype(dtype).kind in "US"
    except TypeError:
        return False


def _call(r: Registered, m: Measurements, run: CheckRun, where: str = "") -> CheckResult | None:
    """One check's result, or None when it raised (recorded in ``run.errors``: the other checks still run)."""
    try:
        return r.fn(m)
    except Exception as err:  # noqa: BLE001 - a crashing check is a result, not a crash
        run.errors.append(CheckError(r.name, f"{type(err).__name__}{where}: {err}"[:500]))
        return None


def _input_checks_on(m: Measurements, other: dict, run: CheckRun) -> list[Finding]:
    """The input checks on another input of a model with several: its own statistics, no memory of it."""
    shape = other["shape"]
    view = replace(m, input_stats=other["stats"], batch_shape=shape, batch_dtype=other["dtype"], train_stats=None,
                   is_image=len(shape) == 4 and shape[-1] in (1, 3), memory=ModelMemory(), whatif=None,
                   other_inputs=[])
    found = []
    for r in checks.REGISTRY:
        if not _inputs_only(r):
            continue
        result = _call(r, view, run, where=f" on input '{other['name']}'")
        for f in [] if result is None or isinstance(result, Skipped) else result:
            f.title = f"Input '{other['name']}': {f.title}"
            f.evidence = dict(f.evidence, input=other["name"])
            found.append(f)
    return found

