"""Loading every supported format, and one-line errors for what cannot be used."""

import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

import whyzero
from whyzero.errors import UnsafeModelError, WhyzeroError


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


@pytest.fixture()
def batch():
    return np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 3)).astype(np.float32)


def test_keras_and_h5_files_keep_loss_and_learning_rate(small_model, batch, tmp_path):
    for name in ("m.keras", "m.h5"):
        small_model.save(tmp_path / name)
        d = whyzero.diagnose(str(tmp_path / name), batch)
        assert d.model["loss"]["name"] == "sparse_categorical_crossentropy"
        assert d.model["optimizer"]["learning_rate"] == pytest.approx(0.01)
        assert len(d.model["layers"]) == 3 and d.model["hash"]


def test_keras2_savedmodel_directory_and_zip_load_with_layers(batch, tmp_path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.InputLayer((8, 8, 3)), tf_keras.layers.Flatten(),
                                 tf_keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(tmp_path / "sm", save_format="tf")
    d = whyzero.diagnose(str(tmp_path / "sm"), batch)
    assert d.model["has_layers"] and len(d.model["layers"]) == 2
    with zipfile.ZipFile(tmp_path / "sm.zip", "w") as z:
        for f in (tmp_path / "sm").rglob("*"):
            z.write(f, f.relative_to(tmp_path))
    assert whyzero.diagnose(str(tmp_path / "sm.zip"), batch).model["name"] == "sm"


def test_inference_only_savedmodel_is_diagnosed_on_outputs(batch, tmp_path):
    import tensorflow as tf

    class Flat(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
        def __call__(self, x):
            return {"out": tf.zeros([tf.shape(x)[0], 1]) + 0.2}

    module = Flat()
    tf.saved_model.save(module, str(tmp_path / "fn"), signatures=module.__call__)
    d = whyzero.diagnose(str(tmp_path / "fn"), batch)
    assert not d.model["has_layers"]
    assert "output.constant" in d.causes()
    assert any("inference function" in n for n in d.notes)


def test_lambda_model_needs_trust(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2, output_shape=(4,))])
    model.save(tmp_path / "lam.keras")
    with pytest.raises(UnsafeModelError, match="trust_model=True.*Received: lam.keras"):
        whyzero.diagnose(str(tmp_path / "lam.keras"), np.ones((4, 4), np.float32))
    d = whyzero.diagnose(str(tmp_path / "lam.keras"), np.ones((4, 4), np.float32), trust_model=True)
    assert d.inputs["samples"] == 4


@pytest.mark.parametrize("content", [b"not a model", b"PK\x03\x04truncated"])
def test_corrupt_model_file(tmp_path, content, batch):
    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    with pytest.raises(WhyzeroError, match="Received: broken.keras"):
        whyzero.diagnose(str(path), batch)


def test_truncated_keras_file(small_model, tmp_path, batch):
    small_model.save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(WhyzeroError, match="cut.keras"):
        whyzero.diagnose(str(tmp_path / "cut.keras"), batch)


def test_batch_of_wrong_shape(small_model):
    expected = r"takes inputs of shape \(None, 8, 8, 3\); the batch has shape \(4, 9, 9, 3\)"
    with pytest.raises(WhyzeroError, match=expected):
        whyzero.diagnose(small_model, np.zeros((4, 9, 9, 3), np.float32))


def test_masks_that_do_not_match_are_a_finding(small_model, batch):
    d = whyzero.diagnose(small_model, batch, masks=np.zeros((3, 8, 8)))
    assert "3 masks for 16 images" in d.find("labels.mask_mismatch")[0].title
    with pytest.raises(WhyzeroError, match="masks of shape \\(N, H, W\\)"):
        whyzero.diagnose(small_model, batch, masks=np.zeros((16,)))


def test_labels_outside_the_models_classes_are_a_finding(small_model, batch):
    d = whyzero.diagnose(small_model, batch, labels=np.array([0, 1] * 7 + [7, 7]))
    [finding] = d.find("labels.encoding")
    assert finding.severity == "critical" and 7 in finding.evidence["unique_values"]


def test_images_folder_with_an_unreadable_file(small_model, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "9.png").write_bytes(b"garbage")
    d = whyzero.diagnose(small_model, str(folder), preprocess="unit")
    assert d.inputs["samples"] == 5
    assert d.inputs["skipped"] == ["9.png (UnidentifiedImageError)"]
    assert any("resized from [(20, 20)] to (8, 8)" in n for n in d.notes)
    assert d.summaries["inputs"]["table"][0]["max"] <= 1.0


