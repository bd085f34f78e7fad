"""whyzero: find out why a Keras model predicts zero, or one constant thing.

Imports inside functions are deliberately lazy: the public API loads the engine (TensorFlow) on first use.
"""

from whyzero.errors import UnsafeModelError, WhyzeroError

__version__ = "0.1.0"

# The public API loads TensorFlow on first use, so `whyzero --help` and `whyzero gallery list` start fast.
_LAZY = {"Diagnosis": "whyzero.diagnosis", "Finding": "whyzero.diagnosis", "diagnose": "whyzero.engine",
         "InputStats": "whyzero.probes.inputs", "Monitor": "whyzero.monitor"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        from whyzero._quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'whyzero' has no attribute {name!r}")


__all__ = ["Diagnosis", "Finding", "InputStats", "Monitor", "UnsafeModelError", "WhyzeroError", "diagnose",
           "__version__"]
