"""Which pixels drive one sample's prediction: Grad-CAM for conv models, gradient x input otherwise.

Computed for the few samples the drill-down shows (``summaries.THUMBNAILS``), in one gradient pass.
"""

from __future__ import annotations

import numpy as np

from whyzero._tf import tf
from whyzero.model_info import layer_activation
from whyzero.probes.capture import can_capture, capturing

SALIENCY_SAMPLES = 8
SALIENCY_CHUNK = 2


def saliency(model, images: np.ndarray, kind: str) -> tuple[list[np.ndarray], str] | None:
    """One heat map (H, W, 0..1) per image for the class each is predicted as, and the method used.

    Grad-CAM (Selvaraju et al., 2017) on the last layer with a spatial output where the model's layers can be
    captured; gradient x input (Shrikumar et al., 2016) otherwise.  None when no gradient reaches the input.
    Two images at a time, so the memory stays that of a two-sample backward pass.
    """
    maps, methods = [], set()
    for start in range(0, min(len(images), SALIENCY_SAMPLES), SALIENCY_CHUNK):
        part = _saliency_chunk(model, np.asarray(images[start:start + SALIENCY_CHUNK], np.float32), kind)
        if part is None:
            return None
        maps.extend(part[0])
        methods.add(part[1])
    return maps, " and ".join(sorted(methods))


def from_grad_cam(maps: np.ndarray | None, size) -> tuple[list[np.ndarray], str] | None:
    """The probe's Grad-CAM maps (N, h, w) at the image's size, each scaled to 0..1; None when there are none or
    no gradient reached the feature map (a saturated output: gradient x input is tried instead)."""
    if maps is None or not len(maps) or not np.max(maps) > 0:
        return None
    resized = tf.image.resize(tf.convert_to_tensor(maps, tf.float32)[..., None], tuple(int(s) for s in size))
    return [_unit(m) for m in resized[..., 0].numpy()], "Grad-CAM"


def _saliency_chunk(model, images: np.ndarray, kind: str) -> tuple[list[np.ndarray], str] | None:
    x = tf.convert_to_tensor(images)
    height, width = int(x.shape[1]), int(x.shape[2])
    with tf.GradientTape() as tape:
        tape.watch(x)
        if can_capture(model):
            with capturing(model) as calls:
                out = model(x, training=False)
        else:
            calls, out = [], model(x, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        target = saliency_target(tf.cast(pre_activation(calls, out), tf.float32), kind)
    features = last_feature_map([c.output for c in calls], height, width)
    del calls  # only the last feature map is kept alive
    grads = tape.gradient(target, [x] if features is None else [x, features])
    if features is not None and grads[1] is not None:
        maps = from_grad_cam(grad_cam(features, grads[1]).numpy(), (height, width))
        if maps is not None:
            return maps
    if grads[0] is None:
        return None
    return [_unit(m) for m in tf.reduce_sum(tf.abs(grads[0] * x), axis=-1).numpy()], "gradient x input"


def grad_cam(features, grads):
    """Grad-CAM maps (N, h, w): the feature map weighted by each channel's mean gradient, negatives cut."""
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))


def pre_activation(calls: list, out):
    """The model's class scores before its final softmax or sigmoid, from the captured layer calls; ``out`` when
    there is no such activation.  Grad-CAM explains the score before the softmax (Selvaraju et al.): a saturated
    probability has no gradient left, and its map would be flat."""
    last = next((c for c in reversed(calls) if c.output is out), None)
    if last is None or layer_activation(last.layer) not in ("softmax", "sigmoid"):
        return out
    layer = last.layer
    if type(layer).__name__ in ("Activation", "Softmax"):
        return last.inputs
    activation = layer.__dict__.get("activation")  # a plain attribute, set back below
    if activation is None or last.inputs is None:
        return out
    try:  # the layer's own computation once more, without its activation (the head only: cheap)
        object.__setattr__(layer, "activation", None)
        return type(layer).call(layer, last.inputs)
    except Exception:  # noqa: BLE001 - a layer that needs its activation: the probabilities then
        return out
    finally:
        object.__setattr__(layer, "activation", activation)


def last_feature_map(tensors: list, height: int, width: int):
    """The last of ``tensors`` that is a spatial feature map of an (height, width) image, or None."""
    spatial = [t for t in tensors if _spatial(t, height, width)]
    return spatial[-1] if spatial else None


def saliency_target(out, kind: str):
    """Per sample, the score of the class it is predicted as (summed over pixels for segmentation)."""
    flat = tf.reshape(out, [tf.shape(out)[0], -1]) if kind != "segmentation" else out
    if kind == "segmentation":
        top = tf.reduce_max(out, axis=-1) if out.shape[-1] > 1 else out[..., 0]
        return tf.reduce_sum(top)
    if kind == "multiclass":
        return tf.reduce_sum(tf.reduce_max(flat, axis=1))
    return tf.reduce_sum(flat[:, 0])


def _spatial(tensor, height: int, width: int) -> bool:
    """A float (N, h, w, c) feature map with room to localise (h, w > 1) and more channels than a picture."""
    shape = getattr(tensor, "shape", None)
    dtype = getattr(tensor, "dtype", None)
    if shape is None or len(shape) != 4 or dtype is None or not tf.as_dtype(dtype).is_floating:
        return False
    h, w, c = shape[1], shape[2], shape[3]
    return None not in (h, w, c) and 1 < h <= height and 1 < w <= width and c > 3


def _unit(m: np.ndarray) -> np.ndarray:
    """Scaled to 0..1 from its own minimum to its maximum (as Grad-CAM maps are drawn): a map that is high
    everywhere still shows where it is highest."""
    m = np.nan_to_num(np.asarray(m, np.float64))
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
