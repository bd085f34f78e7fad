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
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import numpy as np

from whyzero import feed
from whyzero._tf import tf
from whyzero.model_info import is_custom, kernels, layer_activation
from whyzero.probes.capture import can_capture, capturing, layer_paths, leaf_layers, single_float
from whyzero.probes.saliency import SALIENCY_SAMPLES, grad_cam, last_feature_map, pre_activation, saliency_target
from whyzero.probes.summary import (
    PRE_ACTIVATION_FLAT,
    Layout,
    ValueSummary,
    finish,
    lean_summary,
    pack,
    tensor_summary,
    unpack,
)

# Output values at or beyond which a unit sits in the flat region: |pre-activation| >= PRE_ACTIVATION_FLAT,
# expressed on the activation's output.
FLAT_REGIONS = {
    "sigmoid": (float(1 / (1 + np.exp(PRE_ACTIVATION_FLAT))), float(1 / (1 + np.exp(-PRE_ACTIVATION_FLAT)))),
    "tanh": (float(-np.tanh(PRE_ACTIVATION_FLAT)), float(np.tanh(PRE_ACTIVATION_FLAT))),
    "hard_sigmoid": (0.0, 1.0),
}


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
class BatchNormInput:
    """Per-channel statistics of what a BatchNormalization layer receives, and what it remembers."""

    name: str
    count: float = 0.0
    sum: np.ndarray | None = None
    sumsq: np.ndarray | None = None
    moving_mean: np.ndarray | None = None
    moving_variance: np.ndarray | None = None
    epsilon: float = 1e-3
    converged: float | None = None  # share of the way from initial values, from the training steps (memory.py)

    def add(self, count, sums, sumsqs) -> None:
        """Merges one chunk's count, per-channel sums and sums of squares (tensors)."""
        self.count += float(count)
        self.sum = sums.numpy() if self.sum is None else self.sum + sums.numpy()
        self.sumsq = sumsqs.numpy() if self.sumsq is None else self.sumsq + sumsqs.numpy()


@dataclass
class ForwardResult:
    layers: list[LayerProbe]
    batchnorm: list[BatchNormInput]
    outputs: np.ndarray
    loss: float | None
    has_gradients: bool
    saliency: np.ndarray | None = None  # Grad-CAM maps (N, h, w) of the first samples, from the same pass


def probed_layers(model) -> list:
    """Top-level layers whose single output can be probed."""
    out = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        if isinstance(output, (list, tuple, dict)):
            continue
        out.append(layer)
    return out


def batchnorm_inputs(model, km, limit: int) -> list[tuple[Any, Any]]:
    """The first BatchNormalization layers, each with its input as a tensor of ``model``'s graph.

    Looks one level into nested models (``x = base(inputs)``, the usual transfer-learning shape).
    """
    found: list[tuple[Any, Any]] = []
    for layer in getattr(model, "layers", []):
        if len(found) >= limit:
            break
        if type(layer).__name__ == "BatchNormalization":
            found.append((layer, layer.input))
        elif hasattr(layer, "layers") and hasattr(layer, "inputs"):
            inner = [l for l in layer.layers if type(l).__name__ == "BatchNormalization"][: limit - len(found)]
            if inner:
                tensors = km.Model(layer.inputs, [l.input for l in inner])(layer.input)
                tensors = tensors if isinstance(tensors, (list, tuple)) else [tensors]
                found.extend(zip(inner, tensors))
    return found


def functional_module(model):
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras


@dataclass
class _Plan:
    """Which layer calls of one pass are summarized, found by a dry run on two samples."""

    names: list[str]
    layers: list[Any]
    probe_index: list[int]
    gate_layers: list[Any]
    bn_index: list[int]
    bn_layers: list[Any]
    calls: int


