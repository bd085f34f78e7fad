"""Hostile files: built here at test time; no code runs without trust, every size is bounded, one line each.

Each payload would create a marker file if its code ran; the test proves the marker is absent.  Bombs run
in a subprocess under an address-space limit, so a regression fails the test instead of the machine.
"""

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from whyzero import cli

LIMIT_GB = 4  # the address space a bomb's subprocess may use (TensorFlow itself takes ~1.5 GB)


def whyzero_limited(*args, env=None):
    """The CLI in a subprocess that cannot allocate more than LIMIT_GB."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (%d * 2**30,) * 2); "
            "from whyzero.cli import main; sys.exit(main(sys.argv[1:]))" % LIMIT_GB)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env=environment)


def one_line(result):
    err = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert err and err[-1].startswith("whyzero: ") and "Traceback" not in result.stderr, result.stderr[-2000:]
    return err[-1]


@pytest.fixture()
def batch(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).random((4, 4)).astype("float32"))
    return str(path)


def diagnose(model, inputs, *extra):
    return ["diagnose", str(model), "--inputs", str(inputs), "--quiet", *extra]


# -- SavedModels that do more than compute ---------------------------------------------------------------
def savedmodel(tmp_path, body, name="hostile"):
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            return {"y": body(x)}

    module = Module()
    path = tmp_path / name
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.mark.parametrize("op,body", [
    ("WriteFile", lambda marker: lambda x: (tf.io.write_file(marker, "ran"), x * 2)[1]),
    ("ReadFile", lambda marker: lambda x: x + tf.cast(tf.strings.length(tf.io.read_file("/etc/hostname")),
                                                     tf.float32)),
])
def test_a_savedmodel_with_file_ops_is_refused_without_trust(tmp_path, batch, capsys, op, body):
    marker = str(tmp_path / "marker")
    path = savedmodel(tmp_path, body(marker))
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in path.rglob("*"):
            zf.write(file, file.relative_to(tmp_path))
    for model in (path, archive):
        assert cli.main(diagnose(model, batch)) == 2
        err = capsys.readouterr().err
        assert op in err and "--trust-model" in err and err.count("\n") == 1
    assert not os.path.exists(marker)


def test_a_python_callback_in_a_savedmodel_is_refused(tmp_path, batch, capsys):
    marker = tmp_path / "marker"
    path = savedmodel(tmp_path, lambda x: tf.py_function(lambda t: (marker.write_text("ran"), t)[1], [x], tf.float32))
    marker.unlink(missing_ok=True)
    assert cli.main(diagnose(path, batch)) == 2
    assert "PyFunc" in capsys.readouterr().err
    assert not marker.exists()


def test_a_computation_only_savedmodel_loads(tmp_path, batch):
    path = savedmodel(tmp_path, lambda x: tf.nn.sigmoid(tf.reduce_sum(x, axis=1, keepdims=True)), "plain")
    assert cli.main(diagnose(path, batch)) == 0


def test_a_keras2_savedmodel_with_a_lambda_needs_trust(tmp_path, batch, capsys):
    import tf_keras

    marker = tmp_path / "marker"
    inputs = tf_keras.Input((4,))
    marker_path = str(marker)
    out = tf_keras.layers.Lambda(lambda t: t + float(len(open(marker_path, "a").name) * 0))(inputs)
    tf_keras.Model(inputs, out).save(str(tmp_path / "k2"), save_format="tf")
    marker.unlink(missing_ok=True)
    assert cli.main(diagnose(tmp_path / "k2", batch)) == 2
    assert "Lambda" in capsys.readouterr().err
    assert not marker.exists()


def test_a_tfsmlayer_is_named_for_what_it_is(tmp_path, batch, capsys):
    path = savedmodel(tmp_path, lambda x: x * 2, "inner")
    inputs = keras.Input((4,))
    out = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")(inputs)
    model = keras.Model(inputs, out)
    model.save(tmp_path / "outer.keras")
    assert cli.main(diagnose(tmp_path / "outer.keras", batch)) == 2
    err = capsys.readouterr().err
    assert "TFSMLayer" in err and "Lambda" not in err


# -- bombs, under an address-space limit ------------------------------------------------------------------
def png_header(width, height):
    """A PNG that declares width x height pixels and holds almost none."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image_model")
    inputs = keras.Input((None, None, 3))
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
    keras.Model(inputs, out).save(folder / "any_size.keras")
    return folder / "any_size.keras"


@pytest.mark.slow
def test_a_huge_png_is_refused_before_decoding(tmp_path, image_model):
    (tmp_path / "big.png").write_bytes(png_header(13000, 13000))
    line = one_line(whyzero_limited(*diagnose(image_model, tmp_path / "big.png", "--preprocess", "unit")))
    assert "13000x13000" in line and "WHYZERO_MAX_PIXELS" in line


@pytest.mark.slow
def test_a_zip_bomb_of_images_is_refused_from_its_directory(tmp_path, image_model):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("big.png", "w", force_zip64=True) as handle:
            handle.write(png_header(8, 8))
            zero = bytes(2**20)
            for _ in range(300):
                handle.write(zero)
    assert archive.stat().st_size < 2 * 2**20
    line = one_line(whyzero_limited(*diagnose(image_model, archive, "--preprocess", "unit")))
    assert "WHYZERO_MAX_ZIP_RATIO" in line


@pytest.mark.slow
def test_a_savedmodel_zip_with_a_huge_member_leaves_nothing_behind(tmp_path, batch):
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/saved_model.pb", b"")
        with zf.open("m/variables/variables.data-00000-of-00001", "w", force_zip64=True) as handle:
            zero = bytes(2**20)
            for _ in range(300):
                handle.write(zero)
    temp = tmp_path / "tmp"
    temp.mkdir()
    line = one_line(whyzero_limited(*diagnose(archive, batch), env={"TMPDIR": str(temp)}))
    assert "zip" in line
    assert not list(temp.iterdir())


