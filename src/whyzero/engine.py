"""``diagnose``: from a model and the batch it fails on to a ranked ``Diagnosis``."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from whyzero import __version__, catalog
from whyzero.attribution import attribute
from whyzero.config import settings
from whyzero.context import Context
from whyzero.diagnosis import Diagnosis, rank
from whyzero.distances import batchnorm_memory, memory_score, normalization_score
from whyzero.errors import WhyzeroError, first_line
from whyzero.feed import MultiInput, assemble, choose_primary, is_text, take, text_features
from whyzero.loading.data import (
    LoadedInputs,
    load_inputs,
    load_labels,
    load_masks,
    load_train_reference,
    read_npz_arrays,
)
from whyzero.loading.models import LoadedModel, load_model
from whyzero.measurements import Measurements
from whyzero.memory import MemoryProbe, normalization_memory, preprocessing_whatif, rescaling_layers
from whyzero.model_info import (
    layer_table,
    loss_info,
    optimizer_info,
    output_activation,
    param_count,
    weight_table,
)
from whyzero.probes.capture import is_keras3, leaf_layers
from whyzero.probes.forward import dry_run, functional_module, predict, run_forward, runs_eagerly, static_outputs
from whyzero.probes.inputs import InputStats
from whyzero.probes.saliency import from_grad_cam, saliency
from whyzero.probes.summary import EDGES
from whyzero.proofs import prove
from whyzero.summaries import build_summaries
from whyzero.targets import gradient_targets, infer_task, label_ids, loss_for_gradients, per_position_ids

Progress = Callable[[str, float], None]


def diagnose(model: Any, inputs: Any, labels: Any = None, masks: Any = None, train_inputs: Any = None,
             train_stats: Any = None, trust_model: bool = False, preprocess: str = "none",
             progress: Progress | None = None, custom_objects: Any = None, output: str | None = None) -> Diagnosis:
    """Diagnoses why ``model`` predicts zero (or one constant thing) on ``inputs``.

    Args:
        model: a Keras model, or a path (.keras, .h5, SavedModel directory or .zip).
        inputs: the batch as fed to the model (array or path), or images with ``preprocess``.
        labels: class ids, one-hot rows, or regression targets (array or path).
        masks: segmentation masks (N, H, W) (array or path).
        train_inputs: a sample of training inputs as fed in training.
        train_stats: an ``InputStats`` or a file written by ``whyzero stats``.
        trust_model: allow code inside the model file (Lambda layers).
        preprocess: for image files, the preprocessing applied before feeding.
        progress: called with (stage, fraction) as work proceeds.
        custom_objects: a ``.py`` file (needs ``trust_model``) or a dict of the model's custom objects.
        output: for a model with several outputs, the one to diagnose (default: the first).

    Returns:
        The ``Diagnosis``: ranked findings and the summaries behind every panel.

    Raises:
        WhyzeroError: input that cannot be used, with a one-line reason.
    """
    report = progress or (lambda stage, fraction: None)
    report("loading", 0.0)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, trust_model=trust_model,
                                                                       custom_objects=custom_objects)
    fed = _prepare(select_output(loaded, output), inputs, labels, masks, train_inputs, train_stats, preprocess)
    report("loading", 1.0)
    ctx = _probe(fed.loaded, fed.batch, fed.labels, fed.masks, fed.train_ref, fed.notes, report,
                 raw_images=fed.batch_in.raw_images, multi=fed.multi)
    notes = fed.notes
    notes.extend(ctx.notes + overflow_notes(ctx))
    ctx.notes = notes
    if ctx.memory.embedding:
        ctx.memory.embedding.update(fed.invalid_ids)
    report("checks", 0.0)
    measured = Measurements.from_context(ctx)
    run = catalog.run_all(measured)
    report("checks", 1.0)
    report("proving fixes", 0.0)
    prove(ctx, run.findings, lambda new_batch: _rerun(ctx, new_batch), _recheck_live)
    report("proving fixes", 1.0)
    findings, attribution_notes = conclude(run.findings, measured)
    notes.extend(attribution_notes)
    summaries = build_summaries(measured, ctx.batch, ctx.outputs, ctx.label_ids, ctx.labels, ctx.masks,
                                saliency=_saliency(ctx, notes))
    summaries.update(measurements=measured.to_dict(), skipped=run.skipped)
    return Diagnosis(model=_model_identity(ctx), inputs=fed.describe(ctx), findings=findings, errors=run.errors,
                     notes=notes, summaries=summaries, version=__version__,
                     created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


@dataclass
class _Fed:
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

    def describe(self, ctx: Context) -> dict[str, Any]:
        """The diagnosis' ``inputs``: what was fed."""
        return {"source": self.batch_in.source, "shape": list(self.batch.shape), "dtype": str(self.batch.dtype),
                "preprocessing": self.batch_in.preprocessing, "samples": int(len(self.batch)),
                "is_image": ctx.is_image, "skipped": self.batch_in.skipped,
                "labels": None if self.labels is None else list(self.labels.shape),
                "masks": None if self.masks is None else list(self.masks.shape),
                "train_reference": self.train_ref is not None, "gradient_labels": ctx.gradient_labels}