def dry_run(model, sample, max_batchnorm: int = 8) -> tuple[_Plan | None, np.ndarray]:
    """The model on two samples: which layer calls the pass will summarize (for a model probed by capture) and
    the outputs (the task is read from them before the pass).  ``static_outputs`` spares it where the output's
    shape says enough: the pass then finds its plan while it is traced."""
    if not can_capture(model):
        return None, predict(model, sample, 2)
    with capturing(model) as tape:
        out = model(feed.tensors(sample), training=False)
    return plan_of(tape, layer_paths(model), max_batchnorm), np.asarray(first_output(out), np.float32)


def static_outputs(model, activation: str | None) -> np.ndarray | None:
    """Zeros shaped like two samples of the model's single output, where its shape is known without running it
    and the task can be read from the shape alone (not a Lambda output, whose values decide); else None."""
    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError, RuntimeError, TypeError):
        return None
    if len(outputs) != 1 or activation == "lambda" or isinstance(getattr(model, "output", None), dict):
        return None
    shape = getattr(outputs[0], "shape", None)
    dtype = getattr(getattr(outputs[0], "dtype", None), "name", str(getattr(outputs[0], "dtype", "")))
    if shape is None or len(shape) < 2 or any(d is None for d in shape[1:]) or "float" not in str(dtype):
        return None
    return np.zeros((2, *[int(d) for d in shape[1:]]), np.float32)


def plan_of(tape, paths: dict, max_batchnorm: int = 8) -> _Plan:
    """The plan from one captured call of the model (eager, or while its pass is traced)."""
    names, layers, probe_index, gate_layers, bn_index, seen = [], [], [], [], [], {}
    for i, call in enumerate(tape):
        if type(call.layer).__name__ == "BatchNormalization" and len(bn_index) < max_batchnorm \
                and single_float(call.inputs):
            bn_index.append(i)
        if not single_float(call.output):
            continue
        path = paths.get(id(call.layer), call.layer.name)
        seen[path] = seen.get(path, 0) + 1
        names.append(path if seen[path] == 1 else f"{path}#{seen[path]}")
        layers.append(call.layer)
        probe_index.append(i)
        gate_layers.append(_gate_kernel(call.layer) if single_float(call.inputs) else None)
    return _Plan(names, layers, probe_index, gate_layers, bn_index, [tape[i].layer for i in bn_index], len(tape))


def _gate_kernel(layer):
    """(kernel, bias) of a recurrent layer's input projection (LSTM, GRU, SimpleRNN), else None."""
    cell = getattr(layer, "cell", None)
    kernel = getattr(cell, "kernel", None)
    if kernel is None or len(kernel.shape) != 2:
        return None
    return kernel, getattr(cell, "bias", None)


def _gates(x, kernel_bias):
    if kernel_bias is None:
        return None
    kernel, bias = kernel_bias
    z = tf.tensordot(tf.cast(x, kernel.dtype), kernel, 1)
    if bias is not None and len(bias.shape) == 1 and bias.shape[0] == kernel.shape[1]:
        z = z + bias
    return z


def first_output(out):
    """The first output of a model that returns a dict, list or tuple of them; the output itself otherwise."""
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out[0] if isinstance(out, (list, tuple)) else out


