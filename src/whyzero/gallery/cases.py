"""The cases: real data, a model trained right or broken on purpose, and what went wrong.

Each builder returns a ``Built``; ``causes`` are the ids of ``CAUSES.md`` it exhibits
(empty for a healthy twin).  Models that several cases share are built once per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from whyzero._lazy import LazyModule
from whyzero.gallery import data
from whyzero.gallery.models import cnn_bn, fcn, fit, mlp, seed

keras = LazyModule("keras")  # imported on first use: `gallery list` needs no TensorFlow


@dataclass
class Built:
    model: keras.Model
    inputs: np.ndarray
    labels: np.ndarray | None = None
    masks: np.ndarray | None = None
    train_inputs: np.ndarray | None = None


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    causes: tuple[str, ...]
    summary: str
    build: Callable[[], Built] = field(compare=False, repr=False)
    trust: bool = False
    seed_ref: str = ""
    roots: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.causes

    @property
    def expected_roots(self) -> tuple[str, ...]:
        """The causes that may come first (the root); the first declared cause unless said."""
        return self.roots or self.causes[:1]


CASES: dict[str, Case] = {}
BATCH = 64


def case(name: str, family: str, causes: tuple[str, ...], summary: str, trust: bool = False, seed_ref: str = "",
         roots: tuple[str, ...] = ()):
    """Registers a case; ``roots`` are the causes that may come first (default: the first of ``causes``)."""

    def register(fn: Callable[[], Built]) -> Callable[[], Built]:
        CASES[name] = Case(name, family, causes, summary, fn, trust, seed_ref, roots)
        return fn

    return register


# -- digits as images: a CNN with BatchNorm, trained on x / 255 ------------------------------------
@lru_cache(None)
def _digits():
    x, y = data.digits_images(32)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


def _trained_cnn(x: np.ndarray, y: np.ndarray, classes: int, epochs: int, rescale: float | None = None):
    """The gallery's BatchNorm CNN, trained on all but the first BATCH samples (those are the batch)."""
    seed(0)
    model = cnn_bn((32, 32, 3), classes, rescale=rescale)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:], y[BATCH:], epochs=epochs)


@lru_cache(None)
def _digits_cnn() -> keras.Model:
    x, y = _digits()
    return _trained_cnn(x / 255.0, y, 10, epochs=3)


@case("digits_healthy", "preprocessing", (), "A digits CNN fed as it was trained (x / 255).")
def _digits_healthy() -> Built:
    x, y = _digits()
    return Built(_digits_cnn(), x[:BATCH] / 255.0, y[:BATCH])


@case("digits_blank_loader", "preprocessing", ("input.invalid_values", "output.constant"),
      "A broken loader returns all-black images.")
def _digits_blank() -> Built:
    x, y = _digits()
    return Built(_digits_cnn(), np.zeros_like(x[:BATCH]), y[:BATCH])


# -- Rescaling inside the model ------------------------------------------------------------------
@lru_cache(None)
def _rescaling_cnn() -> keras.Model:
    x, y = _digits()
    return _trained_cnn(x, y, 10, epochs=3, rescale=1 / 255.0)


@case("rescaling_healthy", "rescaling", (), "A CNN that divides by 255 itself, fed raw pixels.")
def _rescaling_healthy() -> Built:
    x, y = _digits()
    return Built(_rescaling_cnn(), x[:BATCH], y[:BATCH])


@case("rescaling_double", "rescaling", ("input.double_normalization",),
      "The model divides by 255 itself and the batch was divided by 255 already.")
def _rescaling_double() -> Built:
    x, y = _digits()
    return Built(_rescaling_cnn(), x[:BATCH] / 255.0, y[:BATCH])


# -- photographs: colour matters --------------------------------------------------------------------
@lru_cache(None)
def _photos():
    return data.photo_patches(700, 32)


@lru_cache(None)
def _photo_cnn() -> keras.Model:
    x, y = _photos()
    return _trained_cnn(x / 255.0, y, 3, epochs=4)


@case("photos_healthy", "photos", (), "A CNN telling three scikit-image photos apart, fed RGB / 255.")
def _photos_healthy() -> Built:
    x, y = _photos()
    return Built(_photo_cnn(), x[:BATCH] / 255.0, y[:BATCH], train_inputs=x[BATCH:BATCH + 200] / 255.0)


@case("photos_batchnorm_stale", "photos", ("model.batchnorm_statistics",),
      "The photo CNN with BatchNorm momentum 0.999 (MobileNet's), trained 80 steps: right in training mode, but its "
      "moving statistics are still near their initial 0 and 1, so at inference it settles on one class.")
def _photos_batchnorm_stale() -> Built:
    x, y = _photos()
    seed(0)
    model = cnn_bn((32, 32, 3), 3)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.999
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    fit(model, x[BATCH:] / 255.0, y[BATCH:], epochs=4)
    return Built(model, x[:BATCH] / 255.0, y[:BATCH])


@case("photos_wrong_normalization", "photos", ("input.range_mismatch",),
      "Trained on x / 255, fed (x - 100) / 10 at inference; no training data is given, the "
      "BatchNorm layers' memory shows it.", seed_ref="000 example 1")
def _photos_wrong_normalization() -> Built:
    x, y = _photos()
    return Built(_photo_cnn(), ((x[:BATCH] - 100.0) / 10.0).astype(np.float32), y[:BATCH])


@case("photos_uint8", "photos", ("input.dtype_mismatch", "input.range_mismatch"),
      "Trained on x / 255, fed the raw uint8 pixels.", seed_ref="000 (dtype)",
      roots=("input.range_mismatch", "input.dtype_mismatch"))
