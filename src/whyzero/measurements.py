"""The measurements record: everything the checks read, typed and serialisable.

The probes fill it from a live model (``Measurements.from_context``); the ``Diagnosis`` stores it
(``summaries["measurements"]``), so the checks run again on a stored diagnosis without the model
(``whyzero recheck``).  No check touches a live Keras object.  Arrays the output checks need (outputs,
labels, masks) are kept when they are small enough (``MAX_STORED_VALUES``); a larger one is left out
and the checks that need it say so.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from whyzero.feed import is_text, text_features
from whyzero.model_info import final_layer, layer_activation, param_count
from whyzero.probes.capture import leaf_layers
from whyzero.probes.inputs import InputStats

# Values of one array (outputs, labels, masks) stored with the diagnosis for a re-check.
MAX_STORED_VALUES = 1 << 18

# Integer labels or mask values in 0..BINCOUNT_MAX-1 are counted with one bincount rather than sorted or hashed
# (``unique_counts``: 32 masks of 128x128 pixels, 12 ms with ``np.unique``, 1.4 ms counted).
BINCOUNT_MAX = 1 << 16


def unique_counts(values) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``values`` (any shape, flattened), in order, and how often each occurs: what
    ``np.unique(values, return_counts=True)`` gives."""
    flat = np.asarray(values).reshape(-1)
    if flat.size and flat.dtype.kind in "iu":
        low, high = int(flat.min()), int(flat.max())
        if low >= 0 and high < BINCOUNT_MAX:
            counts = np.bincount(flat, minlength=high + 1)
            present = np.flatnonzero(counts)
            return present.astype(flat.dtype), counts[present]
    return np.unique(flat, return_counts=True)


# A regression that explains this share of its targets' variance has learned them (the issue's healthy SGD model
# at R² 0.74; a model that settles on the mean explains none).
LEARNED_R2 = 0.5

@dataclass
class Task:
    """What the output means.

    Attributes:
        kind: 'binary' (one sigmoid-like unit), 'multiclass', 'segmentation' or 'regression'.
        n_classes: classes the output can express (2 for one unit).
        activation: the final activation ('sigmoid', 'softmax', 'linear', 'relu', 'lambda'...).
        probabilities: whether outputs are probabilities.
    """

    kind: str
    n_classes: int
    activation: str | None
    probabilities: bool


@dataclass
class LayerValues:
    """What the checks read of one layer's values (merged over the batch): counts, moments and shares."""

    n: int = 0
    zero: int = 0
    one: int = 0
    flat: int = 0
    negative: int = 0
    nan: int = 0
    inf: int = 0
    mean: float = 0.0
    std: float = 0.0
    min: float = 0.0
    max: float = 0.0
    rms: float = 0.0
    never_active_share: float = 0.0
    relative_spread: float | None = None
    units: int = 0
    gate_n: int = 0
    gate_flat: int = 0
    spread: float | None = None
    hist: list[int] = field(default_factory=list)
    sample_rms: list[float] = field(default_factory=list)
    sample_zero: list[float] = field(default_factory=list)

    def share(self, name: str) -> float:
        return getattr(self, name) / max(self.n, 1)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), list) else v for f in fields(self)}

    @property
    def gate_saturated_share(self) -> float:
        return self.gate_flat / self.gate_n if self.gate_n else 0.0

    @classmethod
    def of(cls, summary) -> LayerValues:
        """From a probe's merged ``ValueSummary``."""
        spread = summary.relative_spread
        return cls(n=summary.n, zero=summary.zero, one=summary.one, flat=summary.flat, negative=summary.negative,
                   nan=summary.nan, inf=summary.inf, mean=float(summary.mean), std=float(summary.std),
                   min=_finite(summary.min), max=_finite(summary.max), rms=float(summary.rms),
                   never_active_share=float(summary.never_active_share),
                   relative_spread=float(spread) if np.isfinite(spread) else None,
                   units=0 if summary.unit_max is None else int(summary.unit_max.size),
                   gate_n=summary.gate_n, gate_flat=summary.gate_flat,
                   spread=_finite_or_none(summary.spread_across_samples), hist=summary.hist.astype(int).tolist(),
                   sample_rms=[_finite(v) for v in summary.sample_rms],
                   sample_zero=[_finite(v) for v in summary.sample_zero])

    def to_row(self) -> dict[str, Any]:
        """The Activations panel's row: shares rather than counts, and the histogram."""
        return {"n": self.n, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max,
                "zero_share": self.share("zero"), "negative_share": self.share("negative"),
                "one_share": self.share("one"), "nan": self.nan, "inf": self.inf, "flat_share": self.share("flat"),
                "never_active_share": self.never_active_share, "gate_saturated_share": self.gate_saturated_share,
                "units": self.units, "spread": self.spread, "relative_spread": self.relative_spread,
                "hist": list(self.hist)}


