"""Model checks: final activation, loss, stale heads, unstable custom layers, weight scale."""

from __future__ import annotations

import numpy as np

from whyzero.causes import CRITICAL, INFO, WARNING, Cause, Fix, Kind, Stage, declare
from whyzero.checks import check
from whyzero.findings import Finding
from whyzero.measurements import Measurements, unique_counts
from whyzero.model_info import CROSS_ENTROPIES, REGRESSION_LOSSES, is_custom
from whyzero.probes.values import BOUNDARIES, N_BINS

# Share of a custom layer's outputs at exactly 0 or 1 that marks numerical pinning (seed 000-3).
PINNED_SHARE_CRITICAL = 0.5
PINNED_SHARE_WARNING = 0.1
# Kernel std against the Glorot/He expectation (DeepDiagnosis flags variance < 1e-5 or > 10;
# relative to the layer's own fan-in/fan-out is sharper): more than 10x off either way.
WEIGHT_SCALE_LOW = 0.1
WEIGHT_SCALE_HIGH = 10.0
# A model this right on its labelled samples is not predicting one thing: an odd weight scale is noted, not a cause.
ACCURATE = 0.9
# ... and for a regression, the share of the targets' variance its predictions explain (R²)
EXPLAINED = 0.8
# a classifier counts as having learned when its accuracy is this share of the way from always answering the labels'
# majority class to all right
LEARNED = 0.5
# Fewer kernel values than this say nothing about their spread (a 1-unit layer on one input, a 1x1
# kernel): only all-zero kernels are judged there; the std is judged from this many values on.
MIN_KERNEL_VALUES = 16
# A softmax layer this wide, with layers after it, is an ImageNet-style head left in (seed 003).
STALE_HEAD_MIN_UNITS = 10
# A ReLU output cannot regress targets this often negative.
RELU_NEGATIVE_TARGETS = 0.25


# std(|w|) / mean(|w|) below this: every weight at about one size, which no initializer draws (a uniform draw gives
# 0.58, normal ones 0.66..0.76): sign-like steps of an adaptive optimizer put them there.
DRAWN_SPREAD_MIN = 0.3


def trained(m: Measurements) -> bool:
    """Whether the model's weights were trained: the optimizer took steps, or some bias moved off its initial 0."""
    if (m.optimizer or {}).get("iterations"):
        return True
    return any(r.get("bias_zero") is False for r in m.memory.weights)


def moved_by_training(m: Measurements, row: dict) -> bool:
    """A kernel of a trained model whose weights no initializer draws: training put it where it is."""
    spread = row.get("magnitude_spread")
    return trained(m) and spread is not None and spread < DRAWN_SPREAD_MIN


def weights_small(f: Finding) -> bool:
    """A weight-scale finding whose kernels are tiny (or all zero), not huge."""
    ratio = f.evidence.get("ratio")
    return f.evidence.get("std") == 0 or (ratio is not None and ratio < 1)


def grows_weights(cause: Finding, other: Finding, kinds: frozenset) -> bool | None:
    """Steps too large, or inputs on a huge scale, blow weights up; nothing of theirs makes them tiny."""
    if Kind.WEIGHTS in kinds and weights_small(other):
        return False
    return None


def _own_layer(root: Finding, other: Finding, kinds: frozenset) -> bool | None:
    """The final layer's own activation: its collapse, dead or saturated units follow from it."""
    if Kind.ACTIVATION in kinds and root.layer and other.layer == root.layer:
        return True
    return None


def _scale_refine(weights: Finding, other: Finding, kinds: frozenset) -> bool | None:
    """Tiny weights make any learning rate look large and silence ReLUs; huge ones make it look small."""
    if kinds & {Kind.LR_HIGH, Kind.DEAD_UNITS} and not weights_small(weights):
        return False
    if Kind.LR_LOW in kinds and weights_small(weights):
        return False
    return None


