"""Loading a Keras model from any of the formats users have.

Formats: ``.keras``; legacy ``.h5``/``.hdf5``; a SavedModel directory or its
``.zip``.  A Keras-2 SavedModel loads through ``tf_keras`` and keeps its
layers; one that only loads as a function is diagnosed on its inputs and
outputs alone.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from whyzero.errors import UnsafeModelError, WhyzeroError

TRUST_HINT = ("This model file holds Python code (a Lambda layer); loading it runs that code. "
              "Pass trust_model=True (CLI: --trust-model) if you trust its source.")


@dataclass
class LoadedModel:
    """A model ready to probe.

    Attributes:
        model: a Keras (3 or tf_keras) model, or a callable for an inference-only SavedModel.
        name: what to call it on pages.
        hash: sha256 of the file (or of the weights, for an in-memory model).
        source: the path it came from, or "memory".
        has_layers: False for an inference-only SavedModel.
        notes: what the user should know about how it was loaded.
    """

    model: Any
    name: str
    hash: str
    source: str = "memory"
    has_layers: bool = True
    notes: list[str] = field(default_factory=list)


def load_model(model: Any, trust_model: bool = False) -> LoadedModel:
    """Accepts a model object or a path and returns it loaded.

    Raises:
        WhyzeroError: a file that cannot be read, with what was received.
        UnsafeModelError: a file with Lambda layers and ``trust_model=False``.
    """
    if not isinstance(model, (str, os.PathLike)):
        if not callable(model):
            raise WhyzeroError(f"Expected a Keras model or a path to one. Received: {type(model).__name__}")
        return LoadedModel(model, getattr(model, "name", "model"), weights_hash(model))
    path = Path(model)
    if not path.exists():
        raise WhyzeroError(f"No model file at that path. Received: {path}")
    digest = file_hash(path)
    if path.suffix == ".zip":
        return _load_zip(path, digest, trust_model)
    if path.is_dir():
        return _load_savedmodel(path, digest, trust_model)
    if path.suffix == ".keras":
        return LoadedModel(_load_keras(path, trust_model), path.stem, digest, str(path))
    if path.suffix in (".h5", ".hdf5"):
        return LoadedModel(_load_keras(path, trust_model), path.stem, digest, str(path))
    raise WhyzeroError(
        f"Expected a .keras, .h5/.hdf5 file, a SavedModel directory or its .zip. Received: {path.name}")


def _load_keras(path: Path, trust_model: bool):
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=not trust_model)
    except Exception as err:  # noqa: BLE001 - any failure here is the file's
        if "safe_mode" in str(err):
            raise UnsafeModelError(f"{TRUST_HINT} Received: {path.name}") from None
        compile_error = err
    try:  # a model whose compile config cannot be rebuilt still diagnoses
        model = keras.saving.load_model(path, compile=False, safe_mode=not trust_model)
    except Exception as err:  # noqa: BLE001
        raise WhyzeroError(f"Could not read the model file ({_first_line(err)}). Received: {path.name}") from None
    model._whyzero_note = f"the compiled loss and optimizer could not be read: {_first_line(compile_error)}"
    return model


def _load_savedmodel(path: Path, digest: str, trust_model: bool) -> LoadedModel:
    if not (path / "saved_model.pb").exists():
        raise WhyzeroError(f"Expected a SavedModel directory (with saved_model.pb). Received: {path}")
    try:
        import tf_keras

        model = tf_keras.models.load_model(path, compile=True, safe_mode=not trust_model) \
            if _accepts_safe_mode(tf_keras) else tf_keras.models.load_model(path, compile=True)
        if not isinstance(model, tf_keras.Model):
            raise TypeError("the SavedModel holds no Keras model")
        return LoadedModel(model, path.name, digest, str(path),
                           notes=["loaded as a Keras-2 SavedModel through tf_keras"])
    except Exception as keras_err:  # noqa: BLE001 - fall back to the inference function
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
            fn = loaded.signatures["serving_default"]
        except Exception as err:  # noqa: BLE001
            raise WhyzeroError(f"Could not read the SavedModel ({_first_line(err)}). Received: {path}") from None
        note = (f"this SavedModel loads only as an inference function ({_first_line(keras_err)}); "
                "it is diagnosed on its inputs and outputs, and the layer panels are empty")
        return LoadedModel(SignatureModel(fn), path.name, digest, str(path), has_layers=False, notes=[note])


def _accepts_safe_mode(module) -> bool:
    import inspect

    return "safe_mode" in inspect.signature(module.models.load_model).parameters


def _load_zip(path: Path, digest: str, trust_model: bool) -> LoadedModel:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise WhyzeroError(f"Expected a zipped SavedModel, but the file is not a zip. Received: {path.name}") from None
    target = Path(tempfile.mkdtemp(prefix="whyzero-model-"))
    for member in archive.namelist():  # never write outside the target folder
        if member.startswith("/") or ".." in Path(member).parts:
            raise WhyzeroError(f"The zip holds an unsafe path. Received: {member}")
    archive.extractall(target)
    roots = [p.parent for p in target.rglob("saved_model.pb")]
    if not roots:
        raise WhyzeroError(f"Expected a SavedModel (saved_model.pb) inside the zip. Received: {path.name}")
    loaded = _load_savedmodel(roots[0], digest, trust_model)
    loaded.name, loaded.source = path.stem, str(path)
    return loaded


class SignatureModel:
    """An inference-only SavedModel signature, called like a model on one input."""

    def __init__(self, fn) -> None:
        self.fn = fn
        spec = list(fn.structured_input_signature[1].values())[0]
        self.input_key = list(fn.structured_input_signature[1].keys())[0]
        self.input_shape = tuple(spec.shape)
        self.input_dtype = spec.dtype
        self.name = "savedmodel"

    def __call__(self, x, training: bool = False):
        import tensorflow as tf

        out = self.fn(**{self.input_key: tf.cast(x, self.input_dtype)})
        return list(out.values())[0]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights_hash(model) -> str:
    digest = hashlib.sha256()
    for weight in getattr(model, "weights", []):
        digest.update(keras.ops.convert_to_numpy(weight).tobytes())
    return digest.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]