@dataclass
class LayerRecord:
    """One probed layer: its path, type, activation and values."""

    name: str
    type: str
    activation: str | None
    values: LayerValues


@dataclass
class GradientRow:
    """One layer with a kernel: the gradient the batch gives its kernel and the kernel's size (numbers only; the
    update they make under the optimizer is judged by ``checks.gradients``)."""

    layer: str
    grad_norm: float
    weight_norm: float
    nonfinite: int
    nonzero: int
    params: int
    activation_rms: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradientRow:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def gradient_rows(forward) -> list[GradientRow]:
    """One row per layer with a kernel, from a probe's ``ForwardResult``."""
    if forward is None or not forward.has_gradients:
        return []
    return [GradientRow(p.name, float(np.sqrt(p.grad_sumsq)), p.weight_norm, p.grad_nonfinite, p.grad_nonzero,
                        p.n_kernel, p.values.rms) for p in forward.layers if p.n_kernel > 0]


@dataclass
class Candidate:
    """One preprocessing the what-if tried: its distance to the model's memory (or its accuracy on the labels) and
    what the model outputs under it."""

    name: str
    score: float | None
    # what the model outputs under it: for the batch as given (a ranking by the model's memory needs no outputs, and
    # the best one's proof re-runs the model under it; None for the others), for every candidate when labels judge
    output_mean: float | None = None
    output_spread: float | None = None
    top_class_share: float | None = None
    class_shares: list[float] | None = None
    accuracy: float | None = None


@dataclass
class WhatIf:
    """The standard preprocessings tried on the recovered raw pixels (``memory.preprocessing_whatif``).

    Attributes:
        source: what the candidates are scored against (the model's memory, training statistics, or the labels).
        raw_from: how the raw pixels were recovered.
        candidates: every preprocessing tried, "as given" first.
        best: the name of the best candidate, or None when none stands out.
        given_score: the batch as given against ``source`` (None when the labels judge).
        given_accuracy / samples: when the labels judge: the accuracy as given, and on how many samples.
    """

    source: str
    raw_from: str
    candidates: list[Candidate]
    best: str | None
    given_score: float | None
    given_accuracy: float | None = None
    samples: int | None = None

    @property
    def by_labels(self) -> bool:
        """Whether the labels judged (the model holds no memory of its training inputs)."""
        return self.given_accuracy is not None

    @property
    def best_score(self) -> float | None:
        """The lowest distance any candidate reached."""
        return min((c.score for c in self.candidates if c.score is not None), default=None)

    def names_a_match(self, factor: float) -> bool:
        """Whether a preprocessing other than the batch as given scores below ``factor`` times the batch as given:
        the memory is consistent with it (``checks.inputs.MATCH_FACTOR``)."""
        return self.best not in (None, "as given") and self.best_score is not None and \
            self.given_score is not None and self.best_score < factor * self.given_score

    def candidate(self, name: str | None) -> Candidate | None:
        return next((c for c in self.candidates if c.name == name), None)

    def score_of(self, name: str) -> float | None:
        found = self.candidate(name)
        return None if found is None else found.score

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WhatIf | None:
        if not data:
            return None
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["candidates"] = [Candidate(**{k: v for k, v in c.items() if k in Candidate.__dataclass_fields__})
                              for c in data.get("candidates", [])]
        return cls(**data)


@dataclass
class BatchNormRow:
    """One BatchNorm layer near the input: the batch's statistics of what it receives against its moving ones.

    ``z_median`` is the median over channels of |batch mean − moving mean| / moving std; ``log10_var_ratio`` the
    median over channels of log10(batch variance / moving variance); both against the memory corrected for a partial
    convergence ``converged`` (``distances.converged_share``).  ``trained``: its moving statistics have left their
    initial 0 and 1."""

    layer: str
    trained: bool
    z_median: float
    log10_var_ratio: float
    converged: float = 1.0
    channels: int = 0
    batch_mean: list[float] = field(default_factory=list)
    moving_mean: list[float] = field(default_factory=list)

    @property
    def distance(self) -> float:
        return self.z_median + abs(self.log10_var_ratio)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchNormRow:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class NormalizationMemory:
    """An adapted ``Normalization`` layer near the input: the mean and variance it standardizes by."""

    layer: str
    mean: list[float]
    variance: list[float]


