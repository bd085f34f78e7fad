"""Label and mask checks: class balance, encoding, masks that do not fit."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from whyzero.causes import CRITICAL, DATA_EFFECTS, INFO, WARNING, Cause, Fix, Kind, Stage, declare
from whyzero.checks import check
from whyzero.findings import Finding
from whyzero.measurements import Measurements, unique_counts
from whyzero.targets import signed_binary

# TheDeepChecker: normalized perplexity (e^H - 1) / (K - 1) below 0.5 is imbalanced.
PERPLEXITY_WARNING = 0.5
# Imbalanced labels are only a note when the model finds at least this share of the rarer classes' samples (the
# mean of their recalls): the imbalance is then not why its predictions are flat.
RARE_RECALL_OK = 0.5



def _mask_fix(f: Finding, run) -> Fix | None:
    """Masks of 0/255 divided by 255, interpolated masks rounded to class ids (RGB masks need a colour map)."""
    if run.masks is None or run.task.kind != "segmentation":
        return None
    values = np.asarray(run.masks)
    if values.ndim == 4 and values.shape[-1] == 3:
        return None
    if f.evidence.get("fractional_share", 0) > 0:
        return Fix("masks", "round the masks to class ids", masks=np.round)
    if set(unique_counts(values)[0].tolist()) <= {0, 255}:
        return Fix("masks", "divide the masks by 255", masks=lambda masks: np.asarray(masks) // 255)
    return None


_TRAINING_SIGNAL = frozenset({Kind.MAJORITY, Kind.LOSS_AT_PRIOR, Kind.GRADIENT, Kind.LEARNING_RATE})

IMBALANCE = declare(Cause(
    "labels.imbalance", "labels", Stage.TRAINING, "Class imbalance in labels or mask pixels",
    "class imbalance in labels or mask pixels", "class shares, normalized perplexity, suggested class weights",
    precedence=5, kinds=frozenset({Kind.IMBALANCE}),
    explains=frozenset({Kind.MAJORITY, Kind.LOSS_AT_PRIOR, Kind.THRESHOLD}), figures=("label_shares",)))
ENCODING = declare(Cause(
    "labels.encoding", "labels", Stage.BUILD, "Label or mask values outside [0, K-1]",
    "label / mask values outside [0, K-1]: 0/255 masks, fractional (interpolated) masks, RGB masks, one-hot vs sparse "
    "mismatch", "unique values, the number of classes the model outputs", precedence=6,
    explains=_TRAINING_SIGNAL | {Kind.IMBALANCE}, fix=_mask_fix,
    proof="the checks re-run on masks divided by 255, or rounded to class ids", figures=("label_shares",)))
MASK_MISMATCH = declare(Cause(
    "labels.mask_mismatch", "labels", Stage.BUILD, "Masks do not match the images or the output",
    "masks that do not match the images or the output (count, size)", "shapes", precedence=7,
    explains=_TRAINING_SIGNAL, figures=("foreground_per_image",)))
TARGET_SCALE = declare(Cause(
    "labels.target_scale", "labels", Stage.BUILD, "Regression targets left on a huge scale",
    "regression targets orders of magnitude away from what the output produces (prices in the thousands, counts in "
    "the millions) and left unscaled: the loss is all scale and the model settles on the mean",
    "target mean / std / range vs the output's; the loss of always predicting the mean", precedence=12,
    explains=DATA_EFFECTS, figures=("output_distribution",)))


def _targets(m: Measurements) -> np.ndarray | None:
    if m.task.kind == "segmentation":
        return m.masks
    return m.labels


def class_shares(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values and their shares."""
    uniques, counts = unique_counts(values)
    return uniques, counts / counts.sum()


def normalized_perplexity(shares: np.ndarray, k: int) -> float:
    shares = shares[shares > 0]
    return float((np.exp(entropy(shares)) - 1) / (k - 1)) if k > 1 else 1.0


def entropy(shares: np.ndarray) -> float:
    """Shannon entropy (nats) of class shares: the loss of always predicting them."""
    shares = np.asarray(shares, np.float64)
    shares = shares[shares > 0]
    return float(-np.sum(shares * np.log(shares)))


def shares_of(ids: np.ndarray, k: int) -> np.ndarray:
    """Share of each class 0..k-1 among the ids that fall in that range."""
    ids = np.asarray(ids).reshape(-1)
    valid = ids[(ids >= 0) & (ids < k)].astype(int)
    return np.bincount(valid, minlength=k)[:k] / max(valid.size, 1)


def suggested_class_weights(counts: np.ndarray) -> np.ndarray:
    """Balanced class weights n / (k * count_c) over the k classes the labels use; 0 for an absent class."""
    counts = np.asarray(counts)
    return np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)


