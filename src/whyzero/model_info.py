"""What a model is: its layers, final activation, loss and optimizer, as plain data."""

from __future__ import annotations

from typing import Any

import numpy as np

from whyzero.probes.capture import is_container, leaf_layers

PROBABILITY_ACTIVATIONS = {"sigmoid", "softmax"}
_LOSS_ALIASES = {
    "binary_crossentropy": "binary_crossentropy", "binarycrossentropy": "binary_crossentropy",
    "bce": "binary_crossentropy", "binary_focal_crossentropy": "binary_crossentropy",
    "binaryfocalcrossentropy": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy", "categoricalcrossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
    "mean_squared_error": "mse", "meansquarederror": "mse", "mse": "mse",
    "mean_absolute_error": "mae", "meanabsoluteerror": "mae", "mae": "mae",
    "huber": "huber", "huber_loss": "huber", "mean_squared_logarithmic_error": "msle",
    "meansquaredlogarithmicerror": "msle", "msle": "msle", "log_cosh": "log_cosh", "logcosh": "log_cosh",
    "poisson": "poisson", "mean_absolute_percentage_error": "mape", "meanabsolutepercentageerror": "mape",
    "mape": "mape",
}
# counts (poisson) and percentages are regressions too: small whole-number targets are not class ids there
REGRESSION_LOSSES = {"mse", "mae", "huber", "msle", "log_cosh", "poisson", "mape"}
CROSS_ENTROPIES = {"binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"}


def layer_activation(layer) -> str | None:
    """The activation a layer applies, by name ('relu', 'sigmoid', 'linear'...), or None."""
    kind = type(layer).__name__
    if kind == "ReLU":
        return "relu"
    if kind == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return name.lower()


def param_count(layer_or_model) -> int:
    """How many values its weights hold."""
    return int(sum(int(np.prod(w.shape)) for w in getattr(layer_or_model, "weights", [])))