@dataclass
class ModelMemory:
    """What the model remembers of its training inputs, and the facts about its weights the checks read.

    Attributes:
        batchnorm: per trained BatchNorm layer near the input, the batch's statistics against the moving ones.
        normalization: an adapted ``Normalization`` layer's mean and variance, or None.
        rescaling: the ``Rescaling`` layers (scale, offset).
        weights: per kernel layer, its weights' spread against the initializer's expected range.
        embedding: the Embedding that reads token ids (layer, input_dim, invalid ids), or None.
        batchnorm_rerun: the outputs with every BatchNorm layer using the batch's own statistics instead of its moving
            ones, against the outputs as they are (mean, spread, class shares, accuracy on the labels); None when
            not measured (no trained BatchNorm, or memory the batch matches).
        score: distance of the batch to the memory (0 = same distribution), or None without memory.
        source: what ``score`` compares with.
    """

    batchnorm: list[BatchNormRow] = field(default_factory=list)
    normalization: NormalizationMemory | None = None
    rescaling: list[dict[str, Any]] = field(default_factory=list)
    weights: list[dict[str, Any]] = field(default_factory=list)
    embedding: dict[str, Any] | None = None
    score: float | None = None
    source: str | None = None
    batchnorm_rerun: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelMemory:
        data = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        data["batchnorm"] = [BatchNormRow.from_dict(r) for r in data.get("batchnorm", [])]
        if data.get("normalization"):
            data["normalization"] = NormalizationMemory(**data["normalization"])
        return cls(**data)