def _photos_uint8() -> Built:
    x, y = _photos()
    return Built(_photo_cnn(), x[:BATCH].round().astype(np.uint8), y[:BATCH])


@case("photos_bgr", "photos", ("input.channel_order",), "Trained on RGB, fed BGR (an OpenCV loader).")
def _photos_bgr() -> Built:
    x, y = _photos()
    return Built(_photo_cnn(), x[:BATCH, ..., ::-1] / 255.0, y[:BATCH], train_inputs=x[BATCH:BATCH + 200] / 255.0)


# -- a backbone nested inside the model (the transfer-learning shape) ------------------------------
@lru_cache(None)
def _nested_photo_cnn() -> keras.Model:
    x, y = _photos()
    seed(0)
    body = cnn_bn((32, 32, 3), 3)
    features = keras.Model(body.input, body.get_layer("flatten").output, name="features")
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(features(inputs))
    model = keras.Model(inputs, outputs, name="nested_cnn")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:] / 255.0, y[BATCH:], epochs=4)


@case("nested_healthy", "nested", (), "A BatchNorm backbone nested as one layer ('features'), fed x / 255 as in "
      "training.")
def _nested_healthy() -> Built:
    x, y = _photos()
    return Built(_nested_photo_cnn(), x[:BATCH] / 255.0, y[:BATCH])


@case("nested_wrong_preprocessing", "nested", ("input.range_mismatch",),
      "The nested backbone fed raw 0..255 pixels: its inner BatchNorm layers remember x / 255.")
def _nested_raw() -> Built:
    x, y = _photos()
    return Built(_nested_photo_cnn(), x[:BATCH], y[:BATCH])


@case("nested_dead_relu", "nested", ("activation.dead_relu",),
      "A bad update left the biases of a ReLU layer inside a nested body at -50.",
      roots=("activation.dead_relu",))
def _nested_dead() -> Built:
    seed(0)
    x, y = _binary_digits()
    body = mlp(64, (32, 16), out_activation=None, name="body")
    features = keras.Model(body.input, body.get_layer("dense2").output, name="body")
    inputs = keras.Input((64,))
    out = keras.layers.Dense(1, activation="sigmoid", name="head")(features(inputs))
    model = keras.Model(inputs, out, name="nested_mlp")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    fit(model, x[BATCH:], y[BATCH:], epochs=5)
    layer = features.get_layer("dense2")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias - 50.0])
    return Built(model, x[:BATCH], y[:BATCH])


# -- sequences: digit images read row by row ----------------------------------------------------------
@lru_cache(None)
def _digit_rows():
    x, y = data.digits_vectors()
    order = np.random.default_rng(2).permutation(len(x))
    return x[order].reshape(-1, 8, 8), y[order]


def _lstm(x: np.ndarray, y: np.ndarray, learning_rate: float = 3e-3, epochs: int = 6) -> keras.Model:
    seed(0)
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.LSTM(16, name="lstm")(inputs)
    out = keras.layers.Dense(10, activation="softmax", name="predictions")(h)
    model = keras.Model(inputs, out, name="row_lstm")
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:], y[BATCH:], epochs=epochs)


@case("lstm_healthy", "sequence", (), "An LSTM reading digit images row by row, pixels in 0..1.")
def _lstm_healthy() -> Built:
    x, y = _digit_rows()
    return Built(_lstm(x, y), x[:BATCH], y[:BATCH], train_inputs=x[BATCH:])


@case("lstm_unscaled_series", "sequence", ("input.unnormalized",),
      "The same LSTM trained and fed the rows in raw 0..255 grey levels: the gates saturate.")
def _lstm_unscaled() -> Built:
    x, y = _digit_rows()
    raw = (x * 255.0).astype(np.float32)
    return Built(_lstm(raw, y), raw[:BATCH], y[:BATCH], train_inputs=raw[BATCH:])


@case("lstm_lr_huge", "sequence", ("training.learning_rate_high",),
      "The same LSTM trained with Adam at learning rate 5: its weights blew up to ~60x their scale and most "
      "sequences get one answer.  The grown weights make each step look normal beside them, so the configured rate "
      "is what names it (not the initialization).")
def _lstm_lr_huge() -> Built:
    x, y = _digit_rows()
    return Built(_lstm(x, y, learning_rate=5.0, epochs=3), x[:BATCH], y[:BATCH], train_inputs=x[BATCH:])


# -- a tagger: a class for every token ------------------------------------------------------------------
@lru_cache(None)
def _tag_data():
    """Synthetic sentences of 16 token ids (1..39); a token's tag is 1 when its id is a multiple of 5, 2 for 7."""
    tokens = np.random.default_rng(4).integers(1, 40, size=(800, 16)).astype(np.int32)
    return tokens, np.minimum((tokens % 5 == 0) + 2 * (tokens % 7 == 0), 2).astype(np.int64)


def _tagger(tags: np.ndarray, epochs: int, learning_rate: float) -> keras.Model:
    seed(0)
    tokens, _ = _tag_data()
    inputs = keras.Input((tokens.shape[1],), dtype="int32")
    h = keras.layers.Embedding(40, 16, name="embedding")(inputs)
    h = keras.layers.LSTM(24, return_sequences=True, name="lstm")(h)
    out = keras.layers.TimeDistributed(keras.layers.Dense(int(tags.max()) + 1, activation="softmax"), name="tags")(h)
    model = keras.Model(inputs, out, name="tagger")
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return fit(model, tokens[BATCH:], tags[BATCH:], epochs=epochs)


@case("tagger_healthy", "tagging", (), "An LSTM tagger, a tag for every token (N, T, K), labels per token.")
def _tagger_healthy() -> Built:
    tokens, tags = _tag_data()
    return Built(_tagger(tags, epochs=6, learning_rate=1e-2), tokens[:BATCH], tags[:BATCH])


