"""A module imported on first use, so commands that need no model (``whyzero --help``, ``gallery list``)
start without loading TensorFlow and Keras.

Imports inside functions are deliberately lazy: TensorFlow is imported quietly on first attribute access.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule(ModuleType):
    """Stands for ``name`` until an attribute is read, then imports it (quietly, after TensorFlow, unless
    ``tensorflow=False``: Plotly needs no TensorFlow)."""

    def __init__(self, name: str, tensorflow: bool = True) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None
        self._tensorflow = tensorflow

    def _load(self) -> ModuleType:
        if self._module is None:
            if self._tensorflow:
                from whyzero._quiet import import_tensorflow_quietly

                import_tensorflow_quietly()
            self._module = importlib.import_module(self.__name__)
        return self._module

    def __getattr__(self, attribute: str):
        return getattr(self._load(), attribute)