@check(IMBALANCE, needs=("label_ids",))
def imbalance(m: Measurements) -> list[Finding]:
    """Class shares of the labels (or mask pixels) and their normalized perplexity (e^H − 1)/(K − 1)."""
    ids = m.label_ids
    if ids is None or m.task.kind == "regression":
        return []
    ids = ids.reshape(-1).astype(int)
    ids = ids[(ids >= 0) & (ids < m.task.n_classes)]
    if ids.size == 0:
        return []
    k = max(int(ids.max()) + 1, 2)  # classes the labels use: a 1000-way output is not 998 empty classes
    counts = np.bincount(ids, minlength=k)
    shares = counts / max(counts.sum(), 1)
    if np.count_nonzero(counts) == 1 and m.task.kind != "segmentation":
        return _one_class(m, int(ids[0]), shares)
    perplexity = normalized_perplexity(shares, k)
    if perplexity >= PERPLEXITY_WARNING:
        return []
    weights = suggested_class_weights(counts)
    unit = "labels" if m.task.kind != "segmentation" else \
        "mask pixels" if m.positions_word == "pixels" else "per-position labels"
    title = f"The {unit} are imbalanced: class {int(shares.argmax())} holds {shares.max():.0%} " \
            f"(normalized perplexity {perplexity:.2f})"
    evidence = {"class_shares": shares[:50].tolist(), "normalized_perplexity": perplexity,
                "suggested_class_weights": weights[:50].tolist()}
    recall = m.minority_recall()
    if recall is not None and recall >= RARE_RECALL_OK:
        # imbalanced data the model has learned: the rarer classes are found, so it is not why anything is flat
        return [Finding(IMBALANCE.id, INFO, f"{title}; the model still finds {recall:.0%} of the rarer "
                        "classes' " + ("samples" if m.task.kind != "segmentation" else unit),
                        dict(evidence, minority_recall=recall),
                        "Nothing to fix for predictions; class weights may still raise the rarer classes' recall.")]
    if recall is not None:
        evidence["minority_recall"] = recall
    return [Finding(IMBALANCE.id, WARNING, title, evidence,
                    "Weight the loss by the suggested class weights, or use a focal/Dice loss.")]


# A batch whose labels are all one class is a warning when the model predicts that class for this share of it.
ONE_CLASS_AGREES = 0.9


def _one_class(m: Measurements, only: int, shares: np.ndarray) -> list[Finding]:
    """Labels that are all one class.  A batch picked from one class (every image a cat) says nothing of the
    training labels' balance: a note when the model still predicts other classes for some of it.  When it predicts
    that class for nearly all, the labels may be what it learned from (a label-loading bug leaves them all 0)."""
    predicted = m.predicted_classes()
    agrees = None if predicted is None or predicted.size != m.label_ids.size else float(np.mean(predicted == only))
    evidence = {"class_shares": shares[:50].tolist(), "single_class": only, "predicted_share": agrees}
    if agrees is not None and agrees >= ONE_CLASS_AGREES:
        return [Finding(IMBALANCE.id, WARNING,
                        f"Every label in the batch is class {only}, and the model predicts it for {agrees:.0%}: if "
                        "the training labels were one class too, that is all it could learn", evidence,
                        "Check how the training labels are loaded (a path parsed wrong, a column misread); "
                        "if the batch was picked from one class, give one with several.")]
    return [Finding(IMBALANCE.id, INFO, f"Every label in the batch is class {only}: the batch cannot show "
                    "how balanced the training labels are", evidence,
                    "Give a batch with several classes to judge their balance.")]


def _mapping_fix(f: Finding, run) -> Fix | None:
    mapping = f.evidence.get("permutation")
    if not mapping:
        return None
    table = np.asarray(mapping)
    return Fix("labels", "renumber the labels as the model numbers the classes",
               labels=lambda ids: table[np.asarray(ids).astype(int)])


CLASS_MAPPING = declare(Cause(
    "labels.class_mapping", "labels", Stage.BUILD, "The labels number the classes in another order than the model",
    "the labels number the classes in another order than the model learned them (a `flow_from_directory` mapping "
    "against a hand-written one): confident, varied predictions that are almost never right",
    "confusion matrix, accuracy against the labels, the label permutation that makes them right and its accuracy "
    "(the proof)", precedence=6.5, explains=frozenset({Kind.OUTPUT, Kind.THRESHOLD, Kind.GRADIENT, Kind.LEARNING_RATE,
                                                       Kind.IMBALANCE}),
    fix=_mapping_fix, proof="the predictions re-judged against the labels renumbered by the best permutation",
    figures=("class_shares",)))

