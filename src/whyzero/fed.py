"""What the model is fed: the batch, labels, masks and training reference loaded, bounded to the sample limit and
checked against the model and each other, before anything runs the model.

Bad input stops here with a one-line reason that says what was received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whyzero.config import settings
from whyzero.context import Context
from whyzero.errors import WhyzeroError
from whyzero.feed import MultiInput, choose_primary, is_text, text_features
from whyzero.loading.data import (
    LoadedInputs,
    load_inputs,
    load_labels,
    load_masks,
    load_train_reference,
    read_npz_arrays,
)
from whyzero.loading.models import LoadedModel
from whyzero.prepare import rename_unscopable_layers
from whyzero.probes.capture import leaf_layers
from whyzero.probes.inputs import InputStats

# Feature names kept with a diagnosis (a CSV's header): the Inputs page's per-feature table names them.
MAX_FEATURE_NAMES = 2048


@dataclass
class Fed:
    """What the model is fed, loaded, bounded and checked against it."""

    loaded: LoadedModel
    batch: np.ndarray
    batch_in: Any
    multi: Any
    labels: np.ndarray | None
    masks: np.ndarray | None
    train_ref: Any
    notes: list[str]
    invalid_ids: dict
    _stats: InputStats | None = field(default=None, repr=False, compare=False)

    def input_stats(self) -> InputStats:
        """The batch's statistics, computed once (``whyzero.Monitor`` diagnoses the same batch at every epoch)."""
        if self._stats is None:
            self._stats = batch_stats(self.batch)
        return self._stats

    def describe(self, ctx: Context) -> dict[str, Any]:
        """The diagnosis' ``inputs``: what was fed."""
        return {"source": self.batch_in.source, "shape": list(self.batch.shape), "dtype": str(self.batch.dtype),
                "preprocessing": self.batch_in.preprocessing, "samples": int(len(self.batch)),
                "is_image": ctx.is_image, "skipped": self.batch_in.skipped,
                "labels": None if self.labels is None else list(self.labels.shape),
                "masks": None if self.masks is None else list(self.masks.shape),
                "train_reference": self.train_ref is not None, "gradient_labels": ctx.gradient_labels,
                "features": self.batch_in.columns[:MAX_FEATURE_NAMES]}


def batch_stats(batch: np.ndarray) -> InputStats:
    """The statistics the input checks read: of the values, or of each text's length for text inputs."""
    if not is_text(batch):
        return InputStats.of(batch)
    stats = InputStats.of(text_features(batch))
    stats.dtype, stats.shape = "text", list(batch.shape[1:])
    return stats


def prepare_inputs(loaded: LoadedModel, inputs, labels, masks, train_inputs, train_stats, preprocess: str) -> Fed:
    """Loads the batch, labels, masks and training reference; bounds them to the sample limit and checks they fit
    the model and each other."""
    rename_unscopable_layers(loaded)
    multi = None
    names = input_names(loaded)
    if len(names) > 1:
        multi, batch_in = _load_multi(loaded, names, inputs)
        batch = multi.arrays[multi.primary]
    else:
        size, channels = image_geometry(loaded)
        batch_in = load_inputs(inputs, preprocess=preprocess, size=size, channels=channels)
        batch = _check_batch(batch_in.array, loaded)
    limit = settings().max_samples
    notes = list(loaded.notes) + batch_in.notes
    if multi is not None:
        notes.append(multi.describe())
    label_arr = load_labels(_labels_of_head(labels, loaded), batch_in.names)
    mask_arr = one_hot_masks(load_masks(masks), notes)
    _check_alignment(batch, label_arr, mask_arr)  # the counts as given, before the sample limit cuts them
    if len(batch) > limit:
        notes.append(f"probed the first {limit} of {len(batch)} samples (WHYZERO_MAX_SAMPLES)")
        batch = batch[:limit]
        multi = None if multi is None else multi.truncate(limit)
    label_arr = None if label_arr is None else label_arr[:limit]
    mask_arr = None if mask_arr is None else mask_arr[:limit]
    train_ref = load_train_reference(train_inputs, train_stats)
    _check_reference(train_ref, batch)
    invalid_ids = {}
    if multi is None:
        batch, invalid_ids = _clip_token_ids(loaded, batch, notes)
    return Fed(loaded, batch, batch_in, multi, label_arr, mask_arr, train_ref, notes, invalid_ids)


def _labels_of_head(labels: Any, loaded: LoadedModel) -> Any:
    """Labels for the diagnosed head: from a dict or an ``.npz`` with one array per output name."""
    if isinstance(labels, (str, Path)) and Path(labels).suffix == ".npz":
        arrays = read_npz_arrays(Path(labels))
        if len(arrays) == 1:
            return next(iter(arrays.values()))
        labels = arrays
    if not isinstance(labels, dict):
        return labels
    head = loaded.head
    if head in labels:
        return labels[head]
    if len(labels) == 1:
        return next(iter(labels.values()))
    raise WhyzeroError(f"Expected labels for the diagnosed output {head!r} among the arrays. "
                       f"Received: {sorted(labels)}")


