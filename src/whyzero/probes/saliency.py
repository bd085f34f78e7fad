"""Which pixels drive one sample's prediction: Grad-CAM for conv models and vision transformers, gradient x input
otherwise.

Computed for the few samples the drill-down shows (``summaries.THUMBNAILS``), in one gradient pass.  A vision
transformer's feature map is its tokens laid back on the patch grid they were cut from (the grid of an earlier
feature map with as many positions; a leading class token left out), as Grad-CAM is applied to transformers.
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
        maps = from_grad_cam(grad_cam(features, grads[1], height, width).numpy(), (height, width))
        if maps is not None:
            return maps
    if grads[0] is None:
        return None
    return [_unit(m) for m in tf.reduce_sum(tf.abs(grads[0] * x), axis=-1).numpy()], "gradient x input"


def grad_cam(features, grads, height: int, width: int):
    """Grad-CAM maps (N, h, w): the feature map weighted by each channel's mean gradient, negatives cut; tokens
    (``last_feature_map``) on their patch grid."""
    grid = _grid(features.shape, height, width)
    if grid is not None:
        features, grads = (tf.reshape(t[:, -grid[0] * grid[1]:], [-1, *grid, t.shape[-1]]) for t in (features, grads))
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
    """The last of ``tensors`` that is a spatial feature map of an (height, width) image, or None: an (N, h, w, c)
    map, or (N, tokens, c) tokens cut from one (as many as an earlier map's h x w positions, or one more: a
    class token)."""
    found, positions = None, set()
    for t in tensors:
        if _spatial(t, height, width):
            found = t
            positions.add(int(t.shape[1]) * int(t.shape[2]))
        elif _tokens(t):
            grid = _grid(t.shape, height, width)
            if grid is not None and grid[0] * grid[1] in positions:
                found = t
    return found


def _tokens(tensor) -> bool:
    """A float (N, tokens, c) tensor with more channels than a picture."""
    shape = _float_shape(tensor, 3)
    return shape is not None and shape[1] > 1 and shape[2] > 3


def _grid(shape, height: int, width: int) -> tuple[int, int] | None:
    """The patch grid (rows, columns) of a token map of ``shape`` for an (height, width) image: the one whose
    rows:columns is the image's and whose positions are the tokens (less a class token); None for an (N, h, w,
    c) map."""
    if len(shape) != 3:
        return None
    for count in (int(shape[1]), int(shape[1]) - 1):
        rows = round((count * height / width) ** 0.5)
        if rows > 0 and count % rows == 0 and abs(rows / (count // rows) - height / width) < 0.5 * height / width:
            return rows, count // rows
    return None


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
    shape = _float_shape(tensor, 4)
    return shape is not None and 1 < shape[1] <= height and 1 < shape[2] <= width and shape[3] > 3


def _float_shape(tensor, rank: int) -> tuple | None:
    """The shape of a float tensor of ``rank`` whose sizes past the batch are known, else None."""
    shape, dtype = getattr(tensor, "shape", None), getattr(tensor, "dtype", None)
    if shape is None or len(shape) != rank or dtype is None or not tf.as_dtype(dtype).is_floating:
        return None
    return None if None in tuple(shape[1:]) else tuple(shape)


def _unit(m: np.ndarray) -> np.ndarray:
    """Scaled to 0..1 from its own minimum to its maximum (as Grad-CAM maps are drawn): a map that is high
    everywhere still shows where it is highest."""
    m = np.nan_to_num(np.asarray(m, np.float64))
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
