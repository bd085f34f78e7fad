"""The Timeline page's actions: open a run written by ``whyzero.Monitor`` (an upload, or the shipped demo run) as
a kept run, and show another of its observations on every page."""

from __future__ import annotations

import streamlit as st

from whyzero.config import settings
from whyzero.errors import WhyzeroError, first_line
from whyzero.timeline import Timeline, epoch_diagnosis
from whyzero.ui import state


def _open(timeline: Timeline, label: str) -> None:
    if not timeline.epochs:
        raise WhyzeroError("The run holds no observation yet: the monitor writes one at each epoch's end")
    state.keep_run(epoch_diagnosis(timeline, -1), label, {"kind": "timeline"})


def open_upload() -> None:
    """Button callback: the uploaded run (bounded in size before it is read), its last observation shown."""
    upload = st.session_state.get("timeline_upload")
    if upload is None:
        st.session_state["timeline_error"] = "Choose a run's timeline.jsonl first."
        return
    limit = settings().max_file_bytes
    if upload.size > limit:
        st.session_state["timeline_error"] = (f"The run file is {upload.size / 2**20:.0f} MB, over the "
                                              f"{limit / 2**20:.0f} MB limit (WHYZERO_MAX_FILE_MB). Received: "
                                              f"{upload.name}")
        return
    try:
        timeline = Timeline.parse(upload.getvalue().decode("utf-8", errors="replace").splitlines(), upload.name)
        _open(timeline, f"run: {timeline.header.get('model', 'model')} ({len(timeline.epochs)} observations)")
    except WhyzeroError as err:
        st.session_state["timeline_error"] = str(err)
    except Exception as err:  # noqa: BLE001 - a stranger's file: one line, never a traceback
        st.session_state["timeline_error"] = f"This run could not be read: {type(err).__name__}: " \
                                             f"{first_line(err, 200)}. Received: {upload.name}"


def open_demo() -> None:
    """Button callback: the gallery's recipe run, watched ahead of time."""
    from whyzero.demo import DEMO_RECIPE, shipped_timeline

    lines = shipped_timeline()
    if lines is None:
        st.session_state["timeline_error"] = "This install ships no demo run: `whyzero gallery train " \
                                             f"{DEMO_RECIPE} runs/demo` makes one to upload."
        return
    _open(Timeline.parse(lines, "the demo run"), f"demo run: {DEMO_RECIPE}")


def show(timeline: Timeline, index: int) -> None:
    """Observation ``index`` becomes what every page shows; the run (its address and notes) stays the same."""
    st.session_state[state.KEY] = epoch_diagnosis(timeline, index)