@case("tagger_rare_tags", "tagging", ("labels.imbalance", "output.majority_class"),
      "The same tagger asked for one token id in 40 (2.5% of tokens), one epoch of plain cross-entropy: it tags "
      "every token 'O'.", roots=("labels.imbalance",))
def _tagger_rare() -> Built:
    tokens, _ = _tag_data()
    tags = (tokens == 7).astype(np.int64)
    return Built(_tagger(tags, epochs=1, learning_rate=1e-3), tokens[:BATCH], tags[:BATCH])


def _token_classifier(tokens: np.ndarray, y: np.ndarray, epochs: int) -> keras.Model:
    seed(0)
    inputs = keras.Input((tokens.shape[1],), dtype="int32")
    h = keras.layers.Embedding(17, 4, name="embedding")(inputs)
    h = keras.layers.Flatten(name="flatten")(h)
    out = keras.layers.Dense(1, activation="sigmoid", name="output")(h)
    model = keras.Model(inputs, out, name="token_classifier")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    return fit(model, tokens[BATCH:], y[BATCH:], epochs=epochs)


@lru_cache(None)
def _digit_tokens():
    x, y = data.digits_vectors()
    order = np.random.default_rng(3).permutation(len(x))
    return np.round(x[order] * 16).astype(np.int32), y[order]


@case("embedding_healthy", "text", (), "An Embedding classifier on digit pixels read as 64 tokens (0..16), "
      "balanced labels (digit >= 5), eight epochs.")
def _embedding_healthy() -> Built:
    tokens, y = _digit_tokens()
    labels = (y >= 5).astype(np.int64)
    return Built(_token_classifier(tokens, labels, epochs=8), tokens[:BATCH], labels[:BATCH])


@case("embedding_skewed_labels", "text", ("labels.imbalance", "output.majority_class"),
      "The same classifier asked 'is it a 0?' (10% positives) for one epoch of plain cross-entropy: it "
      "learns 'never'.",
      roots=("labels.imbalance",))
def _embedding_skewed() -> Built:
    tokens, y = _digit_tokens()
    labels = (y == 0).astype(np.int64)
    return Built(_token_classifier(tokens, labels, epochs=1), tokens[:BATCH], labels[:BATCH])


# -- a real keras.applications network ---------------------------------------------------------------
@lru_cache(None)
def _mobilenet() -> keras.Model:
    seed(0)
    x, y = _photos()
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    for layer in base.layers:  # MobileNetV2's 0.999 momentum leaves moving statistics at init after a short run
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    features = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(features)
    model = keras.Model(base.input, outputs, name="mobilenetv2_photos")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:] / 127.5 - 1.0, y[BATCH:], epochs=6)


@case("mobilenet_healthy", "applications", (),
      "MobileNetV2 (weights=None) trained on photo crops with its own preprocess_input ([-1, 1]).")
def _mobilenet_healthy() -> Built:
    x, y = _photos()
    return Built(_mobilenet(), x[:BATCH] / 127.5 - 1.0, y[:BATCH])


@case("mobilenet_raw_pixels", "applications", ("input.range_mismatch",),
      "MobileNetV2 trained on [-1, 1] inputs, fed raw 0..255 pixels; found from BatchNorm memory alone.")
def _mobilenet_raw() -> Built:
    x, y = _photos()
    return Built(_mobilenet(), x[:BATCH], y[:BATCH])


# -- transfer learning: a backbone trained on one task, frozen, under a new head --------------------------
def _symmetric(x: np.ndarray) -> np.ndarray:
    return x / 127.5 - 1.0  # preprocess_input of MobileNet-style backbones


@lru_cache(None)
def _transfer_data():
    """Digits 0-4 train the backbone; digits 5-9 (as classes 0-4) are the new task."""
    x, y = _digits()
    return (x[y < 5], y[y < 5]), (x[y >= 5], y[y >= 5] - 5)


@lru_cache(None)
def _backbone() -> keras.Model:
    (x, y), _ = _transfer_data()
    seed(0)
    body = cnn_bn((32, 32, 3), 5)
    body.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    fit(body, _symmetric(x), y, epochs=3)
    return keras.Model(body.input, body.get_layer("flatten").output, name="backbone")


def _transfer_head(units: int, activation: str, loss: str, targets: np.ndarray,
                   optimizer: keras.optimizers.Optimizer | None = None, fine_tune: bool = False) -> keras.Model:
    """A new head on the frozen backbone (``base(x, training=False)``), or on a trainable copy (``fine_tune``)."""
    seed(1)
    base = _backbone()
    if fine_tune:
        base = keras.models.clone_model(base)
        base.set_weights(_backbone().get_weights())
    base.trainable = fine_tune
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Dropout(0.2, name="dropout")(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(units, activation=activation, name="head")(features),
                        name="transfer")
    model.compile(optimizer or keras.optimizers.Adam(3e-3), loss, metrics=["accuracy"])
    _, (x, _) = _transfer_data()
    return fit(model, _symmetric(x[BATCH:]), targets[BATCH:], epochs=3)


@lru_cache(None)
def _transfer_model() -> keras.Model:
    _, (_, y) = _transfer_data()
    return _transfer_head(5, "softmax", "sparse_categorical_crossentropy", y)


@case("transfer_healthy", "transfer", (),
      "A frozen backbone (trained on digits 0-4, inputs x / 127.5 - 1) under a new head for digits 5-9.")
def _transfer_healthy() -> Built:
    _, (x, y) = _transfer_data()
    return Built(_transfer_model(), _symmetric(x[:BATCH]), y[:BATCH])


