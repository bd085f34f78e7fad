"""Activation checks: dead ReLU units, saturated sigmoid/tanh, collapse across samples."""

from __future__ import annotations

import numpy as np

from whyzero.causes import CRITICAL, DATA_EFFECTS, WARNING, Cause, Fix, Kind, Stage, declare
from whyzero.checks import Skipped, check
from whyzero.checks.gradients import SQUASHING_STACK
from whyzero.findings import Finding
from whyzero.measurements import Measurements

_IN_A_LAYER = DATA_EFFECTS - {Kind.THRESHOLD}


def _collapse_refine(collapse: Finding, other: Finding, kinds: frozenset) -> bool | None:
    """A stack of sigmoids whose gradients vanish is the cause of the collapse, not its consequence."""
    if Kind.VANISHING in kinds and other.evidence.get("squashing_layers", 0) >= SQUASHING_STACK:
        return False
    return None

DEAD_RELU = declare(Cause(
    "activation.dead_relu", "activations", Stage.LAYERS, "Dead ReLU units",
    "ReLU units that never fire on the batch", "per-layer share of units never active", precedence=0,
    kinds=frozenset({Kind.ACTIVATION, Kind.DEAD_UNITS, Kind.LAYER_LOCAL}), explains=_IN_A_LAYER,
    figures=("dead_saturated_shares", "activation_heatmap")))
SATURATION = declare(Cause(
    "activation.saturation", "activations", Stage.LAYERS, "Saturated sigmoid / tanh units",
    "sigmoid / tanh units driven into their flat regions",
    "per-layer share of pre-activations beyond the flat threshold", precedence=1,
    kinds=frozenset({Kind.ACTIVATION, Kind.SATURATED_UNITS, Kind.LAYER_LOCAL}), explains=_IN_A_LAYER,
    figures=("dead_saturated_shares", "activation_heatmap")))
def _float32_fix(f: Finding, run) -> Fix | None:
    if getattr(run, "float32_outputs", None) is None:
        return None
    return Fix("float32", "compute every layer in float32", outputs_from=lambda live: live.float32_outputs())


OVERFLOW = declare(Cause(
    "activation.overflow", "activations", Stage.LAYERS, "Activations overflow float16 under mixed precision",
    "activations beyond the float16 range under mixed precision (`mixed_float16`) become Inf / NaN, then a constant",
    "per-layer max |value| against 65504, Inf/NaN counts, the first layer; the output re-run in float32 (the proof)",
    precedence=-1, kinds=frozenset({Kind.ACTIVATION, Kind.OVERFLOW}), explains=_IN_A_LAYER, fix=_float32_fix,
    proof="the outputs re-judged with every layer computing in float32 (the same weights)",
    figures=("activation_heatmap",)))
COLLAPSE = declare(Cause(
    "activation.collapse", "activations", Stage.EFFECTS, "Activations collapse: the input stops mattering",
    "from some layer on, every sample gives the same activations: the input no longer matters",
    "per-layer spread across samples; the first layer where it collapses", precedence=0,
    kinds=frozenset({Kind.ACTIVATION, Kind.COLLAPSE, Kind.LAYER_LOCAL}),
    explains=frozenset({Kind.OUTPUT, Kind.ZERO_GRADIENT, Kind.VANISHING, Kind.LR_LOW}), refine=_collapse_refine,
    figures=("spread_across_samples",)))

# Share of a ReLU layer's units that never fire on the batch.  AUTOTRAINER / DeepDiagnosis
# flag >= 0.7 of exactly-zero values; units never active is stricter and batch-size robust.
# Half the units of a small healthy layer (iris, 8 units) can be silent on a batch: 0.7, not 0.5.
DEAD_WARNING = 0.7
DEAD_CRITICAL = 0.95
# Fewer samples than this cannot tell a dead unit from a rarely active one.
DEAD_MIN_SAMPLES = 8
# More than half of the pre-activations beyond +-5 (DeepDiagnosis).
SATURATED_WARNING = 0.5
SATURATED_CRITICAL = 0.9
# Spread across samples relative to the layer's RMS below which the input no longer matters.
COLLAPSE_RELATIVE_SPREAD = 1e-3
RELU_LIKE = {"relu", "relu6"}



def _hidden(m: Measurements):
    """The probed layers before the output layer: the last layer with a kernel, and the weightless layers after
    it (a Reshape, an Activation), make the output; a sigmoid there pinned at 0/1 on a right model is confidence."""
    if not m.layers:
        return []
    kernels = {r["layer"] for r in m.memory.weights}
    last = max((i for i, p in enumerate(m.layers) if p.name in kernels), default=len(m.layers) - 1)
    return m.layers[:last]


