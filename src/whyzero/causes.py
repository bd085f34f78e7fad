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

PANELS = ("outputs", "inputs", "model", "activations", "gradients", "labels")


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
]

CAUSES: dict[str, Cause] = {c.id: c for c in _CAUSES}
# Symptom first, then the causes in the order a user should look at them.
CAUSE_ORDER = {c.id: i for i, c in enumerate(
    [CAUSES["output.constant"]] + [c for c in _CAUSES if c.id != "output.constant"]
)}


def get_cause(cause_id: str) -> Cause:
    """Returns the cause with this id.

    Raises:
        KeyError: for an id that is not in the taxonomy.
    """
    try:
        return CAUSES[cause_id]
    except KeyError:
        raise KeyError(f"Unknown cause id. Received: {cause_id!r}") from None
