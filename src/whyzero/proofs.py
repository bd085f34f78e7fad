"""Proof by re-run: apply a root cause's mechanical fix, re-run the model and the checks, record the change.

A fix is mechanical when whyzero can apply it itself: a preprocessing (the what-if's best match, a
channel swap, undoing a double normalization, standardizing), a label encoding (masks / 255, rounding
interpolated masks), a final activation applied to the logits, or the decision threshold the labels
support.  The findings that disappear under the fix become consequences of that root.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from whyzero.catalog import CAUSES, ids_of_kind
from whyzero.causes import SEVERITY_RANK, Fix, Kind
from whyzero.checks.outputs import MAJORITY_SHARE
from whyzero.findings import Finding, Proof
from whyzero.measurements import Measurements
from whyzero.preprocessing import PREPROCESSINGS, recover_raw
from whyzero.targets import label_ids
from whyzero.transforms import reverse_channels, standardize, to_reference, unstandardize

# Distinct re-runs at most per diagnosis: each is one more pass over the batch.
MAX_RERUNS = 3
# A re-run under a batch fix probes at most this many samples (the first), and the checks of per-sample outputs and
# labels judge the same samples before it (a 512-sample batch's proof costs a 32nd of its probe).  A big model, whose
# chunks hold fewer, re-runs PROOF_SAMPLES_MIN, the most any check asks for (the dead-unit check's 8): MobileNetV2's
# proof 0.9 s instead of 1.6 s.  Its shares are coarser (a majority share of 5 of 8), so a small model keeps 16.
PROOF_SAMPLES = 16
PROOF_SAMPLES_MIN = 8


def proof_samples(chunk: int) -> int:
    """How many of the first samples a re-run under a batch fix probes, for a model probed ``chunk`` at a time."""
    return PROOF_SAMPLES if chunk >= PROOF_SAMPLES else max(PROOF_SAMPLES_MIN, chunk)
# Symptoms whose disappearance shows the fix works: the output findings that restate the symptom.
SYMPTOM_CAUSES = ids_of_kind(Kind.OUTPUT)


@dataclass
class LiveRun:
    """A diagnosis while its model is at hand: what was measured, the batch it was fed, and how to measure the model
    again on another batch (no what-if: the fix is known).  Proofs work on measurements; only a batch fix re-runs
    the model.  The causes' fixes read the measurements through it (``run.whatif``, ``run.task``...)."""

    measured: Measurements
    batch: np.ndarray
    rerun: Callable[[np.ndarray], Measurements]
    batchnorm_outputs: np.ndarray | None = None  # the outputs with BatchNorm on the batch's own statistics
    float32_outputs: Callable[[], np.ndarray | None] | None = None  # the outputs computed in float32, on demand
    rerun_samples: int = PROOF_SAMPLES  # the first samples a re-run under a batch fix probes (``proof_samples``)

    def __getattr__(self, name: str):
        return getattr(self.measured, name)  # whatif, train_stats, input_stats, memory, task, outputs, masks...


Recheck = Callable[[Measurements], list[Finding]]


def prove(run: LiveRun, findings: list[Finding], recheck: Recheck) -> int:
    """Attaches a ``proof`` to each finding whose fix whyzero can apply; returns the re-runs made.

    Args:
        run: the live diagnosis.
        findings: the checks' findings on ``run.measured``.
        recheck: runs the checks on changed measurements (new masks, labels or outputs, or a re-run's).
    """
    done: dict[str, Proof] = {}
    for f in sorted(findings, key=lambda f: SEVERITY_RANK[f.severity]):
        if f.severity == "info":
            continue
        fix = fix_for(f, run)
        if fix is None:
            continue
        if fix.key not in done:
            if len(done) >= MAX_RERUNS:
                continue
            try:
                done[fix.key] = _run(fix, f.cause, run, findings, recheck)
            except Exception as err:  # noqa: BLE001 - a fix that cannot run leaves the finding unproven
                done[fix.key] = Proof(fix.description, False, f"the fix could not be re-run ({type(err).__name__})",
                                      fix.key, rerun=False)
        f.proof = done[fix.key]
    return len(done)


