"""Gradient checks: vanishing, exploding, zero gradients, and the learning rate's update size."""

from __future__ import annotations

import numpy as np

from whyzero.causes import CRITICAL, WARNING
from whyzero.checks import check
from whyzero.context import Context
from whyzero.diagnosis import Finding

# AUTOTRAINER: ||g_first|| / ||g_last|| < 1e-3 and ||g_first|| < 1e-4 is vanishing.
VANISHING_RATIO = 1e-3
VANISHING_FIRST = 1e-4
# Exploding: AUTOTRAINER uses a ratio of 70; healthy conv nets reach ~100 here, so the
# gallery calibrated warning starts at 1e3.
EXPLODING_RATIO = 1e3
# Gradients larger than the weights themselves by this factor (median over layers) explode even when
# they are uniform across depth (large weights scale every layer's gradient alike); gallery
# healthy models sit at 0.03..10.
EXPLODING_GRAD_TO_WEIGHT = 100.0
# Update / weight ratio lr*||g||/||w|| healthy band (DeepDiagnosis [1e-5, 1e-1]);
# TheDeepChecker's log10 band [-4, -1].
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_LOW_CRITICAL = 1e-7
UPDATE_RATIO_HIGH = 1e-1
UPDATE_RATIO_HIGH_CRITICAL = 1.0
# Adaptive optimizers normalize the gradient: the first step moves each weight by about lr.
ADAPTIVE = {"Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Lion", "Lamb", "Ftrl"}


def _gradient_layers(ctx: Context):
    if ctx.forward is None or not ctx.forward.has_gradients:
        return []
    return [p for p in ctx.forward.layers if p.n_kernel > 0]


def _confidence(ctx: Context, severity: str) -> str:
    """Without real labels the gradients come from stand-in targets: cap at warning."""
    return WARNING if ctx.gradient_labels != "labels" and severity == CRITICAL else severity


def gradient_rows(ctx: Context) -> list[dict]:
    rows = []
    lr = (ctx.optimizer or {}).get("learning_rate")
    adaptive = (ctx.optimizer or {}).get("name") in ADAPTIVE
    for p in _gradient_layers(ctx):
        norm = float(np.sqrt(p.grad_sumsq))
        update = None
        if lr is not None and p.weight_norm > 0:
            step = lr * np.sqrt(p.n_kernel) if adaptive else lr * norm
            update = float(step / p.weight_norm)
        rows.append({"layer": p.name, "grad_norm": norm, "weight_norm": p.weight_norm, "nonfinite": p.grad_nonfinite,
                     "update_ratio": update, "params": p.n_kernel})
    return rows