def run_forward(model, batch: np.ndarray, labels: np.ndarray | None, loss_fn: Callable | None,
                chunk_size: int, progress: Callable[[str, float], None] | None = None,
                max_batchnorm: int = 8, saliency_of: str | None = None, plan: _Plan | None = None,
                cache: dict | None = None, eager: bool = False) -> ForwardResult:
    """Streams ``batch`` through ``model`` and returns merged summaries.

    Every leaf layer is probed, inside nested models too (named by path); Keras-2 (tf_keras) models
    are probed layer by layer at the top level.

    Args:
        model: a Keras model with layers.
        batch: the inputs as fed to the model.
        labels: targets for the loss (same length as batch), or None for no gradients.
        loss_fn: ``loss_fn(y_true, y_pred)``; None for no gradients.
        chunk_size: samples per forward pass.
        progress: called with (stage, fraction done).
        max_batchnorm: how many of the first BatchNormalization layers to compare with their memory.
        saliency_of: for images, the task (``multiclass``, ``binary``, ``segmentation``...) whose predicted
            class the first samples' Grad-CAM maps explain; None for none.
        plan: from ``dry_run`` on the same model, when it has been run already.
        cache: where the compiled pass is kept for a later call on the same model (``LoadedModel.passes``).
        eager: run each chunk op by op instead of as one traced function (``runs_eagerly``: a small model, whose
            pass takes less time than tracing it would).
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
            gates = [_gates(tape[i].inputs, g) for i, g in zip(plan_.probe_index, plan_.gate_layers)]
            final = first_output(out)
            return ([(tape[i].output, gate) for i, gate in zip(plan_.probe_index, gates)],
                    [tape[i].inputs for i in plan_.bn_index], final, pre_activation(tape, final))

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
                    outs[-1], outs[-1])

        def described():
            return names, layers, bn_layers
    return _stream(model, batch, labels, loss_fn, chunk_size, progress, run, described, saliency_of,
                   {} if cache is None else cache, eager)


_SUMMARIZERS: dict[tuple, Any] = {}


@contextmanager
def without_graph_rewrites() -> Iterator[None]:
    """Grappler off while the probe's functions are instantiated.  The probe runs a handful of chunks; rewriting
    its graph took longer than it saves: MobileNetV2's first chunk (forward and backward, 8 images) took 1.8 s
    with the rewrites and 1.1 s without, the later chunks as fast."""
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def _traced(key: tuple, fn, *tensors, vectors: int = 0):
    """``fn`` traced once per ``key``, for arguments shaped like ``tensors`` (any size, the same rank and dtype)
    with ``vectors`` int32 vectors after the first, as a concrete function ``_call`` calls; the tensors that are
    None are left out.  Never inlined where it is called in the probe's pass: inlining ~175 summaries into
    ResNet50's graph took ~4 s on the first chunk, and a call costs ~20 us."""
    if key not in _SUMMARIZERS:
        specs = [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors[:1]]
        specs += [tf.TensorSpec([None], tf.int32)] * vectors
        specs += [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors[1:] if t is not None]
        function = tf.function(fn, input_signature=specs, autograph=False, experimental_attributes={"_noinline": True})
        _SUMMARIZERS[key] = function.get_concrete_function()
    return _SUMMARIZERS[key]


def _call(concrete, *args, later: list | None = None):
    """``concrete`` called as one ``PartitionedCall`` op.  The probe calls its summaries ~1,400 times (ResNet50);
    calling the ``tf.function`` spent ~0.5 ms a call in Python matching the arguments to the signature, the op
    0.1 ms.  While a graph is traced, ``later`` collects the functions to add to it once all its calls are made
    (``add_later``): a call made while its function is in the graph runs shape inference through the function's
    body, 2.3 ms a call, 0.25 ms otherwise (the vector's length is not known before it runs anyway)."""
    if later is None or tf.executing_eagerly():
        concrete.add_to_graph()  # eagerly: registered with the context
        f = concrete
    else:
        from tensorflow.core.framework import attr_value_pb2

        later.append(concrete)
        f = attr_value_pb2.NameAttrList(name=concrete.name)
    return tf.raw_ops.PartitionedCall(args=list(args), Tout=[t.dtype for t in concrete.outputs], f=f)


def add_later(later: list) -> None:
    """Adds the functions ``_call`` was told to add later to the graph being traced."""
    for concrete in {id(c): c for c in later}.values():
        concrete.add_to_graph()


def _kind(t) -> tuple | None:
    return None if t is None else (len(t.shape), t.dtype.name)


def _summarizer(t, lo, hi, gates, count_ones: bool):
    """``tensor_summary`` (the summary that cleans NaN and Inf) traced once per rank, dtype and flat region, not
    once per layer (tracing every layer's summary, inline in the model's function, took MobileNetV2 ~35 s)."""
    return _traced(("full", _kind(t), lo, hi, _kind(gates), count_ones),
                   lambda x, g=None: pack(tensor_summary(x, lo, hi, g, count_ones)), t, gates)


