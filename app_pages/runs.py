"""Runs: every diagnosis made in this browser's workspace, newest first: reopen, rename, delete or compare them."""

import pandas as pd
import streamlit as st

from whyzero.ui import runs, state

if st.session_state.pop("go_overview", False):
    st.switch_page("app_pages/overview.py")
if st.session_state.pop("go_compare", False):
    st.switch_page("app_pages/compare.py")
st.title("Runs")
if state.read_only():
    st.info("This is a shared session, read-only: the runs belong to whoever shared it.")
    st.stop()
for kind, message in runs.messages():
    getattr(st, kind)(message)
listed = runs.listed()
if not listed:
    st.info("No runs yet: every diagnosis you make (a demo, an upload, a re-run under a fix) is kept here, at its "
            "own address.")
    st.page_link("app_pages/diagnose.py", label="Diagnose a model →")
    st.stop()
st.caption("Each run's address (`?run=…`) is yours: whoever has it can open it and this list. To show a run to "
           "others, share it from the Overview (a read-only link).")
table = pd.DataFrame([{"title": r.title, "model": r.model_name, "headline": r.headline,
                       "created (UTC)": r.created.strftime("%Y-%m-%d %H:%M:%S"),
                       "files kept": "yes" if r.has_attachments else "",
                       "current": "●" if r.id == state.run_id() else ""}
                      for r in listed])
st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs_table",
             column_config={"headline": st.column_config.TextColumn(width="large")})
chosen = [listed[i] for i in st.session_state["runs_table"].selection.rows if i < len(listed)]
if not chosen:
    st.caption("Select one run to open, rename or delete it; two or more to compare them (oldest on the left).")
    st.stop()
if len(chosen) == 1:
    one = chosen[0]
    left, middle, right = st.columns(3)
    left.button("Open this run", type="primary", icon=":material/open_in_new:", on_click=runs.open_run, args=(one.id,))
    with middle:
        st.text_input("New title", value=one.title, key="run_title", max_chars=300)
        st.button("Rename", on_click=runs.rename, args=(one.id,))
    with right:
        st.checkbox("Yes, delete it with its notes and share links", key="confirm_delete")
        st.button("Delete this run", icon=":material/delete:", on_click=runs.delete, args=(one.id,),
                  disabled=not st.session_state.get("confirm_delete"))
    runs.files_download(one)
else:
    st.button(f"Compare these {len(chosen)} runs", type="primary", icon=":material/compare_arrows:",
              on_click=runs.compare, args=([r.id for r in chosen],))
