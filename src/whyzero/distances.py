"""How far a batch sits from what the model remembers of its training inputs, or from a training reference.

Pure numpy on statistics already measured: BatchNorm moving statistics against the batch's, a reference's
per-channel mean and std, an adapted ``Normalization`` layer's.  0 means the same distribution; each unit is one
standard deviation or one decade of variance off.
"""

from __future__ import annotations

import numpy as np

from whyzero.measurements import BatchNormRow, NormalizationMemory
from whyzero.probes.inputs import InputStats

# BatchNorm layers compared: the first few see the input most directly.
MEMORY_LAYERS = 3
# A channel whose moving statistics are still at their initial values (0 mean, 1 variance)
# was never trained; such a layer has no memory to compare with.
UNTRAINED_TOLERANCE = 1e-6

# A BatchNorm layer's moving statistics start at mean 0, variance 1 and move toward the training batches'
# by (1 - momentum) per step: after t steps they hold a share c = 1 - momentum**t of the way (Keras'
# momentum 0.99 needs ~460 steps for c = 0.99).  A briefly trained model's memory is only part of the way,
# and a batch from the training distribution looks far from it.  Where one share c explains every
# channel's mean and variance (moving = c * batch + (1 - c) * initial, to within CONVERGED_FIT), the batch
# is compared with the corrected memory, as Adam corrects its moment estimates for their bias to zero.
CONVERGENCE_GRID = np.geomspace(0.02, 1.0, 60)
CONVERGED_FIT = 0.5  # the distance a matching batch scores (see checks.inputs.RANGE_WARNING)


def _bn_distance(mean, var, moving_mean, moving_variance, epsilon, c: float = 1.0) -> tuple[float, float]:
    """(median |z| of the means, median log10 variance ratio) against the memory corrected for share ``c``."""
    z, log_ratio = _bn_distances(mean, var, moving_mean, moving_variance, epsilon, np.array([c], np.float64))
    return float(z[0]), float(log_ratio[0])


def _bn_distances(mean, var, moving_mean, moving_variance, epsilon, shares: np.ndarray) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """``_bn_distance`` for each share of ``shares`` at once (one median over a (share, channel) table: the
    convergence grid's 60 shares one by one took ~3 ms a layer, each candidate of the what-if paying it)."""
    c = shares[:, None]
    ref_mean = moving_mean / c
    ref_var = np.maximum((moving_variance - (1.0 - c)) / c, 0.0)
    z = np.abs(mean - ref_mean) / np.sqrt(ref_var + epsilon)
    log_ratio = np.log10((var + epsilon) / (ref_var + epsilon))
    return np.median(z, axis=1), np.median(log_ratio, axis=1)


def converged_share(mean, var, moving_mean, moving_variance, epsilon) -> float:
    """How far the moving statistics have moved from their initial values toward the batch's: 1, or the share c
    that explains them all (see ``CONVERGENCE_GRID``) when the memory taken as is does not match.

    Used only where the optimizer's step count is unknown; the fit must be close (``CONVERGED_FIT / 2``),
    since a mismatched batch can half fit too.
    """
    z, r = _bn_distance(mean, var, moving_mean, moving_variance, epsilon)
    if z + abs(r) < CONVERGED_FIT:
        return 1.0
    z, r = _bn_distances(mean, var, moving_mean, moving_variance, epsilon, CONVERGENCE_GRID)
    scores = np.abs(z) + np.abs(r)
    best = int(np.argmin(scores))
    return float(CONVERGENCE_GRID[best]) if scores[best] < CONVERGED_FIT / 2 else 1.0


def batchnorm_memory(bns: list) -> list[BatchNormRow]:
    """Per BatchNorm layer: how far the batch sits from the moving statistics.

    ``z_median`` is the median over channels of |batch mean - moving mean| / moving std;
    ``log10_var_ratio`` the median over channels of log10(batch variance / moving variance).
    Both are taken against the memory corrected for partial convergence (``converged``) where that
    explains it (see ``converged_share``).
    """
    rows = []
    for bn in bns:
        if bn.sum is None or bn.moving_mean is None:
            continue
        trained = not is_untrained(bn.moving_mean, bn.moving_variance)
        mean = bn.sum / max(bn.count, 1)
        var = np.maximum(bn.sumsq / max(bn.count, 1) - mean**2, 0.0)
        moving_mean = np.asarray(bn.moving_mean, np.float64)
        moving_var = np.asarray(bn.moving_variance, np.float64)
        if not trained:
            c = 1.0
        elif bn.converged is not None:
            # the optimizer's steps are this model's; a base trained before them (transfer learning, then
            # fine-tuning under a new optimizer) brought its memory along: one that the batch matches as it is
            # needs no correction
            z, log_ratio = _bn_distance(mean, var, moving_mean, moving_var, bn.epsilon)
            c = 1.0 if z + abs(log_ratio) < CONVERGED_FIT else max(bn.converged, float(CONVERGENCE_GRID[0]))
        else:
            c = converged_share(mean, var, moving_mean, moving_var, bn.epsilon)
        z, log_ratio = _bn_distance(mean, var, moving_mean, moving_var, bn.epsilon, c)
        rows.append(BatchNormRow(bn.name, bool(trained), z, log_ratio, c, int(mean.size), mean[:64].tolist(),
                                 np.asarray(bn.moving_mean)[:64].tolist()))
    return rows


def memory_score(rows: list[BatchNormRow]) -> float | None:
    """Distance of a batch from the model's memory: mean of |z| + |log10 variance ratio| over
    the first trained BatchNorm layers (0 = matches; each unit is one std or one decade off)."""
    trained = [r for r in rows if r.trained][:MEMORY_LAYERS]
    if not trained:
        return None
    return float(np.mean([r.distance for r in trained]))


def distance(mean, std, ref_mean, ref_std) -> float:
    """Distance of per-channel statistics from a reference: median |z| of the means plus the median
    variance ratio in decades (0 = the same distribution; each unit is one std or one decade off)."""
    ref_std = np.maximum(np.asarray(ref_std, np.float64), 1e-12)
    z = np.abs(np.asarray(mean) - np.asarray(ref_mean)) / ref_std
    log_ratio = np.log10(np.maximum(np.asarray(std, np.float64), 1e-12) / ref_std) * 2  # variance decades
    return float(np.median(z) + abs(np.median(log_ratio)))


def stats_score(stats: InputStats, reference: InputStats) -> float:
    """The distance against a training reference's per-channel mean and std."""
    return distance(stats.mean, stats.std, reference.mean, reference.std)


def normalization_score(stats: InputStats, memory: NormalizationMemory) -> float:
    mean, var = np.asarray(memory.mean), np.asarray(memory.variance)
    if mean.size not in (1, stats.channels):
        mean, var = mean.mean(), var.mean()
    return distance(stats.mean, stats.std, mean, np.sqrt(np.maximum(var, 1e-12)))


def is_untrained(moving_mean, moving_variance) -> bool:
    """BatchNorm statistics still at their initial values (0 mean, 1 variance): no memory to compare with."""
    mean, var = np.asarray(moving_mean), np.asarray(moving_variance)
    return bool(np.all(np.abs(mean) < UNTRAINED_TOLERANCE) and np.all(np.abs(var - 1) < UNTRAINED_TOLERANCE))
