"""Everything the checks read: the model, the batch, and what the probes measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whyzero.loading.models import LoadedModel
from whyzero.probes.forward import ForwardResult
from whyzero.probes.inputs import InputStats


@dataclass
class Task:
    """What the output means.

    Attributes:
        kind: 'binary' (one sigmoid-like unit), 'multiclass', 'segmentation' or 'regression'.
        n_classes: classes the output can express (2 for one unit).
        activation: the final activation ('sigmoid', 'softmax', 'linear', 'relu', 'lambda'...).
        probabilities: whether outputs are probabilities.
    """

    kind: str
    n_classes: int
    activation: str | None
    probabilities: bool


@dataclass
class Context:
    loaded: LoadedModel
    batch: np.ndarray
    outputs: np.ndarray
    task: Task
    input_stats: InputStats
    labels: np.ndarray | None = None
    label_ids: np.ndarray | None = None
    masks: np.ndarray | None = None
    train_stats: InputStats | None = None
    forward: ForwardResult | None = None
    loss: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    is_image: bool = False
    memory: dict[str, Any] = field(default_factory=dict)
    whatif: dict[str, Any] | None = None
    gradient_labels: str = "none"
    notes: list[str] = field(default_factory=list)

    @property
    def model(self):
        return self.loaded.model

    @property
    def has_layers(self) -> bool:
        return self.loaded.has_layers

    def predicted_classes(self) -> np.ndarray | None:
        """The class each sample (or pixel, for segmentation) is predicted as: argmax, or > 0.5 for one unit.

        None for regression.
        """
        out = np.asarray(self.outputs)
        if self.task.kind == "regression":
            return None
        if self.task.kind == "segmentation":
            return (out[..., 0] > 0.5).astype(int) if out.shape[-1] == 1 else out.argmax(-1)
        flat = out.reshape(len(out), -1)
        return (flat[:, 0] > 0.5).astype(int) if flat.shape[1] == 1 else flat.argmax(1)
