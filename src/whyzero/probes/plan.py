"""The probe's plan: which layers are probed (leaves, recurrent gates, the first BatchNorm inputs), found by one
dry run of two samples or read from the model's structure; each layer's flat region; BatchNorm's memory.

Imports inside functions are deliberately lazy: tf_keras and Keras load only for the model that needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from whyzero import feed
from whyzero._tf import tf
from whyzero.model_info import layer_activation
from whyzero.probes.capture import can_capture, capturing, layer_paths, single_float
from whyzero.probes.values import PRE_ACTIVATION_FLAT

# Output values at or beyond which a unit sits in the flat region: |pre-activation| >= PRE_ACTIVATION_FLAT,
# expressed on the activation's output.
FLAT_REGIONS = {
    "sigmoid": (float(1 / (1 + np.exp(PRE_ACTIVATION_FLAT))), float(1 / (1 + np.exp(-PRE_ACTIVATION_FLAT)))),
    "tanh": (float(-np.tanh(PRE_ACTIVATION_FLAT)), float(np.tanh(PRE_ACTIVATION_FLAT))),
    "hard_sigmoid": (0.0, 1.0),
}


@dataclass
class BatchNormInput:
    """Per-channel statistics of what a BatchNormalization layer receives, and what it remembers."""

    name: str
    count: float = 0.0
    sum: np.ndarray | None = None
    sumsq: np.ndarray | None = None
    moving_mean: np.ndarray | None = None
    moving_variance: np.ndarray | None = None
    epsilon: float = 1e-3
    converged: float | None = None  # share of the way from initial values, from the training steps (memory.py)

    def add(self, count, sums, sumsqs) -> None:
        """Merges one chunk's count, per-channel sums and sums of squares (tensors)."""
        self.count += float(count)
        self.sum = sums.numpy() if self.sum is None else self.sum + sums.numpy()
        self.sumsq = sumsqs.numpy() if self.sumsq is None else self.sumsq + sumsqs.numpy()


def probed_layers(model) -> list:
    """Top-level layers whose single output can be probed."""
    out = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        if isinstance(output, (list, tuple, dict)):
            continue
        out.append(layer)
    return out


def batchnorm_inputs(model, km, limit: int) -> list[tuple[Any, Any]]:
    """The first BatchNormalization layers, each with its input as a tensor of ``model``'s graph.

    Looks one level into nested models (``x = base(inputs)``, the usual transfer-learning shape).
    """
    found: list[tuple[Any, Any]] = []
    for layer in getattr(model, "layers", []):
        if len(found) >= limit:
            break
        if type(layer).__name__ == "BatchNormalization":
            found.append((layer, layer.input))
        elif hasattr(layer, "layers") and hasattr(layer, "inputs"):
            inner = [l for l in layer.layers if type(l).__name__ == "BatchNormalization"][: limit - len(found)]
            if inner:
                tensors = km.Model(layer.inputs, [l.input for l in inner])(layer.input)
                tensors = tensors if isinstance(tensors, (list, tuple)) else [tensors]
                found.extend(zip(inner, tensors))
    return found


def functional_module(model):
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras


@dataclass
class Plan:
    """Which layer calls of one pass are summarized, found by a dry run on two samples."""

    names: list[str]
    layers: list[Any]
    probe_index: list[int]
    gate_layers: list[Any]
    bn_index: list[int]
    bn_layers: list[Any]
    calls: int


def dry_run(model, sample, max_batchnorm: int = 8) -> tuple[Plan | None, np.ndarray]:
    """The model on two samples: which layer calls the pass will summarize (for a model probed by capture) and
    the outputs (the task is read from them before the pass).  ``static_outputs`` spares it where the output's
    shape says enough: the pass then finds its plan while it is traced."""
    if not can_capture(model):
        return None, predict(model, sample, 2)
    with capturing(model) as tape:
        out = model(feed.tensors(sample), training=False)
    return plan_of(tape, layer_paths(model), max_batchnorm), np.asarray(first_output(out), np.float32)


def static_outputs(model, activation: str | None) -> np.ndarray | None:
    """Zeros shaped like two samples of the model's single output, where its shape is known without running it
    and the task can be read from the shape alone (not a Lambda output, whose values decide); else None."""
    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError, RuntimeError, TypeError):
        return None
    if len(outputs) != 1 or activation == "lambda" or isinstance(getattr(model, "output", None), dict):
        return None
    shape = getattr(outputs[0], "shape", None)
    dtype = getattr(getattr(outputs[0], "dtype", None), "name", str(getattr(outputs[0], "dtype", "")))
    if shape is None or len(shape) < 2 or any(d is None for d in shape[1:]) or "float" not in str(dtype):
        return None
    return np.zeros((2, *[int(d) for d in shape[1:]]), np.float32)