@check(DEAD_RELU)
def dead_relu(m: Measurements) -> list[Finding]:
    """Per ReLU layer: the share of its units whose value never exceeded 0 on any sample of the batch."""
    findings = []
    if not m.layers:
        return Skipped("the model has no probe-able layers")
    if m.samples < DEAD_MIN_SAMPLES:
        return Skipped(f"{m.samples} samples cannot tell a dead unit from a rarely active one "
                       f"(at least {DEAD_MIN_SAMPLES} needed)")
    for probe in _hidden(m):
        if probe.activation not in RELU_LIKE or probe.values.nan or probe.values.inf:
            continue  # NaN/Inf values are not a unit that never fires (gradient.exploding names them)
        dead = probe.values.never_active_share
        if dead < DEAD_WARNING:
            continue
        findings.append(Finding(DEAD_RELU.id, CRITICAL if dead >= DEAD_CRITICAL else WARNING,
                                f"{dead:.0%} of the units of '{probe.name}' never fire on this batch",
                                {"never_active_share": dead, "zero_share": probe.values.share("zero"),
                                 "units": int(probe.values.units)},
                                "Lower the learning rate, use He initialization, LeakyReLU, or check the input "
                                "scale (large negative inputs kill ReLUs).", layer=probe.name))
    return findings[:1] + [f for f in findings[1:] if f.severity == CRITICAL][:3]


@check(SATURATION)
def saturation(m: Measurements) -> list[Finding]:
    """Per sigmoid/tanh layer: the share of values in the flat region (pre-activation beyond ±5); for a recurrent
    layer, the share of gate pre-activations its input alone drives beyond ±5.
    """
    findings = []
    for probe in _hidden(m):
        if probe.values.gate_n:  # a recurrent layer: its gates saturate on the input's projection
            share = probe.values.gate_saturated_share
        elif probe.activation in ("sigmoid", "tanh", "hard_sigmoid"):
            share = probe.values.share("flat")
        else:
            continue
        if share < SATURATED_WARNING:
            continue
        findings.append(Finding(SATURATION.id, CRITICAL if share >= SATURATED_CRITICAL else WARNING,
                                f"{share:.0%} of '{probe.name}' "
                                + ("gate pre-activations (from its input) are beyond ±5" if probe.values.gate_n
                                   else f"({probe.activation}) pre-activations are beyond ±5"),
                                {"saturated_share": share, "activation": probe.activation,
                                 "mean": probe.values.mean, "std": probe.values.std},
                                "Scale the inputs, use Glorot initialization"
                                + (", or switch to ReLU." if m.has_batchnorm else
                                   ", BatchNormalization before the activation, or switch to ReLU."),
                                layer=probe.name))
    return findings[:3]


# The largest finite float16: values beyond it become Inf, and Inf - Inf or 0 * Inf become NaN.
FLOAT16_MAX = 65504.0


@check(OVERFLOW)
def overflow(m: Measurements) -> list[Finding]:
    """Under a float16 dtype policy: the first layer whose values hold Inf or NaN, or reach the float16 maximum."""
    policy = m.dtype_policy or ""
    if "float16" not in policy:
        return []
    past = [p for p in m.layers if p.values.inf or p.values.nan or max(abs(p.values.min), abs(p.values.max))
            >= FLOAT16_MAX]
    if not past:
        return []
    first = past[0]
    largest = max(abs(first.values.min), abs(first.values.max))
    return [Finding(OVERFLOW.id, CRITICAL,
                    f"Under '{policy}', '{first.name}' overflows float16 (largest 65504): {first.values.inf} Inf and "
                    f"{first.values.nan} NaN values, and {len(past)} layers from it",
                    {"dtype_policy": policy, "first_layer": first.name, "inf": first.values.inf,
                     "nan": first.values.nan, "largest_finite": largest, "layers_past_float16": len(past),
                     "float16_max": FLOAT16_MAX},
                    f"Compute '{first.name}' and the layers after it in float32 (dtype='float32'; the output layer at "
                    "least), or scale the inputs down or normalize before it.", layer=first.name)]


@check(COLLAPSE)
def collapse(m: Measurements) -> list[Finding]:
    """Per layer: the spread across samples of each unit's per-sample mean, relative to the layer's RMS; the first
    layer from which every later one is below the threshold.
    """
    if not m.layers or m.samples < 2 or m.input_stats.samples < 2:
        return []
    if float(np.max(m.input_stats.std)) == 0.0:
        return []  # a constant batch is reported as invalid input
    layers = m.layers
    spreads = [np.nan if p.values.relative_spread is None else p.values.relative_spread for p in layers]
    for i, spread in enumerate(spreads):
        later = [s for s in spreads[i:] if np.isfinite(s)]
        if later and max(later) < COLLAPSE_RELATIVE_SPREAD:
            probe = layers[i]
            return [Finding(COLLAPSE.id, CRITICAL,
                            f"From '{probe.name}' on, every sample gives the same activations "
                            f"(relative spread {spread:.1e})",
                            {"first_collapsed_layer": probe.name, "layer_index": i,
                             "relative_spread": spread, "layers_collapsed": len(spreads) - i,
                             "spread_before": spreads[i - 1] if i > 0 else None},
                            "Look at this layer's input: dead units, saturation or a stale head upstream "
                            "erase the difference between samples.", layer=probe.name)]
    return []
