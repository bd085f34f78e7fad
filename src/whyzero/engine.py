"""``diagnose``: from a model and the batch it fails on to a ranked ``Diagnosis``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

from whyzero import __version__, catalog
from whyzero.attribution import attribute
from whyzero.checks.inputs import MATCH_FACTOR
from whyzero.checks.training import at_initialization
from whyzero.context import Context
from whyzero.diagnosis import Diagnosis, rank
from whyzero.distances import batchnorm_memory, memory_score, normalization_score
from whyzero.early import EarlyWork, alongside
from whyzero.errors import first_line
from whyzero.fed import Fed, batch_stats, embedding_input, prepare_inputs
from whyzero.feed import MultiInput, assemble, take
from whyzero.figures import panel_views
from whyzero.loading.models import LoadedModel, load_model
from whyzero.measurements import Measurements
from whyzero.memory import MemoryProbe, normalization_memory, preprocessing_whatif, rescaling_layers, whatif_samples
from whyzero.model_info import (
    loss_info,
    optimizer_info,
    output_activation,
    weight_table,
)
from whyzero.prepare import activation_bytes, chunk_size, model_identity, select_output
from whyzero.probes.forward import run_forward, runs_eagerly
from whyzero.probes.inputs import InputStats
from whyzero.probes.plan import dry_run, predict, static_outputs
from whyzero.probes.saliency import from_grad_cam, saliency
from whyzero.proofs import LiveRun, proof_samples, prove
from whyzero.reruns import BATCHNORM_RERUN_DISTANCE, batchnorm_rerun, float32_rerun, rerun_brief
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
    fed = prepare(model, inputs, labels, masks, train_inputs, train_stats, trust_model, preprocess, custom_objects,
                  output)
    report("loading", 1.0)
    return diagnose_fed(fed, report)


def prepare(model: Any, inputs: Any, labels: Any = None, masks: Any = None, train_inputs: Any = None,
            train_stats: Any = None, trust_model: bool = False, preprocess: str = "none", custom_objects: Any = None,
            output: str | None = None) -> Fed:
    """The model loaded and the batch, labels, masks and training reference read and checked (``diagnose``'s
    arguments); a ``Fed`` diagnosed again and again reuses the probe's compiled pass (``whyzero.Monitor``)."""
    loaded = model if isinstance(model, LoadedModel) else load_model(model, trust_model=trust_model,
                                                                       custom_objects=custom_objects)
    return prepare_inputs(select_output(loaded, output), inputs, labels, masks, train_inputs, train_stats, preprocess)


def diagnose_fed(fed: Fed, report: Progress, whatif: bool = True, live: dict | None = None,
                 traced: bool = False) -> Diagnosis:
    """The diagnosis of a prepared model and batch; ``whatif`` False skips the preprocessing what-if (a probe fed as
    in training); ``live`` holds what only a running training shows (``whyzero.monitor``); ``traced`` compiles the
    probe's pass even for a small model (it is run again at every epoch: tracing once costs less)."""
    return judge(fed, report, whatif, live, traced).document()


@dataclass
class Judged:
    """A diagnosis judged while its model was at hand: the findings concluded (roles, proofs) and what its
    document is made of.  ``document`` needs no model, so a training watched by ``whyzero.Monitor`` goes on
    while the panels' views are drawn and the document is written."""

    fed: Fed
    ctx: Context
    measured: Measurements
    skipped: list
    errors: list
    findings: list
    notes: list[str]
    saliency: Any
    identity: dict
    created: str

    def document(self) -> Diagnosis:
        ctx = self.ctx
        summaries = panel_views(self.measured, ctx.batch, ctx.outputs, ctx.label_ids, ctx.labels, ctx.masks,
                                saliency=self.saliency)
        summaries.update(measurements=self.measured.to_dict(), skipped=self.skipped)
        return Diagnosis(model=self.identity, inputs=self.fed.describe(ctx), findings=self.findings,
                         errors=self.errors, notes=self.notes, summaries=summaries, version=__version__,
                         created=self.created)