def _prepare(loaded: LoadedModel, inputs, labels, masks, train_inputs, train_stats, preprocess: str) -> _Fed:
    """Loads the batch, labels, masks and training reference; bounds them to the sample limit and checks they fit
    the model and each other."""
    _rename_unscopable_layers(loaded)
    multi = None
    names = input_names(loaded)
    if len(names) > 1:
        multi, batch_in = _load_multi(loaded, names, inputs)
        batch = multi.arrays[multi.primary]
    else:
        size, channels = _image_geometry(loaded)
        batch_in = load_inputs(inputs, preprocess=preprocess, size=size, channels=channels)
        batch = _check_batch(batch_in.array, loaded)
    limit = settings().max_samples
    notes = list(loaded.notes) + batch_in.notes
    if multi is not None:
        notes.append(multi.describe())
    if len(batch) > limit:
        notes.append(f"probed the first {limit} of {len(batch)} samples (WHYZERO_MAX_SAMPLES)")
        batch = batch[:limit]
        multi = None if multi is None else multi.truncate(limit)
    label_arr = load_labels(_labels_of_head(labels, loaded), batch_in.names)
    mask_arr = _one_hot_masks(load_masks(masks), notes)
    label_arr = None if label_arr is None else label_arr[:limit]
    mask_arr = None if mask_arr is None else mask_arr[:limit]
    _check_alignment(batch, label_arr, mask_arr)
    train_ref = load_train_reference(train_inputs, train_stats)
    _check_reference(train_ref, batch)
    invalid_ids = {}
    if multi is None:
        batch, invalid_ids = _clip_token_ids(loaded, batch, notes)
    return _Fed(loaded, batch, batch_in, multi, label_arr, mask_arr, train_ref, notes, invalid_ids)


def overflow_notes(ctx: Context) -> list[str]:
    """Layers whose outputs hold Inf or NaN; under mixed precision that is float16 overflow (max 65504)."""
    if ctx.forward is None:
        return []
    bad = [p for p in ctx.forward.layers if p.values.inf or p.values.nan]
    if not bad:
        return []
    policy = getattr(getattr(ctx.model, "dtype_policy", None), "name", "") or ""
    where = ", ".join(f"'{p.name}' ({p.values.inf} Inf, {p.values.nan} NaN)" for p in bad[:3])
    if "float16" in policy:
        return [f"float16 overflow under '{policy}': {where} — values beyond 65504 become Inf; keep the "
                "overflowing layers (and the output) in float32, or scale the inputs down"]
    return [f"non-finite layer outputs: {where}"]


def _saliency(ctx: Context, notes: list[str]):
    """Heat maps of what drives the first images' predictions, for the per-sample drill-down."""
    if not (ctx.is_image and ctx.has_layers and ctx.multi is None):
        return None

    maps = from_grad_cam(ctx.forward.saliency if ctx.forward else None, ctx.batch.shape[1:3])
    if maps is not None:
        return maps
    try:
        return saliency(ctx.model, ctx.batch, ctx.task.kind)
    except Exception as err:  # noqa: BLE001 - a model the gradient cannot pass leaves the drill-down without maps
        notes.append(f"no saliency maps: {type(err).__name__}: {first_line(err, 150)}")
        return None