def lean_vector(t, lo=None, hi=None, gates=None, later: list | None = None, samples: int | None = None,
                batch: int | None = None, constants: dict | None = None,
                segments: int = 1) -> tuple[tf.Tensor, Layout | None]:
    """One tensor's summary as one vector, eagerly or inside the probe's pass (``later``: as ``_call``), and how to
    read it: ``lean_summary`` (traced once per rank, dtype and flat region) with its ``Layout`` (strides set for
    chunks of ``samples`` of a batch of ``batch``; a smaller last chunk is counted on fewer values), which
    ``finish`` reads; or, for a tensor whose sample shape is known only when it runs, ``tensor_summary`` packed,
    with None (``unpack``).  ``constants``: the layouts' arguments already in the graph being traced (MobileNetV2's
    155 layers have 40 layouts; a constant took ~0.2 ms to add).  ``segments``: ``t`` holds that many layers'
    outputs of one layout, stacked along the batch (``Layout.segment`` splits the vector)."""
    layout = Layout.of(t.shape, samples, gates, batch)
    if layout is not None and segments > 1:
        layout = replace(layout, segments=segments)
    if layout is None:
        return _call(_summarizer(t, lo, hi, gates, True), t, *([] if gates is None else [gates]), later=later)[0], None

    def lean(x, *args):
        return lean_summary(x, *args, flat_low=lo, flat_high=hi)

    concrete = _traced(("lean", _kind(t), _kind(gates), lo, hi), lean, t, gates, vectors=7)
    constants = {} if constants is None else constants
    if layout not in constants:
        constants[layout] = [tf.constant(a) for a in layout.arguments()]
    arguments = constants[layout]
    return _call(concrete, t, *arguments, *([] if gates is None else [gates]), later=later)[0], layout


def read(vector: np.ndarray, layout: Layout | None, flat: bool, count_ones: bool) -> dict | None:
    """``lean_vector``'s vector as the dict ``ValueSummary.update`` merges; None when its values were not all
    finite (``full_summary`` counts them)."""
    if layout is None:
        summary = unpack(vector)
        if not count_ones:
            summary["one"] = 0
        return summary
    return finish(vector, layout, flat, count_ones)


def full_summary(t, lo=None, hi=None, gates=None, count_ones: bool = True) -> dict:
    """``tensor_summary`` of one tensor, NaN, Inf and empty tensors included, as ``ValueSummary.update`` merges."""
    vector, = _call(_summarizer(t, lo, hi, gates, count_ones), t, *([] if gates is None else [gates]))
    return unpack(vector.numpy())


def summarize(t, lo=None, hi=None, gates=None, count_ones: bool = True) -> dict:
    """One tensor's summary, as the dict ``ValueSummary.update`` merges: from ``lean_summary``, or from
    ``tensor_summary`` for a tensor with NaN, Inf or no values."""
    vector, layout = lean_vector(t, lo, hi, gates)
    part = read(vector.numpy(), layout, lo is not None, count_ones)
    return full_summary(t, lo, hi, gates, count_ones) if part is None else part


