"""whyzero: find out why a Keras model predicts zero, or one constant thing."""

from whyzero._quiet import import_tensorflow_quietly

__version__ = "0.1.0"

import_tensorflow_quietly()

from whyzero.diagnosis import Diagnosis, Finding  # noqa: E402
from whyzero.engine import diagnose  # noqa: E402
from whyzero.errors import UnsafeModelError, WhyzeroError  # noqa: E402
from whyzero.probes.inputs import InputStats  # noqa: E402

__all__ = ["Diagnosis", "Finding", "InputStats", "UnsafeModelError", "WhyzeroError", "diagnose", "__version__"]
