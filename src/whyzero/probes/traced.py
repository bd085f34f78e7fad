"""The traced calls inside the probe's pass: one small summary function per rank of tensor, traced once and called
per layer (never inlined), its vector read back in numpy; BatchNorm input statistics the same way."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator

import numpy as np

from whyzero._tf import tf
from whyzero.probes.summary import (
    ARGUMENTS,
    Layout,
    clipped_summary,
    finish,
    lean_summary,
    pack,
    tensor_summary,
    unpack,
)

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


def traced_summary(key: tuple, fn, *tensors, vectors: int = 0):
    """``fn`` traced once per ``key``, for arguments shaped like ``tensors`` (any size, the same rank and dtype)
    with ``vectors`` int32 vectors after the first, as a concrete function ``call_traced`` calls; the tensors that are
    None are left out.  Never inlined where it is called in the probe's pass: inlining ~175 summaries into
    ResNet50's graph took ~4 s on the first chunk, and a call costs ~20 us."""
    if key not in _SUMMARIZERS:
        specs = [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors[:1]]
        specs += [tf.TensorSpec([None], tf.int32)] * vectors
        specs += [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors[1:] if t is not None]
        function = tf.function(fn, input_signature=specs, autograph=False, experimental_attributes={"_noinline": True})
        _SUMMARIZERS[key] = function.get_concrete_function()
    return _SUMMARIZERS[key]


def call_traced(concrete, *args, later: list | None = None):
    """``concrete`` called as one ``PartitionedCall`` op.  The probe calls its summaries ~1,400 times (ResNet50);
    calling the ``tf.function`` spent ~0.5 ms a call in Python matching the arguments to the signature, the op
    0.1 ms.  While a graph is traced, ``later`` collects the functions to add to it once all its calls are made
    (``add_later``): a call made while its function is in the graph runs shape inference through the function's
    body, 2.3 ms a call, 0.25 ms otherwise (the vector's length is not known before it runs anyway)."""
    if later is None or tf.executing_eagerly():
        concrete.add_to_graph()  # eagerly: registered with the context
        f = concrete
    else:
        from tensorflow.core.framework import attr_value_pb2  # lazily, with TensorFlow (whyzero._tf)

        later.append(concrete)
        f = attr_value_pb2.NameAttrList(name=concrete.name)
    return tf.raw_ops.PartitionedCall(args=list(args), Tout=[t.dtype for t in concrete.outputs], f=f)


def add_later(later: list) -> None:
    """Adds the functions ``call_traced`` was told to add later to the graph being traced."""
    for concrete in {id(c): c for c in later}.values():
        concrete.add_to_graph()


def tensor_kind(t) -> tuple | None:
    return None if t is None else (len(t.shape), t.dtype.name)


def _summarizer(t, lo, hi, gates, count_ones: bool):
    """``tensor_summary`` (the summary that cleans NaN and Inf) traced once per rank, dtype and flat region, not
    once per layer (tracing every layer's summary, inline in the model's function, took MobileNetV2 ~35 s)."""
    return traced_summary(("full", tensor_kind(t), lo, hi, tensor_kind(gates), count_ones),
                   lambda x, g=None: pack(tensor_summary(x, lo, hi, g, count_ones)), t, gates)


def lean_vector(t, lo=None, hi=None, gates=None, later: list | None = None, samples: int | None = None,
                batch: int | None = None, constants: dict | None = None,
                segments: int = 1) -> tuple[tf.Tensor, Layout | None]:
    """One tensor's summary as one vector, eagerly or inside the probe's pass (``later``: as ``call_traced``), and
    how to read it: ``lean_summary`` (traced once per rank, dtype and flat region) with its ``Layout`` (strides set for
    chunks of ``samples`` of a batch of ``batch``; a smaller last chunk is counted on fewer values), which
    ``finish`` reads; or, for a tensor whose sample shape is known only when it runs, ``tensor_summary`` packed,
    with None (``unpack``).  ``constants``: the layouts' arguments already in the graph being traced (MobileNetV2's
    155 layers have 40 layouts; a constant took ~0.2 ms to add).  ``segments``: ``t`` holds that many layers'
    outputs of one layout, stacked along the batch (``Layout.segment`` splits the vector)."""
    layout = Layout.of(t.shape, samples, gates, batch)
    if layout is not None and segments > 1:
        layout = replace(layout, segments=segments)
    if layout is None:
        summarizer = _summarizer(t, lo, hi, gates, True)
        return call_traced(summarizer, t, *([] if gates is None else [gates]), later=later)[0], None

    def lean(x, *args):
        return lean_summary(x, *args, flat_low=lo, flat_high=hi)

    concrete = traced_summary(("lean", tensor_kind(t), tensor_kind(gates), lo, hi), lean, t, gates,
                              vectors=len(ARGUMENTS))
    arguments = _arguments(layout, constants)
    return call_traced(concrete, t, *arguments, *([] if gates is None else [gates]), later=later)[0], layout


def _arguments(layout: Layout, constants: dict | None) -> list:
    """``layout.arguments()`` as constants of the graph being traced, added once per layout (``constants``)."""
    constants = {} if constants is None else constants
    if layout not in constants:
        constants[layout] = [tf.constant(a) for a in layout.arguments()]
    return constants[layout]


def clipped_vector(t, source, high: float, later: list | None = None, samples: int | None = None,
                   batch: int | None = None, constants: dict | None = None) -> tuple[tf.Tensor, Layout] | None:
    """``lean_vector`` of ``t``, a ReLU's output clipped at ``high``, from ``source``: the vector ``lean_vector`` gave
    for the ReLU's input, a tensor of the same shape and dtype (``clipped_summary``); None where ``t`` has no fixed
    layout."""
    layout = Layout.of(t.shape, samples, None, batch)
    if layout is None:
        return None
    source = tf.reshape(source, [-1])  # a call's output has no known rank

    def clipped(x, *args):
        named = dict(zip(ARGUMENTS, args))
        return clipped_summary(x, args[-1], named["cube"], named["ones"], named["units"], named["pieces"],
                               named["per_piece"], high)

    concrete = traced_summary(("clipped", tensor_kind(t), high), clipped, t, source, vectors=len(ARGUMENTS))
    return call_traced(concrete, t, *_arguments(layout, constants), source, later=later)[0], layout


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
    vector, = call_traced(_summarizer(t, lo, hi, gates, count_ones), t, *([] if gates is None else [gates]))
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


# layers' outputs of at most this many bytes a chunk are summarized together with the others of their layout and
# flat region, stacked along the batch: a call of the summary costs ~1 ms when the pass first runs (the deep MLP's
# 25 were half its first chunk), and stacking copies the values
STACK_MAX_BYTES = 1 << 20


def stacks(outs: list, flats: list, samples: int, batch: int) -> list[list[int]]:
    """The probed layers in the groups one call of the summary reads (``lean_vector``'s ``segments``), in the order
    of their first layer: small outputs (``STACK_MAX_BYTES``) of the same layout, dtype and flat region together,
    every other output alone (a recurrent layer's, with its gates, too)."""
    groups: dict[tuple, list[int]] = {}
    for i, ((t, gates), (lo, hi)) in enumerate(zip(outs, flats)):
        layout = None if gates is not None else Layout.of(t.shape, samples, None, batch)
        small = layout is not None and samples * layout.values * t.dtype.size <= STACK_MAX_BYTES
        groups.setdefault((layout, lo, hi, t.dtype.name) if small else ("alone", i), []).append(i)
    return list(groups.values())