def image_geometry(loaded: LoadedModel) -> tuple[tuple[int, int] | None, int]:
    shape = _input_shape(loaded)
    if shape is not None and len(shape) == 4 and shape[1] and shape[2]:
        return (int(shape[1]), int(shape[2])), int(shape[3] or 3)
    return None, 3


def _model_inputs(loaded: LoadedModel) -> list:
    if not loaded.has_layers:
        return []
    try:
        return list(getattr(loaded.model, "inputs", None) or [])
    except (AttributeError, ValueError):
        return []


def input_names(loaded: LoadedModel) -> list[str]:
    """The names of the model's declared inputs, in order (empty for a subclassed model or a signature)."""
    return [_tensor_name(t, i) for i, t in enumerate(_model_inputs(loaded))]


def _tensor_name(t, i: int) -> str:
    name = getattr(t, "name", None) or f"input_{i}"
    return name.split(":")[0]


def _input_shape(loaded: LoadedModel, index: int = 0):
    """The input shape, or None for a subclassed model that has no declared input."""
    if not loaded.has_layers:
        return loaded.model.input_shape
    inputs = _model_inputs(loaded)
    return tuple(inputs[index].shape) if inputs else None


def _load_multi(loaded: LoadedModel, names: list[str], inputs: Any) -> tuple[MultiInput, LoadedInputs]:
    """One array per input: a dict or list of arrays, or an ``.npz`` with one array per input name."""
    if isinstance(inputs, (str, Path)):
        source = Path(inputs).name
        if Path(inputs).suffix != ".npz":
            raise WhyzeroError(f"The model has {len(names)} inputs {names}: give an .npz with one array per input "
                               f"name. Received: {source}")
        inputs = read_npz_arrays(Path(inputs))
    else:
        source = "arrays"
    if isinstance(inputs, dict):
        keys = list(inputs)
        if set(names) <= set(keys):
            arrays = [inputs[n] for n in names]
        elif all(re.fullmatch(r"arr_\d+", k) for k in keys) and len(keys) == len(names):
            arrays = [inputs[f"arr_{i}"] for i in range(len(names))]
        else:
            missing = [n for n in names if n not in keys]
            raise WhyzeroError(f"Expected one array per input {names}; missing {missing}. Received: arrays {keys}")
    elif isinstance(inputs, (list, tuple)) and len(inputs) == len(names):
        arrays = list(inputs)
    else:
        raise WhyzeroError(f"The model has {len(names)} inputs {names}: give one array per input (a dict, a list or "
                           f"an .npz). Received: {type(inputs).__name__}")
    arrays = [np.asarray(a) for a in arrays]
    checked = [_check_batch(a, loaded, index=i, name=n) for i, (a, n) in enumerate(zip(arrays, names))]
    if len({len(a) for a in checked}) > 1:
        counts = {n: len(a) for n, a in zip(names, checked)}
        raise WhyzeroError(f"Expected the same number of samples in every input. Received: {counts}")
    multi = MultiInput(names, checked, choose_primary(names, checked))
    return multi, LoadedInputs(checked[multi.primary], source=f"{source} ({multi.primary_name})")


def _check_batch(batch: np.ndarray, loaded: LoadedModel, index: int = 0, name: str = "the batch") -> np.ndarray:
    expected = _input_shape(loaded, index)
    if expected is None:  # subclassed: the model says what it accepts when it runs
        if len(batch) == 0:
            raise WhyzeroError("The batch is empty. Received: shape " + str(batch.shape))
        return batch
    if batch.ndim == len(expected) - 1 and all(
            e is None or e == b for e, b in zip(expected[1:], batch.shape)):
        batch = batch[None]  # a single sample
    if batch.ndim != len(expected) or any(e is not None and e != b for e, b in zip(expected[1:], batch.shape[1:])):
        raise WhyzeroError(f"The model takes inputs of shape {tuple(expected)}; {name} has shape {batch.shape}. "
                           f"Received: {name}")
    if len(batch) == 0:
        raise WhyzeroError("The batch is empty. Received: shape " + str(batch.shape))
    if batch.dtype.kind in "OUS" and _takes_text(loaded, index):
        return _as_text(batch, name)
    if batch.dtype.kind not in "fiub":
        raise WhyzeroError(f"Expected a numeric batch. Received: dtype {batch.dtype}")
    return batch


