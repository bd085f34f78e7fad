"""Output checks: constant predictions, saturation, one class, threshold, loss at the prior, shapes."""

from __future__ import annotations

import numpy as np

from whyzero.causes import CRITICAL, INFO, SYMPTOM, SYMPTOM_LIKE, WARNING, Cause, Fix, Kind, Stage, declare
from whyzero.checks import Skipped, check
from whyzero.checks.labels import PERPLEXITY_WARNING, entropy, normalized_perplexity, shares_of
from whyzero.findings import Finding
from whyzero.measurements import Measurements
from whyzero.model_info import is_custom
from whyzero.probes.values import ONE_TOLERANCE

# Predictions whose std across samples is below this fraction of their magnitude are constant.
CONSTANT_RELATIVE_SPREAD = 1e-3
CONSTANT_ABSOLUTE_SPREAD = 1e-6
COLLAPSED_RELATIVE_SPREAD = 2e-2
# Exactly 0/1 outputs in more than this share of samples are pinned.
SATURATED_SAMPLES_CRITICAL = 0.5
SATURATED_SAMPLES_WARNING = 0.1
# Confidently right pins are fine; pins that are wrong more often than this are the problem.
PINNED_ACCURACY_OK = 0.9
# One class predicted for this share of samples (or pixels).
MAJORITY_SHARE = 0.95
# ... while the labels hold other classes in at least this share (1.5% foreground pixels count)
# and the model misses this share of them.
OTHER_CLASSES_MIN = 0.005
MISSED_SHARE = 0.9
# A threshold problem: ROC AUC this high with all scores on one side of 0.5.
SEPARABLE_AUC = 0.8
# ... and only when the class the scores leave out is predicted for fewer than this share of the samples it holds
RARE_PREDICTED_SHARE = 0.5
ONE_SIDE_SHARE = 0.95
# Loss within this relative distance of the label-prior entropy.
PRIOR_TOLERANCE = 0.05
MIN_SAMPLES = 4



def _threshold_fix(f: Finding, run) -> Fix | None:
    if f.evidence.get("best_threshold") is None:
        return None
    t = float(f.evidence["best_threshold"])
    return Fix("threshold", f"decide at {t:.3g} instead of 0.5", threshold=t)


_ONE_CLASS = frozenset({Kind.MAJORITY, Kind.LOSS_AT_PRIOR})

CONSTANT = declare(Cause(
    "output.constant", "outputs", Stage.SEEN, "Predictions are (near-)constant across the batch",
    "the symptom itself: predictions (near-)identical across the batch", "spread across samples, the constant value",
    precedence=3, kinds=frozenset({Kind.OUTPUT}), role=SYMPTOM, figures=("output_distribution",)))
SATURATED = declare(Cause(
    "output.saturated", "outputs", Stage.SEEN, "Probabilities pinned at exactly 0 or 1",
    "probabilities pinned at exactly 0 or 1", "share of exact 0/1", precedence=0, kinds=frozenset({Kind.OUTPUT}),
    explains=_ONE_CLASS, role=SYMPTOM_LIKE, figures=("output_distribution",)))
MAJORITY_CLASS = declare(Cause(
    "output.majority_class", "outputs", Stage.SEEN, "Every prediction is one class",
    "argmax / threshold always yields one class (background, for segmentation) while labels hold others",
    "predicted vs true class shares", precedence=1, kinds=frozenset({Kind.OUTPUT, Kind.MAJORITY}),
    role=SYMPTOM_LIKE, figures=("class_shares",)))
THRESHOLD = declare(Cause(
    "output.threshold", "outputs", Stage.TRAINING, "Scores carry signal but fall on one side of the threshold",
    "probabilities carry signal but all fall on one side of the 0.5 decision threshold",
    "score distribution, separability on the labels, the threshold that would separate", precedence=4,
    kinds=frozenset({Kind.THRESHOLD}), explains=_ONE_CLASS, fix=_threshold_fix,
    proof="the predictions re-judged at the threshold the labels support", figures=("threshold_sweep",)))
SHAPE_MISMATCH = declare(Cause(
    "output.shape_mismatch", "outputs", Stage.BUILD, "Output shape incompatible with the labels",
    "output shape incompatible with the labels (1000 classes vs binary labels)", "shapes", precedence=8,
    explains=frozenset({Kind.OUTPUT, Kind.GRADIENT, Kind.LEARNING_RATE}), figures=("class_shares",)))