def fix_for(f: Finding, run: LiveRun) -> Fix | None:
    """The mechanical fix of a finding (its cause's declared fix), or None where none applies."""
    fix = CAUSES[f.cause].fix
    return fix(f, run) if fix else None


# Fix keys whose fix is a change of the batch (the app can re-diagnose under them).
BATCH_FIX_KEYS = ("preprocess:", "channels", "standardize", "train-stats", "raw")


def batch_fix(key: str, measured) -> Callable[[np.ndarray], np.ndarray] | None:
    """The batch transformation a stored proof's ``fix_key`` names, rebuilt from the measurements (so the app
    can re-diagnose under it), or None for a fix of the outputs or labels."""
    if key.startswith("preprocess:") and key.split(":", 1)[1] in PREPROCESSINGS:
        name = key.split(":", 1)[1]
        return lambda x: PREPROCESSINGS[name](recover_raw(x)[0]).astype(np.float32)
    if key == "channels":
        return reverse_channels
    if key == "standardize":
        return standardize
    if key == "train-stats" and measured.train_stats is not None:
        return lambda x: to_reference(x, measured.train_stats)
    if key == "raw":
        norm = measured.memory.normalization
        if norm is None:
            return lambda x: recover_raw(x)[0].astype(np.float32)
        return unstandardize(norm.mean, norm.variance)
    return None


def _run(fix: Fix, cause: str, run: LiveRun, findings: list[Finding], recheck: Recheck) -> Proof:
    m = run.measured
    if fix.threshold is not None:
        return _threshold_proof(fix, m, findings, cause)
    if fix.batch is not None:
        n = min(len(run.batch), run.rerun_samples)
        after_m = run.rerun(fix.batch(run.batch[:n]))
        if n < len(run.batch):  # before and after on the same samples: the checks of per-sample outputs and labels
            before_m = first_samples(m, n)  # judged on them again (the layers' summaries stay the whole batch's)
            return _compare(fix, before_m, recheck(before_m), after_m, recheck(after_m), samples=n)
    elif fix.masks is not None:
        masks = fix.masks(m.masks)
        after_m = replace(m, masks=masks, label_ids=label_ids(m.task, m.labels, masks), memory=replace(m.memory))
    elif fix.outputs_from is not None:
        outputs = fix.outputs_from(run)
        if outputs is None:
            raise ValueError("the re-run gave no outputs")
        after_m = replace(m, outputs=outputs, memory=replace(m.memory))
    elif fix.labels is not None:
        labels = fix.labels(m.labels)
        after_m = replace(m, labels=labels, label_ids=label_ids(m.task, labels, m.masks), memory=replace(m.memory))
    else:
        after_m = _with_output_activation(m, fix.outputs)
    return _compare(fix, m, findings, after_m, recheck(after_m))


def _with_output_activation(m: Measurements, name: str) -> Measurements:
    out = np.asarray(m.outputs, np.float64)
    if name == "sigmoid":
        new = 1.0 / (1.0 + np.exp(-np.clip(out, -500, 500)))
    else:
        z = np.exp(out - out.max(-1, keepdims=True))
        new = z / z.sum(-1, keepdims=True)
    task = replace(m.task, activation=name, probabilities=True)
    loss = dict(m.loss, from_logits=True) if m.loss else None
    return replace(m, outputs=new.astype(np.float32), task=task, loss=loss, memory=replace(m.memory))


def output_state(m: Measurements) -> dict[str, float]:
    """The numbers a fix should move: the output's spread across samples, the majority share and, with labels, the
    share of samples predicted right."""
    out = np.asarray(m.outputs, np.float64).reshape(len(m.outputs), -1)
    spread = float(np.max(np.std(out, axis=0))) if len(out) > 1 else 0.0
    state = {"output_spread": spread}
    predicted = m.predicted_classes()
    if predicted is not None and predicted.size:
        counts = np.bincount(predicted.reshape(-1).astype(int))
        state["majority_share"] = float(counts.max() / predicted.size)
        ids = m.label_ids
        if ids is not None and np.shape(ids) == predicted.shape:
            state["label_accuracy"] = float(np.mean(predicted == np.asarray(ids)))
    return state


def _serious(findings: list[Finding]) -> set[tuple[str, str | None]]:
    return {(f.cause, f.layer) for f in findings if f.severity != "info"}


