"""An upload diagnosed: the files saved, the worker's progress where the user looks (above the form) with a
Cancel that stops the worker, and the run the diagnosis becomes.  An error replaces the progress."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from whyzero.diagnosis import Diagnosis
from whyzero.errors import WhyzeroError
from whyzero.ui import render, state


@dataclass
class Uploads:
    """What the upload form received (Streamlit's UploadedFile objects, or None) and its options."""

    model: Any
    batch: list
    labels: Any = None
    masks: Any = None
    train: Any = None
    preprocess: str = "none"
    trust: bool = False
    keep_files: bool = False


def _cancel() -> None:
    st.session_state["cancelled"] = True


@st.cache_data(show_spinner=False, max_entries=16)
def _cached_diagnosis(key: tuple, _paths: dict[str, Any], _model_path: str, trust: bool, preprocess: str) -> str:
    """Runs a diagnosis once per set of inputs (``key`` holds their hashes), in a worker process, showing its
    progress and the seconds passing (a page's Cancel interrupts it there, and the worker is killed)."""
    from whyzero.worker import diagnose_isolated

    started = time.monotonic()
    progress = st.progress(0.0, text="starting a worker process (TensorFlow loads there, a few seconds)")

    def report(stage: str, fraction: float) -> None:
        progress.progress(min(max(fraction, 0.0), 1.0), text=f"{stage} · {time.monotonic() - started:.0f} s")

    kwargs = {"model": _model_path, "inputs": _paths["inputs"], "preprocess": preprocess, "trust_model": trust,
              **{k: _paths.get(k) for k in ("labels", "masks", "train_inputs", "train_stats")}}
    try:
        return diagnose_isolated({"kwargs": kwargs}, progress=report)
    finally:
        progress.empty()


def _save(uploads: Uploads, folder) -> tuple[tuple, dict[str, Any], Any, list]:
    """Writes the files to the session's upload folder; returns the cache key, the paths by role, the model's path
    and the batch's paths."""
    model_path = state.save_upload(uploads.model, folder)
    batch_paths = [state.save_upload(f, folder) for f in uploads.batch]
    paths: dict[str, Any] = {"inputs": str(batch_paths[0]) if len(batch_paths) == 1 else [str(p) for p in batch_paths]}
    key = [state.digest(uploads.model.getvalue()), uploads.trust, uploads.preprocess]
    key += [state.digest(f.getvalue()) for f in uploads.batch]
    roles = [("labels", uploads.labels), ("masks", uploads.masks)]
    if uploads.train is not None:
        roles.append(("train_stats" if uploads.train.name.endswith(".json") else "train_inputs", uploads.train))
    for role, upload in roles:
        if upload is not None:
            paths[role] = str(state.save_upload(upload, folder))
            key.append(role + state.digest(upload.getvalue()))
    return tuple(key), paths, model_path, batch_paths


def diagnose(uploads: Uploads) -> bool:
    """Diagnoses the uploads in the current container (progress, then the error if any); True when the diagnosis
    is the session's current one, kept as a run."""
    if uploads.model is None or not uploads.batch:
        st.error("Upload a model and a batch to diagnose.")
        return False
    folder = state.upload_folder()
    st.button("Cancel", icon=":material/cancel:", on_click=_cancel, help="Stops the diagnosis and its worker.")
    try:
        key, paths, model_path, batch_paths = _save(uploads, folder)
        result = Diagnosis.from_json(_cached_diagnosis(key, paths, str(model_path), uploads.trust, uploads.preprocess))
    except WhyzeroError as err:
        st.error(f"Could not diagnose: {state.scrub(str(err), folder)}")
        return False
    except Exception as err:  # noqa: BLE001 - never a traceback on the page: one line, details below
        render.internal_error(err, folder)
        return False
    files = [str(model_path)] + [str(p) for p in batch_paths]
    source = {"kind": "upload", "model_hash": state.digest(uploads.model.getvalue()), "model_path": str(model_path),
              "trust": uploads.trust, "paths": paths, "preprocess": uploads.preprocess}
    from whyzero.ui.share import zip_files

    state.keep_run(result, f"upload: {uploads.model.name}", source, zip_files(files) if uploads.keep_files else None)
    st.session_state["upload_files"] = files
    return True
