"""One streaming pass over the batch: per-layer summaries, BatchNorm inputs, outputs, gradients.

The batch goes through the model in chunks: one ``tf.function`` runs the
forward (and backward) pass and reduces each layer's output in the same graph
by a small summary traced once per rank (``lean_vector``), so only small
tensors (histograms, moments, per-unit maxima) leave it and whole activation
tensors are never gathered.  Gradients are summed over chunks
into one buffer the size of the model's weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from whyzero import feed
from whyzero._tf import tf
from whyzero.model_info import is_custom, layer_activation
from whyzero.probes.capture import can_capture, capturing, layer_paths, leaf_layers
from whyzero.probes.gradients import attach_gradients
from whyzero.probes.plan import (
    BatchNormInput,
    Plan,
    batchnorm_inputs,
    batchnorm_records,
    first_output,
    flat_region,
    functional_module,
    gate_preactivations,
    plan_of,
    probed_layers,
    relu_ceiling,
    sources,
)
from whyzero.probes.saliency import SALIENCY_SAMPLES, grad_cam, last_feature_map, pre_activation, saliency_target
from whyzero.probes.traced import (
    add_later,
    bn_stats,
    call_traced,
    clipped_vector,
    full_summary,
    lean_vector,
    read,
    stacks,
    tensor_kind,
    traced_summary,
    without_graph_rewrites,
)
from whyzero.probes.values import ValueSummary


@dataclass
class LayerProbe:
    """What the pass learned about one layer."""

    name: str
    type: str
    activation: str | None
    values: ValueSummary = field(default_factory=ValueSummary)
    grad_sumsq: float = 0.0
    grad_nonfinite: int = 0
    grad_nonzero: int = 0
    weight_norm: float = 0.0
    n_kernel: int = 0


@dataclass
class ForwardResult:
    layers: list[LayerProbe]
    batchnorm: list[BatchNormInput]
    outputs: np.ndarray
    loss: float | None
    has_gradients: bool
    saliency: np.ndarray | None = None  # Grad-CAM maps (N, h, w) of the first samples, from the same pass


def run_forward(model, batch: np.ndarray, labels: np.ndarray | None, loss_fn: Callable | None, chunk_size: int,
                progress: Callable[[str, float], None] | None = None, max_batchnorm: int = 8, eager: bool = False,
                saliency_of: str | None = None, plan: Plan | None = None, cache: dict | None = None,
                budget_rows: int | None = None, on_traced: Callable[[], None] | None = None) -> ForwardResult:
    """Streams ``batch`` through ``model`` and returns merged summaries.

    Every leaf layer is probed, in nested models too (named by path); tf_keras models layer by layer at the top.

    Args:
        model: a Keras model with layers.
        batch: the inputs as fed to the model.
        labels: targets for the loss (same length as batch), or None for no gradients.
        loss_fn: ``loss_fn(y_true, y_pred)``; None for no gradients.
        chunk_size: samples per forward pass.
        progress: called with (stage, fraction done).
        max_batchnorm: how many of the first BatchNormalization layers to compare with their memory.
        saliency_of: for images, the task whose predicted class the first samples' Grad-CAM maps explain.
        plan: from ``dry_run`` on the same model, when it has been run already.
        cache: where the compiled pass is kept for later calls on the same model (``LoadedModel.passes``).
        eager: run each chunk op by op, not as one traced function (``runs_eagerly``: a small model).
        budget_rows: the batch size the pass is set for (default: this batch's); a re-run on a probed batch's
            first samples gives the probed batch's, and runs its compiled pass.
        on_traced: called once the pass is traced (or found compiled), before its first chunk runs.
    """
    if can_capture(model):
        found = {"plan": plan}  # without a dry run, the plan is read off the call traced first
        paths = layer_paths(model) if plan is None else {}

        def run(x):
            with capturing(model) as tape:
                out = model(x, training=False)
            if found["plan"] is None:
                found["plan"] = plan_of(tape, paths, max_batchnorm)
            plan_ = found["plan"]
            if len(tape) != plan_.calls:
                raise RuntimeError(f"the model called {len(tape)} layers, {plan_.calls} when its plan was read")
            gates = [gate_preactivations(tape[i].inputs, g) for i, g in zip(plan_.probe_index, plan_.gate_layers)]
            final = first_output(out)
            return ([(tape[i].output, gate) for i, gate in zip(plan_.probe_index, gates)],
                    [tape[i].inputs for i in plan_.bn_index], final, pre_activation(tape, final), sources(tape, plan_))

        def described():
            return found["plan"].names, found["plan"].layers, found["plan"].bn_layers
    else:
        layers = probed_layers(model)
        names = [l.name for l in layers]
        km = functional_module(model)
        bn_pairs = batchnorm_inputs(model, km, max_batchnorm)
        bn_layers = [bn for bn, _ in bn_pairs]
        probe_model = km.Model(model.inputs, [l.output for l in layers] + [t for _, t in bn_pairs] + [model.outputs[0]])

        def run(x):
            outs = probe_model(x, training=False)
            return ([(t, None) for t in outs[:len(layers)]], outs[len(layers):len(layers) + len(bn_layers)],
                    outs[-1], outs[-1], [None] * len(layers))

        def described():
            return names, layers, bn_layers
    return _stream(model, batch, labels, loss_fn, chunk_size, progress, run, described, saliency_of,
                   {} if cache is None else cache, eager, budget_rows, on_traced)


def _merge_chunk(vectors: list, layouts: list, probes: list[LayerProbe], flats: list, ones: list,
                 layer_outputs: Callable, x) -> None:
    """Merges one chunk's summary vectors into the layers' summaries; a layer whose values were not all finite is
    summarized from its outputs themselves (``layer_outputs(x)`` runs them for this chunk ``x``)."""
    unfinished = []
    for vector, (members, layout) in zip(vectors, layouts):
        parts = [vector.numpy()] if layout is None else layout.segment(vector.numpy())
        alone = layout if layout is None or layout.segments == 1 else replace(layout, segments=1)
        for i, part in zip(members, parts):
            summary = read(part, alone, flats[i][0] is not None, ones[i])
            if summary is None:
                unfinished.append(i)  # NaN, Inf or no values: summarized from the outputs themselves
            else:
                probes[i].values.update(summary)
    if unfinished:
        outs = layer_outputs(x)
        for i in unfinished:
            probes[i].values.update(full_summary(outs[i][0], *flats[i], outs[i][1], ones[i]))
        del outs


@dataclass
class CompiledPass:
    """A probe's pass as compiled for one batch spec, cached on the loaded model and reused by later diagnoses.

    Attributes:
        forward: x -> (summary vectors, BatchNorm parts, final output, Grad-CAM maps).
        forward_backward: (x, y, weight) -> the same and the chunk's loss; the kernels' gradients summed in
            ``grad_sum``.
        layer_outputs: x -> the layers' outputs themselves (for a chunk whose values were not all finite).
        grad_sum: the batch's mean gradient per kernel, accumulated chunk by chunk.
        layouts: per summary vector, the layers it holds and how to cut it.
        described: () -> (names, layers, BatchNorm layers) of the probed layers, as compiled.
    """

    forward: Callable
    forward_backward: Callable
    layer_outputs: Callable
    grad_sum: list
    layouts: list
    described: Callable


def _stream(model, batch, labels, loss_fn, chunk_size, progress, run, described, cam: str | None,
            cache: dict, eager: bool = False, budget_rows: int | None = None,
            on_traced: Callable[[], None] | None = None) -> ForwardResult:
    """The chunked pass.  The model's forward (and backward) pass is one ``tf.function``; each layer's output is
    summarized in it by a call of a small function shared by all layers of its rank, never inlined.  So the pass
    traces almost as fast as a plain training step (MobileNetV2: 1.5 s, against 17 s for one function holding
    every layer's summary inline), and the summaries run among the model's ops, with no call from Python each
    (ResNet50: ~0.25 s a chunk of 4 less than summarizing the returned outputs one by one).  ``described()``
    names the probed layers once it is traced (or, ``eager``, once the first chunk has run op by op)."""
    # the gradients read are the kernels' (``attach_gradients``); left out, a bias's or a scale's costs the
    # backward pass a reduction over its layer's whole output gradient (ResNet50: 53 of them a chunk)
    variables = [v for v in model.trainable_variables if len(v.shape) >= 2] or list(model.trainable_variables)
    want_grads = labels is not None and loss_fn is not None and bool(variables)
    spec = feed.spec(batch)

    label_spec = None if labels is None else tf.TensorSpec([None, *labels.shape[1:]], tf.as_dtype(labels.dtype))
    rows = max(feed.rows(batch), budget_rows or 0)  # a re-run on a probed batch's first samples: the probed batch's
    samples = min(chunk_size, rows)  # the most a chunk holds (the strides of the layers' subsamples)
    # the chunks share one budget of counted values a layer (COUNT_MAX_VALUES; each chunk's own took MobileNetV2 ~0.1 s
    # more), set for the batch's size rounded up to a power of 2: batches of about the same size share the pass
    everyone = max(samples, 1 << max(rows - 1, 0).bit_length())
    key = (repr(spec), repr(label_spec), want_grads, cam, _loss_key(loss_fn), samples, everyone, eager)

    if key not in cache:
        cache[key] = _compile_pass(run, described, spec, label_spec, variables, want_grads, loss_fn, cam, samples,
                                   everyone, eager)
    if on_traced is not None:
        on_traced()
    # ``described`` as the pass was compiled: a cached pass runs the ``run`` it was compiled with
    compiled = cache[key]
    probes, bns = [], []  # the probed layers' summaries and BatchNorm inputs, known once the pass has run
    for acc in compiled.grad_sum:
        acc.assign(tf.zeros_like(acc))
    outputs, cams, loss_total, n = [], [], 0.0, feed.rows(batch)
    with without_graph_rewrites():  # the probe's graph is run a few times: not worth optimizing
        step = even_chunks(n, chunk_size)
        for start in range(0, n, step):
            part = feed.take(batch, start, start + step)
            x, size = feed.tensors(part), feed.rows(part)
            if want_grads:
                vectors, bn_parts, out, cam_maps, loss = compiled.forward_backward(
                    x, tf.convert_to_tensor(labels[start:start + step]), tf.constant(size / n, tf.float32))
                loss_total += float(loss) * size / n
            else:
                vectors, bn_parts, out, cam_maps = compiled.forward(x)
            if start == 0:  # the probed layers are known once the pass has been traced or run
                layers, flats, ones, probes, bns = _probed(compiled, model)
            _merge_chunk(vectors, compiled.layouts, probes, flats, ones, compiled.layer_outputs, x)
            for bn, part in zip(bns, bn_parts):
                bn.add(*part)
            outputs.append(out.numpy())
            if cam_maps is not None and sum(len(c) for c in cams) < SALIENCY_SAMPLES:
                cams.append(cam_maps.numpy())
            if progress:
                progress("probing layers" + (" and gradients" if want_grads else ""), min(1.0, (start + size) / n))
    if want_grads:
        attach_gradients(layers, probes, variables, compiled.grad_sum)
    saliency = np.concatenate(cams)[:SALIENCY_SAMPLES] if cams else None
    return ForwardResult(probes, bns, np.concatenate(outputs), loss_total if want_grads else None, want_grads,
                         saliency=saliency)


def _probed(compiled: CompiledPass, model) -> tuple[list, list, list, list[LayerProbe], list]:
    """The probed layers as the pass was compiled, their flat regions, whether a value of 1 counts as pinned, their
    empty summaries and the BatchNorm layers' records."""
    names, layers, bn_layers = compiled.described()
    flats = [flat_region(l) for l in layers]
    ones = [is_custom(type(l).__name__, layer_activation(l)) for l in layers]
    probes = [LayerProbe(name, type(l).__name__, layer_activation(l)) for name, l in zip(names, layers)]
    return layers, flats, ones, probes, batchnorm_records(bn_layers, model)


def even_chunks(n: int, chunk_size: int) -> int:
    """Samples a chunk of ``n`` holds: as few chunks as ``chunk_size`` allows, as even as they can be.  Each new
    chunk shape sets every kernel of the pass up again (a proof's 8 MobileNetV2 samples in chunks of 7 and 1: 0.9 s,
    in two of 4, the shape of the probe's last chunk of 32: 0.65 s)."""
    return -(-n // -(-n // chunk_size)) if n > 0 else chunk_size


def _compile_pass(run, described, spec, label_spec, variables: list, want_grads: bool, loss_fn, cam: str | None,
                  samples: int, everyone: int, eager: bool) -> CompiledPass:
    """The pass, traced once (or, ``eager``, run op by op): the forward pass, the forward and backward pass, the
    layers' outputs themselves, the gradient accumulators, the layouts of the summaries' vectors."""
    height_width = _height_width(spec) if cam else None
    # the batch's mean gradient, summed in place chunk by chunk inside the pass: returning each chunk's
    # gradients (ResNet50: 25M values) and adding them from Python took ~0.05 s a chunk more
    grad_sum = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False) for v in variables] if want_grads \
        else []
    layouts: list = []

    def traced(x, y=None, weight=None):
        """The pass under a tape: the loss for the weights' gradients, the class score for Grad-CAM; then each
        layer's output summarized in the same graph (the executor runs a summary as soon as its layer is done,
        among the model's own ops) and the small vectors returned."""
        # eagerly, Grad-CAM's gradient comes from the same tape (``tf.gradients`` needs a graph)
        eagerly = tf.executing_eagerly()
        with tf.GradientTape(persistent=eagerly and height_width is not None) as tape:
            layer_outs, bn_ins, final, scores, sources = run(x)
            final = tf.cast(final, tf.float32)
            target = None if height_width is None else saliency_target(tf.cast(scores, tf.float32), cam)
            loss = None if y is None else tf.reduce_mean(tf.cast(loss_fn(y, final), tf.float32))
            weighted = None if y is None else loss * weight  # this chunk's share of the batch's mean loss
        if y is not None:  # a traced function runs its assignments in order: no control dependencies needed
            for acc, g in zip(grad_sum, tape.gradient(weighted, variables)):
                if g is not None:
                    acc.assign_add(tf.cast(tf.convert_to_tensor(g), tf.float32))
        maps = None if target is None else _grad_cam([t for t, _ in layer_outs], target, height_width,
                                                     tape if eagerly else None)
        del tape
        _, layers_, _ = described()
        later: list = []
        groups, vectors = _summaries(layer_outs, sources, layers_, later, samples, everyone)
        # traced once per rank, called per BatchNorm layer (inline, MobileNetV2's 8 took ~0.05 s to trace)
        bn_parts = [call_traced(traced_summary(("bn", tensor_kind(t)), bn_stats, t), t, later=later) for t in bn_ins]
        add_later(later)
        # the same for every trace of the pass
        layouts[:] = [(members, layout) for members, (_, layout) in zip(groups, vectors)]
        return [v for v, _ in vectors], bn_parts, final, maps, loss

    if eager:  # no trace and no graph to set up: each op runs as it is called
        return CompiledPass((lambda x: traced(x)[:4]), traced, (lambda x: run(x)[0]), grad_sum, layouts, described)
    return CompiledPass(*_traced_functions(traced, run, spec, label_spec, want_grads), grad_sum, layouts, described)


def _summaries(layer_outs: list, sources: list, layers: list, later: list, samples: int, everyone: int) -> tuple:
    """Each probed layer's output summarized inside the pass being traced: the groups of layers one call reads
    (``stacks``) and, per group, its vector and layout.  A ReLU of another layer's output is summarized from that
    layer's vector where it can be (``_clipped_source``, ``clipped_vector``: MobileNetV2's ReLU6 layers read twice
    instead of four times and a subsample)."""
    flats = [flat_region(layer) for layer in layers]
    groups = stacks(layer_outs, flats, samples, everyone)
    constants: dict = {}
    vectors: list = []
    made_alone: dict = {}  # a layer summarized alone by ``lean_vector``: its vector
    for members in groups:
        t, gates = layer_outs[members[0]]
        clipped = _clipped_source(members, layer_outs, sources, layers, made_alone)
        made = None if clipped is None else clipped_vector(t, *clipped, later, samples, everyone, constants)
        if made is None:
            if len(members) > 1:
                t = tf.concat([layer_outs[i][0] for i in members], 0)
            made = lean_vector(t, *flats[members[0]], gates, later, samples, everyone, constants,
                               segments=len(members))
            if len(members) == 1 and made[1] is not None and gates is None:
                made_alone[members[0]] = made[0]
        vectors.append(made)
    return groups, vectors


def _clipped_source(members: list[int], layer_outs: list, sources: list, layers: list, made_alone: dict):
    """(its input's vector, the ceiling) for a group of one ReLU whose input is another probed layer's output of the
    same shape and dtype, summarized alone by ``lean_vector`` already; None for any other group."""
    if len(members) != 1 or layer_outs[members[0]][1] is not None:
        return None
    k = members[0]
    source, high = sources[k], relu_ceiling(layers[k])
    if high is None or source not in made_alone:
        return None
    t, s = layer_outs[k][0], layer_outs[source][0]
    return (made_alone[source], high) if t.dtype == s.dtype and t.shape == s.shape else None


def _traced_functions(traced, run, spec, label_spec, want_grads: bool) -> tuple[Callable, Callable, Callable]:
    """The pass's forward, forward-and-backward and layer-outputs functions; the one the probe runs is traced now
    (the plan is known from here on)."""

    @tf.function(input_signature=[spec], autograph=False)
    def forward(x):
        return traced(x)[:4]

    @tf.function(input_signature=[spec, label_spec, tf.TensorSpec([], tf.float32)] if want_grads else None,
                 autograph=False)
    def forward_backward(x, y, weight):
        return traced(x, y, weight)

    @tf.function(input_signature=[spec], autograph=False)
    def layer_outputs(x):
        """The layers' outputs themselves, for a chunk whose values were not all finite (traced if needed)."""
        return run(x)[0]
    pass_ = forward_backward if want_grads else forward
    pass_.get_concrete_function()
    return forward, forward_backward, layer_outputs


# the batch's activations (``activation_bytes``) at most this big are probed op by op (``runs_eagerly``): the deep MLP
# (24 Dense layers of 256 units, 32 samples: 0.8 MB) in 0.24 s instead of 0.33 s, a 28x28 CNN on 32 samples (7 MB)
# in 0.39 s instead of 0.44 s; on 64 (14 MB) either took 0.43 s, on 256 (56 MB) eagerly 0.73 s against 0.53 s
EAGER_MAX_BYTES = 8 << 20


def runs_eagerly(model, activation_bytes: int) -> bool:
    """Whether the probe runs the model op by op (``run_forward``'s ``eager``) rather than tracing its pass.

    Tracing the pass and setting its graph up costs ~10 ms a layer, once; running it op by op costs the model's
    eager overhead on every chunk and runs convolutions' backward slower.  So a batch whose activations are small
    (``EAGER_MAX_BYTES``) runs eagerly, unless the model has a recurrent layer (its loop would run step by step in
    Python)."""
    if activation_bytes > EAGER_MAX_BYTES:
        return False

    return not any(hasattr(layer, "cell") or hasattr(layer, "forward_layer") for _, layer in leaf_layers(model))


def _loss_key(loss_fn) -> str | None:
    """What identifies a loss for reusing a compiled pass: a Keras loss by its class and configuration."""
    if loss_fn is None:
        return None
    try:
        return f"{type(loss_fn).__qualname__}:{json.dumps(loss_fn.get_config(), sort_keys=True, default=str)}"
    except Exception:  # noqa: BLE001 - any other callable by identity
        return f"id:{id(loss_fn)}"


def _height_width(spec) -> tuple[int, int] | None:
    shape = getattr(spec, "shape", None)
    if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


# Grad-CAM in the pass when its feature map comes late: in the last half of the summarized outputs, or with at most
# HEAD_LAYERS after it.  From an early one (a Vision Transformer's patch embedding, 50 layers before the head) the
# score's gradient is a second backward through the whole model (the small ViT: about one more pass); the
# drill-down then draws its maps from the first images alone (``probes.saliency.saliency``: 8 images).
HEAD_SHARE = 0.5
HEAD_LAYERS = 16


def _near_the_head(tensors: list, features) -> bool:
    """Whether ``features`` comes late enough among ``tensors`` that the backward from the score to it is short."""
    index = next((i for i, t in enumerate(tensors) if t is features), len(tensors) - 1)
    return len(tensors) - 1 - index <= HEAD_LAYERS or index >= HEAD_SHARE * (len(tensors) - 1)


def _grad_cam(tensors, target, height_width, tape=None):
    """Grad-CAM (Selvaraju et al., 2017) maps (N, h, w) on the last spatial feature map, for the class each
    sample is predicted as; None without a feature map the score depends on.  ``tf.gradients`` builds the
    backward of the head alone; a second gradient on the pass's tape traced the whole backward again (MobileNetV2:
    +0.6 s).  Eagerly, from ``tape`` (persistent)."""
    features = last_feature_map(tensors, *height_width)
    if features is None or not _near_the_head(tensors, features):
        return None
    grads = tf.gradients(target, features)[0] if tape is None else tape.gradient(target, features)
    return None if grads is None else grad_cam(features, grads, *height_width)