@dataclass
class Measurements:
    """Everything the checks read.  Built by the engine from what the probes measured."""

    task: Task
    batch_shape: list[int]
    batch_dtype: str
    is_image: bool
    input_stats: InputStats
    train_stats: InputStats | None = None
    layers: list[LayerRecord] = field(default_factory=list)
    gradients: list[GradientRow] = field(default_factory=list)
    gradient_labels: str = "none"
    loss_value: float | None = None
    loss: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    model_layers: list[dict[str, Any]] = field(default_factory=list)
    final_layer: str | None = None
    memory: ModelMemory = field(default_factory=ModelMemory)
    whatif: WhatIf | None = None
    outputs: np.ndarray | None = None
    output_shape: list[int] = field(default_factory=list)
    labels: np.ndarray | None = None
    masks: np.ndarray | None = None
    label_ids: np.ndarray | None = None
    stored: dict[str, bool] = field(default_factory=dict)
    # the model's dtype policy ('mixed_float16' computes in float16: its values overflow past 65504)
    dtype_policy: str | None = None
    # a model with several inputs: the others than the one checked above (name, shape, dtype, stats)
    other_inputs: list[dict[str, Any]] = field(default_factory=list)
    # what only a running training shows (``whyzero.monitor``): the epoch, the optimizer steps since the last
    # observation, each layer's measured update and the loss history; None for a finished model
    live: dict[str, Any] | None = None

    # -- derived ---------------------------------------------------------
    @property
    def has_batchnorm(self) -> bool:
        """Whether a probed layer is a BatchNormalization (its fixes need not suggest adding one)."""
        return any(p.type == "BatchNormalization" for p in self.layers)

    @property
    def samples(self) -> int:
        return int(self.batch_shape[0]) if self.batch_shape else 0

    @property
    def has_layers(self) -> bool:
        return bool(self.layers)

    @property
    def positions_word(self) -> str:
        """What a segmentation output classifies: pixels of an image, or positions of a sequence (N, T, K)."""
        return "positions" if len(self.output_shape) == 3 else "pixels"

    @property
    def output_units(self) -> int:
        return int(self.output_shape[-1]) if self.output_shape else 1

    def predicted_classes(self) -> np.ndarray | None:
        """The class each sample (or pixel, for segmentation) is predicted as: argmax, or > 0.5 for one unit.

        None for regression, or when the outputs were not stored.
        """
        if self.outputs is None or self.task.kind == "regression":
            return None
        return predicted_classes(self.outputs, self.task.kind, decision_cut(self.task, self.labels))

    def label_accuracy(self) -> float | None:
        """The share of samples (or pixels) predicted as their label's class; None without class labels."""
        predicted = self.predicted_classes()
        ids = self.label_ids
        if predicted is None or ids is None or np.shape(ids) != predicted.shape or not predicted.size:
            return None
        return float(np.mean(predicted == ids))

    @property
    def is_text(self) -> bool:
        """A batch of raw text: its input statistics are the texts' lengths (words, characters)."""
        return self.input_stats.dtype == "text"

    def label_r2(self) -> float | None:
        """For regression, the share of the targets' variance the predictions explain (R²); None without
        targets shaped like the outputs, or targets that do not vary."""
        if self.outputs is None or self.labels is None or self.task.kind != "regression":
            return None
        pred, true = np.asarray(self.outputs, np.float64), np.asarray(self.labels, np.float64)
        if pred.size != true.size or pred.size < 2:
            return None
        pred, true = pred.reshape(-1), true.reshape(-1)
        keep = np.isfinite(pred) & np.isfinite(true)
        spread = float(np.var(true[keep])) if keep.any() else 0.0
        if spread <= 0:
            return None
        return float(1.0 - np.mean((pred[keep] - true[keep]) ** 2) / spread)

    def learned_labels(self, halfway: float = 0.5) -> bool | None:
        """Whether the predictions get the labels right at least ``halfway`` from always answering the labels'
        majority class to all right (a model that learned something, whatever else is odd about it); None without
        class labels to judge by."""
        right, ids = self.label_accuracy(), self.label_ids
        if right is None:
            return None
        counts = np.bincount(np.asarray(ids).reshape(-1).astype(np.int64).clip(0))
        majority = float(counts.max()) / max(int(counts.sum()), 1)
        return right >= majority + halfway * (1 - majority)

    def learned(self) -> bool | None:
        """Whether the model learned its labels: a classifier at least halfway from always answering the majority
        class to all right, a regression that explains at least ``LEARNED_R2`` of its targets' variance; None
        without labels to judge by."""
        explained = self.label_r2()
        if explained is not None:
            return explained >= LEARNED_R2
        return self.learned_labels()

    def minority_recall(self) -> float | None:
        """The mean, over the classes other than the labels' most common one, of the share of their samples (or
        pixels) predicted right; None without predictions and class labels, or with one class."""
        predicted, ids = self.predicted_classes(), self.label_ids
        if predicted is None or ids is None or np.shape(ids) != predicted.shape or not predicted.size:
            return None
        ids, predicted = np.asarray(ids).reshape(-1).astype(int), predicted.reshape(-1)
        present, counts = unique_counts(ids[ids >= 0])
        if present.size < 2:
            return None
        rare = present[present != present[counts.argmax()]]
        return float(np.mean([np.mean(predicted[ids == c] == c) for c in rare]))

    # -- serialization ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, InputStats):
                value = value.to_dict()
            elif isinstance(value, np.ndarray):
                # an array too large to store is left out: the checks that need it say so on a re-check
                value = encode_array(value) if self.stored.get(f.name, True) else None
            elif f.name in ("task", "memory"):
                value = asdict(value)
            elif f.name == "other_inputs":
                value = [dict(o, stats=o["stats"].to_dict()) for o in value]
            elif f.name == "gradients":
                value = [asdict(r) for r in value]
            elif f.name == "whatif" and value is not None:
                value = value.to_dict()
            elif f.name == "layers":  # flat records: asdict's deep copy took MobileNetV2's 155 layers ~50 ms
                value = [{"name": r.name, "type": r.type, "activation": r.activation, "values": r.values.to_dict()}
                         for r in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurements:
        data = dict(data)
        data["task"] = Task(**data["task"])
        data["memory"] = ModelMemory.from_dict(data.get("memory"))
        data["other_inputs"] = [dict(o, stats=InputStats.from_dict(o["stats"])) for o in data.get("other_inputs", [])]
        data["gradients"] = [GradientRow.from_dict(r) for r in data.get("gradients", [])]
        data["whatif"] = WhatIf.from_dict(data.get("whatif"))
        data["input_stats"] = InputStats.from_dict(data["input_stats"])
        if data.get("train_stats") is not None:
            data["train_stats"] = InputStats.from_dict(data["train_stats"])
        data["layers"] = [LayerRecord(r["name"], r["type"], r["activation"], LayerValues(**r["values"]))
                          for r in data.get("layers", [])]
        for name in ("outputs", "labels", "masks", "label_ids"):
            data[name] = decode_array(data.get(name))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_context(cls, ctx) -> Measurements:
        """What the checks read of a live ``Context`` (the model itself stays behind).  The checks of the live
        diagnosis read the arrays whole, however large; ``stored`` says which ones ``to_dict`` keeps."""
        stored = {}
        arrays = {}
        for name in ("outputs", "labels", "masks", "label_ids"):
            value = getattr(ctx, name)
            arrays[name] = None if value is None else np.asarray(value)
            stored[name] = value is None or bounded(value) is not None
        model_layers, final = [], None
        if ctx.has_layers:
            for path, layer in leaf_layers(ctx.model):
                model_layers.append({"name": path, "type": type(layer).__name__,
                                     "activation": layer_activation(layer), "units": _units(layer),
                                     "params": param_count(layer)})
            last = final_layer(ctx.model)
            final = next((row["name"] for row in model_layers if last is not None and row["name"].endswith(
                last.name)), None)
        loss = dict(ctx.loss) if ctx.loss else None
        if loss:
            loss.pop("object", None)
        forward = ctx.forward
        return cls(
            task=Task(ctx.task.kind, ctx.task.n_classes, ctx.task.activation, ctx.task.probabilities),
            batch_shape=list(ctx.batch.shape), batch_dtype=str(ctx.batch.dtype), is_image=ctx.is_image,
            input_stats=ctx.input_stats, train_stats=ctx.train_stats,
            layers=[LayerRecord(p.name, p.type, p.activation, LayerValues.of(p.values))
                    for p in (forward.layers if forward else [])],
            gradients=gradient_rows(forward), gradient_labels=ctx.gradient_labels,
            loss_value=None if forward is None else forward.loss, loss=loss, optimizer=ctx.optimizer,
            model_layers=model_layers, final_layer=final, memory=replace(ctx.memory), whatif=ctx.whatif,
            output_shape=list(np.asarray(ctx.outputs).shape), stored=stored, other_inputs=_other_inputs(ctx),
            dtype_policy=dtype_policy(ctx.model) if ctx.has_layers else None,
            **arrays)


def _other_inputs(ctx) -> list[dict[str, Any]]:
    multi = getattr(ctx, "multi", None)
    if multi is None:
        return []

    return [{"name": name, "shape": list(array.shape), "dtype": str(array.dtype),
             "stats": InputStats.of(text_features(array) if is_text(array) else array)}
            for i, (name, array) in enumerate(zip(multi.names, multi.arrays)) if i != multi.primary]


def predicted_classes(outputs: np.ndarray, kind: str, cut: float = 0.5) -> np.ndarray:
    """One place decides predicted classes: argmax over the last axis, or, for one unit, > ``cut`` (0.5; 0 for a
    tanh unit trained on -1/+1, see ``decision_cut``)."""
    out = np.asarray(outputs)
    if kind == "segmentation":
        return (out[..., 0] > cut).astype(int) if out.shape[-1] == 1 else out.argmax(-1)
    flat = out.reshape(len(out), -1)
    return (flat[:, 0] > cut).astype(int) if flat.shape[1] == 1 else flat.argmax(1)


def decision_cut(task: Task, labels: np.ndarray | None) -> float:
    """Where one output unit decides between its two classes: halfway between its targets, so 0 for a tanh unit
    whose labels are -1/+1 (a hinge loss) or unknown, 0.5 otherwise (0/1 labels, a sigmoid)."""
    if task.activation != "tanh":
        return 0.5
    return 0.0 if labels is None or np.any(np.asarray(labels) < 0) else 0.5


def dtype_policy(model) -> str | None:
    """The model's dtype policy, or the first of its layers' that computes in float16 (a model rebuilt or reloaded
    under ``mixed_float16`` keeps the policy on its layers)."""
    names = [getattr(getattr(layer, "dtype_policy", None), "name", None) for _, layer in leaf_layers(model)]
    return next((n for n in names if n and "float16" in n), getattr(getattr(model, "dtype_policy", None), "name", None))


def bounded(value: np.ndarray | None) -> np.ndarray | None:
    if value is None:
        return None
    value = np.asarray(value)
    return value if value.size <= MAX_STORED_VALUES else None


def encode_array(value: np.ndarray) -> dict[str, Any]:
    """An array as compact, exact JSON data (dtype, shape, base64 of its bytes)."""
    value = np.ascontiguousarray(value)
    if value.dtype.kind not in "biuf":
        value = value.astype(np.float64)
    return {"dtype": value.dtype.str, "shape": list(value.shape), "b64": base64.b64encode(value.tobytes()).decode()}


def decode_array(data: Any) -> np.ndarray | None:
    if data is None:
        return None
    if isinstance(data, np.ndarray):
        return data
    dtype = np.dtype(data["dtype"])
    if dtype.kind not in "biuf":
        raise ValueError(f"unexpected array dtype {dtype}")
    raw = base64.b64decode(data["b64"])
    shape = tuple(int(s) for s in data["shape"])
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize != len(raw):
        raise ValueError("array bytes do not match its shape")
    return np.frombuffer(raw, dtype).reshape(shape).copy()


def _units(layer) -> int | None:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    return None if not shape or shape[-1] is None else int(shape[-1])


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0