LOSS_AT_PRIOR = declare(Cause(
    "training.loss_at_prior", "outputs", Stage.SEEN, "The loss equals the entropy of the label prior",
    "the loss equals the entropy of the label prior: the model has learned the class frequencies and nothing else",
    "batch loss vs prior entropy", precedence=2, kinds=frozenset({Kind.OUTPUT, Kind.LOSS_AT_PRIOR}),
    role=SYMPTOM_LIKE, figures=("loss_vs_prior",)))


def _per_sample(m: Measurements) -> np.ndarray:
    out = np.asarray(m.outputs, np.float64)
    return out.reshape(len(out), -1)


@check(CONSTANT, needs=("outputs", "labels", "label_ids"))
def constant(m: Measurements) -> list[Finding]:
    """The largest std across samples of any output unit, absolute and relative to the outputs' RMS."""
    out = _per_sample(m)
    if len(out) < 2:
        return []
    spread = float(np.max(np.std(out, axis=0)))
    scale = float(np.sqrt(np.mean(out**2)))
    relative = spread / scale if scale > 0 else 0.0
    value = out.mean(0)
    evidence = {"spread": spread, "relative_spread": relative, "value": value[:10].tolist(),
                "samples": len(out), "output_shape": list(m.output_shape[1:])}
    if spread <= CONSTANT_ABSOLUTE_SPREAD or relative < CONSTANT_RELATIVE_SPREAD:
        shown = ", ".join(f"{v:.4g}" for v in value[:4])
        return [Finding(CONSTANT.id, CRITICAL,
                        f"All {len(out)} predictions are the same: [{shown}{', ...' if value.size > 4 else ''}]",
                        evidence, "")]
    if relative < COLLAPSED_RELATIVE_SPREAD:
        return [Finding(CONSTANT.id, WARNING,
                        f"Predictions barely vary across the batch (relative spread {relative:.1e})", evidence,
                        "")]
    return []


@check(SATURATED, needs=("outputs", "labels", "label_ids"))
def saturated(m: Measurements) -> list[Finding]:
    """The share of samples whose probabilities are pinned at exactly 0 or 1, and how often those pins are right."""
    if not m.task.probabilities:
        return []
    out = _per_sample(m)
    at_one = np.abs(out - 1.0) <= ONE_TOLERANCE
    pinned_values = (out == 0.0) | at_one
    pinned = pinned_values.all(axis=1) if out.shape[1] == 1 else at_one.any(axis=1)
    if m.task.kind == "segmentation":
        pinned = pinned_values.mean(axis=1) > 0.5
    share = float(pinned.mean())
    if share < SATURATED_SAMPLES_WARNING:
        return []
    evidence = {"pinned_sample_share": share, "exact_zero_share": float((out == 0).mean()),
                "exact_one_share": float(at_one.mean())}
    ids = m.label_ids
    if ids is not None and m.task.kind in ("binary", "multiclass") and len(ids) == len(out):
        predicted = m.predicted_classes()
        accuracy = float(np.mean(predicted[pinned] == ids[pinned])) if pinned.any() else 1.0
        evidence["pinned_accuracy"] = accuracy
        if accuracy >= PINNED_ACCURACY_OK:
            # a sigmoid lands on exactly 0/1 only past |logit| ~ 17: right, but no gradient flows back.  From a
            # standard activation that is confidence (a note); from a custom layer it is that layer's instability
            if out.shape[1] == 1 and share >= SATURATED_SAMPLES_CRITICAL:
                return [Finding(SATURATED.id, WARNING if _custom_output(m) else INFO,
                                f"{share:.0%} of the predictions are pinned at exactly 0 or 1 (mostly right, but "
                                "no gradient flows through them and any error costs an infinite loss)", evidence,
                                "Compute the loss from logits (from_logits=True) and use a stable sigmoid.")]
            return []
    elif share < 1.0 and m.task.kind != "segmentation":
        return []  # without labels only a batch that is entirely pinned is a finding
    return [Finding(SATURATED.id, CRITICAL if share >= SATURATED_SAMPLES_CRITICAL else WARNING,
                    f"{share:.0%} of the predictions are pinned at exactly 0 or 1", evidence,
                    "Look for huge logits: unscaled inputs, exploding weights, an unstable custom activation.")]


def _custom_output(m: Measurements) -> bool:
    """Whether the model's last layer is custom code (a Lambda or a layer class of the user's)."""
    last = next((r for r in m.model_layers if r.get("name") == m.final_layer), None)
    return last is not None and is_custom(str(last.get("type")), last.get("activation"))


