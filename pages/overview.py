"""Overview: findings ranked as cards, the symptom first, each linking to the page that shows it."""

import streamlit as st

from whyzero.ui import render, state

state.require_navigation()

d = state.ensure_diagnosis()
render.header(d, "Overview: why does it predict a constant?")
serious = [f for f in d.findings if f.severity != "info"]
if not serious:
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
for note in d.notes:
    st.caption(f"Note: {note}")
for error in d.errors:
    st.warning(f"Check '{error.check}' could not run: {error.message}")