def bn_stats(t):
    """What a BatchNormalization layer receives, per channel: (values per channel, sum, sum of squares), in float64.

    Each sample's channels are reduced over their positions around their own mean (two passes in float32, exact
    to ~1e-6 of the variance for values a thousand standard deviations from 0), then combined in float64: half
    the memory traffic of casting the values to float64 (MobileNetV2's first 8 BatchNorm inputs: 0.02 s a chunk
    of 7 images, was 0.04)."""
    t = tf.cast(t, tf.float32)
    shape = tf.shape(t)
    cube = tf.reshape(t, tf.stack([shape[0], -1, shape[-1]]))  # (sample, position, channel)
    mean = tf.reduce_mean(cube, axis=1, keepdims=True)
    spread = tf.cast(tf.reduce_sum(tf.math.squared_difference(cube, mean), axis=1), tf.float64)
    positions = tf.cast(tf.shape(cube)[1], tf.float64)
    mean = tf.cast(mean[:, 0, :], tf.float64)
    return (tf.cast(shape[0], tf.float64) * positions, tf.reduce_sum(mean * positions, 0),
            tf.reduce_sum(spread + positions * tf.square(mean), 0))


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
            cache: dict, eager: bool = False) -> ForwardResult:
    """The chunked pass.  The model's forward (and backward) pass is one ``tf.function``; each layer's output is
    summarized in it by a call of a small function shared by all layers of its rank, never inlined.  So the pass
    traces almost as fast as a plain training step (MobileNetV2: 1.5 s, against 17 s for one function holding
    every layer's summary inline), and the summaries run among the model's ops, with no call from Python each
    (ResNet50: ~0.25 s a chunk of 4 less than summarizing the returned outputs one by one).  ``described()``
    names the probed layers once it is traced (or, ``eager``, once the first chunk has run op by op)."""
    # the gradients read are the kernels' (``_attach_gradients``); left out, a bias's or a scale's costs the
    # backward pass a reduction over its layer's whole output gradient (ResNet50: 53 of them a chunk)
    variables = [v for v in model.trainable_variables if len(v.shape) >= 2] or list(model.trainable_variables)
    want_grads = labels is not None and loss_fn is not None and bool(variables)
    spec = feed.spec(batch)

    label_spec = None if labels is None else tf.TensorSpec([None, *labels.shape[1:]], tf.as_dtype(labels.dtype))
    samples = min(chunk_size, feed.rows(batch))  # the most a chunk holds: the strides of the layers' subsamples
    # the chunks share one budget of counted values a layer (COUNT_MAX_VALUES): counting each chunk's full budget
    # took MobileNetV2 (5 chunks) ~0.1 s more for shares a fraction of a percent closer; set for the batch's size
    # rounded up to a power of 2, so that batches of about the same size share the pass
    everyone = max(samples, 1 << max(feed.rows(batch) - 1, 0).bit_length())
    key = (repr(spec), repr(label_spec), want_grads, cam, _loss_key(loss_fn), samples, everyone, eager)

    if key not in cache:
        cache[key] = _compile_pass(run, described, spec, label_spec, variables, want_grads, loss_fn, cam, samples,
                                   everyone, eager)
    # ``described`` as the pass was compiled: a cached pass runs the ``run`` it was compiled with
    compiled = cache[key]
    probes, bns = [], []  # the probed layers' summaries and BatchNorm inputs, known once the pass has run
    for acc in compiled.grad_sum:
        acc.assign(tf.zeros_like(acc))
    outputs, cams, loss_total, n = [], [], 0.0, feed.rows(batch)
    with without_graph_rewrites():  # the probe's graph is run a few times: not worth optimizing
        for start in range(0, n, chunk_size):
            part = feed.take(batch, start, start + chunk_size)
            x, size = feed.tensors(part), feed.rows(part)
            if want_grads:
                vectors, bn_parts, out, cam_maps, loss = compiled.forward_backward(
                    x, tf.convert_to_tensor(labels[start:start + chunk_size]), tf.constant(size / n, tf.float32))
                loss_total += float(loss) * size / n
            else:
                vectors, bn_parts, out, cam_maps = compiled.forward(x)
            if start == 0:  # the probed layers are known once the pass has been traced or run
                names, layers, bn_layers = compiled.described()
                flats = [_flat(l) for l in layers]
                ones = [is_custom(type(l).__name__, layer_activation(l)) for l in layers]
                probes = [LayerProbe(name, type(l).__name__, layer_activation(l)) for name, l in zip(names, layers)]
                bns = _batchnorm_inputs(bn_layers, model)
            _merge_chunk(vectors, compiled.layouts, probes, flats, ones, compiled.layer_outputs, x)
            for bn, part in zip(bns, bn_parts):
                bn.add(*part)
            outputs.append(out.numpy())
            if cam_maps is not None and sum(len(c) for c in cams) < SALIENCY_SAMPLES:
                cams.append(cam_maps.numpy())
            if progress:
                progress("probing layers" + (" and gradients" if want_grads else ""), min(1.0, (start + size) / n))
    if want_grads:
        _attach_gradients(layers, probes, variables, compiled.grad_sum)
    saliency = np.concatenate(cams)[:SALIENCY_SAMPLES] if cams else None
    return ForwardResult(probes, bns, np.concatenate(outputs), loss_total if want_grads else None, want_grads,
                         saliency=saliency)


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
            layer_outs, bn_ins, final, scores = run(x)
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
        constants: dict = {}
        stacks = _stacks(layer_outs, [_flat(layer) for layer in layers_], samples, everyone)
        vectors = []
        for members in stacks:
            t, gates = layer_outs[members[0]]
            if len(members) > 1:
                t = tf.concat([layer_outs[i][0] for i in members], 0)
            vectors.append(lean_vector(t, *_flat(layers_[members[0]]), gates, later, samples, everyone,
                                       constants, segments=len(members)))
        # traced once per rank, called per BatchNorm layer (inline, MobileNetV2's 8 took ~0.05 s to trace)
        bn_parts = [_call(_traced(("bn", _kind(t)), bn_stats, t), t, later=later) for t in bn_ins]
        add_later(later)
        # the same for every trace of the pass
        layouts[:] = [(members, layout) for members, (_, layout) in zip(stacks, vectors)]
        return [v for v, _ in vectors], bn_parts, final, maps, loss

    if eager:  # no trace and no graph to set up: each op runs as it is called
        return CompiledPass((lambda x: traced(x)[:4]), traced, (lambda x: run(x)[0]), grad_sum, layouts, described)
    return CompiledPass(*_traced_functions(traced, run, spec, label_spec, want_grads), grad_sum, layouts, described)


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