def layer_table(model, prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """One row per layer, nested models expanded under their own row: path, type, activation, output
    shape, parameters, trainable, and the nesting depth (0 = top level)."""

    rows = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        rows.append({
            "name": f"{prefix}{layer.name}",
            "type": type(layer).__name__,
            "activation": None if is_container(layer) else layer_activation(layer),
            "output_shape": _output_shape(layer),
            "params": param_count(layer),
            "trainable": bool(layer.trainable),
            "depth": depth,
        })
        if is_container(layer):
            rows.extend(layer_table(layer, f"{prefix}{layer.name}/", depth + 1))
    return rows


def _output_shape(layer) -> list | None:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    return [None if d is None else int(d) for d in shape]


def final_layer(model):
    """The layer that produces the output (skipping InputLayer), inside a nested model if it ends one."""
    layers = [l for l in getattr(model, "layers", []) if type(l).__name__ != "InputLayer"]
    if not layers:
        return None
    return final_layer(layers[-1]) if is_container(layers[-1]) else layers[-1]


def output_activation(model) -> str | None:
    """The last activation applied to the output, looking through a final Activation/Lambda."""
    layer = final_layer(model)
    if layer is None:
        return None
    if type(layer).__name__ == "Lambda":
        return "lambda"
    return layer_activation(layer)


def loss_info(model) -> dict[str, Any] | None:
    """The compiled loss: canonical name, from_logits, and the object itself (not serialized).

    For one head of a multi-output model (``select_output``), the loss of that head.
    """
    model, index = getattr(model, "whyzero_loss_of", (model, 0))
    loss = getattr(model, "loss", None)
    if loss is None:
        return None
    if isinstance(loss, (list, tuple)):
        loss = loss[min(index, len(loss) - 1)]
    if isinstance(loss, dict):
        values = list(loss.values())
        loss = values[min(index, len(values) - 1)]
    from_logits = False
    if isinstance(loss, str):
        raw = loss
    else:
        fn = getattr(loss, "fn", None)
        kwargs = getattr(loss, "_fn_kwargs", {}) or {}
        config = {}
        try:
            config = loss.get_config() or {}
        except Exception:  # noqa: BLE001 - custom losses may not serialize
            pass
        from_logits = bool(kwargs.get("from_logits", config.get("from_logits", False)))
        raw = (getattr(fn, "__name__", None) if fn is not None else None) or type(loss).__name__
        if raw in ("function", "LossFunctionWrapper"):
            raw = getattr(loss, "__name__", raw)
    key = raw.lower().replace(" ", "")
    return {"name": _LOSS_ALIASES.get(key, raw), "from_logits": from_logits, "raw": raw,
            "known": key in _LOSS_ALIASES, "object": loss}


def optimizer_info(model) -> dict[str, Any] | None:
    model = getattr(model, "whyzero_loss_of", (model, 0))[0]
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        lr = float(np.asarray(optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - schedules and odd optimizers
        lr = None
    try:
        steps = int(np.asarray(optimizer.iterations))
    except Exception:  # noqa: BLE001 - an optimizer that was never built, or one without a step count
        steps = None
    return {"name": type(optimizer).__name__, "learning_rate": lr, "iterations": steps}


def kernel_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in, fan_out of a kernel as Keras initializers compute them."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def kernels(layer) -> list:
    """The layer's kernel variables (rank >= 2), not biases or normalization scales."""
    return [w for w in layer.trainable_weights if len(w.shape) >= 2]


def weight_table(model) -> list[dict]:
    """Per layer with a kernel: its std against the Glorot and He std of its fans."""
    rows = []

    for path, layer in leaf_layers(model):
        for kernel in kernels(layer)[:1]:
            if type(layer).__name__ in ("Embedding",):
                continue
            w = np.ravel(kernel.numpy() if hasattr(kernel, "numpy") else kernel)
            fan_in, fan_out = kernel_fans(tuple(int(d) for d in kernel.shape))
            glorot = float(np.sqrt(2.0 / (fan_in + fan_out)))
            he = float(np.sqrt(2.0 / fan_in))
            lo, hi = min(glorot, he), max(glorot, he)
            # convolutions are also initialized by fan_out (He 'fan_out': EfficientNet, ResNets ported from torch),
            # depthwise ones per channel
            if len(kernel.shape) >= 3:
                hi = max(hi, float(np.sqrt(2.0 / fan_out)))
            mean, std, nonfinite = _moments(w)
            magnitude = np.abs(w[np.isfinite(w)]) if nonfinite else np.abs(w)
            ratio = std / lo if std < lo else (std / hi if std > hi else 1.0)
            rows.append({"layer": path, "type": type(layer).__name__, "std": std,
                         "mean": mean, "values": int(w.size),
                         "nonfinite": nonfinite,
                         "expected_low": lo, "expected_high": hi, "ratio": ratio, "fan_in": fan_in,
                         "fan_out": fan_out, **regularizer_factors(layer), "bias_zero": bias_is_zero(layer),
                         **_magnitudes(magnitude)})
    return rows


def regularizer_factors(layer) -> dict[str, float]:
    """The L1 and L2 factors of a layer's kernel regularizer (0 where there is none or it cannot be read)."""
    reg = getattr(layer, "kernel_regularizer", None)
    if reg is None:
        return {"l1": 0.0, "l2": 0.0}
    try:
        config = reg.get_config()
    except Exception:  # noqa: BLE001 - a custom regularizer without a config
        config = {}
    return {"l1": float(config.get("l1", 0.0) or 0.0), "l2": float(config.get("l2", 0.0) or 0.0)}


def bias_is_zero(layer) -> bool | None:
    """Whether the layer's bias is exactly zero, as every Keras initializer leaves it; None without a bias."""
    bias = getattr(layer, "bias", None)
    if bias is None:
        return None
    values = np.asarray(bias.numpy() if hasattr(bias, "numpy") else bias)
    return bool(values.size and not np.any(values))


def _magnitudes(magnitude: np.ndarray) -> dict[str, float | None]:
    """The mean of |w| and its relative spread, std(|w|) / mean(|w|): about 0.58 for a uniform draw, 0.66..0.76 for
    (truncated) normal ones, near 0 for kernels that all sit at one size (sign-like steps of an adaptive optimizer);
    None for fewer than 2 values.  As ``_moments`` (ResNet50's 25M by ``np.std`` in float64: 0.19 s, this 0.07 s)."""
    mean, std, _ = _moments(magnitude)
    return {"magnitude_mean": mean, "magnitude_spread": std / mean if magnitude.size >= 2 and mean > 0 else None}


def _moments(w: np.ndarray) -> tuple[float, float, int]:
    """(mean, std, values not finite) of a flat kernel, over its finite values (their spread; the count says
    training diverged).  The mean is summed in float64; the spread is one float32 dot product of the centred values,
    recomputed in float64 when it overflows (ResNet50's kernels in float64: ~0.1 s, this a fifth of it).  The finite
    values are looked for only when the sum says there are others (NaN and Inf carry into it)."""
    total, nonfinite = float(np.sum(w, dtype=np.float64)), 0
    if not np.isfinite(total):
        finite = np.isfinite(w)
        nonfinite = int(w.size - np.count_nonzero(finite))
        w = w[finite]
        total = float(np.sum(w, dtype=np.float64))
    if not w.size:
        return 0.0, 0.0, nonfinite
    mean = total / w.size
    centred = np.asarray(w, np.float32) - np.float32(mean)
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.dot(centred, centred))
    if not np.isfinite(spread):
        centred = np.asarray(w, np.float64) - mean
        spread = float(np.dot(centred, centred))
    return mean, float(np.sqrt(spread / w.size)), nonfinite


# Activations whose outputs are well understood; a Lambda or any other activation is custom, and its share of
# outputs pinned at exactly 0 or 1 is measured (model.unstable_lambda).
STANDARD_ACTIVATIONS = (None, "linear", "relu", "sigmoid", "softmax", "tanh", "elu", "selu", "gelu", "swish", "silu",
                        "softplus", "leaky_relu", "relu6")


def is_custom(layer_type: str, activation: str | None) -> bool:
    """A Lambda layer, or a layer with an activation outside ``STANDARD_ACTIVATIONS``."""
    return layer_type == "Lambda" or activation not in STANDARD_ACTIVATIONS
