"""Training checks: what training left in the weights, or did not.

- ``training.regularization``: an L1/L2 kernel regularizer strong enough that the kernels it acts on shrank far
  below any initializer's scale;
- ``model.untrained``: weights still as the initializers drew them (no optimizer step, biases exactly zero,
  kernels at the Glorot/He scale, BatchNorm statistics at 0 and 1);
- kernels that an optimizer's steps moved far from anything an initializer draws (every weight at one size):
  not an initialization fault, and not established which training setting did it;
- ``model.batchnorm_statistics``: BatchNorm moving statistics that do not describe the inputs (the predictions
  recover with the statistics re-estimated on the batch, and no preprocessing matches the memory instead).
"""

from __future__ import annotations

from whyzero.causes import CRITICAL, DATA_EFFECTS, INFO, WARNING, Cause, Fix, Kind, Stage, declare
from whyzero.checks import check
from whyzero.checks.gradients import LEARNING_RATE_HIGH
from whyzero.checks.inputs import MATCH_FACTOR, RANGE_MISMATCH, RANGE_WARNING, output_collapsed
from whyzero.checks.model import MIN_KERNEL_VALUES, WEIGHT_SCALE_HIGH, WEIGHT_SCALE_LOW, moved_by_training
from whyzero.distances import stats_score
from whyzero.findings import Finding
from whyzero.measurements import Measurements

_WHAT_WEIGHTS_DO = DATA_EFFECTS | {Kind.WEIGHTS, Kind.IMBALANCE}

REGULARIZATION = declare(Cause(
    "training.regularization", "gradients", Stage.TRAINING, "Regularization so strong the kernels shrink to zero",
    "weight decay or L1 / L2 regularization so strong that the kernels shrink toward zero and the output settles "
    "on the prior",
    "regularizer factors per layer, kernel norms against the initializer's scale, the regularization loss against "
    "the data loss", precedence=1, kinds=frozenset({Kind.REGULARIZED}), explains=_WHAT_WEIGHTS_DO,
    figures=("weight_scale",)))
UNTRAINED = declare(Cause(
    "model.untrained", "model", Stage.TRAINING, "The weights were never trained",
    "the weights are still at their initial values: a rebuilt model whose `load_weights` was forgotten, a step-0 "
    "checkpoint",
    "optimizer step count; BN gamma 1 / beta 0 / moving 0 and 1; biases 0; kernels at the initializer's scale",
    precedence=-1, kinds=frozenset({Kind.UNTRAINED}), explains=_WHAT_WEIGHTS_DO, figures=("weight_scale",)))


def _kernel_rows(m: Measurements) -> list[dict]:
    return kernel_rows(m.memory.weights)


def kernel_rows(weights: list[dict]) -> list[dict]:
    """The weight table's rows of kernels large enough to judge, and finite."""
    return [r for r in weights if r.get("values", 0) >= MIN_KERNEL_VALUES and not r.get("nonfinite")]


def at_initialization(weights: list[dict], steps: int | None, batchnorm: list) -> bool:
    """Whether the weights are as the initializers drew them: every kernel inside the Glorot..He band, every
    BatchNorm layer at its initial statistics, and every bias exactly zero or no optimizer step taken.  The engine
    asks it too: an untrained model's what-if by the labels would run six passes for nothing."""
    rows = kernel_rows(weights)
    if not rows or steps:
        return False
    biases = [r["bias_zero"] for r in rows if r.get("bias_zero") is not None]
    at_scale = all(INITIAL_RATIO[0] <= r["ratio"] <= INITIAL_RATIO[1] for r in rows)
    fresh_batchnorm = not any(b.trained for b in batchnorm)
    zero_biases = bool(biases) and all(biases)
    never_stepped = steps == 0 and bool(batchnorm)
    return at_scale and fresh_batchnorm and (zero_biases or never_stepped)


def _penalty(row: dict) -> float:
    """The regularization loss of one kernel: l2·Σw² + l1·Σ|w|, from its moments."""
    squares = row["values"] * (row["std"] ** 2 + row["mean"] ** 2)
    magnitudes = row["values"] * abs(row.get("magnitude_mean", row["std"]))
    return float(row.get("l2", 0.0) * squares + row.get("l1", 0.0) * magnitudes)


