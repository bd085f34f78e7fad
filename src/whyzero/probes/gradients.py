"""The kernels' gradients the pass summed, reduced in numpy to what the gradient checks read."""

from __future__ import annotations

import numpy as np

from whyzero.model_info import kernels
from whyzero.probes.plan import to_numpy

# a sum of squares below this in float32 is recomputed in float64: a vanishing gradient's squares underflow
SUMSQ_FLOAT32_MIN = 1e-30


def attach_gradients(layers, probes, variables, grad_sum) -> None:
    """Each layer's kernels' summed gradient (``grad_sum``: variables) and weights, reduced in numpy
    (``_gradient_stats``)."""
    index = {id(v): i for i, v in enumerate(variables)}
    for layer, probe_ in zip(layers, probes):
        for kernel in kernels(layer):
            i = index.get(id(kernel))
            if i is None:
                continue
            nonfinite, nonzero, sumsq = _gradient_stats(to_numpy(grad_sum[i]))
            probe_.grad_nonfinite += nonfinite
            probe_.grad_nonzero += nonzero
            probe_.grad_sumsq += sumsq
            probe_.weight_norm = float(np.sqrt(probe_.weight_norm**2 + _gradient_stats(to_numpy(kernel))[2]))
            probe_.n_kernel += int(np.prod(kernel.shape))


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


