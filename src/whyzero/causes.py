"""The cause taxonomy of ``shared/CAUSES.md``: ids, panels and titles.

The ids are a public contract: never rename or reuse one.
"""

from __future__ import annotations

from dataclasses import dataclass

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)
SEVERITY_RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Cause:
    id: str
    panel: str
    title: str


_CAUSES = [
    Cause("input.range_mismatch", "inputs", "Input range differs from what the model was trained on"),
    Cause("input.double_normalization", "inputs", "The batch is normalized twice"),
    Cause("input.dtype_mismatch", "inputs", "Integer (0..255) inputs where the model expects small floats"),
    Cause("input.channel_order", "inputs", "Colour channels in the wrong order (RGB vs BGR)"),
    Cause("input.feature_scale_disparity", "inputs", "Features on very different scales"),
    Cause("input.invalid_values", "inputs", "NaN / Inf or constant inputs"),
    Cause("input.unnormalized", "inputs", "Inputs never normalized: large, off-centre values"),
    Cause("model.output_activation", "model", "Final activation unsuitable for the task"),
    Cause("model.loss_mismatch", "model", "Loss incompatible with the output"),
    Cause("model.stale_head", "model", "A pre-trained classifier head left under a new head"),
    Cause("model.unstable_lambda", "model", "A custom layer pins its outputs at exactly 0 or 1"),
    Cause("model.weight_init", "model", "Weights zero, constant or far off the Glorot/He scale"),
    Cause("activation.dead_relu", "activations", "Dead ReLU units"),
    Cause("activation.saturation", "activations", "Saturated sigmoid / tanh units"),
    Cause("activation.collapse", "activations", "Activations collapse: the input stops mattering"),
    Cause("gradient.vanishing", "gradients", "Vanishing gradients"),
    Cause("gradient.exploding", "gradients", "Exploding or non-finite gradients"),
    Cause("gradient.zero", "gradients", "Trainable layers receive exactly zero gradient"),
    Cause("training.learning_rate_low", "gradients", "Learning rate too small to move the weights"),
    Cause("training.learning_rate_high", "gradients", "Learning rate so large that updates overshoot"),
    Cause("training.loss_at_prior", "outputs", "The loss equals the entropy of the label prior"),
    Cause("output.constant", "outputs", "Predictions are (near-)constant across the batch"),
    Cause("output.saturated", "outputs", "Probabilities pinned at exactly 0 or 1"),
    Cause("output.majority_class", "outputs", "Every prediction is one class"),
    Cause("output.threshold", "outputs", "Scores carry signal but fall on one side of the threshold"),
    Cause("output.shape_mismatch", "outputs", "Output shape incompatible with the labels"),
    Cause("labels.imbalance", "labels", "Class imbalance in labels or mask pixels"),
    Cause("labels.encoding", "labels", "Label or mask values outside [0, K-1]"),
    Cause("labels.mask_mismatch", "labels", "Masks do not match the images or the output"),
    Cause("labels.target_scale", "labels", "Regression targets left on a huge scale"),
]

CAUSES: dict[str, Cause] = {c.id: c for c in _CAUSES}

# The more specific of two input faults that one fix cures comes first (a double normalization is
# also a range mismatch).
# Upstream first: the order in which a fault propagates, from the data through the model's build to
# what training left in its layers, to what the user sees.  A finding can only be explained by one
# of an earlier stage (see ``attribution``); among equally certain roots the earlier stage comes first.
STAGES: tuple[tuple[str, ...], ...] = (
    ("input.invalid_values",),
    ("input.double_normalization", "input.channel_order", "input.range_mismatch", "input.dtype_mismatch",
     "input.feature_scale_disparity", "input.unnormalized", "labels.encoding", "labels.mask_mismatch",
     "output.shape_mismatch", "model.loss_mismatch", "model.output_activation", "model.stale_head",
     "labels.target_scale"),
    ("training.learning_rate_high", "training.learning_rate_low", "model.weight_init", "model.unstable_lambda",
     "output.threshold", "labels.imbalance"),
    ("activation.dead_relu", "activation.saturation"),
    ("activation.collapse", "gradient.exploding", "gradient.vanishing", "gradient.zero"),
    ("output.saturated", "output.majority_class", "training.loss_at_prior", "output.constant"),
)
STAGE = {cause: i for i, stage in enumerate(STAGES) for cause in stage}
CAUSE_ORDER = {cause: i for i, cause in enumerate(c for stage in STAGES for c in stage)}
# What the user sees: never a root cause.
SYMPTOMS = frozenset({"output.constant"})
# Output findings that restate the symptom: a consequence when a root explains them, else a symptom.
SYMPTOM_LIKE = frozenset({"output.saturated", "output.majority_class", "training.loss_at_prior"})


def get_cause(cause_id: str) -> Cause:
    """Returns the cause with this id.

    Raises:
        KeyError: for an id that is not in the taxonomy.
    """
    try:
        return CAUSES[cause_id]
    except KeyError:
        raise KeyError(f"Unknown cause id. Received: {cause_id!r}") from None