@check(REGULARIZATION)
def regularization(m: Measurements) -> list[Finding]:
    """Per regularized kernel: its L1/L2 factors and its std against the Glorot/He scale; the regularization loss
    its kernels still carry against the batch's loss."""
    regularized = [r for r in _kernel_rows(m) if r.get("l1") or r.get("l2")]
    shrunk = [r for r in regularized if r["ratio"] < WEIGHT_SCALE_LOW]
    if not shrunk:
        return []
    strongest = max(shrunk, key=lambda r: max(r.get("l1", 0.0), r.get("l2", 0.0)))
    evidence = {"layers": [r["layer"] for r in shrunk][:10], "shrunk_layers": len(shrunk),
                "regularized_layers": len(regularized), "l1": strongest.get("l1", 0.0), "l2": strongest.get("l2", 0.0),
                "kernel_std": strongest["std"], "expected_std": strongest["expected_low"],
                "ratio": strongest["ratio"], "regularization_loss": sum(_penalty(r) for r in regularized),
                "data_loss": m.loss_value}
    title = (f"{len(shrunk)} of {len(regularized)} regularized kernels shrank to {strongest['ratio']:.1e}× their "
             f"initial scale (l2 {strongest.get('l2', 0.0):.3g}, l1 {strongest.get('l1', 0.0):.3g} on "
             f"'{strongest['layer']}')")
    learned = m.learned()
    if learned or (learned is None and not output_collapsed(m)):
        how = "the model still learned its labels" if learned else "the predictions still vary (no labels to judge)"
        return [Finding(REGULARIZATION.id, INFO, f"{title}; {how}", evidence,
                        "Nothing to fix for predictions.", layer=strongest["layer"])]
    severity = CRITICAL if learned is False and len(shrunk) * 2 >= len(regularized) else WARNING
    return [Finding(REGULARIZATION.id, severity, f"{title}: the output settles on the prior", evidence,
                    "Lower the regularization factor 100x or more (1e-4 is a common L2), then retrain.",
                    layer=strongest["layer"])]


# A kernel as an initializer drew it: its std within this factor of the Glorot..He band (a small layer's sample std
# strays a few percent from the initializer's).
INITIAL_RATIO = (0.7, 1.4)


@check(UNTRAINED)
def untrained(m: Measurements) -> list[Finding]:
    """The optimizer's step count, whether every bias is exactly zero, every kernel inside the Glorot..He band and
    every BatchNorm layer's moving statistics at their initial 0 and 1."""
    rows = _kernel_rows(m)
    steps = (m.optimizer or {}).get("iterations")
    if m.learned() or not at_initialization(m.memory.weights, steps, m.memory.batchnorm):
        return []
    biases = [r["bias_zero"] for r in rows if r.get("bias_zero") is not None]
    evidence = {"optimizer_steps": steps, "layers_with_zero_bias": sum(biases), "layers_with_bias": len(biases),
                "kernels_at_initializer_scale": len(rows), "batchnorm_layers_at_initial_statistics":
                len(m.memory.batchnorm), "label_accuracy": m.label_accuracy()}
    how = "no optimizer step" if steps == 0 else "the optimizer's step count unknown"
    return [Finding(UNTRAINED.id, CRITICAL,
                    f"The weights are as the initializers drew them ({how}, every bias exactly 0, every kernel at "
                    "the Glorot/He scale): the model was never trained", evidence,
                    "Load the trained weights (model.load_weights(...) after rebuilding it), or train the model.")]


# Under divergence (weights NaN/Inf or blown this far past their scale), plain SGD at this rate or more is named as
# the cause; below it the data (unscaled inputs or targets) is as likely, and the rate is a candidate.
SGD_DIVERGING_LR = 0.1
DIVERGED_RATIO = 1e6


