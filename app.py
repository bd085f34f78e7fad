"""whyzero's dashboard: `streamlit run app.py`.  Every page draws from the session's Diagnosis.

A link with ``?session=<token>`` opens a shared session read-only, on any replica of the app; ``?run=<id>`` opens
a kept run (every diagnosis made here is one): its owner's address, carried through every page.
"""

import time

import streamlit as st

from whyzero.panels import PAGES as registry
from whyzero.ui import share, state

started = time.perf_counter()
st.set_page_config(page_title="whyzero", page_icon=":material/search:", layout="wide")

# The pages come from the panel registry (``whyzero.panels``); they live in app_pages/, not pages/, so
# Streamlit's old autodiscovery never takes over the navigation.
PAGES = [st.Page(page.file, title=page.title, icon=page.icon, default=page.id == "diagnose") for page in registry]

state.warm_up()  # once per server: the figure and reference modules import in the background
token = st.query_params.get("session")
if st.session_state.get("deleted"):
    st.title("Session deleted")
    st.success("The shared session was deleted; its link now shows 'No such session'.")
    st.link_button("Start a new diagnosis", "/", icon=":material/science:")
    st.stop()
if token is not None and not state.open_shared(token):
    st.title("No such session")
    st.error("This link holds no saved session: it is malformed, unknown, expired or was deleted. "
             "Ask for a new link, or open whyzero without ?session= to diagnose a model.")
    st.stop()
run = st.query_params.get("run")
if token is None and run is not None and not state.open_run(run):
    st.title("No such run")
    st.error("This address holds no kept run: it is malformed, unknown, was deleted, or is older than "
             "WHYZERO_RUN_DAYS. Open whyzero without ?run= to diagnose a model.")
    st.link_button("Start a new diagnosis", "/", icon=":material/science:")
    st.stop()
state.carry_address()  # a page switch drops the query: the run or shared session stays in the address bar

with st.sidebar:
    if state.read_only():
        st.info("Shared session: read-only. Reviewers may add a note to each finding on the overview.")
        share.attachments_download()
        share.delete_box()
    else:
        st.toggle("Review mode (hide upload controls)", key="review_mode")

current = st.navigation(PAGES, expanded=True)  # every page listed: no "View more" fold
try:
    current.run()
finally:
    state.record_timing(current.title, time.perf_counter() - started)
