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
    """A cause of zero or constant predictions: its id, the panel that shows its evidence, a title, what
    it means and the evidence a user needs (the text of CAUSES.md)."""

    id: str
    panel: str
    title: str
    meaning: str = ""
    evidence: str = ""


_CAUSES = [
    Cause("input.range_mismatch", "inputs", "Input range differs from what the model was trained on",
          "the batch's value range / mean / std differs from what the model was trained on (0-255 vs 0-1, wrong"
          ' mean/std, wrong `preprocess_input` mode)',
          'batch vs training per-channel (or per-feature) min/max/mean/std; where no training data is given: '
          "the model's own memory of it (BatchNorm moving mean/variance of the first BN layers, an adapted "
          '`Normalization` layer); which standard preprocessing would match'),
    Cause("input.double_normalization", "inputs", "The batch is normalized twice",
          'the model rescales or normalizes inside (`Rescaling`, `Normalization`) and the batch was already scaled',
          'the layer and its parameters, the batch range'),
    Cause("input.dtype_mismatch", "inputs", "Integer (0..255) inputs where the model expects small floats",
          'integer arrays (uint8) or integer-valued 0..255 floats where the model expects small floats',
          'dtype, share of integer values, range'),
    Cause("input.channel_order", "inputs", "Colour channels in the wrong order (RGB vs BGR)",
          'RGB fed to a BGR-trained model or the reverse',
          'per-channel means, batch vs training, and the permutation that matches'),
    Cause("input.feature_scale_disparity", "inputs", "Features on very different scales",
          'tabular features whose scales differ by orders of magnitude, unnormalized',
          'per-feature std / range table, the ratio'),
    Cause("input.invalid_values", "inputs", "NaN / Inf or constant inputs",
          'NaN / Inf, or a constant (zero-variance) batch such as all-black images from a broken loader',
          'counts, per-sample variance'),
    Cause("input.unnormalized", "inputs", "Inputs never normalized: large, off-centre values",
          'inputs never normalized at all (training saw the same scale): features far from zero relative to '
          'their spread (mean ≫ std), or magnitudes ≫ 1 fed straight into saturating or ReLU units — the most '
          'common answer to "my model predicts one value"',
          "per-feature mean / std / min / max, mean-to-std ratio, the first layer's pre-activation range and "
          'share in the flat region; what standardizing would give'),
    Cause("model.output_activation", "model", "Final activation unsuitable for the task",
          'final activation unsuitable for the task and loss: linear or ReLU on a binary-probability output, '
          'sigmoid on a regression target, softmax on one unit',
          'final layer, its activation, the loss'),
    Cause("model.loss_mismatch", "model", "Loss incompatible with the output",
          'loss incompatible with the output: binary cross-entropy on a multi-unit output, categorical loss on '
          'one unit, `from_logits` disagreeing with the final activation',
          'loss config, output shape and activation'),
    Cause("model.stale_head", "model", "A pre-trained classifier head left under a new head",
          'a pre-trained classifier head (e.g. a 1000-unit softmax, `include_top=True`) left in the graph under'
          ' a new head',
          'the chain of layers'),
    Cause("model.unstable_lambda", "model", "A custom layer pins its outputs at exactly 0 or 1",
          'a custom `Lambda` / activation whose outputs pin at exactly 0 or 1 (numerical instability)',
          'the layer, share of exact 0/1 outputs'),
    Cause("model.weight_init", "model", "Weights zero, constant or far off the Glorot/He scale",
          'kernels all zero, constant, or far off the Glorot/He scale (tiny or huge)',
          'per-layer weight std vs expected std'),
    Cause("activation.dead_relu", "activations", "Dead ReLU units",
          'ReLU units that never fire on the batch',
          'per-layer share of units never active'),
    Cause("activation.saturation", "activations", "Saturated sigmoid / tanh units",
          'sigmoid / tanh units driven into their flat regions',
          'per-layer share of pre-activations beyond the flat threshold'),
    Cause("activation.collapse", "activations", "Activations collapse: the input stops mattering",
          'from some layer on, every sample gives the same activations: the input no longer matters',
          'per-layer spread across samples; the first layer where it collapses'),
    Cause("gradient.vanishing", "gradients", "Vanishing gradients",
          'gradients shrink toward the input layers until weights cannot move',
          'per-layer gradient norms, first/last ratio'),
    Cause("gradient.exploding", "gradients", "Exploding or non-finite gradients",
          'gradients grow toward the input layers, or are NaN / Inf',
          'per-layer gradient norms, first/last ratio'),
    Cause("gradient.zero", "gradients", "Trainable layers receive exactly zero gradient",
          'trainable layers that receive exactly zero gradient',
          'the layers'),
    Cause("training.learning_rate_low", "gradients", "Learning rate too small to move the weights",
          'learning rate so small that updates are negligible',
          'optimizer config; update/weight ratio lr·‖g‖/‖w‖ per layer'),
    Cause("training.learning_rate_high", "gradients", "Learning rate so large that updates overshoot",
          'learning rate so large that updates overshoot',
          'same'),
    Cause("training.loss_at_prior", "outputs", "The loss equals the entropy of the label prior",
          'the loss equals the entropy of the label prior: the model has learned the class frequencies and '
          'nothing else',
          'batch loss vs prior entropy'),
    Cause("output.constant", "outputs", "Predictions are (near-)constant across the batch",
          'the symptom itself: predictions (near-)identical across the batch',
          'spread across samples, the constant value'),
    Cause("output.saturated", "outputs", "Probabilities pinned at exactly 0 or 1",
          'probabilities pinned at exactly 0 or 1',
          'share of exact 0/1'),
    Cause("output.majority_class", "outputs", "Every prediction is one class",
          'argmax / threshold always yields one class (background, for segmentation) while labels hold others',
          'predicted vs true class shares'),
    Cause("output.threshold", "outputs", "Scores carry signal but fall on one side of the threshold",
          'probabilities carry signal but all fall on one side of the 0.5 decision threshold',
          'score distribution, separability on the labels, the threshold that would separate'),
    Cause("output.shape_mismatch", "outputs", "Output shape incompatible with the labels",
          'output shape incompatible with the labels (1000 classes vs binary labels)',
          'shapes'),
    Cause("labels.imbalance", "labels", "Class imbalance in labels or mask pixels",
          'class imbalance in labels or mask pixels',
          'class shares, normalized perplexity, suggested class weights'),
    Cause("labels.encoding", "labels", "Label or mask values outside [0, K-1]",
          'label / mask values outside [0, K-1]: 0/255 masks, fractional (interpolated) masks, RGB masks, one-'
          'hot vs sparse mismatch',
          'unique values, the number of classes the model outputs'),
    Cause("labels.mask_mismatch", "labels", "Masks do not match the images or the output",
          'masks that do not match the images or the output (count, size)',
          'shapes'),
    Cause("labels.target_scale", "labels", "Regression targets left on a huge scale",
          'regression targets orders of magnitude away from what the output produces (prices in the thousands, '
          'counts in the millions) and left unscaled: the loss is all scale and the model settles on the mean',
          "target mean / std / range vs the output's; the loss of always predicting the mean"),
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
