"""Loading a Keras model from any of the formats users have.

Formats: ``.keras``; legacy ``.h5``/``.hdf5``; a SavedModel directory or its
``.zip``.  A Keras-2 SavedModel loads through ``tf_keras`` and keeps its
layers; one that only loads as a function is diagnosed on its inputs and
outputs alone.

Imports inside functions are deliberately lazy: Keras, tf_keras and TensorFlow load only for the formats that need
them.
"""

from __future__ import annotations

import builtins
import hashlib
import inspect
import json
import math
import os
import runpy
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from whyzero._lazy import LazyModule
from whyzero.errors import UnsafeModelError, WhyzeroError, first_line
from whyzero.loading import safety

keras = LazyModule("keras")  # TensorFlow loads (quietly) when a model does

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
        head: for a model with several outputs, the name of the one diagnosed.
        passes: the probe's compiled passes over this model, reused by re-runs of the same diagnosis.
    """

    model: Any
    name: str
    hash: str
    source: str = "memory"
    has_layers: bool = True
    notes: list[str] = field(default_factory=list)
    head: str | None = None  # for a model with several outputs, the one diagnosed
    # the probe's compiled passes, kept for the re-runs of the same diagnosis (the proofs): not traced twice
    passes: dict = field(default_factory=dict, repr=False, compare=False)


def load_model(model: Any, trust_model: bool = False, custom_objects: str | os.PathLike | dict | None = None,
               ) -> LoadedModel:
    """Accepts a model object or a path and returns it loaded.

    Args:
        model: a Keras model, or a path to one.
        trust_model: allow code inside the file (Lambda layers; notebook lambdas see ``keras``,
            ``ops``, ``tf``, ``np`` and ``K``).
        custom_objects: a ``.py`` file (run only with ``trust_model``) or a dict of the custom layers,
            losses and metrics the model was saved with.

    Raises:
        WhyzeroError: a file that cannot be read, with what was received.
        UnsafeModelError: a file with Lambda layers and ``trust_model=False``.
    """
    if not isinstance(model, (str, os.PathLike)):
        if not callable(model):
            raise WhyzeroError(f"Expected a Keras model or a path to one. Received: {type(model).__name__}")
        refuse_empty(model, f"a {type(model).__name__} named '{getattr(model, 'name', 'model')}'")
        return LoadedModel(model, getattr(model, "name", "model"), weights_hash(model))
    path = Path(model)
    if not path.exists():
        raise WhyzeroError(f"No model file at that path. Received: {path.name}")
    if path.is_file() and path.suffix in (".keras", ".zip", ".npz") and not zipfile.is_zipfile(path):
        raise WhyzeroError(f"Expected a {path.suffix} file (a zip archive); this one is not: corrupt or of another "
                           f"kind. Received: {path.name}")
    safety.check_file_size(path)
    objects = load_custom_objects(custom_objects, trust_model)
    digest = file_hash(path)
    if path.suffix == ".zip":
        return _load_zip(path, digest, trust_model)
    if path.is_dir():
        return _load_savedmodel(path, digest, trust_model)
    if path.suffix in (".keras", ".h5", ".hdf5"):
        if path.suffix == ".keras":
            safety.check_keras_file(path, trust_model)
        else:
            safety.check_h5_model(path, trust_model)
            return _load_h5(path, digest, trust_model, objects)
        loaded, notes = _load_keras(path, trust_model, objects)
        refuse_empty(loaded, path.name)
        return LoadedModel(loaded, path.stem, digest, str(path), notes=notes)
    raise WhyzeroError(
        f"Expected a .keras, .h5/.hdf5 file, a SavedModel directory or its .zip. Received: {path.name}")


def refuse_empty(model, received: str) -> None:
    """A Keras model without a layer (an empty Sequential) has nothing to run or diagnose.

    Raises:
        WhyzeroError: with what was received.
    """
    layers = getattr(model, "layers", None)
    if layers is not None and not [layer for layer in layers if type(layer).__name__ != "InputLayer"]:
        raise WhyzeroError(f"The model has no layers to run (an empty Sequential?): add its layers, or load the "
                           f"trained model. Received: {received} with 0 layers")


def load_custom_objects(source: str | os.PathLike | dict | None, trust_model: bool) -> dict[str, Any]:
    """The custom objects a model needs: a dict as given, or the public names a ``.py`` file defines.

    Raises:
        UnsafeModelError: a ``.py`` file without ``trust_model`` (running it runs its code).
        WhyzeroError: a file that cannot be run.
    """
    if source is None:
        return {}
    if isinstance(source, dict):
        return dict(source)
    path = Path(source)
    if not trust_model:
        raise UnsafeModelError(f"Custom objects come from running a Python file; pass --trust-model (app: tick "
                               f"the trust box) if you trust it. Received: {path.name}")

    try:
        names = runpy.run_path(str(path), run_name="whyzero_custom_objects")
    except Exception as err:  # noqa: BLE001 - the user's file failed
        raise WhyzeroError(f"The custom-objects file failed to run ({type(err).__name__}: {first_line(err, 300)}). "
                           f"Received: {path.name}") from None
    return {k: v for k, v in names.items() if not k.startswith("_") and callable(v)}


def _load_keras(path: Path, trust_model: bool, custom_objects: dict[str, Any]) -> tuple[Any, list[str]]:
    with notebook_globals(trust_model, custom_objects):
        try:
            return keras.saving.load_model(path, compile=True, safe_mode=not trust_model,
                                           custom_objects=custom_objects or None), []
        except Exception as err:  # noqa: BLE001 - any failure here is the file's
            if "safe_mode" in str(err) or "unsafe" in str(err).lower() and "lambda" in str(err).lower():
                raise UnsafeModelError(f"{TRUST_HINT} Received: {path.name}") from None
            compile_error = err
        try:  # a model whose compile config (a custom loss or metric) cannot be rebuilt still diagnoses
            model = keras.saving.load_model(path, compile=False, safe_mode=not trust_model,
                                            custom_objects=custom_objects or None)
        except Exception as err:  # noqa: BLE001
            raise WhyzeroError(f"Could not read the model file ({first_line(err, 300)}). Received: {path.name}") \
                from None
    reason = first_line(compile_error, 300).split(". ")[0]
    note = (f"loaded without its compiled loss and optimizer ({reason}): gradients use the loss "
            "the output implies and the learning-rate checks are skipped; pass the loss's code with "
            "--custom-objects FILE.py (and --trust-model) for a full load")
    return model, [note]


def h5_header(path: Path) -> tuple[str | None, list | None]:
    """The Keras version an .h5 model file says wrote it, and the input shape it declares (its InputLayer's, or its
    first layer's ``batch_input_shape``); None for what it does not say."""
    try:
        with h5py.File(path, "r") as handle:
            version, config = handle.attrs.get("keras_version"), handle.attrs.get("model_config")
    except (OSError, ValueError):
        return None, None
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    try:
        layers = (json.loads(config).get("config") or {}).get("layers") or []
    except (TypeError, ValueError, AttributeError):
        layers = []
    first = (layers[0].get("config") or {}) if layers and isinstance(layers[0], dict) else {}
    shape = first.get("batch_input_shape") or first.get("batch_shape")
    return (str(version) if version else None), (list(shape) if isinstance(shape, (list, tuple)) else None)


def _load_h5(path: Path, digest: str, trust_model: bool, objects: dict[str, Any]) -> LoadedModel:
    """An .h5 model.  A file written by Keras 1.x/2.x (a Sequential without an InputLayer, RNN layers' old arguments)
    is read by the Keras 2 that wrote it, ``tf_keras``; so is any other that Keras 3 cannot read, or reads with another
    input rank than the file declares (a Keras 2 Sequential read as taking (None, None, F))."""
    written_by, declared = h5_header(path)
    keras3, keras3_error = None, None
    if not (written_by and written_by.split(".")[0] in ("1", "2")):
        try:
            keras3 = _load_keras(path, trust_model, objects)
        except UnsafeModelError:
            raise
        except WhyzeroError as err:  # Keras 3 cannot read it: the Keras 2 API may
            keras3_error = err
        else:
            inputs = getattr(keras3[0], "inputs", None)
            if not (declared and inputs and len(inputs) == 1 and len(tuple(inputs[0].shape)) != len(declared)):
                refuse_empty(keras3[0], path.name)
                return LoadedModel(keras3[0], path.stem, digest, str(path), notes=keras3[1])
    keras2 = _load_tf_keras_h5(path, objects, written_by)
    if keras2 is None and keras3 is None:
        if keras3_error is not None:
            raise keras3_error
        keras3 = _load_keras(path, trust_model, objects)  # tf_keras cannot read this Keras 2 file: Keras 3 tries
    model, notes = keras2 if keras2 is not None else keras3
    refuse_empty(model, path.name)
    return LoadedModel(model, path.stem, digest, str(path), notes=notes)


def _load_tf_keras_h5(path: Path, custom_objects: dict[str, Any], written_by: str | None,
                      ) -> tuple[Any, list[str]] | None:
    """The model through ``tf_keras``, the Keras 2 API; None where it cannot read it."""
    import tf_keras

    for compiled in (True, False):
        try:
            model = tf_keras.models.load_model(path, compile=compiled, custom_objects=custom_objects or None)
        except Exception:  # noqa: BLE001 - not a file tf_keras reads either
            continue
        who = f"Keras {written_by}" if written_by else "an earlier Keras"
        notes = [f"written by {who}: loaded through tf_keras, the Keras 2 API (Keras 3 reads such files with their "
                 "input shape lost, or not at all)"]
        if not compiled:
            notes.append("loaded without its compiled loss and optimizer: gradients use the loss the output implies "
                         "and the learning-rate checks are skipped")
        return model, notes
    return None


class _Namespace:
    """``K`` as Keras-2 notebooks used it: keras.ops first, then keras.backend."""

    def __getattr__(self, name: str):
        for module in (keras.ops, keras.backend):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(name)


def _notebook_names(custom_objects: dict[str, Any]) -> dict[str, Any]:
    import tensorflow as tf

    return {"__builtins__": builtins, "keras": keras, "ops": keras.ops, "tf": tf, "np": np, "math": math,
            "K": _Namespace(), "backend": keras.backend, **custom_objects}


@contextmanager
def notebook_globals(trust_model: bool, custom_objects: dict[str, Any]):
    """Under trust, Lambda functions saved from a notebook resolve ``keras``, ``ops``, ``tf``, ``np``, ``K``
    (and the custom objects) instead of failing with a NameError when they are called."""
    if not trust_model:
        yield
        return
    from keras.src.utils import python_utils

    original = python_utils.func_load
    names = _notebook_names(custom_objects)

    def func_load(code, defaults=None, closure=None, globs=None):
        return original(code, defaults=defaults, closure=closure, globs=globs if globs is not None else names)

    python_utils.func_load = func_load
    try:
        yield
    finally:
        python_utils.func_load = original


def _load_savedmodel(path: Path, digest: str, trust_model: bool) -> LoadedModel:
    if not (path / "saved_model.pb").exists():
        raise WhyzeroError(f"Expected a SavedModel directory (with saved_model.pb). Received: {path.name}")
    safety.check_savedmodel(path, trust_model)
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
            raise WhyzeroError(f"Could not read the SavedModel ({first_line(err, 300)}). "
                               f"Received: {path.name}") from None
        note = (f"this SavedModel loads only as an inference function ({first_line(keras_err, 300)}); "
                "it is diagnosed on its inputs and outputs, and the layer panels are empty")
        return LoadedModel(SignatureModel(fn), path.name, digest, str(path), has_layers=False, notes=[note])


def _accepts_safe_mode(module) -> bool:
    return "safe_mode" in inspect.signature(module.models.load_model).parameters


def _load_zip(path: Path, digest: str, trust_model: bool) -> LoadedModel:
    archive = safety.open_zip(path)  # bounded before anything is written
    target = Path(tempfile.mkdtemp(prefix="whyzero-model-"))
    try:
        safety.safe_extract(archive, target)
        roots = [p.parent for p in target.rglob("saved_model.pb")]
        if not roots:
            raise WhyzeroError(f"Expected a SavedModel (saved_model.pb) inside the zip. Received: {path.name}")
        loaded = _load_savedmodel(roots[0], digest, trust_model)
    finally:
        safety.remove_tree(target)  # variables are in memory once loaded
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
    """sha256 of the weights' bytes, in order (read straight from each variable: through ``keras.ops`` and a copy
    of the bytes, ResNet50's took 0.17 s, 0.1 s so)."""
    digest = hashlib.sha256()
    for weight in getattr(model, "weights", []):
        values = weight.numpy() if hasattr(weight, "numpy") else keras.ops.convert_to_numpy(weight)
        digest.update(np.ascontiguousarray(values).data)
    return digest.hexdigest()
