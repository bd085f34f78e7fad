"""Overview: findings ranked as cards, the symptom first, each linking to the page that shows it."""

import streamlit as st

from whyzero.report import RUN_NOTE
from whyzero.ui import render, share, state

d = state.ensure_diagnosis()
if st.session_state.pop("go_compare", False):
    st.switch_page("app_pages/compare.py")
if st.session_state.get("fix_error"):
    st.error(st.session_state.pop("fix_error"))
render.header(d, "Overview: why does it predict a constant?")
share.share_box(d)
state.refresh_notes()  # notes written elsewhere (a reviewer's, the owner's) since this page last ran
notes = state.notes()
writable = state.note_token() is not None
if st.session_state.pop("note_failed", False):
    st.error("The note was not saved: it was empty, or the run or session no longer exists.")
roots = [f for f in d.findings if f.severity != "info" and f.role == "root"]
render.headline(d)
share.show_notes(notes.get(str(RUN_NOTE), []))
if writable:
    with st.expander("Notes on this run as a whole" + (f" ({len(notes.get(str(RUN_NOTE), []))})"
                                                       if notes.get(str(RUN_NOTE)) else ""),
                     icon=":material/rate_review:"):
        st.text_input("Your name on notes (optional)", key="reviewer_name", max_chars=80)
        st.text_area("Add a note on the run (a clean one too)", key=f"note_{RUN_NOTE}")
        st.button("Save note", key=f"save_note_{RUN_NOTE}", on_click=share.save_note, args=(RUN_NOTE,))
cols = st.columns(4)
cols[0].metric("root causes", len(roots))
cols[1].metric("critical", sum(f.severity == "critical" for f in d.findings))
cols[2].metric("warning", sum(f.severity == "warning" for f in d.findings))
cols[3].metric("consequences", sum(f.role == "consequence" for f in d.findings))


def finding_card(i: int, f) -> None:
    st.markdown(render.card_heading(f))
    st.markdown(render.finding_text(f, with_cause=False))
    if f.role == "root" and state.can_rediagnose(f):
        st.button("Re-diagnose with this fix, then compare", key=f"fix_{i}", icon=":material/build:",
                  on_click=state.rediagnose_with_fix, args=(i,), help=f"Runs the model again: {f.proof.fix}.")
    left, right = st.columns(2)
    with left:
        st.page_link(render.PAGE_OF_PANEL[f.panel], label=f"See the evidence on {f.panel} →")
    with right:
        st.page_link("app_pages/causes.py", label=f"What is {f.cause}?", query_params={"cause": f.cause},
                     icon=":material/menu_book:")
    share.show_notes(notes.get(str(i), []))
    if writable:
        with st.expander("Add a note on this finding", icon=":material/edit_note:"):
            st.text_area("Note", key=f"note_{i}", label_visibility="collapsed")
            st.button("Save note", key=f"save_note_{i}", on_click=share.save_note, args=(i,))


for i, f, consequences in d.grouped():
    with st.container(border=True):
        finding_card(i, f)
        if consequences:
            with st.expander(f"{len(consequences)} consequence(s) this explains", expanded=False):
                for c in consequences:
                    finding_card(d.findings.index(c), c)
st.divider()
share.downloads(d, notes)  # after the findings: the report loads the figures (Plotly, TensorFlow) on a first visit
for note in d.notes:
    st.caption(f"Note: {note}")
for error in d.errors:
    st.warning(f"Check '{error.check}' could not run: {error.message}")
