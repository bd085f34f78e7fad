"""The model re-run under a change a cause's proof needs: its BatchNorm layers on the batch's own statistics,
or every layer computing in float32; and what the outputs did under it."""

from __future__ import annotations

from typing import Any

import numpy as np

from whyzero._lazy import LazyModule
from whyzero.memory import accuracy, output_brief
from whyzero.probes.capture import leaf_layers

keras = LazyModule("keras")

# The BatchNorm layers are re-run on the batch's own statistics when the batch sits at least this far from their
# memory (the distance ``checks.inputs.RANGE_WARNING`` starts to warn at), or when their moving statistics are only
# part of the way from their initial values: a stale memory and a wrong preprocessing look alike until then.
BATCHNORM_RERUN_DISTANCE = 1.0


# Layers that only add noise in training: switched off while the BatchNorm layers run in training mode.
_NOISE_LAYERS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "AlphaDropout",
                 "GaussianDropout", "GaussianNoise")


def batchnorm_rerun(model, batch, chunk: int) -> np.ndarray | None:
    """The model's outputs with every BatchNormalization layer normalizing by the statistics of the batch it sees
    (training mode), the other layers as at inference; the moving statistics are restored afterwards.  None for a
    model without BatchNorm layers or one that cannot run so."""
    layers = [layer for _, layer in leaf_layers(model)]
    bns = [layer for layer in layers if type(layer).__name__ == "BatchNormalization"]
    if not bns:
        return None
    saved = [[np.array(v) for v in (bn.moving_mean, bn.moving_variance)] for bn in bns]
    noise = [(layer, attr, getattr(layer, attr)) for layer in layers if type(layer).__name__ in _NOISE_LAYERS
             for attr in ("rate", "stddev") if hasattr(layer, attr)]
    try:
        for layer, attr, _ in noise:
            setattr(layer, attr, 0.0)
        size = max(int(chunk), min(len(batch), 64))  # batch statistics need samples: at least 64 a call
        parts = [np.asarray(model(batch[i:i + size], training=True)) for i in range(0, len(batch), size)]
        return np.concatenate(parts)
    except Exception:  # noqa: BLE001 - a model that cannot run in training mode: nothing measured
        return None
    finally:
        for layer, attr, value in noise:
            setattr(layer, attr, value)
        for bn, (mean, variance) in zip(bns, saved):
            bn.moving_mean.assign(mean)
            bn.moving_variance.assign(variance)


def rerun_brief(rerun: np.ndarray, given: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """The outputs re-run against the outputs as given: their brief (``output_brief``) and, with class labels, the
    share right."""
    brief = {"rerun": output_brief(rerun), "given": output_brief(given)}
    if labels is not None and labels.ndim == 1 and len(labels) == len(rerun):
        brief["rerun"]["accuracy"] = accuracy(rerun, labels)
        brief["given"]["accuracy"] = accuracy(given, labels)
    return brief


def float32_rerun(model, batch, chunk: int) -> np.ndarray | None:
    """The model's outputs with every layer computing in float32 (a clone with the same weights), for a model under
    a float16 policy; None for one that cannot be cloned (a subclassed model)."""
    def float32_layer(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    try:
        clone = keras.models.clone_model(model, clone_function=float32_layer)
        clone.set_weights(model.get_weights())
        size = max(int(chunk), 1)
        return np.concatenate([np.asarray(clone(batch[i:i + size], training=False), np.float32)
                               for i in range(0, len(batch), size)])
    except Exception:  # noqa: BLE001 - a model Keras cannot clone: nothing measured
        return None