def conclude(findings: list, measured: Measurements) -> tuple[list, list[str]]:
    """From the checks' findings to the diagnosis' order: roles, explained_by, ranking, the symptom's fix.

    A pure function of the findings and the layers' order, shared by ``diagnose`` and ``recheck``.
    """
    layer_order = {layer.name: i for i, layer in enumerate(measured.layers)}
    findings, notes = attribute(findings, layer_order)
    findings = rank(findings)
    point_symptoms_to_roots(findings)
    return findings, notes


def _recheck_live(ctx: Context) -> list:
    return catalog.run_checks(Measurements.from_context(ctx))[0]


def _rerun(ctx: Context, batch: np.ndarray) -> tuple[Context, list]:
    """The model probed again on a fixed batch, and the checks on it (no what-if: the fix is known)."""
    quiet = lambda stage, fraction: None  # noqa: E731
    new = _probe(ctx.loaded, batch, ctx.labels, ctx.masks, ctx.train_stats, [], quiet, whatif=False, multi=ctx.multi)
    return new, _recheck_live(new)


def point_symptoms_to_roots(findings: list) -> None:
    """The symptom's fix names the root cause found (listed first), or says none was."""
    roots = [f for f in findings if f.role == "root" and f.severity != "info"]
    for f in findings:
        if f.role != "symptom":
            continue
        if roots:
            f.fix = f"Fix the root cause listed first: {roots[0].title}."
        else:
            f.fix = ("No check found a root cause; look at the activations and gradients pages for where the "
                     "outputs stop varying, and give labels or training data for more checks.")


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


def _image_geometry(loaded: LoadedModel) -> tuple[tuple[int, int] | None, int]:
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


SCOPE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")


def scope_safe(name: str) -> str:
    """A name TensorFlow accepts as a graph scope: anything else becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_-") or "layer"


def _rename_unscopable_layers(loaded: LoadedModel) -> None:
    """TensorFlow refuses layer names with markup or spaces as graph scopes: such layers are renamed."""
    model = loaded.model
    if not loaded.has_layers or not is_keras3(model):
        return
    layers = [model] + [layer for layer in model._flatten_layers(include_self=False)]  # noqa: SLF001
    for layer in layers:
        if not SCOPE_NAME.match(layer.name):
            safe = scope_safe(layer.name)
            loaded.notes.append(f"layer {layer.name[:60]!r} was renamed {safe!r}: TensorFlow refuses its name "
                                "as a graph scope")
            object.__setattr__(layer, "name", safe)


def select_output(loaded: LoadedModel, output: str | None) -> LoadedModel:
    """A model with several outputs is diagnosed on one head: ``output`` by name, else the first."""
    model = loaded.model
    try:
        outputs = list(getattr(model, "outputs", None) or []) if loaded.has_layers else []
    except (AttributeError, ValueError):
        outputs = []
    if len(outputs) < 2:
        if output is not None and outputs:
            raise WhyzeroError(f"--output names a head, but the model has one output. Received: {output!r}")
        return loaded
    names = list(getattr(model, "output_names", None) or [t.name.split("/")[0] for t in outputs])
    if output is None:
        index = 0
    elif output in names:
        index = names.index(output)
    else:
        raise WhyzeroError(f"Expected an output among {names}. Received: {output!r}")
    km = functional_module(model)
    view = km.Model(model.inputs, outputs[index], name=scope_safe(f"{model.name}_{names[index]}"))
    object.__setattr__(view, "whyzero_loss_of", (model, index))  # not tracked as a sublayer
    notes = loaded.notes + [f"the model has {len(outputs)} outputs {names}: diagnosing '{names[index]}'"
                            + ("" if output else " (the first; choose another with --output)")]
    return LoadedModel(view, loaded.name, loaded.hash, loaded.source, loaded.has_layers, notes, head=names[index])


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


def _one_hot_masks(masks: np.ndarray | None, notes: list[str]) -> np.ndarray | None:
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
        raise WhyzeroError(f"Expected one label per input ({len(batch)}). Received: {len(labels)} labels")
    if masks is not None and masks.ndim < 3:
        raise WhyzeroError(f"Expected masks of shape (N, H, W). Received: masks of shape {tuple(masks.shape)}")


def activation_bytes(model, exact: bool = False) -> int | None:
    """One sample's activations (float32), from the layers' output shapes (an unknown length counted as 1); None
    when no layer's is known (a subclassed model), or, ``exact``, when one is not (or has an unknown length)."""

    per_sample, known = 0, False
    for _, layer in leaf_layers(model):
        try:
            shape = layer.output.shape[1:]
        except (AttributeError, ValueError, RuntimeError):
            if exact:
                return None
            continue
        if exact and None in tuple(shape):
            return None
        per_sample, known = per_sample + int(np.prod([d or 1 for d in shape])) * 4, True
    return per_sample if known else None