def _activation_fix(f: Finding, run) -> Fix | None:
    """Apply the activation the loss expects to the logits (not for a regression's targets)."""
    if run.task.activation not in ("linear", "relu", None) or f.evidence.get("target_min") is not None:
        return None
    units = run.outputs.shape[-1] if run.outputs.ndim > 1 else 1
    name = "sigmoid" if units == 1 else "softmax"
    return Fix("activation", f"apply {name} to the outputs", outputs=name)


_BUILD_EFFECTS = frozenset({Kind.OUTPUT, Kind.GRADIENT, Kind.LEARNING_RATE})

OUTPUT_ACTIVATION = declare(Cause(
    "model.output_activation", "model", Stage.BUILD, "Final activation unsuitable for the task",
    "final activation unsuitable for the task and loss: linear or ReLU on a binary-probability output, sigmoid on a "
    "regression target, softmax on one unit", "final layer, its activation, the loss", precedence=10,
    kinds=frozenset({Kind.DRIVES_DIVERGENCE}), explains=_BUILD_EFFECTS | {Kind.THRESHOLD}, refine=_own_layer,
    fix=_activation_fix, proof="the outputs re-judged with sigmoid/softmax applied to the logits",
    figures=("output_distribution",)))
LOSS_MISMATCH = declare(Cause(
    "model.loss_mismatch", "model", Stage.BUILD, "Loss incompatible with the output",
    "loss incompatible with the output: binary cross-entropy on a multi-unit output, categorical loss on one unit, "
    "`from_logits` disagreeing with the final activation", "loss config, output shape and activation",
    precedence=9, kinds=frozenset({Kind.DRIVES_DIVERGENCE}),
    explains=_BUILD_EFFECTS | {Kind.THRESHOLD, Kind.COLLAPSE}, figures=("output_distribution",)))
STALE_HEAD = declare(Cause(
    "model.stale_head", "model", Stage.BUILD, "A pre-trained classifier head left under a new head",
    "a pre-trained classifier head (e.g. a 1000-unit softmax, `include_top=True`) left in the graph under a new head",
    "the chain of layers", precedence=11, explains=_BUILD_EFFECTS | {Kind.COLLAPSE, Kind.SATURATED_UNITS},
    figures=("activation_heatmap",)))
UNSTABLE_LAMBDA = declare(Cause(
    "model.unstable_lambda", "model", Stage.TRAINING, "A custom layer pins its outputs at exactly 0 or 1",
    "a custom `Lambda` / activation whose outputs pin at exactly 0 or 1 (numerical instability)",
    "the layer, share of exact 0/1 outputs", precedence=3, explains=_BUILD_EFFECTS,
    figures=("activation_heatmap",)))
WEIGHT_INIT = declare(Cause(
    "model.weight_init", "model", Stage.TRAINING, "Weights zero, constant or far off the Glorot/He scale",
    "kernels all zero, constant, or far off the Glorot/He scale (tiny or huge)", "per-layer weight std vs expected std",
    precedence=2, kinds=frozenset({Kind.WEIGHTS, Kind.LAYER_LOCAL}),
    explains=_BUILD_EFFECTS | {Kind.ACTIVATION}, refine=_scale_refine, figures=("weight_scale",)))


