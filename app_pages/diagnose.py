"""Diagnose: upload a model and the batch it fails on, or open a demo from the gallery."""

import streamlit as st

from whyzero import gallery
from whyzero.preprocessing import PREPROCESSING_WORDS, PREPROCESSINGS
from whyzero.ui import render, state, upload

d = state.ensure_diagnosis()
if st.session_state.pop("go_overview", False):
    st.switch_page("app_pages/overview.py")
st.title("whyzero: why does my model predict zero?")
status = st.container()  # progress, Cancel and errors: where the user looks, above the form
if st.session_state.pop("cancelled", False):
    status.warning("Diagnosis cancelled: its worker was stopped and nothing was kept.", icon=":material/cancel:")
if st.session_state.get("run_error"):
    status.warning(st.session_state.pop("run_error"))

submitted = False
if not st.session_state.get("review_mode") and not state.read_only():
    demo_tab, upload_tab = st.tabs(["Open a demo", "Upload your model"])
    with demo_tab:
        names = gallery.names()
        asked = st.query_params.get("case")
        start = names.index(asked) if asked in names else names.index(state.DEMO_CASE)
        choice = st.selectbox("Gallery case", names, index=start, key="demo_choice",
                              format_func=lambda n: f"{n} — {', '.join(gallery.get(n).causes) or 'healthy'}")
        st.caption(gallery.get(choice).summary)
        st.button("Diagnose this case", type="primary", on_click=state.open_demo)
    with upload_tab:
        with st.form("upload"):
            uploads = upload.Uploads(
                model=st.file_uploader("Model (.keras, .h5, zipped SavedModel)", type=["keras", "h5", "hdf5", "zip"]),
                batch=st.file_uploader("Batch (.npy / .npz / .csv, or images)", accept_multiple_files=True,
                                       type=["npy", "npz", "csv", "png", "jpg", "jpeg", "bmp", "zip"]),
                preprocess=st.selectbox("Preprocessing applied to uploaded images", PREPROCESSINGS,
                                        format_func=lambda n: f"{n}: {PREPROCESSING_WORDS[n]}"),
                labels=st.file_uploader("Labels (optional: .npy, CSV filename,label, zip of class folders)",
                                        type=["npy", "csv", "zip"]),
                masks=st.file_uploader("Masks (optional: .npy, zip of PNGs)", type=["npy", "zip"]),
                train=st.file_uploader("Training sample or statistics (optional: .npy or stats .json)",
                                       type=["npy", "npz", "csv", "json"]),
                trust=st.checkbox("Trust this model's code (Lambda layers run when the file loads)"),
                keep_files=st.checkbox("Keep the uploaded files with this run",
                                       help="Off by default: the run keeps the findings, summaries and thumbnails "
                                            "only. Kept files can be downloaded from the Runs page or shared."))
            submitted = st.form_submit_button("Diagnose", type="primary")
    if submitted:
        with status:
            done = upload.diagnose(uploads)
        if done:
            st.switch_page("app_pages/overview.py")  # the new diagnosis, root cause first
        st.stop()  # the error stands alone: no earlier results beneath it

d = state.current()
render.header(d, "Current diagnosis")
serious = [f for f in d.findings if f.severity != "info"]
if serious:
    st.error(f"{len(serious)} finding(s). Top: **{serious[0].title}** (`{serious[0].cause}`)")
else:
    st.success("Clean: no critical or warning finding.")
st.page_link("app_pages/overview.py", label="Open the overview →")
