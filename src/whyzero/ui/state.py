"""Where the app keeps its diagnosis, and how it makes one (cached, so pages recompute nothing).

Imports inside functions are deliberately lazy: the worker, the proofs, the store and the reference load when a
page first needs them: the navigation draws first.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import streamlit as st

from whyzero.config import settings
from whyzero.demo import DEMO_CASE, shipped_json
from whyzero.diagnosis import Diagnosis
from whyzero.errors import first_line
from whyzero.measurements import Measurements
from whyzero.panels import PAGES

KEY = "diagnosis"


def current() -> Diagnosis | None:
    return st.session_state.get(KEY)


def set_current(diagnosis: Diagnosis, label: str) -> None:
    if st.session_state.get(KEY) is not None and st.session_state[KEY] is not diagnosis:
        st.session_state["previous_diagnosis"] = st.session_state[KEY]  # for the Compare page
        st.session_state["previous_label"] = st.session_state.get("label", "")
    st.session_state[KEY] = diagnosis
    st.session_state["label"] = label
    st.session_state.pop("run_id", None)
    st.session_state.pop("run_notes", None)
    st.session_state.pop("share_result", None)
    st.session_state.pop("upload_files", None)


def keep_run(diagnosis: Diagnosis, label: str, source: dict[str, Any], attachments: bytes | None = None) -> None:
    """Makes ``diagnosis`` the current one and keeps it as a run at its own address (``?run=``), in this browser's
    workspace.  A store that cannot be written costs the address, never the diagnosis: the page says so."""
    from whyzero.store import default_store

    set_current(diagnosis, label)
    st.session_state["source"] = source
    kept = {k: v for k, v in source.items() if k in ("kind", "name", "preprocess", "trust")}
    try:
        run_id, workspace = default_store().save_run(diagnosis, label, st.session_state.get("workspace"),
                                                     kept, attachments)
    except Exception as err:  # noqa: BLE001 - shown on the page as one line
        st.session_state["run_error"] = f"This diagnosis was not kept as a run: {type(err).__name__}: " \
                                        f"{first_line(err, 200)}"
        return
    st.session_state["run_id"], st.session_state["workspace"] = run_id, workspace
    st.session_state["run_notes"] = {}
    carry_address()


def open_run(run_id: str) -> bool:
    """Puts a kept run in this browser session (its owner's view: notes, rename, delete); False if there is
    none."""
    if st.session_state.get("run_id") == run_id:
        return True
    from whyzero.store import default_store

    saved = default_store().load_run(run_id)
    if saved is None:
        return False
    set_current(saved.diagnosis, saved.title)
    st.session_state["run_id"], st.session_state["workspace"] = saved.id, saved.workspace
    st.session_state["run_notes"] = saved.notes
    st.session_state["source"] = saved.source if saved.source.get("kind") == "demo" else None
    return True


def run_id() -> str | None:
    return st.session_state.get("run_id")


def carry_address() -> None:
    """Keeps the run or shared session in the address bar on every page (a page switch drops the query)."""
    token = st.session_state.get("shared_token") if read_only() else None
    key, value = ("session", token) if token else ("run", run_id())
    if value and st.query_params.get(key) != value:
        st.query_params[key] = value


def notes() -> dict:
    """The notes of what is shown: a shared session's, or the owner's run's."""
    return st.session_state.get("shared_notes" if read_only() else "run_notes") or {}


def refresh_notes() -> None:
    """Reads the notes anew (a reviewer's note reaches the owner, and the other way round, on the next page)."""
    token = note_token()
    if token:
        from whyzero.store import default_store

        st.session_state["shared_notes" if read_only() else "run_notes"] = default_store().notes_of(token)


def note_token() -> str | None:
    """What a note is written to: the shared session (a reviewer) or the run (its owner)."""
    return st.session_state.get("shared_token") if read_only() else run_id()


@st.cache_resource(show_spinner=False)
def _gallery_diagnosis_json(name: str) -> str:
    from whyzero.worker import diagnose_isolated

    return diagnose_isolated({"gallery": name})


def demo(name: str) -> Diagnosis:
    """A gallery case, built and diagnosed once per server."""
    with st.spinner(f"Building and diagnosing the demo '{name}'…"):
        return Diagnosis.from_json(_gallery_diagnosis_json(name))


def open_demo() -> None:
    """Button callback: diagnoses the gallery case picked in ``demo_choice``."""
    name = st.session_state.get("demo_choice", DEMO_CASE)
    keep_run(demo(name), f"demo: {name}", {"kind": "demo", "name": name})
    st.session_state["go_overview"] = True


@st.cache_resource(show_spinner=False)
def _shipped_demo() -> Diagnosis | None:
    text = shipped_json(DEMO_CASE)
    if text is None:
        return None
    try:
        return Diagnosis.from_json(text)
    except Exception:  # noqa: BLE001 - a shipped copy this version cannot read: diagnose live instead
        return None


def ensure_diagnosis() -> Diagnosis:
    """The session's diagnosis; a newcomer gets the demo, diagnosed ahead of time (or live if none ships)."""
    if current() is None:
        shipped = _shipped_demo()
        if shipped is not None:
            set_current(shipped, f"demo: {DEMO_CASE} (diagnosed ahead of time)")
        else:
            set_current(demo(DEMO_CASE), f"demo: {DEMO_CASE}")
        st.session_state["source"] = {"kind": "demo", "name": DEMO_CASE}
    return current()


def can_rediagnose(finding) -> bool:
    """Whether the app can re-run the model under this finding's proven fix (a change of the batch)."""
    from whyzero.proofs import BATCH_FIX_KEYS

    key = finding.proof.fix_key if finding.proof else ""
    if read_only() or st.session_state.get("source") is None or "measurements" not in current().summaries:
        return False
    return key.startswith(BATCH_FIX_KEYS)  # cheap: the measurements are decoded only when the button is used


def rediagnose_with_fix(index: int) -> None:
    """Button callback: diagnoses the same model again on the batch under finding ``index``'s fix, keeps the
    current diagnosis as the previous one, and opens the Compare page."""
    from whyzero.proofs import batch_fix

    d = current()
    finding = d.findings[index]
    fix = batch_fix(finding.proof.fix_key, Measurements.from_dict(d.summaries["measurements"]))
    if fix is None:
        st.session_state["fix_error"] = f"This fix cannot be re-run from the stored diagnosis: {finding.proof.fix}"
        return
    source = st.session_state["source"]
    job: dict[str, Any] = {"fix_key": finding.proof.fix_key, "measurements": d.summaries["measurements"]}
    if source["kind"] == "demo":
        job["gallery"] = source["name"]
    else:
        paths = source["paths"]
        job["kwargs"] = {"model": source["model_path"], "inputs": paths["inputs"], "trust_model": source["trust"],
                         "preprocess": source["preprocess"],
                         **{k: paths.get(k) for k in ("labels", "masks", "train_inputs", "train_stats")}}
    try:
        from whyzero.worker import diagnose_isolated

        with st.spinner(f"Diagnosing again under the fix: {finding.proof.fix}…"):
            fixed = Diagnosis.from_json(diagnose_isolated(job))
    except Exception as err:  # noqa: BLE001 - shown on the page as one line
        st.session_state["fix_error"] = f"The re-run under the fix failed: {type(err).__name__}: {first_line(err, 200)}"
        return
    label = st.session_state.get("label", "")
    keep_run(fixed, f"{label} + fix: {finding.proof.fix}", source)
    st.session_state["go_compare"] = True


@st.cache_resource(show_spinner=False)
def warm_up() -> None:
    """Imports what the panels draw with (Plotly, the figures, the cause reference) in a background thread once
    per server, so a reader's first switch to a chart page does not wait for the imports.  Never TensorFlow."""

    def imports() -> None:
        import pandas  # noqa: F401
        import plotly.graph_objects  # noqa: F401

        from whyzero.figures.base import use_template

        use_template()  # Plotly's template loads here, in the background, not in a reader's first chart page
        from whyzero.reference import references

        references()  # cached: the Causes page reads the checks' sources once per server

    threading.Thread(target=imports, name="whyzero-warm-up", daemon=True).start()


def record_timing(page: str, seconds: float) -> None:
    """Appends one page run's server time to ``WHYZERO_TIMINGS_FILE`` (browser tests, benchmarks), if set."""

    path = settings().timings_file
    if path is not None:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{page}\t{seconds:.3f}\n")


def scrub(text: str, folder: Path) -> str:
    """A message without the server's upload folder: uploaded files are named by their own names."""
    return text.replace(str(folder) + "/", "").replace(str(folder), "(upload)")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_upload(upload, folder: Path) -> Path:
    """Writes an uploaded file to ``folder`` under its own name; a .zip of a SavedModel stays a zip."""
    path = folder / Path(upload.name).name
    path.write_bytes(upload.getvalue())
    return path


def upload_folder() -> Path:
    if "upload_dir" not in st.session_state:
        st.session_state["upload_dir"] = tempfile.mkdtemp(prefix="whyzero-upload-")
    return Path(st.session_state["upload_dir"])


def open_shared(token: str) -> bool:
    """Puts a shared session's diagnosis in this browser session, read-only; False if there is none."""
    if st.session_state.get("shared_token") == token:
        return True
    from whyzero.store import default_store

    saved = default_store().load(token)
    if saved is None:
        return False
    st.session_state["shared_token"] = token
    st.session_state["shared_notes"] = saved.notes
    st.session_state["shared_has_attachments"] = saved.has_attachments
    st.session_state["read_only"] = True
    set_current(saved.diagnosis, f"shared session: {saved.title} (expires {saved.expires.date().isoformat()})")
    return True


def local_link(link: str) -> bool:
    """Whether a link points at this machine only (localhost, 127.x, ::1)."""
    host = (urlparse(link).hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.")


def read_only() -> bool:
    return bool(st.session_state.get("read_only"))


def share_link(token: str) -> str:

    public = settings().public_url
    if public:
        return f"{public.rstrip('/')}/?session={token}"
    base = (st.context.url or "").split("?")[0].rstrip("/")
    for page in PAGES:
        if base.endswith("/" + page.url):
            base = base[: -len(page.url) - 1]
    return f"{base}/?session={token}"