@case("transfer_fine_tuned_hot", "transfer", (),
      "The backbone fine-tuned at SGD learning rate 20: its head's weights grew 300x past their initial scale, "
      "yet it is right; noted, not a cause.")
def _transfer_hot() -> Built:
    _, (x, y) = _transfer_data()
    model = _transfer_head(5, "softmax", "sparse_categorical_crossentropy", y, keras.optimizers.SGD(20.0),
                           fine_tune=True)
    return Built(model, _symmetric(x[:BATCH]), y[:BATCH])


@case("transfer_preprocessed_twice", "transfer", ("input.range_mismatch",),
      "preprocess_input applied twice: every pixel lands near -1 and the model predicts one class.")
def _transfer_twice() -> Built:
    _, (x, y) = _transfer_data()
    return Built(_transfer_model(), _symmetric(_symmetric(x[:BATCH])), y[:BATCH])


@case("transfer_softmax_one_unit", "transfer", ("model.output_activation",),
      "A binary head built as Dense(1, activation='softmax'): a softmax over one unit is always 1.")
def _transfer_softmax_one() -> Built:
    _, (x, y) = _transfer_data()
    targets = (y >= 2).astype(np.float32)
    return Built(_transfer_head(1, "softmax", "binary_crossentropy", targets), _symmetric(x[:BATCH]),
                 targets[:BATCH])


# -- tabular: features on different scales ------------------------------------------------------------
@lru_cache(None)
def _cancer():
    x, y = data.breast_cancer()
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


def _cancer_model(x: np.ndarray, y: np.ndarray) -> keras.Model:
    seed(0)
    model = mlp(x.shape[1], (16, 8), activation="sigmoid")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:], y[BATCH:], epochs=10)


@case("tabular_healthy", "tabular", (), "Breast-cancer features standardized, an MLP trained on them.")
def _tabular_healthy() -> Built:
    x, y = _cancer()
    mean, std = x[BATCH:].mean(0), x[BATCH:].std(0)
    z = ((x - mean) / std).astype(np.float32)
    return Built(_cancer_model(z, y), z[:BATCH], y[:BATCH], train_inputs=z[BATCH:])


@case("tabular_unscaled", "tabular", ("input.feature_scale_disparity",),
      "Breast-cancer features fed raw (areas in the thousands next to ratios near 0.1).", seed_ref="001, 002 example 3")
def _tabular_unscaled() -> Built:
    x, y = _cancer()
    return Built(_cancer_model(x, y), x[:BATCH], y[:BATCH], train_inputs=x[BATCH:])


@case("tabular_batchnorm_first_healthy", "tabular", (),
      "The same raw breast-cancer features (areas in the thousands, ratios near 0.1) into a model whose first "
      "layer is BatchNormalization: it standardizes each feature itself, so their scales do not matter.")
def _tabular_batchnorm_first_healthy() -> Built:
    x, y = _cancer()
    seed(0)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.BatchNormalization(name="standardize"),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1, activation="sigmoid")],
                             name="batchnorm_first")
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], y[BATCH:], epochs=20), x[:BATCH], y[:BATCH], train_inputs=x[BATCH:])


@case("tabular_l2_strong", "tabular", ("training.regularization",),
      "The standardized breast-cancer MLP with kernel_regularizer=l2(1.0) on every layer: the kernels shrink toward "
      "zero and every prediction settles on the class prior.")
def _tabular_l2_strong() -> Built:
    return _regularized_cancer(1.0)


@case("tabular_l2_mild_healthy", "tabular", (),
      "The same MLP with a usual kernel_regularizer=l2(1e-3): the kernels keep their scale and the model learns.")
def _tabular_l2_mild_healthy() -> Built:
    return _regularized_cancer(1e-3)


def _regularized_cancer(factor: float) -> Built:
    """The standardized breast-cancer MLP with kernel_regularizer=l2(factor) on every layer."""
    x, y = _cancer()
    mean, std = x[BATCH:].mean(0), x[BATCH:].std(0)
    z = ((x - mean) / std).astype(np.float32)
    seed(0)
    l2 = keras.regularizers.l2(factor)
    model = keras.Sequential([keras.Input((z.shape[1],)), keras.layers.Dense(16, "relu", kernel_regularizer=l2),
                              keras.layers.Dense(8, "relu", kernel_regularizer=l2),
                              keras.layers.Dense(1, "sigmoid", kernel_regularizer=l2)], name=f"l2_{factor:g}")
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    return Built(fit(model, z[BATCH:], y[BATCH:], epochs=30), z[:BATCH], y[:BATCH], train_inputs=z[BATCH:])


@case("tabular_imbalanced_healthy", "tabular", (),
      "A rare positive class (7% of rows, generated) that the MLP has learned to find: imbalanced labels, and "
      "nothing flat about the predictions.")
def _tabular_imbalanced_healthy() -> Built:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1600, 12)).astype(np.float32)
    y = ((x[:, 0] + 0.3 * rng.normal(size=len(x))) > 1.5).astype(np.int64)
    seed(0)
    model = mlp(12, (16,))
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    return Built(fit(model, x[4 * BATCH:], y[4 * BATCH:], epochs=20), x[:4 * BATCH], y[:4 * BATCH],
                 train_inputs=x[4 * BATCH:])


# -- tabular: shape features never normalized (small values far from zero) ---------------------------
SHAPE_FEATURES = [4, 8, 9, 24, 28, 29]  # smoothness, symmetry, fractal dimension (mean and worst): ~0.1 +- 0.02


def _shape_model(x: np.ndarray, y: np.ndarray) -> keras.Model:
    seed(0)
    model = mlp(x.shape[1], (16, 8))
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:], y[BATCH:], epochs=20)


