"""TensorFlow, imported once and quietly (its C++ start-up messages are not for users), on first use: the
dashboard browses a stored diagnosis without loading it."""

from whyzero._lazy import LazyModule

tf = LazyModule("tensorflow")