# layers' outputs of at most this many bytes a chunk are summarized together with the others of their layout and
# flat region, stacked along the batch: a call of the summary costs ~1 ms when the pass first runs (the deep MLP's
# 25 were half its first chunk), and stacking copies the values
STACK_MAX_BYTES = 1 << 20


def _stacks(outs: list, flats: list, samples: int, batch: int) -> list[list[int]]:
    """The probed layers in the groups one call of the summary reads (``lean_vector``'s ``segments``), in the order
    of their first layer: small outputs (``STACK_MAX_BYTES``) of the same layout, dtype and flat region together,
    every other output alone (a recurrent layer's, with its gates, too)."""
    groups: dict[tuple, list[int]] = {}
    for i, ((t, gates), (lo, hi)) in enumerate(zip(outs, flats)):
        layout = None if gates is not None else Layout.of(t.shape, samples, None, batch)
        small = layout is not None and samples * layout.values * t.dtype.size <= STACK_MAX_BYTES
        groups.setdefault((layout, lo, hi, t.dtype.name) if small else ("alone", i), []).append(i)
    return list(groups.values())


# Below this share the moving statistics are corrected; above it they are taken as they are.
CONVERGED = 0.95


def steps_share(bn, model) -> float | None:
    """The share ``1 - momentum**steps`` from the optimizer's step count, or None where it is unknown.

    Only for a trainable BatchNorm layer: a frozen one (a transfer-learning base) kept the memory it came with.
    """
    if not getattr(bn, "trainable", True):
        return 1.0
    try:
        steps = int(np.asarray(model.optimizer.iterations))
    except (AttributeError, TypeError, ValueError):
        return None
    if steps <= 0:
        return None
    share = 1.0 - float(getattr(bn, "momentum", 0.99)) ** steps
    return share if share < CONVERGED else 1.0


