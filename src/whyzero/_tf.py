"""TensorFlow, imported once and quietly (its C++ start-up messages are not for users)."""

from whyzero._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