@case("tabular_shape_healthy", "unnormalized", (),
      "Six breast-cancer shape features standardized with the training set's mean and std, a ReLU MLP.")
def _shape_healthy() -> Built:
    x, y = _cancer()
    x = x[:, SHAPE_FEATURES]
    z = ((x - x[BATCH:].mean(0)) / x[BATCH:].std(0)).astype(np.float32)
    return Built(_shape_model(z, y), z[:BATCH], y[:BATCH], train_inputs=z[BATCH:])


@case("tabular_unnormalized", "unnormalized", ("input.unnormalized",),
      "The same six features fed raw in training and at inference: values ~0.1 that vary by ~0.02, six std "
      "from zero; the ReLU MLP sees nearly the same input for every sample and predicts one class.")
def _shape_unnormalized() -> Built:
    x, y = _cancer()
    x = x[:, SHAPE_FEATURES]
    return Built(_shape_model(x, y), x[:BATCH], y[:BATCH], train_inputs=x[BATCH:])


@case("tabular_bottleneck_healthy", "unnormalized", (),
      "A healthy MLP with 1-unit layers (a linear score, then a sigmoid on it): 1x1 kernels are not 'constant'.")
def _bottleneck_healthy() -> Built:
    x, y = _cancer()
    z = ((x - x[BATCH:].mean(0)) / x[BATCH:].std(0)).astype(np.float32)
    seed(0)
    inputs = keras.Input((z.shape[1],))
    h = keras.layers.Dense(8, activation="relu", name="dense1")(inputs)
    score = keras.layers.Dense(1, name="score")(h)
    out = keras.layers.Dense(1, activation="sigmoid", name="output")(score)
    model = keras.Model(inputs, out, name="bottleneck")
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    return Built(fit(model, z[BATCH:], y[BATCH:], epochs=10), z[:BATCH], y[:BATCH], train_inputs=z[BATCH:])


# -- regression on scikit-learn's diabetes table: targets 25..346 -------------------------------------
@lru_cache(None)
def _diabetes():
    x, y = data.diabetes()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return ((x - x[BATCH:].mean(0)) / x[BATCH:].std(0)).astype(np.float32), y


def _regressor(x: np.ndarray, y: np.ndarray, optimizer: keras.optimizers.Optimizer, epochs: int = 20) -> keras.Model:
    seed(0)
    model = mlp(x.shape[1], (32, 16), out_activation=None, name="regressor")
    model.compile(optimizer, "mse")
    return fit(model, x[BATCH:], y[BATCH:], epochs=epochs)


@case("regression_healthy_sgd", "regression", (),
      "Diabetes progression from standardized features, targets standardized, a ReLU MLP trained with plain SGD "
      "(gradient/weight ratios are naturally large here).")
def _regression_healthy() -> Built:
    x, y = _diabetes()
    t = ((y - y[BATCH:].mean()) / y[BATCH:].std()).astype(np.float32)
    return Built(_regressor(x, t, keras.optimizers.SGD(1e-2)), x[:BATCH], t[:BATCH], train_inputs=x[BATCH:])


@case("regression_target_scale", "regression", ("labels.target_scale",),
      "The same model trained on the raw targets (25..346): the loss is all scale, the outputs stay far from "
      "the targets and barely spread.")
def _regression_target_scale() -> Built:
    return _raw_targets(keras.optimizers.Adam(1e-3))


def _raw_targets(optimizer: keras.optimizers.Optimizer) -> Built:
    """The regressor trained by ``optimizer`` on the raw targets (25..346)."""
    x, y = _diabetes()
    y = y.astype(np.float32)
    return Built(_regressor(x, y, optimizer), x[:BATCH], y[:BATCH], train_inputs=x[BATCH:])


@case("regression_diverged", "regression", ("training.learning_rate_high", "gradient.exploding"),
      "The same model trained on the raw targets with plain SGD at 0.1: the loss overflowed and every weight is NaN, "
      "so is every prediction.  The learning rate did it: named by what it did, not by its update ratio.")
def _regression_diverged() -> Built:
    return _raw_targets(keras.optimizers.SGD(0.1))


@case("regression_prices_healthy", "regression", (),
      "Prices around 200,000 (generated from eight standardized features) fitted by a ReLU MLP on the raw targets: "
      "its output kernel is far above the Glorot scale, as a model reaching 1e5 needs.")
def _regression_prices_healthy() -> Built:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 8)).astype(np.float32)
    y = (2e5 + 5e4 * x[:, 0] + 3e4 * x[:, 1] - 2e4 * x[:, 2] + 5e3 * rng.normal(size=len(x))).astype(np.float32)
    seed(0)
    model = mlp(8, (32,), out_activation=None, name="prices")
    model.compile(keras.optimizers.Adam(5e-2), "mse")
    return Built(fit(model, x[BATCH:], y[BATCH:], epochs=100), x[:BATCH], y[:BATCH],
                 train_inputs=x[BATCH:])


# -- digits as vectors: output activation, lambda, learning rate, initialization ---------------------
@lru_cache(None)
def _binary_digits():
    x, y = data.digits_vectors()
    order = np.random.default_rng(1).permutation(len(x))
    x, y = x[order], y[order]
    return x, (y >= 5).astype(np.int64)


@lru_cache(None)
def _binary_model(out_activation: str | None, learning_rate: float = 1e-3, epochs: int = 5) -> keras.Model:
    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (32, 16), out_activation=out_activation)
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy", metrics=["accuracy"])
    return fit(model, x[BATCH:], y[BATCH:], epochs=epochs)