def plan_of(tape, paths: dict, max_batchnorm: int = 8) -> Plan:
    """The plan from one captured call of the model (eager, or while its pass is traced)."""
    names, layers, probe_index, gate_layers, bn_index, seen = [], [], [], [], [], {}
    for i, call in enumerate(tape):
        if type(call.layer).__name__ == "BatchNormalization" and len(bn_index) < max_batchnorm \
                and single_float(call.inputs):
            bn_index.append(i)
        if not single_float(call.output):
            continue
        path = paths.get(id(call.layer), call.layer.name)
        seen[path] = seen.get(path, 0) + 1
        names.append(path if seen[path] == 1 else f"{path}#{seen[path]}")
        layers.append(call.layer)
        probe_index.append(i)
        gate_layers.append(gate_kernel(call.layer) if single_float(call.inputs) else None)
    return Plan(names, layers, probe_index, gate_layers, bn_index, [tape[i].layer for i in bn_index], len(tape))


def sources(tape, plan: Plan) -> list[int | None]:
    """For each probed call of ``tape``, the probed call (its index among them) whose output is the call's input;
    None where the input is no probed layer's output."""
    probed = {id(tape[i].output): k for k, i in enumerate(plan.probe_index)}
    return [probed.get(id(tape[i].inputs)) for i in plan.probe_index]


def gate_kernel(layer):
    """(kernel, bias) of a recurrent layer's input projection (LSTM, GRU, SimpleRNN), else None."""
    cell = getattr(layer, "cell", None)
    kernel = getattr(cell, "kernel", None)
    if kernel is None or len(kernel.shape) != 2:
        return None
    return kernel, getattr(cell, "bias", None)


def gate_preactivations(x, kernel_bias):
    if kernel_bias is None:
        return None
    kernel, bias = kernel_bias
    z = tf.tensordot(tf.cast(x, kernel.dtype), kernel, 1)
    if bias is not None and len(bias.shape) == 1 and bias.shape[0] == kernel.shape[1]:
        z = z + bias
    return z


def first_output(out):
    """The first output of a model that returns a dict, list or tuple of them; the output itself otherwise."""
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out[0] if isinstance(out, (list, tuple)) else out


# Below this share the moving statistics are corrected; above it they are taken as they are.
CONVERGED = 0.95


def steps_share(bn, model) -> float | None:
    """The share ``1 - momentum**steps`` from the optimizer's step count, or None where it is unknown.

    Only for a trainable BatchNorm layer: a frozen one (a transfer-learning base) kept the memory it came with.
    """
    if not getattr(bn, "trainable", True):
        return 1.0
    try:
        steps = int(np.asarray(model.optimizer.iterations))
    except (AttributeError, TypeError, ValueError):
        return None
    if steps <= 0:
        return None
    share = 1.0 - float(getattr(bn, "momentum", 0.99)) ** steps
    return share if share < CONVERGED else 1.0


def batchnorm_records(bn_layers: list, model) -> list[BatchNormInput]:
    return [BatchNormInput(bn.name, moving_mean=to_numpy(bn.moving_mean), moving_variance=to_numpy(bn.moving_variance),
                           epsilon=float(bn.epsilon), converged=steps_share(bn, model)) for bn in bn_layers]


def flat_region(layer) -> tuple[float | None, float | None]:
    """The values at or beyond which ``layer``'s output sits in its activation's flat region; (None, None): none."""
    return FLAT_REGIONS.get(layer_activation(layer) or "", (None, None))


_CEILINGS = {"relu": None, "relu6": 6.0}  # an Activation layer's clip by its activation's name


def relu_ceiling(layer) -> float | None:
    """``high`` for a layer that computes ``min(max(x, 0), high)`` of its input value by value (a ``ReLU`` without
    slope or threshold, an ``Activation`` of relu or relu6; ``inf`` without a ceiling), whose summary follows from its
    input's (``clipped_summary``); None for any other layer, or a ceiling below 2 (a value clipped to it could then
    count as pinned at 1 where its input's did not)."""
    kind = type(layer).__name__
    if kind == "ReLU":
        if float(getattr(layer, "negative_slope", 0.0) or 0.0) or float(getattr(layer, "threshold", 0.0) or 0.0):
            return None
        high = getattr(layer, "max_value", None)
    elif kind == "Activation" and layer_activation(layer) in _CEILINGS:
        high = _CEILINGS[layer_activation(layer)]
    else:
        return None
    high = np.inf if high is None else float(np.asarray(high))
    return high if high >= 2 else None


def predict(model, batch: np.ndarray, chunk_size: int) -> np.ndarray:
    """Plain predictions in chunks (for models without layers, and the preprocessing what-if)."""
    out: list[Any] = []
    for start in range(0, feed.rows(batch), chunk_size):
        result = model(feed.tensors(feed.take(batch, start, start + chunk_size)), training=False)
        out.append(np.asarray(first_output(result), np.float32))
    return np.concatenate(out)


def to_numpy(variable) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
