"""The Runs page's actions: a workspace's runs listed, reopened, renamed, deleted, compared.

Imports inside functions are deliberately lazy: the store (SQLAlchemy) loads when runs are first listed.
"""

from __future__ import annotations

import streamlit as st

from whyzero.ui import state


def _store():
    from whyzero.store import default_store

    return default_store()


def listed() -> list:
    """This browser's workspace's runs, newest first (none before the first run)."""
    workspace = st.session_state.get("workspace")
    return _store().runs(workspace) if workspace else []


def messages() -> list[tuple[str, str]]:
    """What the last action said, once: (st function name, text)."""
    return st.session_state.pop("runs_messages", [])


def _say(kind: str, text: str) -> None:
    st.session_state.setdefault("runs_messages", []).append((kind, text))


def open_run(run_id: str) -> None:
    st.session_state.pop("run_id", None)  # open it anew, notes included
    if state.open_run(run_id):
        state.carry_address()
        st.session_state["go_overview"] = True
    else:
        _say("error", "That run no longer exists: it was deleted, or is older than WHYZERO_RUN_DAYS.")


def rename(run_id: str) -> None:
    title = st.session_state.get("run_title", "").strip()
    if not title:
        _say("error", "A title needs at least one character.")
    elif _store().rename_run(run_id, title):
        if run_id == state.run_id():
            st.session_state["label"] = title
        _say("success", f"Renamed to '{title}'.")
    else:
        _say("error", "That run no longer exists.")


def delete(run_id: str) -> None:
    if _store().delete_run(run_id):
        st.session_state.pop("confirm_delete", None)
        if run_id == state.run_id():
            st.session_state.pop("run_id", None)
            st.query_params.pop("run", None)
        _say("success", "Deleted the run, its notes and its share links.")
    else:
        _say("error", "That run no longer exists.")


def compare(run_ids: list[str]) -> None:
    st.session_state["compare_runs"] = run_ids
    st.session_state["go_compare"] = True


def files_download(run) -> None:
    """The files kept with a run, zipped, when the user asked to keep them."""
    if not run.has_attachments:
        return
    data = _store().run_attachments(run.id)
    if data:
        st.download_button("Download its kept files", data, file_name="whyzero_run_files.zip", mime="application/zip",
                           icon=":material/folder_zip:")