@check(LEARNING_RATE_HIGH)
def steps_that_moved_the_weights(m: Measurements) -> list[Finding]:
    """Kernels that training moved far from any initializer's draw (every weight at one size, or blown past 1e6x its
    scale) after the optimizer's steps, against the optimizer and its rate."""
    optimizer = m.optimizer or {}
    learned = m.learned()
    if learned or not optimizer.get("learning_rate"):
        return []
    diverged = [r for r in m.memory.weights if r.get("nonfinite") or r.get("ratio", 1.0) > DIVERGED_RATIO]
    if diverged:
        return _diverged_by_steps(m, diverged)  # what it did: the weights are NaN or blown up
    if learned is None and not output_collapsed(m):
        return []  # judged by what it did: predictions that vary show nothing wrong without labels
    moved = [r for r in _kernel_rows(m) if moved_by_training(m, r) and not (r.get("l1") or r.get("l2"))
             and (r["ratio"] < WEIGHT_SCALE_LOW or r["ratio"] > WEIGHT_SCALE_HIGH)]
    if not moved:
        return []
    first = moved[0]
    evidence = {"layers": [r["layer"] for r in moved][:10], "kernel_std": first["std"], "ratio": first["ratio"],
                "magnitude_spread": first.get("magnitude_spread"), "optimizer": optimizer.get("name"),
                "learning_rate": optimizer["learning_rate"], "optimizer_steps": optimizer.get("iterations"),
                "candidates": [LEARNING_RATE_HIGH.id, "the training data"],
                "separated_by": "the training configuration: a run at a 10x lower learning rate, or the kernels "
                                "saved before training"}
    return [Finding(LEARNING_RATE_HIGH.id, WARNING,
                    f"{len(moved)} kernels sit at one size ({first['std']:.2g}, {first['ratio']:.2g}× the Glorot/He "
                    f"scale) after {optimizer.get('iterations') or 'some'} steps of {optimizer.get('name')} at "
                    f"{optimizer['learning_rate']:.2g}: training moved them there, no initializer draws this",
                    evidence, "Retrain from a fresh initialization at a 10x lower learning rate; if that does not "
                    "help, check the inputs' and the targets' scale.", layer=first["layer"])]


def _diverged_by_steps(m: Measurements, diverged: list[dict]) -> list[Finding]:
    optimizer = m.optimizer
    lr, name = optimizer["learning_rate"], optimizer.get("name")
    plain = name in ("SGD",)
    if not plain or lr < SGD_DIVERGING_LR / 10:
        return []  # an adaptive optimizer's rate is judged by its configured value (checks.gradients)
    # weights NaN or blown past any scale fix the output whatever else is found: ranked first (``pins_output``)
    evidence = {"optimizer": name, "learning_rate": lr, "optimizer_steps": optimizer.get("iterations"),
                "diverged": True, "pins_output": True, "diverged_layers": [r["layer"] for r in diverged][:10],
                "nonfinite_values": int(sum(r.get("nonfinite", 0) for r in diverged)),
                "largest_ratio": float(max(r.get("ratio", 0.0) for r in diverged))}
    if lr >= SGD_DIVERGING_LR:
        return [Finding(LEARNING_RATE_HIGH.id, CRITICAL,
                        f"Training under {name} at {lr:.2g} diverged: the weights of {len(diverged)} layers are "
                        "NaN/Inf or blown far past their scale", evidence,
                        "Retrain from a fresh initialization at a 10x lower learning rate, with gradient clipping "
                        "(clipnorm=1.0) and scaled inputs and targets.", layer=diverged[0]["layer"])]
    evidence.update(candidates=[LEARNING_RATE_HIGH.id, "the inputs' or the targets' scale"],
                    separated_by="a run at a 10x lower learning rate on the same data")
    return [Finding(LEARNING_RATE_HIGH.id, WARNING,
                    f"Training under {name} at {lr:.2g} diverged ({len(diverged)} layers NaN/Inf or blown up): the "
                    "rate, or unscaled inputs or targets", evidence,
                    "Retrain at a 10x lower learning rate; scale the inputs and targets.", layer=diverged[0]["layer"])]


def _stale_memory_refine(root: Finding, other: Finding, kinds: frozenset) -> bool | None:
    """A batch judged against that stale memory is not the input's fault."""
    if Kind.INPUT in kinds and "BatchNorm" in str(other.evidence.get("compared_with", "")):
        return True
    return None


def _batchnorm_fix(f: Finding, run) -> Fix | None:
    if getattr(run, "batchnorm_outputs", None) is None:
        return None
    return Fix("batchnorm", "normalize by the batch's own statistics in every BatchNorm layer",
               outputs_from=lambda live: live.batchnorm_outputs)


