"""A mergeable summary of a tensor's values in numpy: the fixed-edge histogram, moments, shares, per-unit maxima.

The histogram edges are fixed once for all tensors (a symmetric logarithmic grid), so summaries from different
chunks, batches or machines merge by adding counts (``ValueSummary.merge``).  ``whyzero.probes.summary`` computes
one chunk's summary inside the TensorFlow graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Symmetric log grid: 8 bins per decade for |x| in [1e-4, 1e6], an exact split at 0,
# and two open bins beyond +-1e6.  Wide enough for 0..255 pixels and exploding layers.
BINS_PER_DECADE = 8
LOG10_MIN, LOG10_MAX = -4, 6
_POSITIVE = 10.0 ** np.linspace(LOG10_MIN, LOG10_MAX, (LOG10_MAX - LOG10_MIN) * BINS_PER_DECADE + 1)
BOUNDARIES = np.concatenate([-_POSITIVE[::-1], [0.0], _POSITIVE])
N_BINS = len(BOUNDARIES) + 1
# Values within two float32 steps of 1.0 count as pinned at 1: 1 / (1 + exp(-big)) often lands on
# 0.99999994 rather than 1.0 exactly.
ONE_TOLERANCE = 1.2e-7
# Samples whose own per-layer statistics are kept (the per-sample drill-down); the rest merge into the batch's.
SAMPLES_KEPT = 64
# |pre-activation| beyond which a sigmoid/tanh unit or gate is flat (DeepDiagnosis' saturation threshold).
PRE_ACTIVATION_FLAT = 5.0
# For plots: the open end bins drawn one decade wide.
EDGES = np.concatenate([[-(10.0 ** (LOG10_MAX + 1))], BOUNDARIES, [10.0 ** (LOG10_MAX + 1)]])


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
