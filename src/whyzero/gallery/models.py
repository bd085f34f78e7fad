"""Small Keras models the gallery trains: each builds in seconds on a 2-core CPU."""

from __future__ import annotations

import numpy as np

from whyzero._lazy import LazyModule

keras = LazyModule("keras")  # imported on first use: `gallery list` needs no TensorFlow

EPOCHS = 4


def seed(value: int = 0) -> None:
    keras.utils.set_random_seed(value)


def cnn_bn(input_shape, classes: int, rescale: float | None = None) -> keras.Model:
    """Conv -> BatchNorm blocks -> pooled softmax; ``rescale`` puts a Rescaling layer first."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(rescale, name="rescale")(inputs) if rescale else inputs
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="cnn_bn")


def mlp(n_features: int, hidden=(32, 16), activation: str = "relu", out_units: int = 1,
        out_activation: str | None = "sigmoid", kernel_initializer="glorot_uniform", name: str = "mlp") -> keras.Model:
    inputs = keras.Input((n_features,))
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation=activation, kernel_initializer=kernel_initializer,
                               name=f"dense{i + 1}")(x)
    outputs = keras.layers.Dense(out_units, activation=out_activation, name="output")(x)
    return keras.Model(inputs, outputs, name=name)


def fcn(input_shape, channels: int = 1) -> keras.Model:
    """A small fully convolutional segmenter: per-pixel sigmoid (one channel) or softmax."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    outputs = keras.layers.Conv2D(channels, 1, activation="sigmoid" if channels == 1 else "softmax",
                                  name="mask")(x)
    return keras.Model(inputs, outputs, name="fcn")


def fit(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS, batch_size: int = 32) -> keras.Model:
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    return model
