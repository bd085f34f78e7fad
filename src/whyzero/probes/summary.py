"""A mergeable summary of a tensor's values: fixed-edge histogram, moments, shares.

The histogram edges are fixed once for all tensors (a symmetric logarithmic
grid), so summaries from different chunks, batches or machines merge by adding
counts.  ``tensor_summary`` runs inside the TensorFlow graph; ``ValueSummary``
holds and merges the results in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from whyzero._tf import tf

# Symmetric log grid: 8 bins per decade for |x| in [1e-4, 1e6], an exact split at 0,
# and two open bins beyond +-1e6.  Wide enough for 0..255 pixels and exploding layers.
BINS_PER_DECADE = 8
LOG10_MIN, LOG10_MAX = -4, 6
_POSITIVE = 10.0 ** np.linspace(LOG10_MIN, LOG10_MAX, (LOG10_MAX - LOG10_MIN) * BINS_PER_DECADE + 1)
BOUNDARIES = np.concatenate([-_POSITIVE[::-1], [0.0], _POSITIVE])
N_BINS = len(BOUNDARIES) + 1
# For plots: the open end bins drawn one decade wide.
# Values within two float32 steps of 1.0 count as pinned at 1: 1 / (1 + exp(-big)) often lands on
# 0.99999994 rather than 1.0 exactly.
ONE_TOLERANCE = 1.2e-7
# Values of one tensor (per chunk) counted exactly (zeros, negatives, ones, flat, histogram); beyond this the
# counts come from an even subsample of each sample's values, scaled back.  Moments and extremes are always exact.
COUNT_MAX_VALUES = 1 << 15
# ... and the histogram, which is only drawn, on at most this many of them (binning costs ~35 ns a value; ResNet50's
# 1,408 layer summaries took ~0.1 s less than at 2**13).  Merged over the chunks the 164 bins still hold ten
# thousand values and more.
HIST_MAX_VALUES = 1 << 11
# Samples whose own per-layer statistics are kept (the per-sample drill-down); the rest merge into the batch's.
SAMPLES_KEPT = 64
# |pre-activation| beyond which a sigmoid/tanh gate is flat (DeepDiagnosis' saturation threshold).
GATE_FLAT = 5.0
EDGES = np.concatenate([[-(10.0 ** (LOG10_MAX + 1))], BOUNDARIES, [10.0 ** (LOG10_MAX + 1)]])


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
    # ones, the flat region, the histogram) is counted on an even subsample of each sample's values, at most
    # COUNT_MAX_VALUES per chunk: exact below that, within a fraction of a percent above.
    s2 = tf.square(tf.math.reduce_euclidean_norm(clean, axis=1))
    top = tf.reduce_max(clean, axis=1)
    nan = tf.cond(finite_all, lambda: tf.constant(0, tf.int64), lambda: count(tf.math.is_nan(cube)))
    inf = tf.cond(finite_all, lambda: tf.constant(0, tf.int64), lambda: count(tf.math.is_inf(cube)))
    # extremes over finite values only (a cleaned NaN is not a 0)
    low = tf.cond(finite_all, lambda: tf.reduce_min(cube),  # a full reduction: faster than per (sample, unit)
                  lambda: tf.reduce_min(tf.where(tf.math.is_finite(cube), cube, np.inf)))
    high = tf.cond(finite_all, lambda: tf.reduce_max(top),
                   lambda: tf.reduce_max(tf.where(tf.math.is_finite(cube), cube, -np.inf)))
    rows = tf.reshape(x, [n_samples, -1])  # each sample's values
    values_per_sample = tf.shape(rows)[1]
    stride, hist_stride = dynamic_strides(x)
    sub = rows[:, ::stride]
    scale = tf.cast(values_per_sample, tf.float64) / tf.cast(tf.maximum(tf.shape(sub)[1], 1), tf.float64)
    per_row = lambda m: tf.reduce_sum(tf.cast(m, tf.float64), axis=1) * scale  # noqa: E731 - counts per sample
    as_int = lambda t: tf.cast(tf.round(tf.reduce_sum(t)), tf.int64)  # noqa: E731
    zeros = per_row(tf.equal(sub, 0.0))
    binned = sub[:, ::hist_stride]
    binned = tf.where(tf.math.is_finite(binned), binned, tf.zeros_like(binned))
    hist = tf.math.bincount(tf.cast(tf.raw_ops.Bucketize(input=binned, boundaries=BOUNDARIES.tolist()), tf.int32),
                            minlength=N_BINS, maxlength=N_BINS, dtype=tf.float64)
    hist_scale = tf.cast(tf.size(x), tf.float64) / tf.cast(tf.maximum(tf.size(binned), 1), tf.float64)
    per_sample = tf.cast(s1, tf.float64) / tf.cast(positions, tf.float64)  # each sample's mean per unit
    sample_values = tf.cast(values_per_sample, tf.float64)
    out = {
        "n": tf.size(x, out_type=tf.int64),
        "n_samples": tf.cast(n_samples, tf.int64),
        "nan": nan,
        "inf": inf,
        "zero": as_int(zeros),
        "negative": as_int(per_row(tf.less(sub, 0.0))),
        "one": as_int(per_row(tf.less_equal(tf.abs(sub - 1.0), ONE_TOLERANCE))) if count_ones
        else tf.constant(0, tf.int64),
        "sum": tf.reduce_sum(tf.cast(s1, tf.float64)),  # tree reductions: float32 keeps ~7 digits
        "sumsq": tf.reduce_sum(tf.cast(s2, tf.float64)),
        "min": low,
        "max": high,
        "hist": tf.cast(tf.round(hist * hist_scale), tf.int64),
        "unit_max": tf.reduce_max(top, axis=0) if rank > 1 else tf.reshape(tf.reduce_max(top), [1]),
        "sample_sum": tf.reduce_sum(per_sample, axis=0),
        "sample_sumsq": tf.reduce_sum(tf.square(per_sample), axis=0),
        # one sample's own size and dead share, for the per-sample drill-down
        "sample_rms": tf.sqrt(tf.cast(tf.reduce_sum(s2, axis=1), tf.float64) / sample_values),
        "sample_zero": zeros / sample_values,
        "flat": tf.constant(0, tf.int64),
        "gate_n": tf.constant(0, tf.int64),
        "gate_flat": tf.constant(0, tf.int64),
    }
    if gates is not None:
        g = tf.cast(gates, tf.float32)
        out["gate_n"] = tf.size(g, out_type=tf.int64)
        out["gate_flat"] = tf.reduce_sum(tf.cast(tf.greater_equal(tf.abs(g), GATE_FLAT), tf.int64))
    if flat_low is not None:
        out["flat"] = as_int(per_row(tf.less_equal(sub, flat_low)) + per_row(tf.greater_equal(sub, flat_high)))
    return out


def strides(shape: tuple[int, ...]) -> tuple[int, int]:
    """The strides of the two subsamples (counts, then histogram) for a tensor of ``shape`` (batch first): at most
    ``COUNT_MAX_VALUES`` and ``HIST_MAX_VALUES`` values, each stride sharing no factor with a sample's size."""
    n = int(shape[0]) if shape else 1
    per_sample = int(np.prod(shape[1:], dtype=np.int64))
    count = coprime_stride(n * per_sample // COUNT_MAX_VALUES, per_sample)
    width = -(-per_sample // count)
    return count, coprime_stride(n * width // HIST_MAX_VALUES, per_sample)


def dynamic_strides(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``strides`` in the graph, for a tensor whose size per sample is known only when it runs."""
    shape = tf.shape(x, out_type=tf.int64)
    n, per_sample = shape[0], tf.reduce_prod(shape[1:])
    stride = _coprime_stride(n * per_sample // COUNT_MAX_VALUES, per_sample)
    width = (per_sample + tf.cast(stride, tf.int64) - 1) // tf.cast(stride, tf.int64)
    return stride, _coprime_stride(n * width // HIST_MAX_VALUES, per_sample)


def lean_summary(x: tf.Tensor, stride: tf.Tensor, hist_stride: tf.Tensor, flat_low: tf.Tensor, flat_high: tf.Tensor,
                 gates: tf.Tensor | None = None) -> tf.Tensor:
    """``tensor_summary`` in a fraction of its graph, for the probe's pass; ``finish`` completes it.

    The probe calls it once per layer inside its pass, and each call's graph is set up when the pass first runs
    (~4 ms for 230 operations, ~0.6 s for MobileNetV2's layers): so the strides (``strides``) and the flat region
    come in as arguments, what follows from small tables is left to numpy, and the values are taken to be finite:
    ``finish`` returns None when the sums say they were not, and ``tensor_summary`` cleans and counts them.  The
    sum of squares is summed per sample over all its values at once: a reduction along the innermost axis reads
    ~0.25 ns a value, one across positions per unit twice that.

    Returns:
        One float64 vector: the sum and max per (sample, unit); the sum of squares per sample; the min; the counts
        per sample of zeros, negatives, ones and flat values on the subsample; the histogram; the saturated gates;
        then the two strides, the number of gate values, the tensor's shape and its rank (``finish`` reads them from
        the end).
    """
    x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    n = shape[0]
    per_sample = tf.reduce_prod(shape[1:])
    rows = tf.reshape(x, tf.stack([n, per_sample]))  # each sample's values (no -1: a layer may have none)
    units = 1 if len(x.shape) == 1 else shape[-1]
    cube = tf.reshape(rows, tf.stack([n, per_sample // tf.maximum(units, 1), units]))  # (sample, position, unit)
    tables = []
    for reduce, over in ((tf.reduce_sum, cube), (tf.reduce_max, cube), (tf.math.reduce_euclidean_norm, rows),
                         (tf.reduce_min, rows)):
        # in turn, as the NaN test orders them in tensor_summary: side by side they were no faster on two cores
        with tf.control_dependencies(tables[-1:]):
            tables.append(reduce(over, axis=None if reduce is tf.reduce_min else 1))
    with tf.control_dependencies(tables[-1:]):
        sub = rows[:, ::stride]
    tests = tf.stack([tf.equal(sub, 0.0), tf.less(sub, 0.0), tf.less_equal(tf.abs(sub - 1.0), ONE_TOLERANCE),
                      tf.logical_or(tf.less_equal(sub, flat_low), tf.greater_equal(sub, flat_high))], axis=2)
    counts = tf.reduce_sum(tf.cast(tests, tf.float32), axis=1)  # (sample, test)
    buckets = tf.raw_ops.Bucketize(input=tf.reshape(sub[:, ::hist_stride], [-1]), boundaries=BOUNDARIES.tolist())
    hist = tf.raw_ops.Bincount(arr=buckets, size=N_BINS, weights=tf.zeros([0], tf.float32))
    gate_n, gate_flat = (tf.zeros([], tf.int64),) * 2 if gates is None else \
        (tf.size(gates, out_type=tf.int64), tf.math.count_nonzero(tf.abs(tf.cast(gates, tf.float32)) >= GATE_FLAT))
    parts = [tf.reshape(tables[0], [-1]), tf.reshape(tables[1], [-1]), tf.square(tables[2]), tf.reshape(tables[3], [1]),
             tf.reshape(counts, [-1]), hist]
    # counts and sizes in float64: exact up to 2**53
    tail = tf.concat([tf.stack([gate_flat, tf.cast(stride, tf.int64), tf.cast(hist_stride, tf.int64), gate_n]),
                      tf.cast(shape, tf.int64), tf.constant([len(x.shape)], tf.int64)], 0)
    return tf.concat([tf.cast(tf.concat(parts, 0), tf.float64), tf.cast(tail, tf.float64)], 0)


def finish(vector: np.ndarray, flat: bool, count_ones: bool) -> dict | None:
    """``lean_summary``'s vector as the dict ``tensor_summary`` gives (for ``ValueSummary.update``); None when the
    tensor held NaN or Inf, or no values."""
    vector = np.asarray(vector, np.float64)
    rank = int(vector[-1])
    tail = vector[len(vector) - 5 - rank:-1]
    gate_flat, stride, hist_stride, gate_n = (int(v) for v in tail[:4])
    shape = tuple(int(v) for v in tail[4:])
    n = shape[0]
    per_sample = int(np.prod(shape[1:], dtype=np.int64))
    units = shape[-1] if len(shape) > 1 else 1
    if n * per_sample == 0:
        return None
    cells = n * units
    s1, top = (vector[i * cells:(i + 1) * cells].reshape(n, units) for i in range(2))
    s2 = vector[2 * cells:2 * cells + n]  # per sample
    low = vector[2 * cells + n]
    if not (np.isfinite(s1).all() and np.isfinite(s2).all() and np.isfinite(low)):
        return None
    at = 2 * cells + n + 1
    width = -(-per_sample // stride)
    counts = vector[at:at + 4 * n].reshape(n, 4) * (per_sample / width)  # scaled back to all the values
    at += 4 * n
    hist = np.rint(vector[at:at + N_BINS] * (per_sample / -(-width // hist_stride)))
    mean = s1 / (per_sample // units)  # each sample's mean per unit
    total = lambda column: int(round(float(counts[:, column].sum())))  # noqa: E731
    return {
        "n": n * per_sample, "n_samples": n, "nan": 0, "inf": 0,
        "zero": total(0), "negative": total(1), "one": total(2) if count_ones else 0, "flat": total(3) if flat else 0,
        "gate_n": gate_n, "gate_flat": gate_flat,
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


@dataclass
class ValueSummary:
    """Merged statistics of one tensor over many chunks.

    ``unit_max`` is the largest value each unit (last axis) took; a unit whose
    maximum is <= 0 never fired.  ``sample_sum``/``sample_sumsq`` are sums over
    samples of each sample's per-unit mean, giving the spread across samples.
    """

    n: int = 0
    n_samples: int = 0
    nan: int = 0
    inf: int = 0
    zero: int = 0
    negative: int = 0
    one: int = 0
    flat: int = 0
    gate_n: int = 0
    gate_flat: int = 0
    sum: float = 0.0
    sumsq: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    unit_max: np.ndarray | None = None
    sample_sum: np.ndarray | None = None
    sample_sumsq: np.ndarray | None = None
    sample_rms: list[float] = field(default_factory=list)  # the first SAMPLES_KEPT samples' own RMS
    sample_zero: list[float] = field(default_factory=list)  # ... and share of exact zeros

    def update(self, part: dict) -> None:
        """Merges one chunk's ``tensor_summary`` (as numpy) into this summary."""
        for name in ("n", "n_samples", "nan", "inf", "zero", "negative", "one", "flat", "gate_n", "gate_flat"):
            setattr(self, name, getattr(self, name) + int(part.get(name, 0)))
        self.sum += float(part["sum"])
        self.sumsq += float(part["sumsq"])
        self.min = min(self.min, float(part["min"]))
        self.max = max(self.max, float(part["max"]))
        self.hist = self.hist + np.rint(part["hist"]).astype(np.int64)
        self.unit_max = _merge(self.unit_max, part["unit_max"], np.maximum)
        self.sample_sum = _merge(self.sample_sum, part["sample_sum"], np.add)
        self.sample_sumsq = _merge(self.sample_sumsq, part["sample_sumsq"], np.add)
        room = SAMPLES_KEPT - len(self.sample_rms)
        if room > 0 and "sample_rms" in part:
            self.sample_rms += np.asarray(part["sample_rms"], np.float64)[:room].tolist()
            self.sample_zero += np.asarray(part["sample_zero"], np.float64)[:room].tolist()

    def merge(self, other: ValueSummary) -> ValueSummary:
        """Returns the summary of both (e.g. from two machines)."""
        merged = ValueSummary()
        for part in (self, other):
            merged.update(part.as_part())
        return merged

    def as_part(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    # -- derived ---------------------------------------------------------
    @property
    def finite_n(self) -> int:
        return self.n - self.nan - self.inf

    @property
    def mean(self) -> float:
        return self.sum / max(self.finite_n, 1)

    @property
    def std(self) -> float:
        return float(np.sqrt(max(self.sumsq / max(self.finite_n, 1) - self.mean**2, 0.0)))

    @property
    def rms(self) -> float:
        return float(np.sqrt(self.sumsq / max(self.finite_n, 1)))

    def share(self, name: str) -> float:
        return getattr(self, name) / max(self.n, 1)

    @property
    def gate_saturated_share(self) -> float:
        """For a recurrent layer: share of gate pre-activations (input part) beyond the flat threshold."""
        return self.gate_flat / self.gate_n if self.gate_n else 0.0

    @property
    def never_active_share(self) -> float:
        """Share of units (last axis) whose value never exceeded 0 on the batch."""
        if self.unit_max is None or self.unit_max.size == 0:
            return 0.0
        return float(np.mean(self.unit_max <= 0))

    @property
    def spread_across_samples(self) -> float:
        """RMS over units of the std across samples of each unit's per-sample mean."""
        if self.sample_sum is None or self.n_samples < 2:
            return float("nan")
        m = self.sample_sum / self.n_samples
        var = np.maximum(self.sample_sumsq / self.n_samples - m**2, 0.0)
        return float(np.sqrt(np.mean(var)))

    @property
    def relative_spread(self) -> float:
        """Spread across samples relative to the typical magnitude; 0 for an all-zero layer."""
        spread = self.spread_across_samples
        if not np.isfinite(spread):
            return float("nan")
        return spread / self.rms if self.rms > 0 else 0.0


def _merge(a, b, op):
    b = np.asarray(b)
    return b.copy() if a is None else op(a, b)