@check(OUTPUT_ACTIVATION)
def output_activation(m: Measurements) -> list[Finding]:
    """The final activation against the compiled loss, the output units and the targets' range."""
    task, loss = m.task, m.loss
    act = task.activation
    units = m.output_units if len(m.output_shape) > 1 else 1
    evidence = {"final_activation": act, "output_units": units, "loss": loss and loss["name"],
                "from_logits": loss and loss["from_logits"]}
    name = m.final_layer
    if act == "softmax" and units == 1:
        # it fixes the output whatever comes before it: ranked above every cause that only contributes
        return [Finding(OUTPUT_ACTIVATION.id, CRITICAL,
                        "Softmax over a single unit always outputs 1.0", {**evidence, "pins_output": True},
                        "Use sigmoid for one unit, or two units with softmax.", layer=name)]
    twice = _squashed_twice(m.model_layers)
    if twice:
        first, second = twice
        return [Finding(OUTPUT_ACTIVATION.id, WARNING,
                        f"The output is squashed twice: '{first['name']}' applies {first['activation']} and "
                        f"'{second['name']}' applies {second['activation']} again, which pulls every probability "
                        "toward the same value", {**evidence, "first": first["name"], "second": second["name"]},
                        f"Keep one {second['activation']} (or compile the loss with from_logits=True and drop "
                        "both).", layer=second["name"])]
    if loss and loss["name"] == "binary_crossentropy" and not loss["from_logits"] and act in ("linear", "relu"):
        return [Finding(OUTPUT_ACTIVATION.id, CRITICAL,
                        f"The final layer is {act} but binary cross-entropy expects probabilities",
                        evidence, "Add activation='sigmoid' to the final Dense layer "
                        "(or compile with from_logits=True).", layer=name)]
    if loss and loss["name"] in ("categorical_crossentropy", "sparse_categorical_crossentropy") and units > 1 \
            and not loss["from_logits"] and act in ("linear", "relu"):
        return [Finding(OUTPUT_ACTIVATION.id, CRITICAL,
                        f"The final layer is {act} but {loss['name']} expects probabilities",
                        evidence, "Add activation='softmax' to the final layer (or compile with from_logits=True).",
                        layer=name)]
    if loss is None and act in ("linear", "relu") and units == 1 and _binary_labels(m):
        return [Finding(OUTPUT_ACTIVATION.id, WARNING,
                        f"The final layer is {act} but the labels are binary: no probability comes out",
                        evidence, "Use a sigmoid output for binary classification.", layer=name)]
    if act == "relu" and m.task.kind == "regression" and m.labels is not None:
        targets = np.asarray(m.labels, np.float64).reshape(-1)
        negative = float(np.mean(targets < 0)) if targets.size else 0.0
        if negative >= RELU_NEGATIVE_TARGETS:
            dead = m.outputs is not None and bool(np.all(np.asarray(m.outputs) == 0))
            return [Finding(OUTPUT_ACTIVATION.id, CRITICAL if dead or negative >= 0.5 else WARNING,
                            f"A ReLU output (never below 0) regresses targets of which {negative:.0%} are negative"
                            + (": every prediction is 0" if dead else ""),
                            {**evidence, "negative_target_share": negative, "target_min": float(targets.min()),
                             "all_outputs_zero": dead},
                            "Use a linear output for regression (activation=None).", layer=name)]
    if act == "sigmoid" and loss and loss["name"] in ("mse", "mae") and m.labels is not None:
        labels = np.asarray(m.labels, np.float64)
        if labels.min() < 0 or labels.max() > 1:
            return [Finding(OUTPUT_ACTIVATION.id, CRITICAL,
                            f"A sigmoid output (0..1) regresses targets in [{labels.min():.3g}, {labels.max():.3g}]",
                            {**evidence, "target_min": float(labels.min()), "target_max": float(labels.max())},
                            "Use a linear output for regression.", layer=name)]
    return []


def _squashed_twice(rows: list[dict]) -> tuple[dict, dict] | None:
    """The last layer with weights ends in softmax or sigmoid, and a weightless layer after it applies one
    again (Dense(10, activation='softmax') then Softmax())."""
    squash = ("softmax", "sigmoid")
    weighted = [i for i, r in enumerate(rows) if r.get("params")]
    if not weighted or rows[weighted[-1]].get("activation") not in squash:
        return None
    last = weighted[-1]
    again = next((r for r in rows[last + 1:] if r.get("activation") in squash), None)
    return None if again is None else (rows[last], again)