# Predictions this confident on average (the top probability), this varied (no class for more than this share)
# and right this rarely, which one renumbering of the labels makes right at least RENUMBERED_ACCURACY and by
# RENUMBERED_GAIN more: the labels and the model number the classes differently.
MAPPING_CONFIDENCE = 0.6
MAPPING_TOP_SHARE = 0.8
MAPPING_ACCURACY_MAX = 0.5
RENUMBERED_ACCURACY = 0.8
RENUMBERED_GAIN = 0.4


@check(CLASS_MAPPING, needs=("outputs", "label_ids"))
def class_mapping(m: Measurements) -> list[Finding]:
    """The confusion matrix of the predicted classes against the labels; the renumbering of the labels (one class
    for one class, the assignment that maximizes the matches) and the accuracy it gives."""
    if m.task.kind not in ("binary", "multiclass") or not m.task.probabilities or m.label_ids is None:
        return []
    predicted, ids = m.predicted_classes(), np.asarray(m.label_ids)
    if predicted is None or predicted.shape != ids.shape or ids.ndim != 1 or len(ids) < 2 * max(m.task.n_classes, 4):
        return []
    k = m.task.n_classes
    if ids.min() < 0 or ids.max() >= k:
        return []  # labels outside the classes are labels.encoding's
    out = np.asarray(m.outputs, np.float64).reshape(len(ids), -1)
    confidence = float(np.mean(np.maximum(out[:, 0], 1 - out[:, 0]))) if out.shape[1] == 1 else float(
        np.mean(out.max(1)))
    accuracy = float(np.mean(predicted == ids))
    top_share = float(np.bincount(predicted, minlength=k).max() / len(predicted))
    if confidence < MAPPING_CONFIDENCE or top_share > MAPPING_TOP_SHARE or accuracy > MAPPING_ACCURACY_MAX:
        return []
    confusion = np.zeros((k, k), np.int64)  # rows: label, columns: predicted
    np.add.at(confusion, (ids.astype(int), predicted.astype(int)), 1)
    rows, cols = linear_sum_assignment(-confusion)
    mapping = np.arange(k)
    mapping[rows] = cols
    renumbered = float(confusion[rows, cols].sum() / len(ids))
    if renumbered < RENUMBERED_ACCURACY or renumbered - accuracy < RENUMBERED_GAIN:
        return []
    moved = {int(a): int(b) for a, b in zip(rows, cols) if a != b}
    return [Finding(CLASS_MAPPING.id, CRITICAL,
                    f"The model is confident ({confidence:.0%}) and varied, yet right on {accuracy:.0%}; renumbering "
                    f"the labels ({', '.join(f'{a}→{b}' for a, b in list(moved.items())[:6])}"
                    f"{', …' if len(moved) > 6 else ''}) makes it right on {renumbered:.0%}",
                    {"label_accuracy": accuracy, "renumbered_accuracy": renumbered, "permutation": mapping.tolist(),
                     "classes_renumbered": len(moved), "mean_confidence": confidence,
                     "top_predicted_share": top_share, "confusion": confusion[:20, :20].tolist()},
                    "Number the labels as the model learned them (the class order of training: "
                    "flow_from_directory's class_indices, the LabelEncoder used then), or retrain on these labels.")]


@check(ENCODING, needs=("labels", "masks"))
def encoding(m: Measurements) -> list[Finding]:
    """The label or mask values against 0..K−1: fractional values, 0/255, RGB masks."""
    values = _targets(m)
    if values is None or m.task.kind == "regression":
        return []
    k = m.task.n_classes
    values = np.asarray(values)
    what = "masks" if m.task.kind == "segmentation" else "labels"
    if m.task.kind == "segmentation" and values.ndim == 4 and values.shape[-1] == 3:
        colours = np.unique(values.reshape(-1, 3), axis=0)
        return [Finding(ENCODING.id, CRITICAL, f"The masks are RGB images ({len(colours)} colours), "
                        "not class ids", {"mask_shape": list(values.shape), "colours": colours[:10].tolist(),
                                          "output_classes": k},
                        "Map each colour to a class id and store masks as (H, W) integer arrays.")]
    flat = values.reshape(-1)
    if m.task.kind != "segmentation" and values.ndim == 2 and values.shape[-1] > 1:
        return []  # one-hot labels: shape checks cover them
    fractional = float(np.mean(np.round(flat) != flat))
    uniques = unique_counts(flat)[0]
    evidence = {"unique_values": uniques[:20].tolist(), "n_unique": int(uniques.size), "output_classes": k,
                "fractional_share": fractional, "min": float(flat.min()), "max": float(flat.max())}
    if fractional > 0:
        return [Finding(ENCODING.id, CRITICAL,
                        f"{fractional:.1%} of the {what} values are fractional (interpolated), e.g. "
                        f"{', '.join(f'{v:.3g}' for v in uniques[(np.round(uniques) != uniques)][:3])}",
                        evidence, "Resize masks with nearest-neighbour interpolation, never bilinear.")]
    hinge = "hinge" in str((m.loss or {}).get("raw", "")).lower()
    if signed_binary(m.task, flat) and (hinge or m.task.activation == "tanh"):
        return []  # -1/+1 targets, as a hinge loss or a tanh output reads them
    outside = (flat < 0) | (flat > k - 1)
    if outside.any():
        hint = " (0/255 masks: divide by 255)" if set(uniques.tolist()) <= {0, 255} else ""
        return [Finding(ENCODING.id, CRITICAL,
                        f"The {what} hold values {uniques[:6].tolist()} but the model outputs {k} classes "
                        f"(0..{k - 1}){hint}", {**evidence, "outside_share": float(outside.mean())},
                        "Map the values to class ids 0..K-1" + (", e.g. masks // 255." if hint else "."))]
    return []