def _takes_text(loaded: LoadedModel, index: int) -> bool:
    """Whether the model's input ``index`` is a string tensor (raw text into a ``TextVectorization`` layer)."""
    inputs = _model_inputs(loaded) if loaded.has_layers else []
    return index < len(inputs) and "string" in str(getattr(inputs[index], "dtype", ""))


def _as_text(batch: np.ndarray, name: str) -> np.ndarray:
    """A batch of strings as a numpy unicode array (bytes decoded as UTF-8); anything else in it is refused."""
    flat = batch.reshape(-1)
    if batch.dtype.kind == "O" and not all(isinstance(v, (str, bytes)) for v in flat):
        kinds = sorted({type(v).__name__ for v in flat if not isinstance(v, (str, bytes))})
        raise WhyzeroError(f"Expected text (strings) for a model that reads text. Received: {name} holding "
                           f"{', '.join(kinds[:3])}")
    if batch.dtype.kind == "S" or (batch.dtype.kind == "O" and any(isinstance(v, bytes) for v in flat)):
        flat = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat], dtype=str)
        return flat.reshape(batch.shape)
    return batch.astype(str)


def one_hot_masks(masks: np.ndarray | None, notes: list[str]) -> np.ndarray | None:
    """Masks one-hot over K >= 2 classes, (N, H, W, K) of 0/1 with one 1 a pixel (as categorical cross-entropy
    trains on them), as the class ids every check reads; anything else as it is (an RGB mask's black background
    sums to 0, its colours to more than 1)."""
    if masks is None or masks.ndim != 4 or masks.shape[-1] < 2:
        return masks
    if not (np.isin(masks, (0, 1)).all() and (masks.sum(-1) == 1).all()):
        return masks
    notes.append(f"the masks are one-hot over {masks.shape[-1]} classes {tuple(masks.shape)}: read as class ids")
    return masks.argmax(-1).astype(np.int64)


def _check_reference(reference: InputStats | None, batch: np.ndarray) -> None:
    """The training reference must describe inputs like the batch: as many channels or features."""
    if reference is None:
        return
    if is_text(batch):
        raise WhyzeroError("Training statistics are compared for numeric inputs only. Received: a training "
                           "reference for a model that reads text")
    expected = InputStats.of(batch[:2]).channels
    if reference.channels != expected:
        raise WhyzeroError(f"Expected training inputs with {expected} channels or features, like the batch "
                           f"(shape {tuple(batch.shape[1:])}). Received: training data with {reference.channels}")


def _check_alignment(batch: np.ndarray, labels: np.ndarray | None, masks: np.ndarray | None) -> None:
    """Labels must pair one to one with the inputs.  Masks that do not (count, size) and labels outside
    the model's classes are findings (labels.mask_mismatch, labels.encoding), not errors."""
    if labels is not None and len(labels) != len(batch):
        raise WhyzeroError(f"Expected one label per input ({len(batch)} inputs). Received: {len(labels)} labels"
                           + (": more labels than inputs (the labels of another batch?)" if len(labels) > len(batch)
                              else ""))
    if masks is not None and masks.ndim < 3:
        raise WhyzeroError(f"Expected masks of shape (N, H, W). Received: masks of shape {tuple(masks.shape)}")


def _clip_token_ids(loaded: LoadedModel, batch: np.ndarray, notes: list[str]) -> tuple[np.ndarray, dict]:
    """Token ids outside an Embedding's vocabulary crash the model: count them, probe with them clipped.  Ids that
    are not whole numbers (scaled like features) are counted too, and fed as they are: the Embedding truncates
    them itself, as it did for the user."""
    embedding = embedding_input(loaded.model) if loaded.has_layers else None
    if embedding is None or batch.dtype.kind not in "iuf":
        return batch, {}
    outside = (batch < 0) | (batch >= embedding["input_dim"])
    fractional = np.round(batch) != batch
    found = {"invalid_ids": int((outside | fractional).sum()), "fractional_ids": int(fractional.sum()),
             "values": int(batch.size), "max_id": float(np.max(batch)), "min_id": float(np.min(batch))}
    if not outside.any():
        return batch, found
    notes.append(f"{int(outside.sum())} token ids were outside the vocabulary of '{embedding['layer']}': the model was "
                 "probed with them clipped to it")
    return np.clip(batch, 0, embedding["input_dim"] - 1).astype(batch.dtype), found


def embedding_input(model) -> dict[str, Any] | None:
    """The Embedding layer that reads the model's input (token ids), with its vocabulary size."""
    layers = leaf_layers(model)
    first = next((layer for _, layer in layers if type(layer).__name__ not in ("InputLayer",)), None)
    if first is None or type(first).__name__ != "Embedding":
        return None
    return {"layer": layers[0][0], "input_dim": int(first.input_dim)}
