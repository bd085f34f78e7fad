"""Overview: findings ranked as cards, the symptom first, each linking to the page that shows it."""

import streamlit as st

from whyzero.ui import render, share, state

state.require_navigation()

d = state.ensure_diagnosis()
render.header(d, "Overview: why does it predict a constant?")
share.share_box(d)
share.downloads(d)
notes = st.session_state.get("shared_notes", {})
serious = [f for f in d.findings if f.severity != "info"]
if serious:
    worst = "critical" if serious[0].severity == "critical" else "warning"
    (st.error if worst == "critical" else st.warning)(
        f"{len(serious)} finding(s) to act on; start with: {serious[0].title}")
else:
    st.success("No critical or warning finding: nothing here explains constant predictions.")
cols = st.columns(3)
cols[0].metric("critical", sum(f.severity == "critical" for f in d.findings))
cols[1].metric("warning", sum(f.severity == "warning" for f in d.findings))
cols[2].metric("info", sum(f.severity == "info" for f in d.findings))
for i, f in enumerate(d.findings):
    with st.container(border=True):
        colour = {"critical": "red", "warning": "orange", "info": "blue"}[f.severity]
        st.markdown(f":{colour}[**{f.severity.upper()}**] · {render.cause_title(f.cause)} · `{f.cause}`")
        st.markdown(render.finding_text(f, with_cause=False))
        st.page_link(render.PAGE_OF_PANEL[f.panel], label=f"See the evidence on {f.panel} →")
        if notes.get(str(i)):
            st.info(f"Reviewer's note: {notes[str(i)]}", icon=":material/rate_review:")
        if state.read_only():
            st.text_area("Note on this finding", value=notes.get(str(i), ""), key=f"note_{i}")
            st.button("Save note", key=f"save_note_{i}", on_click=share.save_note, args=(i,))
for note in d.notes:
    st.caption(f"Note: {note}")
for error in d.errors:
    st.warning(f"Check '{error.check}' could not run: {error.message}")