def test_an_npy_header_declaring_60_gb_is_one_line(tmp_path, image_model, capsys):
    path = tmp_path / "huge.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (15_000_000_000,)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 64)
    assert cli.main(diagnose(image_model, path)) == 2
    assert "WHYZERO_MAX_ARRAY_MB" in capsys.readouterr().err


@pytest.mark.slow
def test_an_npz_bomb_is_refused(tmp_path, image_model):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (75 * 2**20,)})
            zero = bytes(2**20)
            for _ in range(300):
                handle.write(zero)
    line = one_line(whyzero_limited(*diagnose(image_model, path)))
    assert "zip bomb" in line


def weights_with_a_huge_dataset(h5_file):
    import h5py

    with h5py.File(h5_file, "a") as handle:
        handle.create_dataset("bomb", shape=(2**30,), dtype="f4")  # 4 GiB declared, nothing stored


def test_h5_and_keras_weights_declaring_gigabytes_are_refused(tmp_path, batch, capsys):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.save(tmp_path / "m.h5")
    weights_with_a_huge_dataset(tmp_path / "m.h5")
    assert (tmp_path / "m.h5").stat().st_size < 100_000
    assert cli.main(diagnose(tmp_path / "m.h5", batch)) == 2
    assert "declare more data than the file holds" in capsys.readouterr().err
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    (tmp_path / "w.h5").write_bytes(members["model.weights.h5"])
    weights_with_a_huge_dataset(tmp_path / "w.h5")
    members["model.weights.h5"] = (tmp_path / "w.h5").read_bytes()
    with zipfile.ZipFile(tmp_path / "bomb.keras", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert cli.main(diagnose(tmp_path / "bomb.keras", batch)) == 2
    assert "declare more data than the file holds" in capsys.readouterr().err


# -- bad input: one line each, naming what was received ------------------------------------------------------
@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rgb")
    inputs = keras.Input((8, 8, 3))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(folder / "rgb.keras")
    np.save(folder / "x.npy", np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32"))
    return folder


def write(path, content):
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def corrupt_npz(path):
    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones((4, 8, 8, 3), "f4"))
    data = bytearray(buffer.getvalue())
    data[200:260] = b"\xff" * 60
    path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("case,args,expected", [
    ("string labels .npy", lambda d, t: ["--labels", write(t / "l.npy", np.array(["cat", "dog", "cat", "dog"]))],
     "numeric"),
    ("string labels csv", lambda d, t: ["--labels", write(t / "l.csv", "label\ncat\ndog\ncat\ndog\n")], "numeric"),
    ("empty npy", lambda d, t: ["--labels", write(t / "e.npy", np.zeros((0,)))], "empty"),
    ("corrupt npz", lambda d, t: ["--labels", corrupt_npz(t / "c.npz")], "Received: c.npz"),
    ("object npz", lambda d, t: ["--labels", write(t / "o.npz", b"")], "Received: o.npz"),
    ("bad stats keys", lambda d, t: ["--train-stats", write(t / "s.json", json.dumps({"whyzero_stats": 1,
                                                                                      "sum": "x"}))],
     "malformed"),
    ("complex masks", lambda d, t: ["--masks", write(t / "m.npy", np.ones((4, 8, 8), complex))], "numeric"),
    ("five features for eight", lambda d, t: ["--train-inputs", write(t / "tr.npy", np.ones((4, 8, 8, 5), "f4"))],
     "channels or features"),
])
def test_bad_input_is_one_line(rgb_model, tmp_path, capsys, case, args, expected):
    assert cli.main(diagnose(rgb_model / "rgb.keras", rgb_model / "x.npy", *args(rgb_model, tmp_path))) == 2, case
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err, (case, err)
    assert str(tmp_path) not in err  # file names, never the server's folders


def test_mean_std_with_two_values_for_rgb_is_one_line(rgb_model, tmp_path, capsys):
    from PIL import Image

    for i in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"{i}.png")
    args = diagnose(rgb_model / "rgb.keras", tmp_path, "--preprocess", "mean-std:1,2:3,4")
    assert cli.main(args) == 2
    assert "mean-std:1,2:3,4" in capsys.readouterr().err


def test_a_corrupt_keras_file_says_so(tmp_path, batch, capsys):
    (tmp_path / "broken.keras").write_bytes(b"not a zip at all")
    assert cli.main(diagnose(tmp_path / "broken.keras", batch)) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "broken.keras" in err and "not found" not in err.lower()


def test_a_layer_name_with_markup_diagnoses(tmp_path, batch):
    inputs = keras.Input((4,))
    out = keras.layers.Dense(1, activation="sigmoid", name="<img src=x onerror=alert(1)>")(inputs)
    model = keras.Model(inputs, out)
    model.compile("adam", "binary_crossentropy")
    model.save(tmp_path / "markup.keras")
    assert cli.main(diagnose(tmp_path / "markup.keras", batch)) == 0


def test_a_cancelled_diagnosis_kills_its_worker(monkeypatch):
    """A page's Cancel interrupts the progress callback: the worker process must not run on."""
    import subprocess

    from whyzero import worker

    started = []
    real = subprocess.Popen

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(worker.subprocess, "Popen", spy)

    class Cancelled(Exception):
        pass

    def cancel(stage, fraction):
        raise Cancelled(stage)

    with pytest.raises(Cancelled) as raised:
        worker.diagnose_isolated({"gallery": "binary_healthy"}, progress=cancel)
    assert str(raised.value).startswith("starting a worker")  # heard within a heartbeat, before any stage
    assert started and started[0].poll() is not None  # killed and reaped
