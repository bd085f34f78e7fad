"""Gradient checks: vanishing, exploding, zero gradients, and the learning rate's update size."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from whyzero.causes import CRITICAL, INFO, WARNING, Cause, Kind, Stage, declare
from whyzero.checks import Skipped, check
from whyzero.checks.model import grows_weights
from whyzero.findings import Finding
from whyzero.measurements import GradientRow, Measurements
from whyzero.text import times as _times

# A stack of this many sigmoid or tanh layers contracts the samples' differences forward as it shrinks the
# gradients backward: when both are found, the vanishing gradient (fix: ReLU-family activations) explains the
# collapse rather than the reverse.
SQUASHING_STACK = 3


def _vanishing_refine(vanishing: Finding, other: Finding, kinds: frozenset) -> bool | None:
    """One contraction seen from both ends: a stack of sigmoids is the cause of the collapse."""
    if Kind.COLLAPSE in kinds:
        return vanishing.evidence.get("squashing_layers", 0) >= SQUASHING_STACK
    return None


VANISHING = declare(Cause(
    "gradient.vanishing", "gradients", Stage.EFFECTS, "Vanishing gradients",
    "gradients shrink toward the input layers until weights cannot move", "per-layer gradient norms, first/last ratio",
    precedence=2, kinds=frozenset({Kind.GRADIENT, Kind.VANISHING}), explains=frozenset({Kind.LR_LOW}),
    refine=_vanishing_refine, figures=("gradient_norms",)))
EXPLODING = declare(Cause(
    "gradient.exploding", "gradients", Stage.EFFECTS, "Exploding or non-finite gradients",
    "gradients grow toward the input layers, or are NaN / Inf", "per-layer gradient norms, first/last ratio",
    precedence=1, kinds=frozenset({Kind.GRADIENT, Kind.EXPLODING}), explains=frozenset({Kind.LR_HIGH}),
    figures=("gradient_norms",)))
ZERO = declare(Cause(
    "gradient.zero", "gradients", Stage.EFFECTS, "Trainable layers receive exactly zero gradient",
    "trainable layers that receive exactly zero gradient", "the layers", precedence=3,
    kinds=frozenset({Kind.GRADIENT, Kind.ZERO_GRADIENT}), explains=frozenset({Kind.LR_LOW, Kind.VANISHING}),
    figures=("gradient_norms",)))
LEARNING_RATE_HIGH = declare(Cause(
    "training.learning_rate_high", "gradients", Stage.TRAINING, "Learning rate so large that updates overshoot",
    "learning rate so large that updates overshoot", "optimizer config; update/weight ratio lr·‖g‖/‖w‖ per layer",
    precedence=0, kinds=frozenset({Kind.LEARNING_RATE, Kind.LR_HIGH, Kind.DRIVES_DIVERGENCE}),
    explains=frozenset({Kind.ACTIVATION, Kind.GRADIENT, Kind.OUTPUT, Kind.WEIGHTS}), refine=grows_weights,
    figures=("update_ratios",)))
LEARNING_RATE_LOW = declare(Cause(
    "training.learning_rate_low", "gradients", Stage.TRAINING, "Learning rate too small to move the weights",
    "learning rate so small that updates are negligible", "optimizer config; update/weight ratio lr·‖g‖/‖w‖ per layer",
    precedence=1, kinds=frozenset({Kind.LEARNING_RATE, Kind.LR_LOW}), explains=frozenset({Kind.OUTPUT}),
    figures=("update_ratios",)))

# AUTOTRAINER: ||g_first|| / ||g_last|| < 1e-3 and ||g_first|| < 1e-4 is vanishing.
VANISHING_RATIO = 1e-3
VANISHING_FIRST = 1e-4
# Exploding: AUTOTRAINER uses a ratio of 70; healthy conv nets reach ~100 here, so the
# gallery calibrated warning starts at 1e3.
EXPLODING_RATIO = 1e3
# Growth from layer to layer: activations or gradients that grow by this factor per layer on average
# (geometric mean over the kernel layers) over at least EXPLODING_MIN_LAYERS layers, reaching
# EXPLODING_TOTAL_GROWTH in all, explode.  He-initialized ReLU stacks keep a factor near 1; the
# gallery's 12x-He stack grows ~12x per layer.  One large gradient/weight ratio is not enough: a
# healthy SGD-trained MLP on small regression data has ratios in the hundreds.
EXPLODING_GROWTH_PER_LAYER = 3.0
EXPLODING_TOTAL_GROWTH = 1e3
EXPLODING_MIN_LAYERS = 3
# Update / weight ratio lr*||g||/||w|| healthy band (DeepDiagnosis [1e-5, 1e-1]);
# TheDeepChecker's log10 band [-4, -1].
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_LOW_CRITICAL = 1e-7
UPDATE_RATIO_HIGH = 1e-1
UPDATE_RATIO_HIGH_CRITICAL = 1.0
# Adaptive optimizers normalize the gradient: the first step moves each weight that has a non-zero
# gradient by about lr, so the update is lr * sqrt(weights with a gradient) / ||w||.
ADAPTIVE = {"Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Lion", "Lamb", "Ftrl"}
# Where no step can be measured (zero gradients), an adaptive optimizer's configured rate alone can
# still be far too high: Adam-type rates live in 1e-5..1e-2 (Keras' default 1e-3), every weight moves
# by about lr per step, so 0.1 already moves He-scaled weights by their own size.
ADAPTIVE_LR_HIGH = 0.1
ADAPTIVE_LR_HIGH_CRITICAL = 0.5


def _confidence(m: Measurements, severity: str) -> str:
    """Without real labels the gradients come from stand-in targets: cap at warning."""
    return WARNING if m.gradient_labels != "labels" and severity == CRITICAL else severity


def update_ratio(optimizer: dict | None, row: GradientRow) -> float | None:
    """The measured step relative to the weights, lr*||g||/||w|| (SGD) or lr*sqrt(n_g)/||w|| (adaptive).

    None where it cannot be measured: no learning rate, zero weights, or a zero gradient (a zero
    gradient says nothing about the learning rate).
    """
    lr = (optimizer or {}).get("learning_rate")
    if lr is None or row.weight_norm <= 0 or row.grad_norm == 0 or row.nonzero == 0:
        return None
    step = lr * np.sqrt(row.nonzero) if (optimizer or {}).get("name") in ADAPTIVE else lr * row.grad_norm
    return float(step / row.weight_norm)


def growth_per_layer(values: list[float]) -> tuple[float, float]:
    """Geometric-mean growth per step and total growth of a positive sequence (1, 1 when undefined)."""
    positive = [v for v in values if v > 0 and np.isfinite(v)]
    if len(positive) < 2 or len(positive) != len(values):
        return 1.0, 1.0
    total = positive[-1] / positive[0]
    return float(total ** (1.0 / (len(positive) - 1))), float(total)


# sigmoid and tanh: derivatives of at most 1/4 and 1, and a contraction of the samples' differences
SQUASHING = frozenset({"sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign"})


def squashing_layers(m: Measurements, rows: list[GradientRow]) -> int:
    """How many of the layers with a kernel before the last one squash their output (sigmoid, tanh)."""
    activation = {p.name: p.activation for p in m.layers}
    return sum(activation.get(r.layer) in SQUASHING for r in rows[:-1])



def _stabilize_fix(m: Measurements) -> str:
    fix = "Scale down the initialization (Glorot/He), clip gradients (clipnorm=1.0)"
    return fix + ("." if m.has_batchnorm else ", or add BatchNormalization.")


@check(VANISHING, EXPLODING)
def vanishing_exploding(m: Measurements) -> list[Finding]:
    """Gradient norm per layer with a kernel (from the compiled or implied loss), first against last; activation
    RMS growth from layer to layer; NaN/Inf counts.
    """
    diverged = [r for r in m.memory.weights if r.get("nonfinite")]
    if diverged:
        return [Finding(EXPLODING.id, CRITICAL,
                        f"The weights of {len(diverged)} layers hold NaN/Inf (first: '{diverged[0]['layer']}'): "
                        "training diverged",
                        {"layers": [r["layer"] for r in diverged][:10], "nonfinite_weights":
                         sum(r["nonfinite"] for r in diverged), "weights": sum(r["values"] for r in diverged),
                         "pins_output": True},
                        "Retrain from a fresh initialization with a lower learning rate, gradient clipping "
                        "(clipnorm=1.0) and scaled inputs and targets.", layer=diverged[0]["layer"])]
    rows = m.gradients
    if not rows:
        return Skipped("no gradients: the model has no trainable kernels, or the loss could not be computed")
    bad = [r for r in rows if r.nonfinite]
    if bad:
        return [Finding(EXPLODING.id, _confidence(m, CRITICAL),
                        f"Gradients are NaN/Inf in {len(bad)} layers (first: '{bad[0].layer}')",
                        {"layers": [r.layer for r in bad][:10], "nonfinite": sum(r.nonfinite for r in bad),
                         "targets": m.gradient_labels},
                        "Lower the learning rate, clip gradients, check inputs for NaN/Inf.", layer=bad[0].layer)]
    if len(rows) < 2:
        return []
    first, last = rows[0].grad_norm, rows[-1].grad_norm
    if last == 0 or first == 0:
        return []  # exactly zero gradients are gradient.zero
    ratio = first / last
    evidence = {"first_layer": rows[0].layer, "last_layer": rows[-1].layer, "first_norm": first,
                "last_norm": last, "ratio": ratio, "targets": m.gradient_labels,
                "squashing_layers": squashing_layers(m, rows)}
    early_fix = "Use ReLU-family activations, Glorot/He initialization" + (
        " or residual connections." if m.has_batchnorm else ", BatchNormalization or residual connections.")
    if ratio < VANISHING_RATIO and first < VANISHING_FIRST:
        return [Finding(VANISHING.id, _confidence(m, CRITICAL),
                        f"Gradients shrink {_times(1 / max(ratio, 1e-300))} from the last layer to the first",
                        evidence, early_fix, layer=rows[0].layer)]
    if ratio < VANISHING_RATIO * 10 and first < VANISHING_FIRST:
        return [Finding(VANISHING.id, WARNING,
                        f"Gradients shrink {_times(1 / ratio)} from the last layer to the first", evidence,
                        "Check activations and initialization of the early layers.", layer=rows[0].layer)]
    return _exploding(m, rows, evidence, ratio)


def _exploding(m: Measurements, rows: list[GradientRow], evidence: dict, ratio: float) -> list[Finding]:
    hidden = rows[:-1]  # the output layer's activation bounds its values
    step, total = growth_per_layer([r.activation_rms for r in hidden])
    evidence.update(activation_growth_per_layer=step, activation_growth=total, layers=len(hidden))
    if len(hidden) >= EXPLODING_MIN_LAYERS and step >= EXPLODING_GROWTH_PER_LAYER and total >= EXPLODING_TOTAL_GROWTH:
        return [Finding(EXPLODING.id, _confidence(m, CRITICAL),
                        f"Activations grow {_times(step)} per layer ({_times(total)} over {len(hidden)} layers), "
                        "and the gradients with them", evidence, _stabilize_fix(m), layer=rows[0].layer)]
    if ratio > EXPLODING_RATIO:
        return [Finding(EXPLODING.id, _confidence(m, CRITICAL if ratio > EXPLODING_RATIO * 1e3 else WARNING),
                        f"Gradients grow {_times(ratio)} from the last layer to the first", evidence,
                        _stabilize_fix(m), layer=rows[0].layer)]
    return []


@check(ZERO)
def zero_gradient(m: Measurements) -> list[Finding]:
    """Trainable layers whose kernel gradient is exactly zero over the batch."""
    rows = m.gradients
    if not rows:
        return Skipped("no gradients: the model has no trainable kernels, or the loss could not be computed")
    zero = [r.layer for r in rows if r.grad_norm == 0.0]
    if not zero:
        return []
    severity = CRITICAL if len(zero) == len(rows) else WARNING
    return [Finding(ZERO.id, _confidence(m, severity),
                    f"{len(zero)} of {len(rows)} trainable layers receive exactly zero gradient",
                    {"layers": zero[:20], "count": len(zero), "of": len(rows), "targets": m.gradient_labels},
                    "Something upstream blocks the gradient: dead ReLUs, saturated or pinned outputs, "
                    "a non-differentiable custom op.", layer=zero[0])]


@check(LEARNING_RATE_LOW, LEARNING_RATE_HIGH)
def learning_rate(m: Measurements) -> list[Finding]:
    """The measured step against the weights: lr·‖g‖/‖w‖ for SGD, lr·√(weights with a gradient)/‖w‖ for adaptive
    optimizers; layers with a zero gradient are left out.  A learning rate is judged by what it did: on a model
    that learned its labels it is a note, whatever the step.
    """
    found = _learning_rate(m)
    if isinstance(found, list) and found and m.learned():
        return [replace(f, severity=INFO, title=f"{f.title} (yet the model learned its labels: not a cause here)",
                        fix="Nothing to fix for predictions.") for f in found]
    return found


def _learning_rate(m: Measurements) -> list[Finding] | Skipped:
    all_rows = m.gradients
    if not all_rows:
        return Skipped("no gradients: the model has no trainable kernels, or the loss could not be computed")
    if not (m.optimizer or {}).get("learning_rate"):
        return Skipped("the model file holds no optimizer (or no readable learning rate)")
    measured = [ratio for ratio in (update_ratio(m.optimizer, r) for r in all_rows) if ratio is not None]
    watched = _watched_updates(m, gradients_flow=bool(measured))
    if watched is not None:
        return watched
    if not measured:
        # no measured step: no learning rate, or zero gradients (gradient.zero says why; never "too low")
        return _configured_rate_high(m) if all_rows else []
    ratios = np.array(measured)
    median = float(np.median(ratios))
    lr = m.optimizer["learning_rate"]
    evidence = {"optimizer": m.optimizer["name"], "learning_rate": lr,
                "median_update_ratio": median, "min_update_ratio": float(ratios.min()),
                "max_update_ratio": float(ratios.max()), "healthy_band": [UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH],
                "layers_measured": len(measured), "targets": m.gradient_labels}
    configured = _configured_rate_high(m, median)
    if configured and configured[0].severity == CRITICAL and median <= UPDATE_RATIO_HIGH_CRITICAL:
        # Adam at 0.5 and more steps every weight by ~lr: the weights it blew up make the measured ratio look sane
        return configured
    if median < UPDATE_RATIO_LOW:
        return [Finding(LEARNING_RATE_LOW.id,
                        _confidence(m, CRITICAL if median < UPDATE_RATIO_LOW_CRITICAL else WARNING),
                        f"Learning rate {lr:.2g} moves weights by {median:.1e} of their size per step: "
                        "training cannot progress", evidence, "Raise the learning rate (1e-3 is Adam's default).")]
    if median > UPDATE_RATIO_HIGH:
        return [Finding(LEARNING_RATE_HIGH.id,
                        _confidence(m, CRITICAL if median > UPDATE_RATIO_HIGH_CRITICAL else WARNING),
                        f"Learning rate {lr:.2g} moves weights by {median:.2g} of their size per step: "
                        "updates overshoot", evidence, "Lower the learning rate by 10x or more; add a warm-up.")]
    return []


def _watched_updates(m: Measurements, gradients_flow: bool) -> list[Finding] | None:
    """During training (``whyzero.Monitor``) the update is measured, not estimated: each layer's weights against
    the last observation's.  Their change over the steps between bounds the mean step from below (steps that
    cancel move the weights less than they add up to), so a change per step above the healthy band shows a
    rate too high, and weights that did not move at all over the interval, while gradients flow, show one too
    low (zero gradients move nothing whatever the rate).  None when the interval says neither (the estimate
    decides)."""
    live = m.live or {}
    steps = int(live.get("steps") or 0)
    ratios = [u["ratio"] for u in live.get("updates", []) if u.get("ratio") is not None]
    if steps <= 0 or not ratios:
        return None
    total = float(np.median(ratios))
    per_step = total / steps
    lr = m.optimizer["learning_rate"]
    evidence = {"optimizer": m.optimizer["name"], "learning_rate": lr, "measured_over_steps": steps,
                "median_change_over_interval": total, "median_change_per_step": per_step,
                "layers_moved": sum(bool(u.get("moved")) for u in live["updates"]),
                "layers_measured": len(ratios), "healthy_band": [UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH],
                "targets": m.gradient_labels}
    if total < UPDATE_RATIO_LOW_CRITICAL and gradients_flow:
        return [Finding(LEARNING_RATE_LOW.id, CRITICAL,
                        f"Over the last {steps} training steps the weights moved by {total:.1e} of their size "
                        f"(learning rate {lr:.2g}): training is not moving them", evidence,
                        "Raise the learning rate (1e-3 is Adam's default).")]
    if per_step > UPDATE_RATIO_HIGH:
        return [Finding(LEARNING_RATE_HIGH.id, CRITICAL if per_step > UPDATE_RATIO_HIGH_CRITICAL else WARNING,
                        f"Over the last {steps} training steps the weights moved by {per_step:.2g} of their size "
                        f"per step (learning rate {lr:.2g}): updates overshoot", evidence,
                        "Lower the learning rate by 10x or more; add a warm-up.")]
    return None


def _configured_rate_high(m: Measurements, measured: float | None = None) -> list[Finding]:
    """An adaptive optimizer's configured rate, judged without a measured step (zero gradients), or against one
    that the weights it blew up make look sane."""
    optimizer = m.optimizer or {}
    lr = optimizer.get("learning_rate")
    if optimizer.get("name") not in ADAPTIVE or lr is None or lr < ADAPTIVE_LR_HIGH:
        return []
    how = "no: the gradients are zero, the configured rate is judged" if measured is None else \
        f"median update ratio {measured:.2g}, measured against weights that such steps have already grown"
    return [Finding(LEARNING_RATE_HIGH.id, CRITICAL if lr >= ADAPTIVE_LR_HIGH_CRITICAL else WARNING,
                    f"{optimizer['name']} with learning rate {lr:.2g} moves every weight by about {lr:.2g} per "
                    "step: far past the weights' own scale, so training overshoots",
                    {"optimizer": optimizer["name"], "learning_rate": lr, "healthy_band": [1e-5, ADAPTIVE_LR_HIGH],
                     "measured": how},
                    "Lower the learning rate to 1e-3 (Adam's default) and retrain from a fresh initialization.")]