@case("binary_healthy", "binary", (), "Digits >= 5 vs < 5, a sigmoid output and binary cross-entropy.")
def _binary_healthy() -> Built:
    x, y = _binary_digits()
    return Built(_binary_model("sigmoid"), x[:BATCH], y[:BATCH])


@case("binary_confident_healthy", "binary", (),
      "The digits >= 5 classifier trained long at a high rate: right on almost every sample, its sigmoid lands on "
      "exactly 0 or 1 for most (confidence, not a fault).")
def _binary_confident_healthy() -> Built:
    x, y = _binary_digits()
    return Built(_binary_model("sigmoid", 1e-2, 60), x[:BATCH], y[:BATCH])


@case("binary_no_activation", "binary", ("model.output_activation",),
      "The final Dense(1) has no activation under binary cross-entropy.", seed_ref="000 example 2")
def _binary_no_activation() -> Built:
    x, y = _binary_digits()
    return Built(_binary_model(None), x[:BATCH], y[:BATCH])


@case("binary_unstable_lambda", "binary", ("model.unstable_lambda", "output.saturated"),
      "A custom sigmoid 1 / (1 + exp(-100000 x)) in a Lambda pins outputs at exactly 0 or 1.",
      trust=True, seed_ref="000 example 3")
def _binary_lambda() -> Built:
    seed(0)
    x, y = _binary_digits()
    logits = mlp(64, (32, 16), out_activation=None, name="logits")
    logits.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    fit(logits, x[BATCH:], y[BATCH:], epochs=5)
    out = keras.layers.Lambda(lambda t: 1.0 / (1.0 + __import__("keras").ops.exp(-t * 100000.0)), output_shape=(1,),
                              name="unstable_sigmoid")(logits.output)
    model = keras.Model(logits.input, out, name="unstable_lambda")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH], y[:BATCH])


@case("binary_lr_tiny", "binary", ("training.learning_rate_low",),
      "Adam with learning rate 1e-10: the weights never leave their initialization.", seed_ref="002 example 2")
def _binary_lr_tiny() -> Built:
    x, y = _binary_digits()
    return Built(_binary_model("sigmoid", 1e-10), x[:BATCH], y[:BATCH])


@case("binary_lr_huge", "binary", ("training.learning_rate_high",),
      "Adam with learning rate 1.0: updates overshoot and the model collapses.")
def _binary_lr_huge() -> Built:
    x, y = _binary_digits()
    return Built(_binary_model("sigmoid", 1.0), x[:BATCH], y[:BATCH])


@case("binary_sgd_dead_relu", "binary", ("activation.dead_relu",),
      "Plain SGD with learning rate 5 blew the weights up in a few steps and killed every ReLU: the gradients are "
      "exactly zero, which must not read as 'learning rate too low'.")
def _binary_sgd_dead() -> Built:
    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (32, 16), name="sgd_dead")
    model.compile(keras.optimizers.SGD(5.0), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], y[BATCH:], epochs=3), x[:BATCH], y[:BATCH])


@case("binary_shifted_threshold", "binary", ("output.threshold", "output.majority_class"),
      "A trained classifier whose output bias was shifted by -6: the scores still rank the classes, "
      "but all fall below 0.5.")
def _binary_threshold() -> Built:
    x, y = _binary_digits()
    model = keras.models.clone_model(_binary_model("sigmoid"))
    model.set_weights(_binary_model("sigmoid").get_weights())
    kernel, bias = model.get_layer("output").get_weights()
    model.get_layer("output").set_weights([kernel, bias - 6.0])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH], y[:BATCH])


@case("binary_zero_init", "binary", ("model.weight_init", "gradient.zero", "training.loss_at_prior"),
      "Every kernel initialized to zero: only the output bias learns, i.e. the class prior.")
def _binary_zero_init() -> Built:
    seed(0)
    x, y = _binary_digits()
    y_skew = (data.digits_vectors()[1][np.random.default_rng(1).permutation(len(x))] >= 3).astype(np.int64)
    model = mlp(64, (32, 16))
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], y_skew[BATCH:], epochs=8), x[:BATCH], y_skew[:BATCH])


@case("binary_dead_relu", "binary", ("output.constant", "activation.dead_relu", "activation.collapse",
                                    "gradient.zero"),
      "A bad update left the second hidden layer's biases at -50: every ReLU there is dead.",
      roots=("activation.dead_relu",))
def _binary_dead() -> Built:
    x, y = _binary_digits()
    model = keras.models.clone_model(_binary_model("sigmoid"))
    model.set_weights(_binary_model("sigmoid").get_weights())
    kernel, bias = model.get_layer("dense2").get_weights()
    model.get_layer("dense2").set_weights([kernel, bias - 50.0])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH], y[:BATCH])


# -- the seeds' dense stacks ------------------------------------------------------------------------
@case("sigmoid_stack_tiny_weights", "deep", ("gradient.vanishing", "model.weight_init"),
      "Six sigmoid layers whose weights are 0.01 * uniform: gradients vanish before the first layer.",
      seed_ref="002 example 1", roots=("model.weight_init",))
def _sigmoid_stack() -> Built:
    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (10,) * 6, activation="sigmoid", name="sigmoid_stack")
    rng = np.random.default_rng(0)
    model.set_weights([rng.random(w.shape).astype(np.float32) * 0.01 if w.ndim > 1 else np.zeros_like(w)
                       for w in model.get_weights()])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], y[BATCH:], epochs=2), x[:BATCH], y[:BATCH])


@case("sigmoid_saturated", "deep", ("activation.saturation", "model.weight_init"),
      "Sigmoid layers initialized with std 4: nearly every unit sits in the flat region.", roots=("model.weight_init",))
