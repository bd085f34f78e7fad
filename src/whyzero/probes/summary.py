"""A tensor's values summarized inside the TensorFlow graph: moments, extremes, shares and the fixed-edge histogram,
as small tensors (``tensor_summary``), or one vector with its ``Layout`` (``lean_summary``); ``whyzero.probes.values``
holds and merges the results in numpy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from whyzero._tf import tf
from whyzero.probes.values import BOUNDARIES, N_BINS, ONE_TOLERANCE, PRE_ACTIVATION_FLAT

# Values of one tensor (per batch: the probe's chunks share it) counted exactly (zeros, negatives, ones, flat,
# histogram); beyond this the counts come from an even subsample of each sample's values, scaled back, read in
# groups of up to GROUP_MAX neighbouring units (one cache line of float32).  Moments and extremes are always exact.
COUNT_MAX_VALUES = 1 << 16
GROUP_MAX = 16
# ... and about this many of each sample's values at least: its own shares feed the per-sample drill-down (a big batch
# spreads COUNT_MAX_VALUES thin: 512 samples would get 128 values each)
SAMPLE_COUNT_MIN = 1 << 11
# ... and the histogram, which is only drawn, on at most this many of them (binning costs ~35 ns a value; ResNet50's
# 1,408 layer summaries took ~0.1 s less than at 2**13).  Merged over the chunks the 164 bins still hold ten
# thousand values and more.
HIST_MAX_VALUES = 1 << 11


def tensor_summary(x: tf.Tensor, flat_low: float | None = None, flat_high: float | None = None,
                   gates: tf.Tensor | None = None, count_ones: bool = True) -> dict:
    """Summarizes one tensor inside the graph.

    The tensor is seen as (sample, position, unit) and reduced over positions once per exact statistic (sum,
    sum of squares, max; the min over everything); totals, each unit's maximum and each sample's mean and size
    follow from those small tables.  The counts (zeros, negatives, ones, flat region, histogram) are taken on an
    even subsample of each sample's values (``COUNT_MAX_VALUES``, ``HIST_MAX_VALUES``) and scaled back.  Values
    are cleaned of NaN / Inf only when the sums say there are some.

    Args:
        x: any float tensor, batch first.
        flat_low / flat_high: values at or beyond which a unit counts as saturated
            (None: not counted).
        gates: for a recurrent layer, its input's contribution to the gate pre-activations
            (x @ W + b); values beyond the flat threshold saturate the gates whatever the state.
        count_ones: count values pinned at 1 (read for custom layers only; 0 when not counted).

    Returns:
        A dict of small tensors; ``ValueSummary.update`` merges it.
    """
    x = tf.cast(x, tf.float32)
    n_samples = tf.shape(x)[0]
    rank = len(x.shape)
    exact = _exact_reductions(x, n_samples, rank)
    counted = _counted_on_subsample(x, n_samples, flat_low, flat_high, count_ones)
    s1, s2, top = exact["s1"], exact["s2"], exact["top"]
    per_sample = tf.cast(s1, tf.float64) / tf.cast(exact["positions"], tf.float64)  # each sample's mean per unit
    sample_values = tf.cast(counted["values_per_sample"], tf.float64)
    out = {
        "n": tf.size(x, out_type=tf.int64),
        "n_samples": tf.cast(n_samples, tf.int64),
        "nan": exact["nan"],
        "inf": exact["inf"],
        "zero": counted["zero"],
        "negative": counted["negative"],
        "one": counted["one"],
        "sum": tf.reduce_sum(tf.cast(s1, tf.float64)),  # tree reductions: float32 keeps ~7 digits
        "sumsq": tf.reduce_sum(tf.cast(s2, tf.float64)),
        "min": exact["low"],
        "max": exact["high"],
        "hist": counted["hist"],
        "unit_max": tf.reduce_max(top, axis=0) if rank > 1 else tf.reshape(tf.reduce_max(top), [1]),
        "sample_sum": tf.reduce_sum(per_sample, axis=0),
        "sample_sumsq": tf.reduce_sum(tf.square(per_sample), axis=0),
        # one sample's own size and dead share, for the per-sample drill-down
        "sample_rms": tf.sqrt(tf.cast(tf.reduce_sum(s2, axis=1), tf.float64) / sample_values),
        "sample_zero": counted["zeros_per_sample"] / sample_values,
        "flat": counted["flat"],
        "gate_n": tf.constant(0, tf.int64),
        "gate_flat": tf.constant(0, tf.int64),
    }
    if gates is not None:
        g = tf.cast(gates, tf.float32)
        out["gate_n"] = tf.size(g, out_type=tf.int64)
        out["gate_flat"] = tf.reduce_sum(tf.cast(tf.greater_equal(tf.abs(g), PRE_ACTIVATION_FLAT), tf.int64))
    return out


def _exact_reductions(x: tf.Tensor, n_samples, rank: int) -> dict:
    """Per (sample, unit) sums, sums of squares and maxima over positions, the NaN / Inf counts and the extremes
    over finite values: all exact, values cleaned of NaN / Inf only when the sums say there are some."""
    units = 1 if rank == 1 else tf.shape(x)[-1]
    cube = tf.reshape(x, [n_samples, -1, units])  # (sample, position, unit)
    positions = tf.cast(tf.shape(cube)[1], tf.float32)
    count = lambda m: tf.math.count_nonzero(m, dtype=tf.int64)  # noqa: E731
    s1 = tf.reduce_sum(cube, axis=1)
    finite_all = tf.reduce_all(tf.math.is_finite(s1))  # a NaN or Inf anywhere leaves its (sample, unit) sum so

    def cleaned():
        return tf.where(tf.math.is_finite(cube), cube, tf.zeros_like(cube))

    clean = tf.cond(finite_all, lambda: cube, cleaned)
    s1 = tf.cond(finite_all, lambda: s1, lambda: tf.reduce_sum(clean, axis=1))
    # Reductions read the values once and are cheap; an element-wise op writes a tensor as big as the layer and
    # costs four to five of them.  So the moments, extremes and per-unit maxima are reductions of the values
    # (sums of squares as squared Euclidean norms), and what needs an element-wise test (zeros, negatives,
    # ones, the flat region, the histogram) is counted on an even subsample (``_counted_on_subsample``).
    s2 = tf.square(tf.math.reduce_euclidean_norm(clean, axis=1))
    top = tf.reduce_max(clean, axis=1)
    nan = tf.cond(finite_all, lambda: tf.constant(0, tf.int64), lambda: count(tf.math.is_nan(cube)))
    inf = tf.cond(finite_all, lambda: tf.constant(0, tf.int64), lambda: count(tf.math.is_inf(cube)))
    # extremes over finite values only (a cleaned NaN is not a 0)
    low = tf.cond(finite_all, lambda: tf.reduce_min(cube),  # a full reduction: faster than per (sample, unit)
                  lambda: tf.reduce_min(tf.where(tf.math.is_finite(cube), cube, np.inf)))
    high = tf.cond(finite_all, lambda: tf.reduce_max(top),
                   lambda: tf.reduce_max(tf.where(tf.math.is_finite(cube), cube, -np.inf)))
    return {"s1": s1, "s2": s2, "top": top, "nan": nan, "inf": inf, "low": low, "high": high, "positions": positions}


def _counted_on_subsample(x: tf.Tensor, n_samples, flat_low, flat_high, count_ones: bool) -> dict:
    """Zeros, negatives, ones, the flat region and the histogram, counted on an even subsample of each sample's
    values (at most ``COUNT_MAX_VALUES``: exact below that, within a fraction of a percent above) and scaled back."""
    rows = tf.reshape(x, [n_samples, -1])  # each sample's values
    values_per_sample = tf.shape(rows)[1]
    stride, hist_stride, group = dynamic_strides(x)
    sub = subsample(rows, stride, group)
    scale = tf.cast(values_per_sample, tf.float64) / tf.cast(tf.maximum(tf.shape(sub)[1], 1), tf.float64)
    per_row = lambda m: tf.reduce_sum(tf.cast(m, tf.float64), axis=1) * scale  # noqa: E731 - counts per sample
    as_int = lambda t: tf.cast(tf.round(tf.reduce_sum(t)), tf.int64)  # noqa: E731
    zeros = per_row(tf.equal(sub, 0.0))
    binned = sub[:, ::hist_stride]
    binned = tf.where(tf.math.is_finite(binned), binned, tf.zeros_like(binned))
    hist = tf.math.bincount(tf.cast(tf.raw_ops.Bucketize(input=binned, boundaries=BOUNDARIES.tolist()), tf.int32),
                            minlength=N_BINS, maxlength=N_BINS, dtype=tf.float64)
    hist_scale = tf.cast(tf.size(x), tf.float64) / tf.cast(tf.maximum(tf.size(binned), 1), tf.float64)
    flat = tf.constant(0, tf.int64)
    if flat_low is not None:
        flat = as_int(per_row(tf.less_equal(sub, flat_low)) + per_row(tf.greater_equal(sub, flat_high)))
    return {"values_per_sample": values_per_sample, "zeros_per_sample": zeros, "zero": as_int(zeros),
            "negative": as_int(per_row(tf.less(sub, 0.0))),
            "one": as_int(per_row(tf.less_equal(tf.abs(sub - 1.0), ONE_TOLERANCE))) if count_ones
            else tf.constant(0, tf.int64),
            "hist": tf.cast(tf.round(hist * hist_scale), tf.int64), "flat": flat}


def strides(shape: tuple[int, ...], batch: int | None = None) -> tuple[int, int, int]:
    """The two subsamples (counts, then histogram) of a tensor of ``shape`` (batch first), as ``(stride,
    hist_stride, group)`` for ``subsample``: about ``COUNT_MAX_VALUES`` values counted over a batch of ``batch``
    samples (the tensor's own by default; a chunk of it takes its share), ``SAMPLE_COUNT_MIN`` a sample at least,
    and ``HIST_MAX_VALUES`` of them binned.

    The counts read each sample's values in groups of ``group`` neighbouring units (the most, up to ``GROUP_MAX``,
    that divides the units: a cache line read whole, where values picked one by one cost a line each; MobileNetV2's
    150 layers ~0.15 s a batch less), every ``stride``-th group.  The histogram bins every ``hist_stride``-th of
    those.  Each stride shares no factor with the number of groups or of values a sample has, so every unit and
    every column of an image is visited."""
    n = int(shape[0]) if shape else 1
    per_sample = int(np.prod(shape[1:], dtype=np.int64))
    units = int(shape[-1]) if len(shape) > 1 else 1
    everyone = max(batch or n, n)
    target = everyone * per_sample // max(COUNT_MAX_VALUES, everyone * SAMPLE_COUNT_MIN)
    group = max(d for d in range(1, GROUP_MAX + 1) if units % d == 0) if target > 1 and units > 0 else 1
    stride = coprime_stride(target, per_sample // group)
    width = -(-(per_sample // group) // stride) * group
    return stride, coprime_stride(n * width // HIST_MAX_VALUES, per_sample), group


def dynamic_strides(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``strides`` in the graph, for a tensor whose size per sample is known only when it runs."""
    shape = tf.shape(x, out_type=tf.int64)
    n, per_sample = shape[0], tf.reduce_prod(shape[1:])
    units = shape[-1] if len(x.shape) > 1 else tf.constant(1, tf.int64)
    target = n * per_sample // tf.maximum(tf.constant(COUNT_MAX_VALUES, tf.int64), n * SAMPLE_COUNT_MIN)
    sizes = tf.range(GROUP_MAX, 0, -1, dtype=tf.int64)
    divides = tf.equal(tf.math.floormod(tf.maximum(units, 1), sizes), 0)
    group = tf.where((target > 1) & (units > 0), sizes[tf.argmax(tf.cast(divides, tf.int32))], 1)
    stride = _coprime_stride(target, per_sample // group)
    width = (per_sample // group + tf.cast(stride, tf.int64) - 1) // tf.cast(stride, tf.int64) * group
    return stride, _coprime_stride(n * width // HIST_MAX_VALUES, per_sample), tf.cast(group, tf.int32)


def subsample(rows: tf.Tensor, stride: tf.Tensor, group: tf.Tensor) -> tf.Tensor:
    """Each sample's values (``rows``: sample, value) read in groups of ``group`` neighbours, every ``stride``-th
    group (``strides``), as (sample, value)."""
    n, per_sample = tf.shape(rows)[0], tf.shape(rows)[1]
    groups = per_sample // group
    picked = tf.reshape(rows, tf.stack([n, groups, group]))[:, ::stride, :]
    return tf.reshape(picked, tf.stack([n, (groups + stride - 1) // stride * group]))  # no -1: n may be 0


def count_buckets(flat_low: float | None, flat_high: float | None) -> tuple[list[float], np.ndarray]:
    """The counts ``lean_summary`` takes with one ``Bucketize``: the boundaries that split float32 values wherever
    one of its tests (zero, negative, pinned at 1, in the flat region) changes, and which tests each bucket passes
    (buckets x tests, 0 or 1).  A bucket holds the values from its lower boundary up to the next one."""
    f32 = np.float32
    tiny = np.finfo(f32).tiny  # the smallest normal float32: the executor flushes denormals to 0
    pinned = lambda v: abs(v - f32(1)) <= f32(ONE_TOLERANCE)  # noqa: E731 - as tensor_summary tests, in float32
    low = high = f32(1)
    while pinned(np.nextafter(low, f32(0))):
        low = np.nextafter(low, f32(0))
    while pinned(high):
        high = np.nextafter(high, f32(2))  # the first value above 1 not pinned
    bounds = {f32(0), tiny, low, high}
    if flat_low is not None:
        below = np.nextafter(f32(flat_low), f32(np.inf))  # x <= flat_low: x below the next float32
        bounds |= {max(below, tiny) if below > 0 else below, f32(flat_high)}
    bounds = sorted(bounds)
    lowest = [f32(-np.inf), *bounds]  # each bucket's smallest value
    tests = (lambda v: v == 0, lambda v: v < 0, pinned,
             lambda v: flat_low is not None and (v <= f32(flat_low) or v >= f32(flat_high)))
    table = np.array([[float(bool(test(v))) for test in tests] for v in lowest], np.float32)
    return [float(b) for b in bounds], table


def row_width(units):
    """Values of one sample's row in ``lean_summary``'s vector: each unit's sum and max, the four counts, the sum of
    squares and the min (``units`` an int, or a tensor in the graph)."""
    return 2 * units + 6


# ``Layout.arguments``, by name: ``lean_summary``'s arguments after the tensor, in order
ARGUMENTS = ("cube", "rows", "groups", "picked", "pick", "hist_pick", "segments", "pool", "window", "ones", "units",
             "pieces", "per_piece")

# A sample of at least this many values is reduced in PIECES_MAX pieces at most (``Layout.pieces``).
PIECES_MIN_VALUES = 1 << 16
PIECES_MAX = 64


@dataclass(frozen=True)
class Layout:
    """How ``lean_summary`` reads one layer's output, fixed when the probe's pass is traced: the shape of a sample
    and the subsamples' strides (``strides``, set for chunks of ``samples``)."""

    per_sample: tuple[int, ...]
    stride: int
    hist_stride: int
    group: int
    gate_values: int | None = None  # the gate pre-activations' values per sample, for a recurrent layer
    # how many layers' outputs of this layout are read as one tensor, stacked along the batch (``segment``)
    segments: int = 1

    @classmethod
    def of(cls, shape, samples: int | None = None, gates=None, batch: int | None = None) -> Layout | None:
        """For a tensor of ``shape`` (batch first) in chunks of at most ``samples`` of a batch of ``batch``; None when
        a sample's shape is not known before the tensor is computed, or holds no values."""
        shape = tf.TensorShape(shape)
        gate_shape = None if gates is None else tf.TensorShape(gates.shape)[1:]
        if shape.rank is None or not shape[1:].is_fully_defined() or shape[1:].num_elements() == 0 \
                or (gate_shape is not None and not gate_shape.is_fully_defined()):
            return None
        per_sample = tuple(int(d) for d in shape[1:])
        stride, hist_stride, group = strides((samples or shape[0] or 1, *per_sample), batch)
        return cls(per_sample, stride, hist_stride, group,
                   None if gate_shape is None else int(gate_shape.num_elements()))

    @cached_property  # read for every layer of every chunk (``finish``)
    def values(self) -> int:
        return int(np.prod(self.per_sample, dtype=np.int64))

    @property
    def units(self) -> int:
        return self.per_sample[-1] if self.per_sample else 1

    @cached_property
    def pieces(self) -> int:
        """How many pieces a sample's values are cut into for its sum of squares and min: a reduction along rows
        shares its rows among the threads, and a chunk holds a few samples (7 MobileNetV2 images: 4.6 → 2.9 ms
        for the sum of squares of a 112x112x96 output)."""
        if self.values < PIECES_MIN_VALUES:
            return 1
        return max(d for d in range(1, PIECES_MAX + 1) if self.values % d == 0)

    @cached_property
    def width(self) -> int:
        """Values a sample has in the counts' subsample."""
        return -(-(self.values // self.group) // self.stride) * self.group

    def arguments(self) -> list[np.ndarray]:
        """``lean_summary``'s arguments after the tensor: the shapes it is read in and the subsamples' strides."""
        positions, pieces = self.values // self.units, self.pieces
        shapes = ([-1, positions, self.units], [-1, self.values],
                  [-1, self.values // self.group, self.group], [-1, self.width], [1, self.stride, 1],
                  [1, self.hist_stride], [self.segments, -1], [-1, positions, 1, self.units], [1, positions, 1, 1],
                  [1, 1, positions], [-1, self.units], [-1, self.values // pieces], [-1, pieces])
        return [np.array(v, np.int32) for v in shapes]

    def segment(self, vector: np.ndarray) -> list[np.ndarray]:
        """The vector ``lean_summary`` returned for ``segments`` layers' outputs stacked along the batch, as the
        vectors it returns for each alone: each layer's rows of the per-sample table, then its histogram."""
        if self.segments == 1:
            return [vector]
        columns = row_width(self.units)
        rows_end = len(vector) - self.segments * N_BINS
        table = vector[:rows_end].reshape(self.segments, -1, columns)
        hists = vector[rows_end:].reshape(self.segments, N_BINS)
        return [np.concatenate([rows.ravel(), hist]) for rows, hist in zip(table, hists)]


def lean_summary(x: tf.Tensor, cube: tf.Tensor, rows: tf.Tensor, groups: tf.Tensor, picked: tf.Tensor,
                 pick: tf.Tensor, hist_pick: tf.Tensor, segments: tf.Tensor, pool: tf.Tensor, window: tf.Tensor,
                 ones: tf.Tensor, units: tf.Tensor, pieces: tf.Tensor, per_piece: tf.Tensor,
                 gates: tf.Tensor | None = None,
                 flat_low: float | None = None, flat_high: float | None = None) -> tf.Tensor:
    """``tensor_summary`` in a fraction of its graph, for the probe's pass; ``finish`` completes it.

    The probe calls it once per layer inside its pass.  Each call's graph is set up when the pass first runs, at a
    cost that grows with its operations (TensorFlow instantiates a called function's body once per call to look for
    reference variables, then again to run it): so everything known before the pass runs comes in from Python
    (``Layout.arguments``: the shapes the values are read in, the subsamples' strides), what follows from small
    tables is left to numpy, and the values are taken to be finite: ``finish`` returns None when the sums say they
    were not, and ``tensor_summary`` cleans and counts them.  46 operations, where computing the shapes and the
    strides in the graph took 112: MobileNetV2's first chunk ~0.4 s shorter.

    The sum of squares is summed per sample over all its values: a reduction along the innermost axis reads ~0.25
    ns a value, one across positions per unit twice that, and up to 2.5x more at some widths (96 or 256 units of
    3,136 or more positions: Eigen's reduction runs out of cache).  So each unit's sum is a row of ones times the
    sample's (position, unit) matrix, and its max one pooling window over the positions, both oneDNN kernels at the
    memory's bandwidth (40 summaries of MobileNetV2-sized outputs: 0.42 s → 0.25 s a chunk of 7 once traced).
    The counts are one ``Bucketize`` of the subsample on the boundaries where a test changes (``count_buckets``,
    for the flat region, fixed when traced) and one count of the buckets per sample: the eleven element-wise tests
    they replace took MobileNetV2's pass ~0.3 s a batch more.

    Several layers' outputs of one layout may come stacked along the batch (``segments``, ``[layers, -1]``): every
    statistic but the histogram is per sample already, and the histogram is counted per layer.  Each call costs
    ~1 ms when the pass first runs, whatever its size: the deep MLP's 25 calls were half its first chunk.

    Returns:
        One float32 vector: per sample, the sum and max of each unit, the counts of zeros, negatives, ones and flat
        values on the subsample, the sum of squares and the min; then the histogram (of each segment); then, with
        ``gates``, the number of saturated gate values.
    """
    x = tf.cast(x, tf.float32)
    rows = tf.reshape(x, rows)  # (sample, value)
    tables = _exact_tables(x, cube, pool, window, ones, units, pieces, per_piece)
    with tf.control_dependencies(tables[-1:]):
        start = tf.zeros([3], tf.int32)
        sub = tf.reshape(tf.strided_slice(tf.reshape(rows, groups), start, start, pick, begin_mask=7, end_mask=7),
                         picked)  # ``subsample``
    bounds, tests = count_buckets(flat_low, flat_high)
    per_bucket = tf.raw_ops.DenseBincount(input=tf.raw_ops.Bucketize(input=sub, boundaries=bounds),
                                          size=len(bounds) + 1, weights=tf.zeros([0], tf.float32))  # (sample, bucket)
    start = tf.zeros([2], tf.int32)
    binned = tf.reshape(tf.strided_slice(sub, start, start, hist_pick, begin_mask=3, end_mask=3), segments)
    hist = tf.raw_ops.DenseBincount(input=tf.raw_ops.Bucketize(input=binned, boundaries=BOUNDARIES.tolist()),
                                    size=N_BINS, weights=tf.zeros([0], tf.float32))  # (segment, bin)
    table = tf.concat([tables[0], tables[1], tf.matmul(per_bucket, tf.constant(tests)),
                       tf.stack([tables[2], tables[3]], axis=1)], axis=1)
    parts = [tf.reshape(table, [-1]), tf.reshape(hist, [-1])]
    if gates is not None:
        parts.append(tf.reshape(tf.math.count_nonzero(tf.abs(tf.cast(gates, tf.float32)) >= PRE_ACTIVATION_FLAT,
                                                      dtype=tf.float32), [1]))
    return tf.concat(parts, 0)


def _exact_tables(x, cube, pool, window, ones, units, pieces, per_piece) -> list:
    """``lean_summary``'s exact statistics of ``x`` (its arguments of the same names): each unit's sum (a row of
    ones times each sample's (position, unit) matrix) and max (one pooling window over each sample's positions),
    each sample's sum of squares and min (in ``Layout.pieces``, then the pieces of each sample reduced: a norm reads
    the values once, where squaring them first wrote them all again)."""
    axis, tables = tf.constant(1), []

    def unit_maxima():
        return tf.reshape(tf.raw_ops.MaxPoolV2(input=tf.reshape(x, pool), ksize=window, strides=window,
                                               padding="VALID"), units)

    def sample_minima():
        return tf.reduce_min(tf.reshape(tf.reduce_min(tf.reshape(x, pieces), axis), per_piece), axis)

    for reduce in (lambda: _unit_sums(x, cube, ones, units), unit_maxima,
                   lambda: _sample_squares(x, pieces, per_piece), sample_minima):
        # in turn, as the NaN test orders them in tensor_summary: side by side they were no faster on two cores
        with tf.control_dependencies(tables[-1:]):
            tables.append(reduce())
    return tables


def _unit_sums(x, cube, ones, units):
    """Each sample's sum of each unit: a row of ones times the sample's (position, unit) matrix."""
    return tf.reshape(tf.matmul(tf.ones(ones), tf.reshape(x, cube)), units)


def _sample_squares(x, pieces, per_piece):
    """Each sample's sum of squares: the norms of its pieces, squared and summed."""
    axis = tf.constant(1)
    return tf.reduce_sum(tf.reshape(tf.square(tf.math.reduce_euclidean_norm(tf.reshape(x, pieces), axis)),
                                    per_piece), axis)


def clipped_bins(high: float) -> np.ndarray:
    """(bin of x, bin of min(max(x, 0), high)) as a 0/1 matrix: the histogram bins each value's bin moves to when a
    ReLU clips it (``clipped_summary``).  Bins are monotone in the value, so a bin below 0's moves to 0's, one above
    ``high``'s to ``high``'s, and the rest stay."""
    bounds = BOUNDARIES.astype(np.float32)  # as ``Bucketize`` compares them
    zero = int(np.searchsorted(bounds, np.float32(0), side="right"))
    top = N_BINS - 1 if np.isinf(high) else int(np.searchsorted(bounds, np.float32(high), side="right"))
    moved = np.zeros((N_BINS, N_BINS), np.float32)
    moved[np.arange(N_BINS), np.clip(np.arange(N_BINS), zero, top)] = 1
    return moved


def clipped_summary(x: tf.Tensor, source: tf.Tensor, cube: tf.Tensor, ones: tf.Tensor, units: tf.Tensor,
                    pieces: tf.Tensor, per_piece: tf.Tensor, high: float = np.inf) -> tf.Tensor:
    """``lean_summary``'s vector of ``x = min(max(s, 0), high)`` (a ReLU of another probed layer's output ``s``, of
    the same shape), from ``source``, the vector ``lean_summary`` returned for ``s``: two reads of ``x`` where
    ``lean_summary`` takes four and a subsample.

    Only what the clip does not determine is read: each unit's sum and each sample's sum of squares.  A clip is
    monotone and rounds nothing, so each unit's max and each sample's min are ``s``'s clipped; the counts come from
    the same subsample of positions (the layouts are equal): zeros are ``s``'s zeros and negatives, no value is
    negative, a value pinned at 1 was pinned in ``s`` (``high`` >= 2, ``relu_ceiling``) and the histogram's bins move
    as ``clipped_bins`` says.  Where ``s`` held NaN or Inf its min is set to NaN, so ``finish`` returns None and
    ``x`` is summarized from its values (``tensor_summary``).  MobileNetV2's chunks: ~12% shorter."""
    x = tf.cast(x, tf.float32)
    sums = _unit_sums(x, cube, ones, units)  # (sample, unit)
    with tf.control_dependencies([sums]):
        squares = _sample_squares(x, pieces, per_piece)
    n, width = tf.shape(sums)[0], tf.shape(sums)[1]
    rows_end = n * row_width(width)
    table = tf.reshape(source[:rows_end], [n, row_width(width)])  # ``s``'s rows
    finite = tf.reduce_all(tf.math.is_finite(table[:, :width])) & tf.reduce_all(tf.math.is_finite(table[:, -2:]))
    clip = (lambda v: tf.maximum(v, 0.0)) if np.isinf(high) else (lambda v: tf.clip_by_value(v, 0.0, high))
    low = tf.where(finite, clip(table[:, -1]), np.nan)
    counted = table[:, 2 * width:2 * width + 4]  # zeros, negatives, ones, flat
    nothing = tf.zeros_like(counted[:, 0])
    counts = tf.stack([counted[:, 0] + counted[:, 1], nothing, counted[:, 2], nothing], axis=1)
    hist = tf.matmul(tf.reshape(source[rows_end:rows_end + N_BINS], [1, N_BINS]), tf.constant(clipped_bins(high)))
    rows = tf.concat([sums, clip(table[:, width:2 * width]), counts, tf.stack([squares, low], axis=1)], axis=1)
    return tf.concat([tf.reshape(rows, [-1]), tf.reshape(hist, [-1])], 0)


def finish(vector: np.ndarray, layout: Layout, flat: bool, count_ones: bool) -> dict | None:
    """``lean_summary``'s vector as the dict ``tensor_summary`` gives (for ``ValueSummary.update``); None when the
    tensor held NaN or Inf, or no values."""
    vector = np.asarray(vector, np.float64)
    units, per_sample = layout.units, layout.values
    columns = row_width(units)
    gates = layout.gate_values is not None
    rows_end = len(vector) - N_BINS - gates
    n = rows_end // columns
    if n == 0:
        return None
    table = vector[:rows_end].reshape(n, columns)
    s1, top = table[:, :units], table[:, units:2 * units]
    s2, low = table[:, -2], table[:, -1].min()
    if not (np.isfinite(s1).all() and np.isfinite(s2).all() and np.isfinite(low)):
        return None
    counts = table[:, 2 * units:2 * units + 4] * (per_sample / layout.width)  # scaled back to all the values
    hist = np.rint(vector[rows_end:rows_end + N_BINS] * (per_sample / -(-layout.width // layout.hist_stride)))
    mean = s1 / (per_sample // units)  # each sample's mean per unit
    total = lambda column: int(round(float(counts[:, column].sum())))  # noqa: E731
    return {
        "n": n * per_sample, "n_samples": n, "nan": 0, "inf": 0,
        "zero": total(0), "negative": total(1), "one": total(2) if count_ones else 0, "flat": total(3) if flat else 0,
        "gate_n": n * layout.gate_values if gates else 0, "gate_flat": int(vector[-1]) if gates else 0,
        "sum": float(s1.sum()), "sumsq": float(s2.sum()), "min": float(low), "max": float(top.max()), "hist": hist,
        "unit_max": top.max(axis=0), "sample_sum": mean.sum(axis=0), "sample_sumsq": np.square(mean).sum(axis=0),
        "sample_rms": np.sqrt(s2 / per_sample), "sample_zero": counts[:, 0] / per_sample,
    }


# The scalars of a ``tensor_summary``, in the order ``pack`` lays them out.
_SCALARS = ("n", "n_samples", "nan", "inf", "zero", "negative", "one", "flat", "gate_n", "gate_flat", "sum", "sumsq",
            "min", "max")
_PER_UNIT = ("unit_max", "sample_sum", "sample_sumsq")
_PER_SAMPLE = ("sample_rms", "sample_zero")


def pack(summary: dict) -> tf.Tensor:
    """A ``tensor_summary`` as one float64 vector: the probe returns one tensor a layer instead of twenty
    (each output of a traced function costs ~0.5 ms to trace).  Counts stay exact below 2**53."""
    parts = [tf.stack([tf.cast(summary[k], tf.float64) for k in _SCALARS]), tf.cast(summary["hist"], tf.float64)]
    parts += [tf.cast(tf.reshape(summary[k], [-1]), tf.float64) for k in _PER_UNIT + _PER_SAMPLE]
    return tf.concat(parts, 0)


def unpack(vector: np.ndarray) -> dict:
    """``pack``'s vector back as the dict ``ValueSummary.update`` merges."""
    vector = np.asarray(vector, np.float64)
    out: dict = dict(zip(_SCALARS, vector[:len(_SCALARS)].tolist()))
    at = len(_SCALARS)
    out["hist"] = vector[at:at + N_BINS]
    at += N_BINS
    samples = int(out["n_samples"])
    units = (len(vector) - at - len(_PER_SAMPLE) * samples) // len(_PER_UNIT)
    for name in _PER_UNIT:
        out[name], at = vector[at:at + units], at + units
    for name in _PER_SAMPLE:
        out[name], at = vector[at:at + samples], at + samples
    return out


def _primes(limit: int) -> np.ndarray:
    sieve = np.ones(limit + 1, bool)
    sieve[:2] = False
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = False
    return np.flatnonzero(sieve)


_PRIMES = _primes(1 << 17)


def coprime_stride(target: int, length: int) -> int:
    """``_coprime_stride`` in Python: a stride of at least ``target`` sharing no factor with ``length``."""
    if target <= 1:
        return 1
    for prime in _PRIMES[np.searchsorted(_PRIMES, target):]:
        if length % prime:
            return int(prime)
    return int(target)


def _coprime_stride(target, length):
    """A stride of at least ``target`` that shares no factor with ``length`` (1 below 2): the first prime that does
    not divide it.  A stride sharing a factor with the number of units (or the row width) would visit some units
    (or columns) only, and miss a dead one."""
    target, length = tf.cast(target, tf.int64), tf.cast(length, tf.int64)
    primes = tf.constant(_PRIMES, tf.int64)
    start = tf.searchsorted(primes, tf.reshape(target, [1]))[0]
    candidates = tf.gather(primes, tf.minimum(start + tf.range(10, dtype=tf.int32), len(_PRIMES) - 1))
    prime = candidates[tf.argmax(tf.cast(tf.math.floormod(length, candidates) != 0, tf.int32))]
    return tf.cast(tf.where(target <= 1, tf.constant(1, tf.int64), prime), tf.int32)


