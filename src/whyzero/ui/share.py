"""The Share box and the downloads (HTML report, Diagnosis JSON).

Imports inside functions are deliberately lazy: the store (SQLAlchemy) and the report (Plotly) load when a session
is shared or exported.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import streamlit as st

from whyzero.config import settings
from whyzero.diagnosis import Diagnosis
from whyzero.ui import state


def _stem(d: Diagnosis) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"whyzero_{d.model['name']}_{d.model['hash'][:8]}")


_REPORTS: dict[tuple[int, str], str] = {}  # the last HTML reports built, by diagnosis and notes
_REPORTS_KEPT = 8


def _report_html(diagnosis_json: str, notes: dict) -> str:
    """The HTML report, built once per diagnosis and notes (it embeds Plotly's JavaScript and every figure).  A
    plain function: a download's data is built outside the page's run, where Streamlit's caches have no context."""
    from whyzero.report import notes_json, render_html

    key = (hash(diagnosis_json), json.dumps(notes_json(notes)))
    if key not in _REPORTS:
        while len(_REPORTS) >= _REPORTS_KEPT:
            _REPORTS.pop(next(iter(_REPORTS)))
        _REPORTS[key] = render_html(Diagnosis.from_json(diagnosis_json), notes)
    return _REPORTS[key]


def downloads(d: Diagnosis, notes: dict | None = None) -> None:
    """The three exports with the review notes, each built only when its button is clicked (the report draws every
    figure).  A click does not rerun the page (``on_click="ignore"``): the file it asked for is served as is."""
    notes = dict(notes or {})
    text = d.to_json()

    def markdown() -> str:
        from whyzero.report import render_markdown

        return render_markdown(d, notes=notes)

    def document() -> str:
        from whyzero.report import notes_json

        return json.dumps({**json.loads(text), "review_notes": notes_json(notes)}, indent=2)

    left, middle, right = st.columns(3)
    left.download_button("Download the HTML report", lambda: _report_html(text, notes), file_name=f"{_stem(d)}.html",
                         mime="text/html", icon=":material/description:", on_click="ignore")
    middle.download_button("Download a Markdown summary", markdown, file_name=f"{_stem(d)}.md",
                           mime="text/markdown", icon=":material/article:", on_click="ignore",
                           help="Findings, roles, proofs and review notes, ready to paste into a pull request or an "
                                "issue.")
    right.download_button("Download the Diagnosis JSON", document, file_name=f"{_stem(d)}.json",
                          mime="application/json", icon=":material/data_object:", on_click="ignore",
                          help="The diagnosis (whyzero recheck and Compare read it) with the review notes beside it.")


def share_box(d: Diagnosis) -> None:
    """Saves the diagnosis and shows a link anyone can open read-only, and the delete secret."""
    if state.read_only():
        return
    with st.expander("Share this session by link", icon=":material/share:"):
        title = st.text_input("Title", value=st.session_state.get("label", d.model["name"]))
        default_days = int(min(max(round(settings().session_days), 1), 365))  # WHYZERO_SESSION_DAYS
        days = st.number_input("Expires after (days)", min_value=1, max_value=365, value=default_days)
        uploads = st.session_state.get("upload_files")
        include = st.checkbox("Include the uploaded model and batch", value=False, disabled=not uploads,
                              help="Off by default: the link then holds the findings, summaries and thumbnails only.")
        st.button("Create link", type="primary", on_click=_create_link,
                  args=(d, title, int(days), zip_files(uploads) if include and uploads else None))
        if "share_result" in st.session_state:
            link, secret = st.session_state["share_result"]
            st.success("Anyone with this link sees these pages, read-only:")
            st.code(link, language=None)
            if state.local_link(link):
                st.warning("This link points at this machine (localhost): nobody else can open it. Set "
                           "WHYZERO_PUBLIC_URL to the address others reach the app at.", icon=":material/public_off:")
            st.warning("Keep this delete secret now: it is shown once, and only it removes the session "
                       "(copy it with the button at the right).", icon=":material/key:")
            st.code(secret, language=None)


def _create_link(d: Diagnosis, title: str, days: int, attachments: bytes | None) -> None:
    from whyzero.store import default_store

    token, secret = default_store().save(d, title=title, days=days, attachments=attachments, run_id=state.run_id())
    st.session_state["share_result"] = (state.share_link(token), secret)


def save_note(finding: int) -> None:
    """Button callback: adds the note typed for finding number ``finding`` (``RUN_NOTE``: the run as a whole), with
    the writer's name, to the run (its owner) or the shared session (a reviewer)."""
    from whyzero.store import default_store

    token = state.note_token()
    text = st.session_state.get(f"note_{finding}", "")
    if token and default_store().add_note(token, finding, text, st.session_state.get("reviewer_name", "")):
        state.refresh_notes()
        st.session_state[f"note_{finding}"] = ""
    else:
        st.session_state["note_failed"] = True


def show_notes(notes) -> None:
    """A finding's notes, oldest first, each with its author and time."""
    for note in notes:
        when = note.created.strftime("%Y-%m-%d %H:%M UTC")
        st.info(f"**{note.author or 'anonymous'}** · {when}  \n{note.text}", icon=":material/rate_review:")


def zip_files(paths: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, Path(path).name)
    return buffer.getvalue()


def attachments_download() -> None:
    """In a shared session saved with its files: the model and batch, zipped."""
    if not st.session_state.get("shared_has_attachments"):
        return
    from whyzero.store import default_store

    data = default_store().attachments(st.session_state["shared_token"])
    if data:
        st.download_button("Download the attached model and batch", data, file_name="whyzero_session_files.zip",
                           mime="application/zip", icon=":material/folder_zip:")


def delete_box() -> None:
    """In a shared session: the creator removes it with the delete secret."""
    with st.expander("Delete this session", icon=":material/delete:"):
        st.text_input("Delete secret", type="password", key="delete_secret")
        st.button("Delete", on_click=_delete)
        if st.session_state.get("delete_failed"):
            st.error("That secret does not delete this session.")


def _delete() -> None:
    from whyzero.store import default_store

    if default_store().delete(st.session_state["shared_token"], st.session_state.get("delete_secret", "")):
        st.session_state["deleted"] = True
        st.session_state["delete_failed"] = False
    else:
        st.session_state["delete_failed"] = True
