"""whyzero: find out why a Keras model predicts zero, or one constant thing."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

import tensorflow as _tf  # noqa: E402

_tf.get_logger().setLevel("ERROR")  # retracing chatter is not for users

from whyzero.diagnosis import Diagnosis, Finding  # noqa: E402
from whyzero.engine import diagnose  # noqa: E402
from whyzero.probes.inputs import InputStats  # noqa: E402

__all__ = ["Diagnosis", "Finding", "InputStats", "diagnose", "__version__"]
