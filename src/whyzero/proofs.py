"""Proof by re-run: apply a root cause's mechanical fix, re-run the model and the checks, record the change.

A fix is mechanical when whyzero can apply it itself: a preprocessing (the what-if's best match, a
channel swap, undoing a double normalization, standardizing), a label encoding (masks / 255, rounding
interpolated masks), a final activation applied to the logits, or the decision threshold the labels
support.  The findings that disappear under the fix become consequences of that root.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from whyzero.catalog import CAUSES, ids_of_kind
from whyzero.causes import SEVERITY_RANK, Fix, Kind
from whyzero.checks.outputs import MAJORITY_SHARE
from whyzero.context import Context
from whyzero.findings import Finding
from whyzero.preprocessing import PREPROCESSINGS, recover_raw
from whyzero.targets import label_ids
from whyzero.transforms import reverse_channels, standardize, to_reference, unstandardize

# Distinct re-runs at most per diagnosis: each is one more pass over the batch.
MAX_RERUNS = 3
# Symptoms whose disappearance shows the fix works: the output findings that restate the symptom.
SYMPTOM_CAUSES = ids_of_kind(Kind.OUTPUT)


Rerun = Callable[[np.ndarray], tuple[Context, list[Finding]]]
Recheck = Callable[[Context], list[Finding]]


def prove(ctx: Context, findings: list[Finding], rerun: Rerun, recheck: Recheck) -> int:
    """Attaches a ``proof`` to each finding whose fix whyzero can apply; returns the re-runs made.

    Args:
        ctx: what the diagnosis measured.
        findings: the checks' findings on ``ctx``.
        rerun: probes the model again on a new batch and runs the checks (no what-if).
        recheck: runs the checks on a changed context (new masks or outputs) without probing.
    """
    done: dict[str, dict[str, Any] | None] = {}
    for f in sorted(findings, key=lambda f: SEVERITY_RANK[f.severity]):
        if f.severity == "info":
            continue
        fix = fix_for(f, ctx)
        if fix is None:
            continue
        if fix.key not in done:
            if len(done) >= MAX_RERUNS:
                continue
            try:
                done[fix.key] = _run(fix, f.cause, ctx, findings, rerun, recheck)
            except Exception as err:  # noqa: BLE001 - a fix that cannot run leaves the finding unproven
                done[fix.key] = {"fix": fix.description, "rerun": False, "fixed": False,
                                 "text": f"the fix could not be re-run ({type(err).__name__})"}
        f.proof = done[fix.key]
    return len(done)


def fix_for(f: Finding, ctx: Context) -> Fix | None:
    """The mechanical fix of a finding (its cause's declared fix), or None where none applies."""
    fix = CAUSES[f.cause].fix
    return fix(f, ctx) if fix else None


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
        return unstandardize(norm["mean"], norm["variance"])
    return None


def _run(fix: Fix, cause: str, ctx: Context, findings: list[Finding], rerun: Rerun, recheck: Recheck) -> dict[str, Any]:
    if fix.threshold is not None:
        return _threshold_proof(fix, ctx, findings, cause)
    if fix.batch is not None:
        new_ctx, after = rerun(fix.batch(ctx.batch))
    elif fix.masks is not None:
        new_ctx = _with_masks(ctx, fix.masks(ctx.masks))
        after = recheck(new_ctx)
    elif fix.outputs_from is not None:
        new_ctx = replace(ctx, outputs=fix.outputs_from(ctx), memory=replace(ctx.memory))
        after = recheck(new_ctx)
    elif fix.labels is not None:
        new_ctx = _with_labels(ctx, fix.labels(ctx.labels))
        after = recheck(new_ctx)
    else:
        new_ctx = _with_output_activation(ctx, fix.outputs)
        after = recheck(new_ctx)
    return _compare(fix, ctx, findings, new_ctx, after)


def _with_masks(ctx: Context, masks: np.ndarray) -> Context:
    return replace(ctx, masks=masks, label_ids=label_ids(ctx.task, ctx.labels, masks), memory=replace(ctx.memory))


def _with_labels(ctx: Context, labels: np.ndarray) -> Context:
    return replace(ctx, labels=labels, label_ids=label_ids(ctx.task, labels, ctx.masks), memory=replace(ctx.memory))


def _with_output_activation(ctx: Context, name: str) -> Context:
    out = np.asarray(ctx.outputs, np.float64)
    if name == "sigmoid":
        new = 1.0 / (1.0 + np.exp(-np.clip(out, -500, 500)))
    else:
        z = np.exp(out - out.max(-1, keepdims=True))
        new = z / z.sum(-1, keepdims=True)
    task = replace(ctx.task, activation=name, probabilities=True)
    loss = dict(ctx.loss, from_logits=True) if ctx.loss else None
    return replace(ctx, outputs=new.astype(np.float32), task=task, loss=loss, memory=replace(ctx.memory))


def output_state(ctx: Context) -> dict[str, float]:
    """The numbers a fix should move: the output's spread across samples, the majority share and, with labels, the
    share of samples predicted right."""
    out = np.asarray(ctx.outputs, np.float64).reshape(len(ctx.outputs), -1)
    spread = float(np.max(np.std(out, axis=0))) if len(out) > 1 else 0.0
    state = {"output_spread": spread}
    predicted = ctx.predicted_classes()
    if predicted is not None and predicted.size:
        counts = np.bincount(predicted.reshape(-1).astype(int))
        state["majority_share"] = float(counts.max() / predicted.size)
        ids = ctx.label_ids
        if ids is not None and np.shape(ids) == predicted.shape:
            state["label_accuracy"] = float(np.mean(predicted == np.asarray(ids)))
    return state


def _serious(findings: list[Finding]) -> set[tuple[str, str | None]]:
    return {(f.cause, f.layer) for f in findings if f.severity != "info"}


def _compare(fix: Fix, ctx: Context, before: list[Finding], new_ctx: Context, after: list[Finding]) -> dict:
    gone = sorted(_serious(before) - _serious(after), key=str)
    appeared = sorted({f.cause for f in after if f.severity == "critical"}
                      - {f.cause for f in before if f.severity == "critical"})
    had_symptom = any(f.cause in SYMPTOM_CAUSES for f in before if f.severity != "info")
    has_symptom = any(f.cause in SYMPTOM_CAUSES for f in after if f.severity != "info")
    fixed = (had_symptom and not has_symptom) or (not had_symptom and bool(gone) and not appeared)
    return _proof(fix, output_state(ctx), output_state(new_ctx), gone, appeared, fixed)


def _threshold_proof(fix: Fix, ctx: Context, findings: list[Finding], cause: str) -> dict:
    scores = np.asarray(ctx.outputs, np.float64).reshape(len(ctx.outputs), -1)[:, 0]
    after_pred = (scores >= fix.threshold).astype(int)
    before = output_state(ctx)
    after = {"output_spread": before["output_spread"],
             "majority_share": float(np.bincount(after_pred, minlength=2).max() / len(after_pred))}
    gone = [(cause, None)]
    if after["majority_share"] < MAJORITY_SHARE:
        gone += [(f.cause, f.layer) for f in findings if Kind.MAJORITY in CAUSES[f.cause].kinds]
    return _proof(fix, before, after, gone, [], after["majority_share"] < MAJORITY_SHARE)


def _proof(fix: Fix, before: dict, after: dict, gone: list, appeared: list, fixed: bool) -> dict[str, Any]:
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
    return {"fix": fix.description, "fix_key": fix.key, "rerun": True, "before": before, "after": after,
            "disappeared": [list(g) for g in gone], "appeared": appeared, "fixed": bool(fixed),
            "text": f"with the fix ({fix.description}): " + ", ".join(parts)}


def _num(value: float) -> str:
    return f"{value:.2g}" if value == 0 or 1e-2 <= abs(value) < 1e3 else f"{value:.0e}"