def _predicted_and_true(m: Measurements):
    pred = m.predicted_classes()
    if pred is None:
        return None, None
    true = m.label_ids
    if true is not None and true.shape != pred.shape:
        true = None
    return pred.reshape(-1), None if true is None else true.reshape(-1)


@check(MAJORITY_CLASS, needs=("outputs", "labels", "label_ids"))
def majority_class(m: Measurements) -> list[Finding]:
    """The share of samples (or pixels) predicted as one class, against the labels' other classes and how many of
    them it misses.
    """
    pred, true = _predicted_and_true(m)
    if pred is None or len(pred) < MIN_SAMPLES:
        return []
    k = max(m.task.n_classes, int(pred.max()) + 1)
    shares = np.bincount(pred, minlength=k) / len(pred)
    top = int(shares.argmax())
    if shares[top] < MAJORITY_SHARE:
        return []
    unit = m.positions_word if m.task.kind == "segmentation" else "samples"
    evidence = {"predicted_class": top, "predicted_share": float(shares[top]), "predicted_shares": shares[:20].tolist()}
    if true is None:
        return [Finding(MAJORITY_CLASS.id, INFO,
                        f"Class {top} is predicted for {shares[top]:.0%} of {unit}; no labels to compare", evidence,
                        "Give labels (or masks) to tell a one-class batch from a collapsed model.")]
    in_range = (true >= 0) & (true < k)
    valid = true[in_range].astype(int)
    true_shares = shares_of(valid, k)
    other = 1.0 - float(true_shares[top])
    others = in_range & (true != top)
    missed = float(np.mean(pred[others] == top)) if others.any() else 0.0
    if other < OTHER_CLASSES_MIN or missed < MISSED_SHARE:
        return []
    evidence.update(true_shares=true_shares[:20].tolist(), other_classes_share=other, missed_share=missed)

    present = max(int(valid.max(initial=0)) + 1, 2)
    imbalanced = normalized_perplexity(true_shares[:present], present) < PERPLEXITY_WARNING
    fix = ("The labels are imbalanced: weight the classes (see the labels panel) or use a focal/Dice loss."
           if imbalanced else "The labels are balanced: the model ignores its input; see the root cause.")
    return [Finding(MAJORITY_CLASS.id, CRITICAL,
                    f"Class {top} is predicted for {shares[top]:.0%} of {unit}, but the labels hold "
                    f"{other:.0%} of other classes", evidence, fix)]


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve by the rank statistic (ties count half)."""
    pos, neg = scores[truth == 1], scores[truth == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def balanced_accuracy(scores: np.ndarray, truth: np.ndarray, cut: float) -> float:
    """Mean of the true-positive and true-negative rates when deciding at ``cut`` (score >= cut is 1)."""
    pred = scores >= cut
    tpr = float(np.mean(pred[truth == 1])) if np.any(truth == 1) else 0.0
    tnr = float(np.mean(~pred[truth == 0])) if np.any(truth == 0) else 0.0
    return (tpr + tnr) / 2


def best_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The threshold with the best balanced accuracy (over every distinct score), and that accuracy."""
    best = (0.5, 0.0)
    for t in np.unique(scores):
        accuracy = balanced_accuracy(scores, truth, t)
        if accuracy > best[1]:
            best = (float(t), accuracy)
    return best


@check(THRESHOLD, needs=("outputs", "labels", "label_ids"))
def threshold(m: Measurements) -> list[Finding]:
    """ROC AUC of the scores on the labels, the share on one side of 0.5, and the threshold with the best balanced
    accuracy.
    """
    if m.task.kind != "binary" or not m.task.probabilities:
        return []
    if m.label_ids is None:
        return Skipped("no labels: the decision threshold is judged against them")
    scores = _per_sample(m)[:, 0]
    truth = m.label_ids.reshape(-1)
    if len(truth) != len(scores) or len(np.unique(truth)) < 2:
        return []
    positive = float(np.mean(scores > 0.5))
    if min(positive, 1 - positive) > 1 - ONE_SIDE_SHARE:
        return []
    labelled = float(np.mean(truth == 1))
    # the class the scores leave out, predicted against labelled
    avoided, held = (positive, labelled) if positive < 0.5 else (1 - positive, 1 - labelled)
    if avoided >= RARE_PREDICTED_SHARE * held:
        return []  # a rare class predicted about as often as it is labelled: one-sided scores are the labels' own
    auc = roc_auc(scores, truth)
    if not auc >= SEPARABLE_AUC:
        return []
    cut, balanced = best_threshold(scores, truth)
    return [Finding(THRESHOLD.id, CRITICAL,
                    f"Scores separate the classes (AUC {auc:.2f}) but {max(positive, 1 - positive):.0%} fall on one "
                    f"side of 0.5; a threshold of {cut:.3g} separates them",
                    {"auc": auc, "share_above_0_5": positive, "best_threshold": cut, "balanced_accuracy": balanced,
                     "score_min": float(scores.min()), "score_max": float(scores.max())},
                    f"Use a threshold near {cut:.3g}, or recalibrate (the scores are shifted: check class weights "
                    "and preprocessing).")]