def test_unknown_preprocessing(small_model, tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(WhyzeroError, match="Received: 'imagenet'"):
        whyzero.diagnose(small_model, str(tmp_path / "a.png"), preprocess="imagenet")


def test_labels_from_csv_folder_and_zip_follow_the_image_order(small_model, tmp_path):
    import zipfile

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("b.png", "a.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / name)
    (tmp_path / "labels.csv").write_text("filename,label\nc.png,2\na.png,0\nb.png,1\n")
    classes = tmp_path / "classes"
    with zipfile.ZipFile(tmp_path / "classes.zip", "w") as z:
        for cls, name in (("cat", "a.png"), ("dog", "b.png"), ("emu", "c.png")):
            (classes / cls).mkdir(parents=True)
            (classes / cls / name).write_bytes(b"")
            z.writestr(f"{cls}/{name}", b"")
    for labels in (tmp_path / "labels.csv", classes, tmp_path / "classes.zip"):
        d = whyzero.diagnose(small_model, str(folder), labels=str(labels), preprocess="unit")
        assert d.inputs["labels"] == [3]
        assert d.summaries["outputs"]["true_shares"] == pytest.approx([1 / 3] * 3)


def test_masks_from_a_folder_of_pngs(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(4):
        mask = np.zeros((8, 8), np.uint8)
        mask[:4] = 255
        Image.fromarray(mask).save(folder / f"{i}.png")
    d = whyzero.diagnose(model, np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype(np.float32),
                         masks=str(folder))
    assert "labels.encoding" in d.causes()
    assert d.find("labels.encoding")[0].evidence["unique_values"] == [0, 255]


def keras2_h5(model, path, written_by: str | None = "2.4.0"):
    """``model`` (tf_keras) saved as an .h5 file the way Keras 2.x wrote Sequential models: no InputLayer, the input
    shape on the first layer (``batch_input_shape``), and the version of the Keras that wrote it."""
    import json

    import h5py

    model.save(path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        layers = config["config"]["layers"]
        if layers[0]["class_name"] == "InputLayer":
            layers[1]["config"]["batch_input_shape"] = layers.pop(0)["config"]["batch_input_shape"]
        handle.attrs["model_config"] = json.dumps(config)
        if written_by is None:
            del handle.attrs["keras_version"]
        else:
            handle.attrs["keras_version"] = written_by
    return path


def test_keras2_h5_files_load_through_tf_keras_with_their_input_shape_and_rnn_layers(tmp_path):
    """A Keras 2 Sequential without an InputLayer loads in Keras 3 with input (None, None, F) and was refused
    ("Expected one label per input"); an LSTM's old arguments did not load at all.  Through tf_keras both run, say
    so in a note, and are diagnosed like any model: a healthy one clean, a broken one with its cause."""
    import tf_keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    tf_keras.utils.set_random_seed(0)
    dense = tf_keras.Sequential([tf_keras.layers.Dense(16, activation="relu", input_shape=(8,)),
                                 tf_keras.layers.Dense(1, activation="sigmoid")])
    dense.compile("adam", "binary_crossentropy")
    dense.fit(x, y, epochs=20, verbose=0)
    d = whyzero.diagnose(str(keras2_h5(dense, tmp_path / "dense.h5")), x[:64], labels=y[:64])
    assert any("written by Keras 2.4.0: loaded through tf_keras" in n for n in d.notes)
    assert d.is_clean and len(d.model["layers"]) == 2 and d.model["loss"]["name"] == "binary_crossentropy"
    # a file that names no Keras version: Keras 3 reads it with the input rank lost, so tf_keras reads it again
    unnamed = whyzero.diagnose(str(keras2_h5(dense, tmp_path / "unnamed.h5", written_by=None)), x[:64], labels=y[:64])
    assert any("written by an earlier Keras" in n for n in unnamed.notes) and unnamed.is_clean

    series = rng.normal(size=(200, 10, 3)).astype(np.float32)
    labels = (series[:, :, 0].mean(1) > 0).astype(np.int64)
    lstm = tf_keras.Sequential([tf_keras.layers.LSTM(8, input_shape=(10, 3)), tf_keras.layers.Dense(1)])
    lstm.compile("adam", "binary_crossentropy")  # the Keras 2 bug: no sigmoid under binary cross-entropy
    lstm.fit(series, labels, epochs=3, verbose=0)
    d = whyzero.diagnose(str(keras2_h5(lstm, tmp_path / "lstm.h5")), series[:64], labels=labels[:64])
    assert [r["type"] for r in d.model["layers"]] == ["LSTM", "Dense"]
    first = next(f for f in d.findings if f.severity != "info")
    assert (first.cause, first.role) == ("model.output_activation", "root")


def test_a_keras2_h5_with_a_lambda_still_needs_trust(tmp_path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Lambda(lambda t: t * 2.0, input_shape=(4,)),
                                 tf_keras.layers.Dense(1, activation="sigmoid")])
    path = keras2_h5(model, tmp_path / "lambda.h5")
    with pytest.raises(UnsafeModelError):
        whyzero.diagnose(str(path), np.zeros((8, 4), np.float32))


def test_an_empty_sequential_gets_a_one_line_reason(tmp_path):
    """Not 'internal error' (exit 3): what was received, and what to do."""
    from whyzero import cli

    with pytest.raises(WhyzeroError, match=r"no layers to run.*Received: a Sequential named 'empty' with 0 layers"):
        whyzero.diagnose(keras.Sequential(name="empty"), np.zeros((4, 3), np.float32))
    keras.Sequential([keras.Input((3,))], name="only_input").save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    assert cli.main(["diagnose", str(tmp_path / "m.keras"), "--inputs", str(tmp_path / "x.npy")]) == 2
