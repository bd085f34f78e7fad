"""What the Compare page compares: runs chosen on the Runs page, the previous diagnosis in this session, an
uploaded diagnosis JSON or a share link, each beside the current diagnosis.

Imports inside functions are deliberately lazy: the store (SQLAlchemy) loads when runs or links are read.
"""

from __future__ import annotations

import streamlit as st

from whyzero.diagnosis import Diagnosis
from whyzero.errors import WhyzeroError

RUNS = "the runs chosen on the Runs page"
PREVIOUS = "the previous diagnosis in this session"
UPLOADED = "an uploaded diagnosis JSON"
LINK = "a share link"


def series(current: Diagnosis) -> list[tuple[str, Diagnosis]]:
    """(label, diagnosis) pairs to compare, as the user picked them; the page explains an empty pick."""
    chosen = st.session_state.get("compare_runs") or []
    options = ([RUNS] if chosen else []) + [PREVIOUS, UPLOADED, LINK]
    source = st.radio("Compare", options, horizontal=True,
                      format_func=lambda o: o if o == RUNS else f"the current diagnosis with {o}")
    now = ("now: " + st.session_state.get("label", current.model["name"]), current)
    if source == RUNS:
        return _runs(chosen)
    if source == PREVIOUS:
        other = st.session_state.get("previous_diagnosis")
        if other is None:
            st.info("No previous diagnosis in this session yet: diagnose another model, batch or demo first, or pick "
                    "runs on the Runs page.")
            return []
        return [("before: " + (st.session_state.get("previous_label") or other.model["name"]), other), now]
    other = _uploaded() if source == UPLOADED else _linked()
    return [other, now] if other else []


def _runs(run_ids: list[str]) -> list[tuple[str, Diagnosis]]:
    from whyzero.store import default_store

    store = default_store()
    found = [(run_id, store.load_run(run_id)) for run_id in run_ids]
    missing = sum(saved is None for _, saved in found)
    if missing:
        st.warning(f"{missing} of the chosen runs no longer exist (deleted, or older than WHYZERO_RUN_DAYS).")
    kept = [(saved.title, saved.diagnosis) for _, saved in found if saved is not None]
    if len(kept) < 2:
        st.info("Choose two runs or more on the Runs page to compare them.")
    return kept


def _uploaded() -> tuple[str, Diagnosis] | None:
    upload = st.file_uploader("Diagnosis JSON (whyzero diagnose --json, or the Overview's download)", type=["json"])
    if upload is None:
        return None
    try:
        return f"uploaded: {upload.name}", Diagnosis.from_json(upload.getvalue().decode("utf-8", "replace"))
    except WhyzeroError as err:
        st.error(f"Could not read it: {err}")
        return None


def _linked() -> tuple[str, Diagnosis] | None:
    link = st.text_input("Share link (or its token)")
    if not link:
        return None
    from whyzero.store import default_store

    saved = default_store().load(link.split("session=")[-1].split("&")[0].strip())
    if saved is None:
        st.error("No such session: the link is malformed, unknown, expired or was deleted.")
        return None
    return f"shared: {saved.title}", saved.diagnosis