def chunk_size(model, batch: np.ndarray) -> int:
    """Samples per forward pass: as many as fit ``chunk_mb`` of one sample's activations (float32)."""
    config = settings()
    per_sample = max(activation_bytes(model) or 0, batch[0].nbytes if len(batch) else 1)
    fit = int(config.chunk_mb * 2**20 // per_sample)
    return int(np.clip(fit, 1, config.chunk_size))


def _probe(loaded: LoadedModel, batch, labels, masks, train_ref, notes, report, whatif: bool = True,
           raw_images: np.ndarray | None = None, multi: MultiInput | None = None) -> Context:
    model = loaded.model
    chunk = chunk_size(model, batch)
    fed = assemble(batch, multi)
    text = is_text(batch)
    input_stats = InputStats.of(text_features(batch) if text else batch)
    if text:
        input_stats.dtype, input_stats.shape = "text", list(batch.shape[1:])
    loss = loss_info(model) if loaded.has_layers else None
    optimizer = optimizer_info(model) if loaded.has_layers else None
    is_image = batch.ndim == 4 and batch.shape[-1] in (1, 3)
    activation = output_activation(model) if loaded.has_layers else None
    if not loaded.has_layers:
        outputs = predict(model, fed, chunk)
        task = infer_task(outputs, activation, loss, labels)
        ctx = Context(loaded, batch, outputs, task, input_stats, labels=labels, masks=masks, train_stats=train_ref,
                      is_image=is_image, multi=multi)
        ctx.label_ids = label_ids(task, labels, masks)
        return ctx
    report("probing layers", 0.0)
    plan, first = None, static_outputs(model, activation) if multi is None else None
    if first is None:
        plan, first = dry_run(model, take(fed, 0, 2))
    position_ids = None if masks is not None else per_position_ids((len(batch), *first.shape[1:]), labels, loss)
    if position_ids is not None:
        # a class per position (a tagger): its labels are checked as masks are, over positions
        notes.append(f"the labels, of shape {tuple(labels.shape)}, hold a class for each of the {first.shape[1]} "
                     "positions of the output: they are checked per position")
        labels, masks = None, position_ids
    per_position = masks is not None and first.ndim == 3
    task = infer_task(first, activation, loss, labels, per_position)
    ids = label_ids(task, labels, masks)
    fn, origin = loss_for_gradients(task, loss)
    loss_name = None if loss is None else (loss["name"] if loss["known"] else "custom")
    targets, target_source = gradient_targets(task, loss_name, ids, labels, (len(batch), *first.shape[1:]))
    if target_source != "labels":
        notes.append(f"gradients use {target_source} as targets: no usable labels; gradient findings are capped "
                     "at warning")
    cam = task.kind if is_image and multi is None else None
    per_sample = activation_bytes(model, exact=True)
    eager = per_sample is not None and runs_eagerly(model, per_sample * len(batch))

    def probe(gradients: bool, eagerly: bool):
        return run_forward(model, fed, targets if gradients else None, fn if gradients else None, chunk, report,
                           saliency_of=cam, plan=plan, cache=loaded.passes, eager=eagerly)

    forward = _forward_or_fallback(probe, eager, origin, notes)
    outputs = forward.outputs
    task = infer_task(outputs, activation, loss, labels, per_position)
    ctx = Context(loaded, batch, outputs, task, input_stats, labels=labels, masks=masks, train_stats=train_ref,
                  forward=forward, loss=loss, optimizer=optimizer, is_image=is_image,
                  gradient_labels=target_source if forward.has_gradients else "none", multi=multi)
    ctx.label_ids = label_ids(task, labels, masks)
    report("model memory", 0.0)
    _memory(ctx, chunk, whatif, raw_images)
    report("model memory", 1.0)
    return ctx


def _forward_or_fallback(probe: Callable, eager: bool, origin: str, notes: list[str]):
    """The probe's pass with gradients, eagerly where ``eager``; traced when a layer runs only inside a graph; without
    gradients when the loss does not apply to these outputs (said in ``notes``)."""
    try:
        try:
            return probe(True, eager)
        except Exception:  # noqa: BLE001 - a layer that runs only inside a graph: the traced pass
            if not eager:
                raise
            eager = False
            return probe(True, False)
    except Exception as err:  # noqa: BLE001 - the loss may not apply to these outputs; probe without gradients
        notes.append(f"gradients unavailable: the loss ({origin}) could not be computed ({first_line(err)})")
        return probe(False, eager)


def _memory(ctx: Context, chunk: int, whatif: bool = True, raw_images: np.ndarray | None = None) -> None:
    memory = ctx.memory
    memory.batchnorm = batchnorm_memory(ctx.forward.batchnorm)
    memory.normalization = normalization_memory(ctx.model)
    memory.rescaling = rescaling_layers(ctx.model)
    memory.weights = weight_table(ctx.model)
    memory.embedding = embedding_input(ctx.model)
    partial = [r for r in memory.batchnorm if r["trained"] and r.get("converged", 1.0) < 1.0]
    if partial:
        ctx.notes.append(f"the BatchNorm moving statistics are only {partial[0]['converged']:.0%} of the way from "
                         "their initial values (a briefly trained model): the batch is compared with them corrected "
                         "for it")
    score = memory_score(memory.batchnorm)
    if score is not None:
        memory.score, memory.source = score, "BatchNormalization moving statistics"
    probe = MemoryProbe(ctx.model, ctx.train_stats, chunk=chunk if ctx.multi is None else None)
    if memory.normalization is not None and ctx.train_stats is None:
        memory.score, memory.source = normalization_score(ctx.input_stats, memory.normalization), probe.source
    if ctx.is_image and whatif:
        # 16 samples rank the preprocessings; a big model (small chunks) ranks them on one chunk of at least 8
        # the labels can judge a preprocessing only for a trained model: BatchNorm statistics all at their initial
        # values say it never saw data (an untrained ResNet50 would run six more passes for nothing)
        untrained = bool(memory.batchnorm) and not any(r["trained"] for r in memory.batchnorm)
        classified = ctx.task.kind in ("binary", "multiclass") and ctx.label_ids is not None and not untrained
        ctx.whatif = preprocessing_whatif(ctx.batch, probe, lambda b: predict(ctx.model, assemble(b, ctx.multi), chunk),
                                          max_samples=min(16, max(8, chunk)), raw_images=raw_images,
                                          labels=ctx.label_ids if classified else None, given=ctx.outputs)


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


def _model_identity(ctx: Context) -> dict[str, Any]:
    model = ctx.model
    loss = dict(ctx.loss) if ctx.loss else None
    if loss:
        loss.pop("object", None)
    return {"name": ctx.loaded.name, "hash": ctx.loaded.hash, "source": ctx.loaded.source,
            "has_layers": ctx.has_layers, "layers": layer_table(model) if ctx.has_layers else [],
            "params": param_count(model),
            "loss": loss, "optimizer": ctx.optimizer, "final_activation": ctx.task.activation,
            "task": ctx.task.kind, "n_classes": ctx.task.n_classes, "output_shape": list(ctx.outputs.shape[1:]),
            "histogram_edges": EDGES.tolist()}