def _sigmoid_saturated() -> Built:
    seed(0)
    x, y = _binary_digits()
    init = keras.initializers.RandomNormal(stddev=4.0, seed=0)
    model = mlp(64, (32, 32), activation="sigmoid", kernel_initializer=init, name="saturated")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH] * 4, y[:BATCH])


@case("relu_exploding", "deep", ("gradient.exploding", "model.weight_init"),
      "Eight ReLU layers initialized at 12x the He scale: activations and gradients grow layer by layer.",
      roots=("model.weight_init",))
def _relu_exploding() -> Built:
    seed(0)
    x, y = _binary_digits()
    init = keras.initializers.VarianceScaling(scale=2.0 * 144, mode="fan_in", distribution="truncated_normal", seed=0)
    model = mlp(64, (32,) * 8, kernel_initializer=init, name="exploding")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH], y[:BATCH])


@case("deep_relu_healthy", "deep", (),
      "The deep stacks done right: eight ReLU layers with He initialization, trained on the same digits.")
def _deep_healthy() -> Built:
    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (32,) * 8, kernel_initializer="he_normal", name="deep_relu")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], y[BATCH:], epochs=8), x[:BATCH], y[:BATCH])


@case("sigmoid_stack_deep", "deep", ("gradient.vanishing", "activation.collapse"),
      "Twelve sigmoid layers, Glorot-initialized and trained with SGD: each layer shrinks the gradient (a "
      "sigmoid's slope is at most 1/4) and the samples' differences with it.", seed_ref="002",
      roots=("gradient.vanishing",))
def _sigmoid_stack_deep() -> Built:
    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (64,) * 12, activation="sigmoid", name="sigmoid_deep")
    model.compile(keras.optimizers.SGD(1e-2), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], y[BATCH:], epochs=3), x[:BATCH], y[:BATCH])


@lru_cache(None)
def _digits_pixels_model() -> keras.Model:
    seed(0)
    x, y = data.digits_vectors()
    model = mlp(64, (64, 32), out_units=10, out_activation="softmax", name="digits_pixels")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    return fit(model, x[4 * BATCH:], y[4 * BATCH:], epochs=10)


@case("digits_pixels_healthy", "deep", (),
      "The 64 digit pixels as features (0..1) for a ReLU MLP over the ten classes, diagnosed on 256 samples: the "
      "pixels at the edge are lit in a handful of them (tiny std, the same 0..1 range).")
def _digits_pixels_healthy() -> Built:
    x, y = data.digits_vectors()
    return Built(_digits_pixels_model(), x[:4 * BATCH], y[:4 * BATCH])


@case("digits_float16_overflow", "deep", ("activation.overflow",),
      "A digit classifier whose exponential layer works around e^12 (then scaled down by 1e-6), trained in float32 "
      "and run under mixed_float16: its values pass float16's 65504, become Inf, and the predictions NaN.")
def _digits_float16_overflow() -> Built:
    return _exp_classifier_in_float16(12.0, 1e-6)


@case("digits_float16_healthy", "deep", (),
      "The same classifier with its exponential layer around e^0, run under mixed_float16: every value within "
      "float16's range.")
def _digits_float16_healthy() -> Built:
    return _exp_classifier_in_float16(0.0, 1.0)


def _exp_classifier_in_float16(exp_bias: float, scale: float) -> Built:
    """A digit classifier with an exponential layer (its bias starting at ``exp_bias``, its output scaled by
    ``scale``), trained in float32, then rebuilt under mixed_float16 with the trained weights."""
    x, y = data.digits_vectors()
    layers = lambda: [keras.layers.Dense(32, activation="relu", name="dense1"),  # noqa: E731
                      keras.layers.Dense(8, activation="exponential", name="exp",
                                         bias_initializer=keras.initializers.Constant(exp_bias)),
                      keras.layers.Rescaling(scale, name="scale"),
                      keras.layers.Dense(10, activation="softmax", name="output", dtype="float32")]
    seed(0)
    trained = keras.Sequential([keras.Input((64,)), *layers()], name="exp_float32")
    trained.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    fit(trained, x[4 * BATCH:], y[4 * BATCH:], epochs=10)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential([keras.Input((64,)), *layers()], name="exp_float16")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.set_weights(trained.get_weights())
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return Built(model, x[:4 * BATCH], y[:4 * BATCH])


# A renumbering of the ten classes, as a hand-written class list against flow_from_directory's alphabetical one
CLASS_RENUMBERING = np.array([3, 7, 0, 9, 1, 8, 2, 5, 4, 6])


@case("digits_class_mapping", "deep", ("labels.class_mapping",),
      "The same healthy digit classifier judged against labels numbered in another order (a hand-written class list "
      "against the training's): confident, varied, right almost never.")
def _digits_class_mapping() -> Built:
    x, y = data.digits_vectors()
    return Built(_digits_pixels_model(), x[:4 * BATCH], CLASS_RENUMBERING[y[:4 * BATCH]])


@case("digits_untrained", "deep", ("model.untrained",),
      "The digit classifier rebuilt from its code and compiled, its trained weights never loaded: every weight as "
      "the initializers drew it.")
def _digits_untrained() -> Built:
    x, y = data.digits_vectors()
    return Built(_digit_softmax("digits_pixels", "sparse_categorical_crossentropy", seed_=1), x[:4 * BATCH],
                 y[:4 * BATCH])


def _digit_softmax(name: str, loss: str, learning_rate: float = 3e-3, seed_: int = 0) -> keras.Model:
    """The digit classifier's architecture (64 pixels, ReLU 64 and 32, a softmax over ten), compiled, untrained."""
    seed(seed_)
    model = mlp(64, (64, 32), out_units=10, out_activation="softmax", name=name)
    model.compile(keras.optimizers.Adam(learning_rate), loss)
    return model


