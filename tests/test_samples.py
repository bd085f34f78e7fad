"""The per-sample drill-down: one sample's prediction and label, its layers against the batch's, and the pixels
that drive its prediction."""

import base64

import keras
import numpy as np
import pytest

import whyzero
from whyzero.figures import sample_differences
from whyzero.probes.saliency import saliency


def quadrant_model():
    """A conv model that can only see the top-left quadrant: whatever drives it must be there."""
    keras.utils.set_random_seed(1)
    mask = np.zeros((1, 16, 16, 1), "float32")
    mask[:, :8, :8] = 1.0
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * mask, name="top_left")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(x))


def test_grad_cam_heat_lies_where_the_model_looks():
    images = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")
    maps, method = saliency(quadrant_model(), images, "multiclass")
    assert method == "Grad-CAM" and len(maps) == 4
    for heat in maps:
        assert heat.shape == (16, 16) and heat.max() == pytest.approx(1.0)
        assert heat[:8, :8].mean() > 5 * heat[8:, 8:].mean()


@pytest.mark.parametrize("with_gradients", [True, False])
def test_the_probe_pass_gives_the_same_grad_cam(with_gradients):
    """The diagnosis takes Grad-CAM from its own chunked pass (with or without the weights' gradients)."""
    from whyzero.probes.forward import run_forward
    from whyzero.probes.saliency import from_grad_cam

    model = quadrant_model()
    images = np.random.default_rng(0).random((12, 16, 16, 1)).astype("float32")
    labels, loss = (np.arange(12) % 2, keras.losses.SparseCategoricalCrossentropy()) if with_gradients else (None, None)
    result = run_forward(model, images, labels, loss, chunk_size=5, saliency_of="multiclass")
    assert result.saliency.shape == (8, 16, 16)  # the first 8 samples, over two chunks of 5
    maps, method = from_grad_cam(result.saliency, (16, 16))
    expected, _ = saliency(model, images[:8], "multiclass")
    assert method == "Grad-CAM"
    for heat, alone in zip(maps, expected):
        assert heat[:8, :8].mean() > 5 * heat[8:, 8:].mean()
        assert np.allclose(heat, alone, atol=1e-4)


def quadrant_transformer():
    """A vision transformer's shape (8x8 patches, tokens, attention, pooled tokens) that keeps only the top-left
    patch's token: whatever drives it must be there."""
    keras.utils.set_random_seed(1)
    layers = keras.layers
    keep = np.zeros((1, 4, 1), "float32")
    keep[:, 0] = 1.0
    inputs = keras.Input((16, 16, 1))
    tokens = layers.Reshape((4, 12), name="tokens")(layers.Conv2D(12, 8, strides=8, name="patches")(inputs))
    x = layers.Add()([tokens, layers.MultiHeadAttention(2, 6, name="attention")(tokens, tokens)])
    x = layers.Lambda(lambda t: t * keep, name="top_left")(layers.LayerNormalization(name="norm")(x))
    x = layers.Dense(12, activation="relu", name="mlp")(x)
    head = layers.Dense(2, activation="softmax", name="out")
    model = keras.Model(inputs, head(layers.GlobalAveragePooling1D()(x)))
    head.kernel.assign(np.stack([np.ones(12), -np.ones(12)], axis=1).astype("float32"))  # class 0: more of it
    return model


def test_a_vision_transformer_gets_grad_cam_on_its_patch_grid_from_the_probe_pass():
    """Its tokens are laid back on the 2x2 patch grid: the heat lies in the one patch the model sees, and the
    maps come from the probe's own pass (no second backward through the model)."""
    from whyzero.probes.forward import run_forward
    from whyzero.probes.saliency import from_grad_cam

    model = quadrant_transformer()
    images = np.random.default_rng(0).random((8, 16, 16, 1)).astype("float32")
    result = run_forward(model, images, None, None, chunk_size=4, saliency_of="multiclass")
    maps, method = from_grad_cam(result.saliency, (16, 16))
    assert method == "Grad-CAM" and len(maps) == 8
    for heat in maps:
        assert heat.shape == (16, 16) and heat[:8, :8].mean() > 5 * heat[8:, 8:].mean()
    alone, method = saliency(model, images, "multiclass")
    assert method == "Grad-CAM" and all(np.allclose(a, b, atol=1e-4) for a, b in zip(alone, maps))


def test_a_dense_model_gets_gradient_times_input():
    inputs = keras.Input((6, 6, 1))
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs))
    maps, method = saliency(keras.Model(inputs, out), np.ones((2, 6, 6, 1), "float32"), "binary")
    assert method == "gradient x input" and maps[0].shape == (6, 6)


def test_each_sample_keeps_its_prediction_label_and_layers():
    model = quadrant_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    images = np.random.default_rng(2).random((40, 16, 16, 1)).astype("float32")
    labels = np.arange(40) % 2
    d = whyzero.diagnose(model, images, labels=labels)
    s = d.summaries["samples"]
    assert len(s["rows"]) == 40 and s["saliency_method"] == "Grad-CAM" and len(s["saliency"]) == 8
    outputs = model.predict(images, verbose=0)
    assert s["rows"][3]["predicted"] == int(outputs[3].argmax()) and s["rows"][3]["label"] == 1
    assert s["rows"][3]["score"] == pytest.approx(float(outputs[3].max()), rel=1e-4)
    conv = next(r for r in s["layers"] if r["layer"] == "conv")
    expected = np.sqrt(np.mean(keras.Model(model.inputs, model.get_layer("conv").output)(images[:1]).numpy() ** 2))
    assert conv["rms"][0] == pytest.approx(float(expected), rel=1e-4)
    # the masked layer is three quarters zeros for every sample, like the batch: nothing singles a sample out
    top_left = next(r for r in s["layers"] if r["layer"] == "top_left")
    assert top_left["zero"][0] >= 0.75
    assert base64.b64decode(s["saliency"][0])[:4] == b"\x89PNG"


def test_a_sample_that_dies_or_collapses_is_named():
    from whyzero.figures.samples import SamplesView

    samples = SamplesView(layers=[{"layer": "conv", "rms": [1.0, 0.001], "zero": [0.1, 0.2], "batch_rms": 0.9,
                                   "batch_zero": 0.15},
                                  {"layer": "relu", "rms": [1.0, 0.0], "zero": [0.3, 1.0], "batch_rms": 1.0,
                                   "batch_zero": 0.3}])
    assert sample_differences(samples, 0) == []
    notes = sample_differences(samples, 1)
    assert notes[0].startswith("collapses at **conv**") and notes[1].startswith("dies at **relu**: 100%")