def first_samples(m: Measurements, n: int) -> Measurements:
    """The measurements' per-sample parts (outputs, labels, masks) cut to the first ``n`` samples."""
    def cut(value):
        return None if value is None else value[:n]

    return replace(m, outputs=cut(m.outputs), labels=cut(m.labels), masks=cut(m.masks), label_ids=cut(m.label_ids),
                   memory=replace(m.memory))


def _compare(fix: Fix, m: Measurements, before: list[Finding], new_m: Measurements, after: list[Finding],
             samples: int | None = None) -> Proof:
    gone = sorted(_serious(before) - _serious(after), key=str)
    appeared = sorted({f.cause for f in after if f.severity == "critical" and not _fewer_reach(f, samples)}
                      - {f.cause for f in before if f.severity == "critical"})
    had_symptom = any(f.cause in SYMPTOM_CAUSES for f in before if f.severity != "info")
    has_symptom = any(f.cause in SYMPTOM_CAUSES for f in after if f.severity != "info")
    before_state, after_state = output_state(m), output_state(new_m)
    fixed = (had_symptom and not has_symptom) or (not had_symptom and bool(gone) and not appeared) \
        or _right_again(before_state, after_state)
    return _proof(fix, before_state, after_state, gone, appeared, fixed, samples)


def _fewer_reach(f: Finding, samples: int | None) -> bool:
    """Whether a finding on a re-run of the first ``samples`` may come of the fewer samples alone: a unit no sample
    of 8 reached may be one the whole batch reaches (units never active are counted over the samples seen)."""
    return samples is not None and Kind.DEAD_UNITS in CAUSES[f.cause].kinds


# A fix that makes the model right on this much more of its labels proves itself, whatever findings remain (a
# BatchNorm re-estimated on the batch: its memory is still stale, the predictions are right again).
FIXED_ACCURACY_GAIN = 0.3


def _right_again(before: dict, after: dict) -> bool:
    if "label_accuracy" not in before or "label_accuracy" not in after:
        return False
    return after["label_accuracy"] - before["label_accuracy"] >= FIXED_ACCURACY_GAIN


def _threshold_proof(fix: Fix, m: Measurements, findings: list[Finding], cause: str) -> Proof:
    scores = np.asarray(m.outputs, np.float64).reshape(len(m.outputs), -1)[:, 0]
    after_pred = (scores >= fix.threshold).astype(int)
    before = output_state(m)
    after = {"output_spread": before["output_spread"],
             "majority_share": float(np.bincount(after_pred, minlength=2).max() / len(after_pred))}
    gone = [(cause, None)]
    if after["majority_share"] < MAJORITY_SHARE:
        gone += [(f.cause, f.layer) for f in findings if Kind.MAJORITY in CAUSES[f.cause].kinds]
    return _proof(fix, before, after, gone, [], after["majority_share"] < MAJORITY_SHARE)


def _proof(fix: Fix, before: dict, after: dict, gone: list, appeared: list, fixed: bool,
           samples: int | None = None) -> Proof:
    parts = [f"output spread {_num(before['output_spread'])} → {_num(after['output_spread'])}"]
    if "majority_share" in before and "majority_share" in after:
        parts.append(f"majority share {before['majority_share']:.0%} → {after['majority_share']:.0%}")
    if "label_accuracy" in before and "label_accuracy" in after:
        parts.append(f"right on {before['label_accuracy']:.0%} → {after['label_accuracy']:.0%} of the labels")
    parts.append(f"{len(gone)} finding{'s' if len(gone) != 1 else ''} disappear{'s' if len(gone) == 1 else ''}")
    if appeared:
        parts.append(f"new: {', '.join(appeared)}")
    if not fixed:
        parts.append("the symptom remains (a model trained on the faulty data needs retraining after the fix)")
    on = f" on the first {samples} samples" if samples else ""
    return Proof(fix.description, bool(fixed), f"with the fix ({fix.description}){on}: " + ", ".join(parts), fix.key,
                  before=before, after=after, disappeared=[list(g) for g in gone], appeared=appeared)


def _num(value: float) -> str:
    return f"{value:.2g}" if value == 0 or 1e-2 <= abs(value) < 1e3 else f"{value:.0e}"