# A model whose argmax gets this much more than the majority share right has learned more than the prior, however
# flat its probabilities (a ReLU network fed inputs scaled down by 255 keeps its ranking).
PRIOR_ACCURACY_MARGIN = 0.25


@check(LOSS_AT_PRIOR, needs=("outputs", "labels", "label_ids"))
def loss_at_prior(m: Measurements) -> list[Finding]:
    """The batch's cross-entropy against the entropy of the label prior, and the spread of the predictions."""
    if m.task.kind not in ("binary", "multiclass") or not m.task.probabilities:
        return []
    if m.label_ids is None:
        return Skipped("no labels: the loss is compared with the entropy of their prior")
    out = _per_sample(m)
    ids = m.label_ids.reshape(-1)
    if len(ids) != len(out) or len(ids) < MIN_SAMPLES:
        return []
    probs = np.concatenate([1 - out, out], 1) if out.shape[1] == 1 else out
    k = probs.shape[1]
    if ids.min() < 0 or ids.max() >= k:
        return []
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(ids)), ids.astype(int)], eps, 1))))
    prior = shares_of(ids, k)
    prior_entropy = entropy(prior)
    mean_pred = probs.mean(0)
    distance = float(0.5 * np.abs(mean_pred - prior).sum())
    per_sample_spread = float(np.max(np.std(probs, axis=0)))
    if prior_entropy <= 0 or abs(loss - prior_entropy) / prior_entropy > PRIOR_TOLERANCE or per_sample_spread > 0.05:
        return []
    right = float(np.mean(probs.argmax(1) == ids))
    if right >= prior.max() + PRIOR_ACCURACY_MARGIN:
        return []  # near-flat probabilities whose argmax is right: the model learned more than the prior
    evidence = {"loss": loss, "prior_entropy": prior_entropy, "label_prior": prior[:20].tolist(),
                "mean_prediction": mean_pred[:20].tolist(), "prior_distance": distance}
    history = (m.live or {}).get("history") or []
    if history:  # during training: the loss the fit reported, epoch by epoch, against the same prior
        evidence["fit_loss_by_epoch"] = [[h["epoch"], h["loss"]] for h in history]
    return [Finding(LOSS_AT_PRIOR.id, CRITICAL,
                    f"The loss ({loss:.3f}) equals the entropy of the label prior ({prior_entropy:.3f}): "
                    "the model learned the class frequencies and nothing else", evidence,
                    "Check the inputs reach the model intact (preprocessing, labels aligned with inputs), "
                    "then the learning rate and capacity.")]


@check(SHAPE_MISMATCH, needs=("outputs", "labels", "label_ids"))
def shape_mismatch(m: Measurements) -> list[Finding]:
    """The output's units against the labels' columns or classes, and their counts."""
    labels = m.labels
    if labels is None or m.task.kind == "segmentation":
        return []
    out = m.outputs
    units = out.shape[-1] if out.ndim > 1 else 1
    label_classes = int(np.max(labels)) + 1 if labels.ndim == 1 or labels.shape[-1] == 1 else labels.shape[-1]
    one_hot = labels.ndim == 2 and labels.shape[-1] > 1
    evidence = {"output_shape": list(out.shape), "label_shape": list(labels.shape), "output_units": int(units),
                "label_classes": label_classes}
    if one_hot and labels.shape[-1] != units:
        return [Finding(SHAPE_MISMATCH.id, CRITICAL,
                        f"Labels have {labels.shape[-1]} columns but the model outputs {units}", evidence,
                        "Make the output layer match the number of classes.")]
    if not one_hot and units > 2 and label_classes <= 2 and units >= 10 * label_classes:
        return [Finding(SHAPE_MISMATCH.id, CRITICAL,
                        f"The model outputs {units} classes but the labels are binary", evidence,
                        "Replace the output with Dense(1, 'sigmoid') (or Dense(2, 'softmax')).")]
    if len(labels) != len(out):
        return [Finding(SHAPE_MISMATCH.id, CRITICAL,
                        f"{len(labels)} labels for {len(out)} inputs", evidence, "Pass one label per input.")]
    return []
