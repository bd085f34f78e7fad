"""Everything the checks read: the model, the batch, and what the probes measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whyzero.feed import MultiInput
from whyzero.loading.models import LoadedModel
from whyzero.measurements import ModelMemory, Task, WhatIf, decision_cut, predicted_classes
from whyzero.probes.forward import ForwardResult
from whyzero.probes.inputs import InputStats


@dataclass
class Context:
    """The live side of a diagnosis: the model, the batch and what the probes measured.

    Only the engine uses it; the checks read ``Measurements.from_context(ctx)`` and the proofs a ``LiveRun`` over
    those measurements.
    """

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
    memory: ModelMemory = field(default_factory=ModelMemory)
    whatif: WhatIf | None = None
    gradient_labels: str = "none"
    notes: list[str] = field(default_factory=list)
    multi: MultiInput | None = None
    chunk: int = 1  # samples per forward pass (``prepare.chunk_size``): re-runs take the probe's
    # the outputs with every BatchNormalization layer using the batch's own statistics (``memory.batchnorm_rerun``)
    batchnorm_outputs: np.ndarray | None = None

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
        if self.task.kind == "regression":
            return None
        return predicted_classes(self.outputs, self.task.kind, decision_cut(self.task, self.labels))