def _binary_labels(m: Measurements) -> bool:
    if m.labels is None:
        return False
    return set(unique_counts(m.labels)[0].tolist()) <= {0, 1}


@check(LOSS_MISMATCH, needs=("labels",))
def loss_mismatch(m: Measurements) -> list[Finding]:
    """The compiled loss against the output's units, final activation, from_logits and the labels' encoding."""
    loss, task = m.loss, m.task
    if loss is None:
        return []
    units = m.output_units if len(m.output_shape) > 1 else 1
    evidence = {"loss": loss["name"], "from_logits": loss["from_logits"], "output_shape": list(m.output_shape[1:]),
                "final_activation": task.activation}
    if loss["name"] == "binary_crossentropy" and units > 1 and task.activation == "softmax":
        # on two units (one-hot labels) the mean of the units' binary cross-entropies is exactly the categorical
        # one; on more, the loss still trains the true class up: only a model that did not learn (no better than
        # halfway from always answering the labels' majority class to all right) is alarming.  Either way
        # Keras's 'accuracy' then reports binary accuracy per unit, a misleading number
        right = m.label_accuracy()
        learned = units == 2 or bool(m.learned_labels(LEARNED))
        what = ("the same loss as categorical cross-entropy on two classes" if units == 2 else
                f"the model still gets {right:.0%} of the labels right" if learned else
                "the loss is meant for independent yes/no outputs")
        return [Finding(LOSS_MISMATCH.id, INFO if learned else CRITICAL,
                        f"Binary cross-entropy on a {units}-unit softmax output: {what}",
                        {**evidence, "label_accuracy": right},
                        "Use (sparse) categorical cross-entropy with softmax (Keras's 'accuracy' metric then "
                        "reports the share of samples right, not of output units), or one sigmoid unit.")]
    if loss["name"] in REGRESSION_LOSSES and task.activation == "softmax" and units > 1:
        return _regression_loss_on_softmax(m, evidence, units)
    if loss["name"] in ("categorical_crossentropy", "sparse_categorical_crossentropy") and units == 1:
        return [Finding(LOSS_MISMATCH.id, CRITICAL,
                        f"{loss['name']} on a single output unit: the loss cannot separate classes", evidence,
                        "Use binary cross-entropy with one sigmoid unit, or K units with softmax.")]
    if loss["from_logits"] and task.activation in ("sigmoid", "softmax"):
        return [Finding(LOSS_MISMATCH.id, WARNING,
                        f"The loss expects logits (from_logits=True) but the output already has {task.activation}",
                        evidence, "Drop from_logits=True, or remove the final activation.")]
    if m.labels is not None and loss["name"] in CROSS_ENTROPIES and units > 1:
        # Keras refuses to train on labels the loss cannot read (a rank or shape error), so this is about the
        # labels given here, not the ones the model was trained on: a note, and the gradients use the loss's form.
        one_hot = m.labels.ndim == len(m.output_shape) and m.labels.shape[-1] == units
        if loss["name"] == "sparse_categorical_crossentropy" and one_hot:
            return [Finding(LOSS_MISMATCH.id, INFO, "One-hot labels given for a sparse categorical loss",
                            {**evidence, "label_shape": list(m.labels.shape)},
                            "They were read as class ids (argmax). If the model was trained on them like this, "
                            "use categorical_crossentropy.")]
        if loss["name"] == "categorical_crossentropy" and not one_hot and m.task.kind != "segmentation":
            return [Finding(LOSS_MISMATCH.id, INFO, "Class-id labels given for a one-hot categorical loss",
                            {**evidence, "label_shape": list(m.labels.shape)},
                            "They were one-hot encoded for the gradients. If the model was trained on them like "
                            "this, use sparse_categorical_crossentropy.")]
    if not loss["known"]:
        return [Finding(LOSS_MISMATCH.id, INFO, f"Custom loss '{loss['raw']}': compatibility not checked",
                        evidence, "")]
    return []