def _batchnorm_inputs(bn_layers: list, model) -> list[BatchNormInput]:
    return [BatchNormInput(bn.name, moving_mean=_np(bn.moving_mean), moving_variance=_np(bn.moving_variance),
                           epsilon=float(bn.epsilon), converged=steps_share(bn, model)) for bn in bn_layers]


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


def _flat(layer) -> tuple[float | None, float | None]:
    """The values at or beyond which ``layer``'s output sits in its activation's flat region; (None, None): none."""
    return FLAT_REGIONS.get(layer_activation(layer) or "", (None, None))


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


def _grad_cam(tensors, target, height_width, tape=None):
    """Grad-CAM (Selvaraju et al., 2017) maps (N, h, w) on the last spatial feature map, for the class each
    sample is predicted as; None without a feature map the score depends on.  ``tf.gradients`` builds the
    backward of the head alone; a second gradient on the pass's tape traced the whole backward again (MobileNetV2:
    +0.6 s).  Eagerly, from ``tape`` (persistent)."""
    features = last_feature_map(tensors, *height_width)
    if features is None:
        return None
    grads = tf.gradients(target, features)[0] if tape is None else tape.gradient(target, features)
    return None if grads is None else grad_cam(features, grads)


def _attach_gradients(layers, probes, variables, grad_sum) -> None:
    """Each layer's kernels' summed gradient (``grad_sum``: variables) and weights, reduced in numpy
    (``_gradient_stats``)."""
    index = {id(v): i for i, v in enumerate(variables)}
    for layer, probe_ in zip(layers, probes):
        for kernel in kernels(layer):
            i = index.get(id(kernel))
            if i is None:
                continue
            nonfinite, nonzero, sumsq = _gradient_stats(_np(grad_sum[i]))
            probe_.grad_nonfinite += nonfinite
            probe_.grad_nonzero += nonzero
            probe_.grad_sumsq += sumsq
            probe_.weight_norm = float(np.sqrt(probe_.weight_norm**2 + _gradient_stats(_np(kernel))[2]))
            probe_.n_kernel += int(np.prod(kernel.shape))


# a sum of squares below this in float32 is recomputed in float64: a vanishing gradient's squares underflow
SUMSQ_FLOAT32_MIN = 1e-30


def _gradient_stats(values: np.ndarray) -> tuple[int, int, float]:
    """(values not finite, nonzero finite values, sum of squares of the finite values) of a gradient or a kernel.

    The sum of squares is one BLAS dot product in float32, which says as well whether every value was finite; an
    exploding gradient's squares overflow float32 and a vanishing one's underflow it, so a sum that is not finite,
    or tiny, is recomputed in float64 on the finite values.  A traced TensorFlow function called once a kernel
    took the deep MLP ~0.05 s more (its trace, then ~0.5 ms a call); a float64 copy of ResNet50's 25M values
    ~0.15 s."""
    flat = np.ravel(values)
    if flat.dtype != np.float32:
        flat = flat.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow and NaN are what the test below is for
        sumsq = float(np.dot(flat, flat)) if flat.size else 0.0
    nonzero = int(np.count_nonzero(flat))
    if np.isfinite(sumsq) and (sumsq >= SUMSQ_FLOAT32_MIN or nonzero == 0):
        return 0, nonzero, sumsq
    finite = np.isfinite(flat)
    clean = np.where(finite, flat, 0).astype(np.float64)
    return int(flat.size - np.count_nonzero(finite)), int(np.count_nonzero(clean)), float(np.dot(clean, clean))


def _np(variable) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def predict(model, batch: np.ndarray, chunk_size: int) -> np.ndarray:
    """Plain predictions in chunks (for models without layers, and the preprocessing what-if)."""
    out: list[Any] = []
    for start in range(0, feed.rows(batch), chunk_size):
        result = model(feed.tensors(feed.take(batch, start, start + chunk_size)), training=False)
        out.append(np.asarray(first_output(result), np.float32))
    return np.concatenate(out)