def judge(fed: Fed, report: Progress, whatif: bool = True, live: dict | None = None, traced: bool = False) -> Judged:
    """Everything of a diagnosis that needs the model: the probe, the checks, the proofs by re-run, the roles."""
    notes = list(fed.notes)
    ctx = _probe(fed.loaded, fed.batch, fed.labels, fed.masks, fed.train_ref, notes, report,
                 raw_images=fed.batch_in.raw_images, multi=fed.multi, whatif=whatif, stale_batchnorm=True,
                 traced=traced, input_stats=fed.input_stats)
    notes.extend(ctx.notes + overflow_notes(ctx))
    ctx.notes = notes
    if ctx.memory.embedding:
        ctx.memory.embedding.update(fed.invalid_ids)
    report("checks", 0.0)
    measured = Measurements.from_context(ctx)
    measured.live = live
    run = catalog.run_all(measured)
    report("checks", 1.0)
    report("proving fixes", 0.0)
    live_run = LiveRun(measured, ctx.batch, lambda new_batch: _rerun(ctx, new_batch), ctx.batchnorm_outputs,
                       float32_outputs=lambda: _float32_outputs(ctx),
                       rerun_samples=proof_samples(ctx.chunk))
    prove(live_run, run.findings, lambda changed: catalog.run_all(changed).findings)
    report("proving fixes", 1.0)
    findings, attribution_notes = conclude(run.findings, measured)
    notes.extend(attribution_notes)
    return Judged(fed, ctx, measured, run.skipped, run.errors, findings, notes, _saliency(ctx, notes),
                  model_identity(ctx), dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


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
        return []  # activation.overflow names it
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


def _float32_outputs(ctx: Context) -> np.ndarray | None:
    """The outputs of the model computed in float32 (the proof of a float16 overflow), on demand."""
    return float32_rerun(ctx.model, assemble(ctx.batch, ctx.multi), ctx.chunk)


def _rerun(ctx: Context, batch: np.ndarray) -> Measurements:
    """The model probed again on a fixed batch, or on its first samples fixed (no what-if: the fix is known)."""
    quiet = lambda stage, fraction: None  # noqa: E731
    n = len(batch)
    labels, masks = (None if a is None else a[:n] for a in (ctx.labels, ctx.masks))
    new = _probe(ctx.loaded, batch, labels, masks, ctx.train_stats, [], quiet, whatif=False, multi=ctx.multi,
                 budget_rows=len(ctx.batch), weights=ctx.memory.weights)  # the probe's compiled pass, not a new trace
    return Measurements.from_context(new)


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


def _probe(loaded: LoadedModel, batch, labels, masks, train_ref, notes, report, whatif: bool = True,
           raw_images: np.ndarray | None = None, multi: MultiInput | None = None,
           budget_rows: int | None = None, stale_batchnorm: bool | None = None, traced: bool = False,
           input_stats: Callable[[], InputStats] | None = None, weights: list[dict] | None = None) -> Context:
    """The probe and what follows; ``input_stats`` works out the batch's statistics (default: ``batch_stats``)."""
    model = loaded.model
    chunk = chunk_size(model, batch)
    fed = assemble(batch, multi)
    input_stats = input_stats or (lambda: batch_stats(batch))
    loss = loss_info(model) if loaded.has_layers else None
    optimizer = optimizer_info(model) if loaded.has_layers else None
    is_image = batch.ndim == 4 and batch.shape[-1] in (1, 3)
    activation = output_activation(model) if loaded.has_layers else None
    if not loaded.has_layers:
        return _outputs_only(Context(loaded, batch, predict(model, fed, chunk), None, input_stats(), labels=labels,
                                     masks=masks, train_stats=train_ref, is_image=is_image, multi=multi, chunk=chunk),
                             activation, loss)
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
    fn, origin, targets, target_source = _gradients_of(task, loss, labels, masks, (len(batch), *first.shape[1:]),
                                                       notes)
    cam = task.kind if is_image and multi is None else None
    per_sample = activation_bytes(model, exact=True)
    eager = not traced and per_sample is not None and \
        runs_eagerly(model, per_sample * max(len(batch), budget_rows or 0))

    def probe(gradients: bool, eagerly: bool, on_traced: Callable[[], None] | None = None):
        return run_forward(model, fed, targets if gradients else None, fn if gradients else None, chunk, report,
                           saliency_of=cam, plan=plan, cache=loaded.passes, eager=eagerly, budget_rows=budget_rows,
                           on_traced=on_traced)

    # the batch's statistics, the weights' table and the what-if's memory scores need no probe: on the core the
    # trace and the first chunk's setup leave idle
    early = whatif and weights is None and multi is None and is_image and not eager
    with alongside(early, lambda: EarlyWork(model, batch, train_ref, chunk, raw_images, input_stats)) as started:
        forward = _forward_or_fallback(probe if started is None else partial(probe, on_traced=started.traced), eager,
                                       origin, notes)
        task = infer_task(forward.outputs, activation, loss, labels, per_position)
        stats = (started.input_stats() if started is not None else None) or input_stats()
        ctx = Context(loaded, batch, forward.outputs, task, stats, labels=labels, masks=masks,
                      train_stats=train_ref, forward=forward, loss=loss, optimizer=optimizer, is_image=is_image,
                      gradient_labels=target_source if forward.has_gradients else "none", multi=multi, chunk=chunk)
        ctx.label_ids = label_ids(task, labels, masks)
        report("model memory", 0.0)
        _memory(ctx, chunk, whatif, raw_images, whatif if stale_batchnorm is None else stale_batchnorm, weights,
                started)
        report("model memory", 1.0)
    return ctx


def _gradients_of(task, loss: dict | None, labels, masks, shape: tuple, notes: list[str]):
    """The loss the probe's gradients come from, where it was found, their targets and where those came from."""
    fn, origin = loss_for_gradients(task, loss)
    loss_name = None if loss is None else (loss["name"] if loss["known"] else "custom")
    targets, target_source = gradient_targets(task, loss_name, label_ids(task, labels, masks), labels, shape)
    if target_source != "labels":
        notes.append(f"gradients use {target_source} as targets: no usable labels; gradient findings are capped "
                     "at warning")
    return fn, origin, targets, target_source


def _outputs_only(ctx: Context, activation: str | None, loss: dict | None) -> Context:
    """A model without layers to probe (a bare function): its outputs alone, their task read off them."""
    ctx.task = infer_task(ctx.outputs, activation, loss, ctx.labels)
    ctx.label_ids = label_ids(ctx.task, ctx.labels, ctx.masks)
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


def _rerun_batchnorm(ctx: Context, chunk: int) -> None:
    """The outputs with the BatchNorm layers on the batch's own statistics, where their memory is partial or far
    from the batch: what tells a stale memory from a wrong preprocessing (``checks.model.batchnorm_statistics``)."""
    memory, w = ctx.memory, ctx.whatif
    stale = any(r.trained and r.converged < 1.0 for r in memory.batchnorm)
    far = (memory.score or 0.0) >= BATCHNORM_RERUN_DISTANCE
    if ctx.multi is not None or not memory.batchnorm or not (stale or far):
        return
    if ctx.train_stats is None and w is not None and w.names_a_match(MATCH_FACTOR):
        return  # a preprocessing matches the memory: the input is at fault, and the re-run could not say otherwise
    ctx.batchnorm_outputs = batchnorm_rerun(ctx.model, ctx.batch, chunk)
    if ctx.batchnorm_outputs is not None:
        ids = ctx.label_ids if ctx.task.kind in ("binary", "multiclass") else None
        memory.batchnorm_rerun = rerun_brief(ctx.batchnorm_outputs, ctx.outputs, ids)


def _memory(ctx: Context, chunk: int, whatif: bool = True, raw_images: np.ndarray | None = None,
            stale_batchnorm: bool = True, weights: list[dict] | None = None, early: EarlyWork | None = None) -> None:
    """What the model holds of its training: BatchNorm and Normalization memory against the batch, the weights'
    table (``weights``: already read, for a re-run of the same model: ResNet50's took 0.36 s), the what-if
    (``early``: the table and the what-if's scores worked out while the probe ran)."""
    memory = ctx.memory
    memory.batchnorm = batchnorm_memory(ctx.forward.batchnorm)
    memory.normalization = normalization_memory(ctx.model)
    memory.rescaling = rescaling_layers(ctx.model)
    if weights is None and early is not None:
        weights = early.weights()
    memory.weights = weight_table(ctx.model) if weights is None else weights
    memory.embedding = embedding_input(ctx.model)
    partial = [r for r in memory.batchnorm if r.trained and r.converged < 1.0]
    if partial:
        ctx.notes.append(f"the BatchNorm moving statistics are only {partial[0].converged:.0%} of the way from "
                         "their initial values (a briefly trained model): the batch is compared with them corrected "
                         "for it")
    score = memory_score(memory.batchnorm)
    if score is not None:
        memory.score, memory.source = score, "BatchNormalization moving statistics"
    probe = early.probe if early is not None else None
    if probe is None and ((ctx.is_image and whatif) or (memory.normalization is not None and ctx.train_stats is None)):
        # a re-run (no what-if) spares looking for trained BatchNorm layers (MobileNetV2's 52: 0.03 s)
        probe = MemoryProbe(ctx.model, ctx.train_stats, chunk=chunk if ctx.multi is None else None)
    if memory.normalization is not None and ctx.train_stats is None:
        memory.score, memory.source = normalization_score(ctx.input_stats, memory.normalization), probe.source
    if ctx.is_image and whatif:
        # 16 samples rank the preprocessings; a big model (small chunks) ranks them on one chunk of at least 8
        # the labels can judge a preprocessing only for a trained model: BatchNorm statistics all at their initial
        # values say it never saw data (an untrained ResNet50 would run six more passes for nothing)
        untrained = (bool(memory.batchnorm) and not any(r.trained for r in memory.batchnorm)) or \
            at_initialization(memory.weights, (ctx.optimizer or {}).get("iterations"), memory.batchnorm)
        classified = ctx.task.kind in ("binary", "multiclass") and ctx.label_ids is not None and not untrained
        ctx.whatif = preprocessing_whatif(ctx.batch, probe, lambda b: predict(ctx.model, assemble(b, ctx.multi), chunk),
                                          max_samples=whatif_samples(chunk), raw_images=raw_images,
                                          scored=early.scores() if early is not None else None,
                                          labels=ctx.label_ids if classified else None, given=ctx.outputs)
    if stale_batchnorm:
        _rerun_batchnorm(ctx, chunk)


