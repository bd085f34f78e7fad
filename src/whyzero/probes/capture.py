"""Every layer's output while the model runs, at any nesting depth, without rebuilding its graph.

Symbolic surgery (``keras.Model(model.inputs, [l.output for l in layers])``) breaks on nested models
(an inner layer's ``output`` lives in the inner graph) and on subclassed models (no graph at all).
Instead each leaf layer's ``call`` is wrapped for the duration of a pass: the wrapper records the
layer, its input and its output as they are computed, inside or outside a ``tf.function``.  Inner
layers are named by their path (``features/block1_conv1``).

Imports inside functions are deliberately lazy: Keras loads only when a model is inspected.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass
class Captured:
    """One layer call: the layer, its first input and its output."""

    layer: Any
    inputs: Any
    output: Any


def is_container(layer) -> bool:
    """A model used as a layer (Functional, Sequential or subclassed): its sublayers are probed instead."""
    return hasattr(layer, "layers") and isinstance(getattr(layer, "layers", None), list) and bool(layer.layers)


def leaf_layers(model, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, layer) for every layer that is not itself a model, depth first, input layers left out."""
    out: list[tuple[str, Any]] = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if is_container(layer):
            out.extend(leaf_layers(layer, f"{prefix}{layer.name}/"))
        else:
            out.append((f"{prefix}{layer.name}", layer))
    return out


def layer_paths(model) -> dict[int, str]:
    """id(layer) -> its path in the model."""
    return {id(layer): path for path, layer in leaf_layers(model)}


def is_keras3(model) -> bool:
    """A Keras 3 model (Functional, Sequential or subclassed), as opposed to tf_keras or a bare function."""
    import keras

    return isinstance(model, keras.Layer)


def can_capture(model) -> bool:
    """Whether the model's layers are probed by capture: every Keras 3 model, and a Keras-2 (tf_keras) model
    with models nested inside (their inner outputs live in another graph, out of reach of a symbolic cut)."""
    if is_keras3(model):
        return True
    return any(is_container(layer) for layer in getattr(model, "layers", []) or [])


@contextmanager
def capturing(model, keep: Callable[[Any], bool] = lambda layer: True) -> Iterator[list[Captured]]:
    """Records every call of the model's leaf layers (those ``keep`` accepts) while the block runs.

    Yields:
        The list the calls are appended to, in call order.
    """
    tape: list[Captured] = []
    patched = []
    try:
        for _, layer in leaf_layers(model):
            if not keep(layer) or "call" in layer.__dict__:
                continue
            layer.__dict__["call"] = _recorder(layer, layer.call, tape)
            patched.append(layer)
        yield tape
    finally:
        for layer in patched:
            layer.__dict__.pop("call", None)


def _recorder(layer, original, tape: list[Captured]):
    def call(*args, **kwargs):
        output = original(*args, **kwargs)
        tape.append(Captured(layer, args[0] if args else next(iter(kwargs.values()), None), output))
        return output

    return call


def single_float(tensor) -> bool:
    """Whether a layer output can be summarized: one floating tensor with a batch axis."""
    dtype = getattr(tensor, "dtype", None)
    shape = getattr(tensor, "shape", None)
    if dtype is None or shape is None or len(shape) < 1:
        return False
    name = getattr(dtype, "name", str(dtype))
    return "float" in str(name)