def _regression_loss_on_softmax(m: Measurements, evidence: dict, units: int) -> list[Finding]:
    """A regression loss on a softmax classifier: against class ids it pulls every probability toward the id's value
    (flat probabilities, one class for most samples); against one-hot rows it trains, slowly.  Only a model that did
    not learn is alarming."""
    loss = m.loss["name"]
    ids_given = m.labels is not None and (m.labels.ndim == 1 or m.labels.shape[-1] == 1)
    right = m.label_accuracy()
    if m.learned_labels(LEARNED):
        return [Finding(LOSS_MISMATCH.id, INFO, f"{loss} on a {units}-class softmax: it trains, slowly (the model "
                        f"gets {right:.0%} right)", {**evidence, "label_accuracy": right},
                        "Categorical cross-entropy trains a softmax faster and to sharper probabilities.")]
    what = ("it compares each class probability with the class id itself, so every probability is pulled toward "
            "the same value" if ids_given else "its gradients through the softmax are weak")
    severity = CRITICAL if ids_given else WARNING if m.labels is not None else INFO  # no labels: nothing to judge by
    return [Finding(LOSS_MISMATCH.id, severity,
                    f"{loss} on a {units}-class softmax output: {what}",
                    {**evidence, "label_accuracy": right, "labels": "class ids" if ids_given else "one-hot rows"},
                    "Compile with sparse_categorical_crossentropy (class ids) or categorical_crossentropy (one-hot "
                    "labels).")]


@check(STALE_HEAD)
def stale_head(m: Measurements) -> list[Finding]:
    """A wide softmax layer (an ImageNet-style classifier) with layers after it."""
    rows = m.model_layers
    for i, row in enumerate(rows[:-1]):
        units = row.get("units")
        if row.get("activation") != "softmax" or units is None or units < STALE_HEAD_MIN_UNITS:
            continue
        after = [r["name"] for r in rows[i + 1:]]
        if not any(r.get("params", 1) for r in rows[i + 1:]):  # rows stored before params were: as before
            continue  # no new head after it: a second activation is model.output_activation's
        head = row["name"]
        return [Finding(STALE_HEAD.id, CRITICAL,
                        f"'{head}' is a {units}-class softmax head left in the graph; "
                        f"{len(after)} layers come after it",
                        {"head_layer": head, "head_units": int(units), "layers_after": after[:10],
                         "chain": [head] + after[:10]},
                        "Build the base with include_top=False and put the new head on its features.",
                        layer=head)]
    return []


@check(UNSTABLE_LAMBDA)
def unstable_lambda(m: Measurements) -> list[Finding]:
    """Per custom layer (Lambda, custom activation) squashing into 0..1: the share of outputs exactly 0 or 1.

    A function whose outputs leave 0..1 (a ReLU, a scaling written as a Lambda) clamps at 0 by design, and is not
    judged; nor are the exact values a layer passes on from what it receives (a Lambda dividing pixels by 255 keeps
    the black ones at 0).  One that stays in 0..1 and pins there is alarming, unless it is a hidden layer and the
    model still learned its labels (a clip to 0..1 is a hard sigmoid): then it is a note.  Pinned outputs are
    alarming however right they are: the loss of a wrong one is infinite."""
    if not m.layers:
        return []
    findings = []
    learned = None  # judged once, and only for a layer that pins (the labels' accuracy reads every output)
    for index, probe in enumerate(m.layers):
        if not is_custom(probe.type, probe.activation):
            continue
        values = probe.values
        if values.n and (values.min < 0 or values.max > 1):
            continue
        pinned = (values.zero + values.one) / max(values.n, 1)
        created = pinned - _pinned_upstream(m, index)
        if created < PINNED_SHARE_WARNING:
            continue
        if learned is None:
            learned = bool(m.learned_labels(LEARNED))
        hidden = learned and index < len(m.layers) - 1
        severity = INFO if hidden else CRITICAL if created >= PINNED_SHARE_CRITICAL else WARNING
        findings.append(Finding(UNSTABLE_LAMBDA.id, severity,
                                f"{pinned:.0%} of '{probe.name}' outputs are exactly 0 or 1"
                                + (": the model still gets its labels right" if hidden else ""),
                                {"pinned_share": pinned, "zero_share": values.share("zero"),
                                 "one_share": values.share("one"), "layer_type": probe.type,
                                 "label_accuracy": m.label_accuracy()},
                                "Replace the custom function with a numerically stable one "
                                "(keras.activations.sigmoid, or from_logits=True in the loss).", layer=probe.name))
    return findings