@case("digits_mse_softmax", "deep", ("model.loss_mismatch",),
      "A softmax over the ten digit classes compiled with loss='mse' on class ids (N, 1): the loss compares every "
      "probability with the class id, so they all settle near 0.1.")
def _digits_mse_softmax() -> Built:
    x, y = data.digits_vectors()
    model = _digit_softmax("digits_mse", "mse", learning_rate=1e-3)
    fit(model, x[4 * BATCH:], y[4 * BATCH:, None].astype(np.float32), epochs=5)
    return Built(model, x[:4 * BATCH], y[:4 * BATCH])


@case("digits_mse_one_hot_healthy", "deep", (),
      "The same softmax with loss='mse' on one-hot labels: slower than cross-entropy, but it learns (a note).")
def _digits_mse_one_hot_healthy() -> Built:
    x, y = data.digits_vectors()
    one_hot = np.eye(10, dtype=np.float32)[y]
    model = _digit_softmax("digits_mse_one_hot", "mse")
    return Built(fit(model, x[4 * BATCH:], one_hot[4 * BATCH:], epochs=20), x[:4 * BATCH], one_hot[:4 * BATCH])


@case("digits_softmax_bce_healthy", "deep", (),
      "A ReLU MLP over the ten digit classes with a softmax output, trained on one-hot labels with binary "
      "cross-entropy (a common pairing): it still learns, so the loss is a note, not the cause.")
def _digits_softmax_bce_healthy() -> Built:
    seed(0)
    x, y = data.digits_vectors()
    one_hot = np.eye(10, dtype=np.float32)[y]
    model = mlp(64, (64, 32), out_units=10, out_activation="softmax", name="digits_softmax_bce")
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    return Built(fit(model, x[BATCH:], one_hot[BATCH:], epochs=10), x[:BATCH], one_hot[:BATCH])


# -- ImageNet-style heads ------------------------------------------------------------------------------
def _tiny_imagenet_net(include_top: bool):
    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=include_top,
                                          weights=None, classes=1000)


@case("stale_head", "applications", ("model.stale_head",),
      "MobileNetV2 built with include_top=True, a new Dense(1) stacked on its 1000-class softmax.",
      seed_ref="003 example 1")
def _stale_head() -> Built:
    seed(0)
    x, y = _photos()
    base = _tiny_imagenet_net(True)
    flat = keras.layers.Flatten(name="flatten")(base.output)
    out = keras.layers.Dense(1, activation="sigmoid", name="binary")(flat)
    model = keras.Model(base.input, out, name="stale_head")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH] / 127.5 - 1.0, (y[:BATCH] == 0).astype(np.int64))


@case("imagenet_output_binary_labels", "applications", ("output.shape_mismatch", "model.loss_mismatch"),
      "The 1000-class output fed straight to binary cross-entropy with binary labels.", seed_ref="003",
      roots=("output.shape_mismatch", "model.loss_mismatch"))
def _imagenet_binary() -> Built:
    seed(0)
    x, y = _photos()
    model = _tiny_imagenet_net(True)
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:BATCH] / 127.5 - 1.0, (y[:BATCH] == 0).astype(np.int64))


# -- segmentation of coins ------------------------------------------------------------------------------
@lru_cache(None)
def _coins(quantile: float):
    return data.coin_patches(160, 48, quantile)


@lru_cache(None)
def _fcn(quantile: float, epochs: int) -> keras.Model:
    seed(0)
    x, m = _coins(quantile)
    model = fcn((48, 48, 1))
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    return fit(model, x[32:], m[32:, ..., None].astype(np.float32), epochs=epochs, batch_size=16)


@case("segmentation_healthy", "segmentation", (), "Coins segmented from a brightness threshold, masks 0/1.")
def _seg_healthy() -> Built:
    x, m = _coins(0.6)
    return Built(_fcn(0.6, 12), x[:32], masks=m[:32])


@case("segmentation_rare_foreground", "segmentation", ("labels.imbalance", "output.majority_class"),
      "Only the brightest 1.5% of pixels are foreground; plain cross-entropy learns 'all background'.",
      seed_ref="004 (imbalance)")
def _seg_rare() -> Built:
    x, m = _coins(0.985)
    return Built(_fcn(0.985, 3), x[:32], masks=m[:32])


@case("segmentation_masks_0_255", "segmentation", ("labels.encoding",),
      "Masks saved as 0/255 PNGs and used as class ids.", seed_ref="004 (label encoding)")
def _seg_255() -> Built:
    x, m = _coins(0.6)
    return Built(_fcn(0.6, 12), x[:32], masks=(m[:32] * 255).astype(np.uint8))


@case("segmentation_interpolated_masks", "segmentation", ("labels.encoding",),
      "Masks resized with bilinear interpolation: edges hold fractional class values.", seed_ref="004 (resizing)")
def _seg_interpolated() -> Built:
    x, m = _coins(0.6)
    small = m[:32, ::2, ::2].astype(np.float32)
    masks = np.repeat(np.repeat(small, 2, 1), 2, 2)
    masks[:, 1:-1:2, :] = (masks[:, :-2:2, :] + masks[:, 2::2, :]) / 2  # what bilinear upsampling does
    return Built(_fcn(0.6, 12), x[:32], masks=masks)


@case("segmentation_downsampled_output", "segmentation", ("labels.mask_mismatch",),
      "The network predicts at half resolution; the masks are at full resolution.")
def _seg_downsampled() -> Built:
    seed(0)
    x, m = _coins(0.6)
    inputs = keras.Input((48, 48, 1))
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inputs)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(h)
    model = keras.Model(inputs, out, name="half_resolution")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return Built(model, x[:32], masks=m[:32])