@check("gradient.vanishing", "gradient.exploding")
def vanishing_exploding(ctx: Context) -> list[Finding]:
    rows = gradient_rows(ctx)
    bad = [r for r in rows if r["nonfinite"]]
    if bad:
        return [Finding("gradient.exploding", _confidence(ctx, CRITICAL),
                        f"Gradients are NaN/Inf in {len(bad)} layers (first: '{bad[0]['layer']}')",
                        {"layers": [r["layer"] for r in bad][:10], "nonfinite": sum(r["nonfinite"] for r in bad),
                         "labels": ctx.gradient_labels},
                        "Lower the learning rate, clip gradients, check inputs for NaN/Inf.", layer=bad[0]["layer"])]
    if len(rows) < 2:
        return []
    first, last = rows[0]["grad_norm"], rows[-1]["grad_norm"]
    if last == 0 or first == 0:
        return []  # exactly zero gradients are gradient.zero
    ratio = first / last
    evidence = {"first_layer": rows[0]["layer"], "last_layer": rows[-1]["layer"], "first_norm": first,
                "last_norm": last, "ratio": ratio, "labels": ctx.gradient_labels}
    if ratio < VANISHING_RATIO and first < VANISHING_FIRST:
        return [Finding("gradient.vanishing", _confidence(ctx, CRITICAL),
                        f"Gradients shrink {1 / max(ratio, 1e-300):.2g}x from the last layer to the first",
                        evidence, "Use ReLU-family activations, Glorot/He initialization, BatchNormalization or "
                        "residual connections.", layer=rows[0]["layer"])]
    if ratio < VANISHING_RATIO * 10 and first < VANISHING_FIRST:
        return [Finding("gradient.vanishing", WARNING,
                        f"Gradients shrink {1 / ratio:.2g}x from the last layer to the first", evidence,
                        "Check activations and initialization of the early layers.", layer=rows[0]["layer"])]
    grad_to_weight = float(np.median([r["grad_norm"] / r["weight_norm"] for r in rows if r["weight_norm"] > 0]
                                     or [0.0]))
    evidence["median_grad_to_weight"] = grad_to_weight
    if grad_to_weight > EXPLODING_GRAD_TO_WEIGHT and ratio <= EXPLODING_RATIO:
        return [Finding("gradient.exploding", _confidence(ctx, CRITICAL),
                        f"Gradients are {grad_to_weight:.2g}x larger than the weights they update (median over "
                        "layers)", evidence, "Scale down the initialization, add BatchNormalization, clip gradients.",
                        layer=rows[0]["layer"])]
    if ratio > EXPLODING_RATIO:
        return [Finding("gradient.exploding", _confidence(ctx, CRITICAL if ratio > EXPLODING_RATIO * 1e3 else WARNING),
                        f"Gradients grow {ratio:.2g}x from the last layer to the first", evidence,
                        "Scale down the initialization, add BatchNormalization, clip gradients.",
                        layer=rows[0]["layer"])]
    return []


@check("gradient.zero")
def zero_gradient(ctx: Context) -> list[Finding]:
    rows = gradient_rows(ctx)
    zero = [r["layer"] for r in rows if r["grad_norm"] == 0.0]
    if not zero:
        return []
    severity = CRITICAL if len(zero) == len(rows) else WARNING
    return [Finding("gradient.zero", _confidence(ctx, severity),
                    f"{len(zero)} of {len(rows)} trainable layers receive exactly zero gradient",
                    {"layers": zero[:20], "count": len(zero), "of": len(rows), "labels": ctx.gradient_labels},
                    "Something upstream blocks the gradient: dead ReLUs, saturated or pinned outputs, "
                    "a non-differentiable custom op.", layer=zero[0])]


@check("training.learning_rate_low", "training.learning_rate_high")
def learning_rate(ctx: Context) -> list[Finding]:
    rows = [r for r in gradient_rows(ctx) if r["update_ratio"] is not None]
    if not rows:
        return []
    ratios = np.array([r["update_ratio"] for r in rows])
    median = float(np.median(ratios))
    evidence = {"optimizer": ctx.optimizer["name"], "learning_rate": ctx.optimizer["learning_rate"],
                "median_update_ratio": median, "min_update_ratio": float(ratios.min()),
                "max_update_ratio": float(ratios.max()), "healthy_band": [UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH]}
    if median < UPDATE_RATIO_LOW:
        return [Finding("training.learning_rate_low", CRITICAL if median < UPDATE_RATIO_LOW_CRITICAL else WARNING,
                        f"Learning rate {ctx.optimizer['learning_rate']:.2g} moves weights by {median:.1e} of "
                        "their size per step: training cannot progress", evidence,
                        "Raise the learning rate (1e-3 is Adam's default).")]
    if median > UPDATE_RATIO_HIGH:
        return [Finding("training.learning_rate_high", CRITICAL if median > UPDATE_RATIO_HIGH_CRITICAL else WARNING,
                        f"Learning rate {ctx.optimizer['learning_rate']:.2g} moves weights by {median:.2g} of "
                        "their size per step: updates overshoot", evidence,
                        "Lower the learning rate by 10x or more; add a warm-up.")]
    return []
