"""What the output means and what the gradients are taken against: the task, the loss, the targets.

The task is inferred once from the output's shape, final activation, compiled loss and (when they
decide) the labels; the loss for gradients is the compiled one or the one the output implies.

Imports inside functions are deliberately lazy: Keras loads only when a loss is built.
"""

from __future__ import annotations

import numpy as np

from whyzero.measurements import Task, unique_counts
from whyzero.model_info import PROBABILITY_ACTIVATIONS, REGRESSION_LOSSES


def infer_task(outputs: np.ndarray, activation: str | None, loss: dict | None,
               labels: np.ndarray | None = None, per_position: bool = False) -> Task:
    """What the output means, from its shape, final activation, compiled loss and (if needed) the labels.

    Images out (N, H, W, K) are segmentation; so is a class per position of a sequence (N, T, K) when its
    labels come per position (``per_position``, see ``per_position_ids``): the same checks, over positions.
    """
    probabilities = activation in PROBABILITY_ACTIVATIONS or (activation == "lambda" and outputs.size > 0 and
                                                             0 <= float(outputs.min()) and float(outputs.max()) <= 1)
    units = outputs.shape[-1] if outputs.ndim > 1 else 1
    if outputs.ndim == 4 or (per_position and outputs.ndim == 3):
        return Task("segmentation", max(units, 2), activation, probabilities)
    loss_name = loss["name"] if loss else None
    if activation == "softmax" and units > 1:
        # the output layer says classification, whatever the loss: a regression loss on it is judged against the
        # output and the labels (``checks.model.loss_mismatch``), never the other way round
        return Task("multiclass", units, activation, probabilities)
    if loss_name in REGRESSION_LOSSES and not (units == 1 and activation == "sigmoid" and _binary(labels)):
        return Task("regression", 1, activation, probabilities)
    kind = "binary" if units == 1 else "multiclass"
    if units == 1 and not probabilities and loss_name is None:
        if activation != "relu" or (labels is not None and not _binary(labels)):
            kind = "regression"
    return Task(kind, 1 if kind == "regression" else max(units, 2), activation, probabilities)


def per_position_ids(out_shape: tuple[int, ...], labels: np.ndarray | None, loss: dict | None) -> np.ndarray | None:
    """Class ids per position (N, T) when a sequence model classifies every position (N, T, K), e.g. a tagger
    under ``TimeDistributed(Dense(K, 'softmax'))``, and its labels are given per position: (N, T) or (N, T, 1)
    ids, or (N, T, K) one-hot rows.  None otherwise (one label per sequence, regression, other shapes)."""
    if labels is None or len(out_shape) != 3 or labels.ndim not in (2, 3) or labels.shape[:2] != tuple(out_shape[:2]):
        return None
    if loss is not None and loss["name"] in REGRESSION_LOSSES or labels.dtype.kind not in "biuf":
        return None
    units = out_shape[-1]
    if labels.ndim == 3 and labels.shape[-1] == units > 1:
        return np.asarray(labels).argmax(-1)
    if labels.ndim == 3 and labels.shape[-1] != 1:
        return None
    ids = np.asarray(labels).reshape(labels.shape[:2])
    return ids if np.all(np.round(ids) == ids) else None


def _binary(labels: np.ndarray | None) -> bool:
    if labels is None:
        return False
    values = np.asarray(labels)
    return values.dtype.kind in "biuf" and set(np.unique(values[:4096]).tolist()) <= {0, 1}


def label_ids(task: Task, labels: np.ndarray | None, masks: np.ndarray | None) -> np.ndarray | None:
    """Class ids (per sample, or per pixel for masks), where the values can be read as such."""
    if task.kind == "segmentation":
        if masks is None or masks.ndim == 4 and masks.shape[-1] == 3:
            return None
        m = masks[..., 0] if masks.ndim == 4 else masks
        if np.any(np.round(m) != m):
            return None
        m = m.astype(np.int64)
        if m.max(initial=0) >= task.n_classes and set(unique_counts(m)[0].tolist()) <= {0, 255}:
            m = m // 255  # read 0/255 masks as binary for shares; the encoding check reports them
        return m
    if labels is None or task.kind == "regression":
        return None
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(1)
    flat = labels.reshape(len(labels), -1)[:, 0]
    if np.any(np.round(flat) != flat):
        return None
    if signed_binary(task, flat):
        return (flat > 0).astype(np.int64)  # -1/+1 targets: class 0 and class 1
    return flat.astype(np.int64)


def signed_binary(task: Task, labels: np.ndarray) -> bool:
    """-1/+1 labels for one output unit (a tanh output, or a hinge loss, which reads 0/1 labels as -1/+1 too)."""
    values = set(unique_counts(labels)[0].tolist())
    return task.kind == "binary" and -1 in values and values <= {-1, 1}


def loss_for_gradients(task: Task, loss: dict | None):
    """The loss for gradients: the compiled one, else the one the final activation implies."""
    import keras

    name = loss["name"] if loss else None
    if loss is not None and not loss["known"]:
        return loss["object"], f"compiled loss '{loss['raw']}'"
    if name is None:
        name = {"binary": "binary_crossentropy", "multiclass": "sparse_categorical_crossentropy",
                "segmentation": "sparse_categorical_crossentropy" if task.n_classes > 2 or task.activation == "softmax"
                else "binary_crossentropy", "regression": "mse"}[task.kind]
        origin = f"'{name}', implied by the final activation"
    else:
        origin = f"compiled loss '{name}'"
    from_logits = bool(loss and loss["from_logits"]) or (loss is None and not task.probabilities
                                                         and task.kind != "regression")
    fn = {"binary_crossentropy": lambda: keras.losses.BinaryCrossentropy(from_logits=from_logits),
          "categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(from_logits=from_logits),
          "sparse_categorical_crossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(
              from_logits=from_logits),
          "mse": keras.losses.MeanSquaredError, "mae": keras.losses.MeanAbsoluteError,
          "huber": keras.losses.Huber, "msle": keras.losses.MeanSquaredLogarithmicError,
          "log_cosh": keras.losses.LogCosh, "poisson": keras.losses.Poisson,
          "mape": keras.losses.MeanAbsolutePercentageError}[name]()
    return fn, origin


def gradient_targets(task: Task, loss_name: str | None, ids: np.ndarray | None, labels: np.ndarray | None,
                      out_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """Targets in the shape the loss wants; stand-ins (seeded random classes) without labels."""
    n = out_shape[0]
    source = "labels"
    if task.kind == "regression":
        if labels is not None and labels.size == int(np.prod(out_shape)):
            return labels.reshape(out_shape).astype(np.float32), source
        return np.random.default_rng(0).standard_normal(out_shape).astype(np.float32), "stand-in (random targets)"
    if ids is None or ids.shape[0] != n:
        rng = np.random.default_rng(0)
        ids = rng.integers(0, task.n_classes, size=out_shape[:-1] if task.kind == "segmentation" else (n,))
        source = "stand-in (random classes)"
    ids = np.clip(ids, 0, task.n_classes - 1)
    units = out_shape[-1]
    if loss_name in ("categorical_crossentropy", "custom") and units > 1 or (
            loss_name == "binary_crossentropy" and units > 1):
        return np.eye(units, dtype=np.float32)[np.clip(ids, 0, units - 1)], source
    if loss_name in ("binary_crossentropy", "custom", None) and units == 1:
        return ids.reshape(*ids.shape, 1).astype(np.float32), source
    return ids.astype(np.int64), source
