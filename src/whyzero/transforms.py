"""Batch transformations a proof re-runs the model under: standardizing, mapping onto reference statistics,
undoing a model's own normalization."""

from __future__ import annotations

import numpy as np

from whyzero.probes.inputs import InputStats


def standardize(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std per feature (last axis), over every other axis."""
    x = np.asarray(x, np.float64)
    axes = tuple(range(x.ndim - 1)) if x.ndim > 1 else (0,)
    mean, std = x.mean(axes, keepdims=True), x.std(axes, keepdims=True)
    return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def to_reference(x: np.ndarray, reference: InputStats) -> np.ndarray:
    """The batch mapped onto reference statistics: its own mean and std per channel replaced by the reference's."""
    x = np.asarray(x, np.float64)
    stats = InputStats.of(x)
    shape = (1,) * (x.ndim - 1) + (-1,) if stats.channels == x.shape[-1] else (1,) * x.ndim
    mean, std = stats.mean.reshape(shape), np.maximum(stats.std, 1e-12).reshape(shape)
    return ((x - mean) / std * reference.std.reshape(shape) + reference.mean.reshape(shape)).astype(np.float32)


def unstandardize(mean, variance):
    """The transformation back to raw features from the output of a ``Normalization`` layer with these weights."""
    mean, var = np.asarray(mean), np.asarray(variance)
    return lambda x: (np.asarray(x, np.float64) * np.sqrt(var) + mean).astype(np.float32)


def reverse_channels(x: np.ndarray) -> np.ndarray:
    """The channels in reverse order (RGB <-> BGR)."""
    return x[..., ::-1]