BATCHNORM_STATISTICS = declare(Cause(
    "model.batchnorm_statistics", "model", Stage.TRAINING, "BatchNorm moving statistics do not describe the inputs",
    "BatchNormalization moving mean / variance that do not describe what the layer sees at inference: too few "
    "updates at the default momentum 0.99, a frozen base fine-tuned in training mode, statistics gathered on other "
    'data. "Good training accuracy, predict gives one class."',
    "per BN layer: the batch statistics of its input against its moving mean / variance, the first layer where they "
    "part; predictions with the statistics re-estimated on the batch (the proof)", precedence=1.5,
    kinds=frozenset({Kind.BATCHNORM}), explains=DATA_EFFECTS,
    refine=_stale_memory_refine, fix=_batchnorm_fix,
    proof="the outputs re-judged with every BatchNorm layer normalizing by the batch's own statistics",
    figures=("batchnorm_memory",)))

# With every BatchNorm layer on the batch's own statistics the predictions recover: right on at least this share,
# and this much more than as given; without labels, the share of the most predicted class falls from at least
# ONE_CLASS_GIVEN by RECOVERED_TOP_DROP.
RECOVERED_ACCURACY = 0.6
RECOVERED_GAIN = 0.3
ONE_CLASS_GIVEN = 0.9
RECOVERED_TOP_DROP = 0.3


def _recovered(rerun: dict) -> bool:
    given, again = rerun["given"], rerun["rerun"]
    if "accuracy" in given:
        return again["accuracy"] >= RECOVERED_ACCURACY and again["accuracy"] - given["accuracy"] >= RECOVERED_GAIN
    return given["top_class_share"] >= ONE_CLASS_GIVEN and \
        again["top_class_share"] <= given["top_class_share"] - RECOVERED_TOP_DROP


@check(BATCHNORM_STATISTICS)
def batchnorm_statistics(m: Measurements) -> list[Finding]:
    """The predictions with every BatchNorm layer normalizing by the batch's own statistics, against them as given;
    whether a standard preprocessing of the batch matches the layers' memory instead (then the input is at fault);
    how far the moving statistics are from their initial values, and the batch from the training statistics."""
    rerun = m.memory.batchnorm_rerun
    if not rerun or not _recovered(rerun):
        return []
    preprocessing_matches = m.whatif is not None and m.whatif.names_a_match(MATCH_FACTOR)
    matches_training = m.train_stats is not None and stats_score(m.input_stats, m.train_stats) < RANGE_WARNING
    if preprocessing_matches and not matches_training:
        return []  # the memory is consistent with another preprocessing: the input's fault (input.range_mismatch)
    partial = [r for r in m.memory.batchnorm if r.trained and r.converged < 1.0]
    parted = max(m.memory.batchnorm, key=lambda r: r.distance)
    given, again = rerun["given"], rerun["rerun"]
    evidence = {"layer": parted.layer, "z_median": parted.z_median, "log10_var_ratio": parted.log10_var_ratio,
                "converged": min((r.converged for r in m.memory.batchnorm), default=1.0),
                "accuracy_as_given": given.get("accuracy"), "accuracy_reestimated": again.get("accuracy"),
                "top_class_share_as_given": given["top_class_share"],
                "top_class_share_reestimated": again["top_class_share"], "batch_matches_training": matches_training}
    how = (f"right on {given['accuracy']:.0%} as given, {again['accuracy']:.0%} with the statistics re-estimated on "
           "the batch" if "accuracy" in given else
           f"one class for {given['top_class_share']:.0%} as given, {again['top_class_share']:.0%} with the statistics "
           "re-estimated on the batch")
    fix = ("Re-estimate the moving statistics: run the training data through the model in training mode (or train "
           "longer, or lower the BatchNorm momentum); when fine-tuning, keep a frozen base in inference mode "
           "(base(x, training=False)).")
    if partial or matches_training:
        why = (f"the moving statistics are only {evidence['converged']:.0%} of the way from their initial values"
               if partial else "the batch matches the training statistics, the moving ones do not")
        return [Finding(BATCHNORM_STATISTICS.id, CRITICAL, f"BatchNorm moving statistics do not describe the inputs "
                        f"({why}): {how}", evidence, fix, layer=parted.layer)]
    evidence.update(candidates=[BATCHNORM_STATISTICS.id, RANGE_MISMATCH.id],
                    separated_by="a sample of the training inputs (--train-inputs): a batch that matches it clears "
                                 "the preprocessing")
    return [Finding(BATCHNORM_STATISTICS.id, WARNING, f"The BatchNorm memory, or the preprocessing: {how}", evidence,
                    fix, layer=parted.layer)]