def _pinned_upstream(m: Measurements, index: int) -> float:
    """The share of exact 0s (and, after a custom layer, 1s) in what layer ``index`` receives, as near as the record
    tells: the layer before it, or, for the first, the batch's values in the histogram's bin from 0 to 1e-4."""
    if index > 0:
        before = m.layers[index - 1].values
        return (before.zero + before.one) / max(before.n, 1)
    hist = m.input_stats.hist
    if hist is None or not np.size(hist):
        return 0.0
    counts = np.asarray(hist, np.float64).reshape(-1, N_BINS).sum(0)
    return float(counts[int(np.searchsorted(BOUNDARIES, 0.0, side="right"))]) / max(float(counts.sum()), 1.0)


@check(WEIGHT_INIT)
def weight_init(m: Measurements) -> list[Finding]:
    """Per kernel: its std against the Glorot and He std of its fans; all-zero or constant kernels."""
    rows = m.memory.weights
    findings = []
    right, explained = m.label_accuracy(), m.label_r2()
    for row in rows:
        values = row.get("values", MIN_KERNEL_VALUES)
        if row.get("nonfinite"):
            continue  # NaN/Inf weights are a diverged training (gradient.exploding), not an initializer
        if row["std"] == 0 and values >= 2 and (row["mean"] == 0 or values >= MIN_KERNEL_VALUES):
            what = "all zero" if row["mean"] == 0 else f"constant (all {row['mean']:.3g})"
            findings.append(Finding(WEIGHT_INIT.id, CRITICAL,
                                    f"'{row['layer']}' has a kernel that is {what}: its units all learn the same",
                                    row, "Initialize with glorot_uniform or he_normal.", layer=row["layer"]))
        elif values < MIN_KERNEL_VALUES or row["std"] == 0:
            continue
        elif moved_by_training(m, row) or ((row.get("l1") or row.get("l2")) and row["ratio"] < WEIGHT_SCALE_LOW):
            continue  # training put it there, not an initializer (checks.training names what did)
        elif row["ratio"] < WEIGHT_SCALE_LOW or row["ratio"] > WEIGHT_SCALE_HIGH:
            title = (f"'{row['layer']}' kernel std {row['std']:.2g} is {row['ratio']:.2g}× the Glorot/He scale "
                     f"({row['expected_low']:.2g}..{row['expected_high']:.2g})")
            if (right is not None and right >= ACCURATE) or (explained is not None and explained >= EXPLAINED):
                # trained far from its start, and right: not the cause (a regression onto targets in the 1e5s
                # needs kernels far above the Glorot scale)
                fit = f"gets {right:.0%} of the labelled samples right" if right is not None else \
                    f"explains {explained:.0%} of the targets' variance"
                findings.append(Finding(WEIGHT_INIT.id, INFO, f"{title}; the model still {fit}",
                                        dict(row, label_accuracy=right, label_r2=explained),
                                        "Nothing to fix for predictions; a weight decay keeps weights this size "
                                        "from saturating the activations.", layer=row["layer"]))
                continue
            findings.append(Finding(WEIGHT_INIT.id, WARNING, title, row,
                                    "Use Glorot/He initialization; check custom weight loading.",
                                    layer=row["layer"]))
    return findings