@check(MASK_MISMATCH, needs=("masks",))
def mask_mismatch(m: Measurements) -> list[Finding]:
    """Masks' count and size against the images and the model's output."""
    if m.masks is None:
        return []
    masks, out = m.masks, m.output_shape
    evidence = {"masks": list(masks.shape), "inputs": list(m.batch_shape), "outputs": list(out)}
    if len(masks) != m.samples:
        return [Finding(MASK_MISMATCH.id, CRITICAL, f"{len(masks)} masks for {m.samples} images",
                        evidence, "Pass one mask per image, in the images' order.")]
    if len(out) == 4 and tuple(masks.shape[1:3]) != tuple(out[1:3]):
        return [Finding(MASK_MISMATCH.id, CRITICAL,
                        f"Masks are {masks.shape[1]}x{masks.shape[2]} but the model predicts "
                        f"{out[1]}x{out[2]}", evidence,
                        "Resize masks to the output size with nearest-neighbour interpolation.")]
    if len(out) == 3 and m.task.kind == "segmentation":
        return []  # a class per position of a sequence, labels per position (targets.per_position_ids)
    if len(out) != 4:
        return [Finding(MASK_MISMATCH.id, WARNING, "Masks were given but the model does not output a mask",
                        evidence, "Pass labels instead of masks for a classifier.")]
    return []


# labels.target_scale: regression targets this large (max of |mean| and std) are "left unscaled"
# (prices in the thousands, counts in the millions; standardized targets sit near 1) ...
TARGET_SCALE_LARGE = 100.0
# ... and the output has not followed them: its spread is below this share of the targets' spread,
# or its error is no better than always predicting the targets' mean (MSE / variance).
OUTPUT_SPREAD_SHARE = 0.1
MEAN_PREDICTOR_SHARE = 0.5


@check(TARGET_SCALE, needs=("outputs", "labels"))
def target_scale(m: Measurements) -> list[Finding]:
    """Regression targets' mean and std against the output's spread and error (and the error of predicting the
    mean).
    """
    if m.task.kind != "regression" or m.labels is None:
        return []
    y = np.asarray(m.labels, np.float64).reshape(-1)
    out = np.asarray(m.outputs, np.float64).reshape(-1)
    if y.size != out.size or y.size < 4 or not np.all(np.isfinite(y)) or not np.all(np.isfinite(out)):
        return []  # NaN outputs say nothing of the targets' scale (gradient.exploding names diverged weights)
    t_mean, t_std = float(y.mean()), float(y.std())
    scale = max(abs(t_mean), t_std)
    if scale < TARGET_SCALE_LARGE or t_std == 0:
        return []
    o_mean, o_std = float(out.mean()), float(out.std())
    mse = float(np.mean((out - y) ** 2))
    mean_loss = t_std**2
    followed = o_std >= OUTPUT_SPREAD_SHARE * t_std and mse < MEAN_PREDICTOR_SHARE * mean_loss
    if followed:
        return []
    evidence = {"target_mean": t_mean, "target_std": t_std, "target_min": float(y.min()), "target_max": float(y.max()),
                "output_mean": o_mean, "output_std": o_std, "mse": mse, "mse_of_predicting_the_mean": mean_loss,
                "output_to_target_spread": o_std / t_std}
    severity = CRITICAL if o_std < OUTPUT_SPREAD_SHARE * t_std else WARNING
    return [Finding(TARGET_SCALE.id, severity,
                    f"Targets are on a scale of {scale:.3g} (mean {t_mean:.3g}, std {t_std:.3g}) but the output "
                    f"spreads only {o_std:.3g}: the loss is all scale and the model settles near one value",
                    evidence, "Scale the targets (standardize, or divide by their std / take a log) for training "
                    "and invert the scaling on the predictions.")]
