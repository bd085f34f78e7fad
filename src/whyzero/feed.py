"""What the model is fed: one array, or one array per input for a model with several inputs.

The checks and panels look at one input, the *primary* one (an image input if there is one, else the
first); the others ride along unchanged in every forward pass, sliced to the same samples.  A fix
re-run changes the primary input only.

Imports inside functions are deliberately lazy: TensorFlow loads only when a batch is turned into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

Feed = Union[np.ndarray, list]


@dataclass
class MultiInput:
    """The inputs of a model with several, in the model's order; ``primary`` indexes the one checked."""

    names: list[str]
    arrays: list[np.ndarray]
    primary: int

    @property
    def primary_name(self) -> str:
        return self.names[self.primary]

    def feed(self, primary: np.ndarray) -> list[np.ndarray]:
        """The model's inputs with ``primary`` in its place, the others cut to as many samples."""
        n = len(primary)
        return [primary if i == self.primary else a[:n] for i, a in enumerate(self.arrays)]

    def truncate(self, n: int) -> MultiInput:
        return MultiInput(self.names, [a[:n] for a in self.arrays], self.primary)

    def describe(self) -> str:
        shapes = ", ".join(f"'{n}' {tuple(a.shape)}" for n, a in zip(self.names, self.arrays))
        return (f"the model has {len(self.names)} inputs ({shapes}): input statistics, the what-if and the fixes are "
                f"for '{self.primary_name}'; the others are fed as given")


def assemble(primary: np.ndarray, multi: MultiInput | None) -> Feed:
    return primary if multi is None else multi.feed(primary)


def rows(feed: Feed) -> int:
    return len(feed[0] if isinstance(feed, list) else feed)


def take(feed: Feed, start: int, stop: int) -> Feed:
    return [a[start:stop] for a in feed] if isinstance(feed, list) else feed[start:stop]


def is_text(array: np.ndarray) -> bool:
    """A batch of strings (a model that reads raw text through a ``TextVectorization`` layer)."""
    return np.asarray(array).dtype.kind in "US"


def text_features(array: np.ndarray) -> np.ndarray:
    """What the input statistics read of a text batch: each sample's words and characters, (N, 2)."""
    flat = np.asarray(array).reshape(len(array), -1)
    words = [sum(len(str(v).split()) for v in row) for row in flat]
    chars = [sum(len(str(v)) for v in row) for row in flat]
    return np.stack([np.asarray(words, np.float32), np.asarray(chars, np.float32)], 1)


def tensors(feed: Feed) -> Any:
    import tensorflow as tf

    return [tf.convert_to_tensor(a) for a in feed] if isinstance(feed, list) else tf.convert_to_tensor(feed)


def spec(feed: Feed) -> Any:
    """The ``tf.TensorSpec`` (or list of them) of any number of samples like ``feed``'s."""
    import tensorflow as tf

    def one(a: np.ndarray):
        return tf.TensorSpec([None, *a.shape[1:]], tf.string if is_text(a) else tf.as_dtype(a.dtype))

    return [one(a) for a in feed] if isinstance(feed, list) else one(feed)


def choose_primary(names: list[str], arrays: list[np.ndarray]) -> int:
    """The input the checks look at: the first image-like one (N, H, W, 1|3), else the first float one, else 0."""
    for i, a in enumerate(arrays):
        if a.ndim == 4 and a.shape[-1] in (1, 3):
            return i
    for i, a in enumerate(arrays):
        if a.dtype.kind == "f":
            return i
    return 0
