"""Diagnose: upload a model and the batch it fails on, or open a demo from the gallery."""

import streamlit as st

from whyzero import gallery
from whyzero.diagnosis import Diagnosis
from whyzero.errors import WhyzeroError
from whyzero.ui import render, state

PREPROCESSINGS = ["none", "unit", "symmetric", "caffe", "torch"]

d = state.ensure_diagnosis()
if st.session_state.pop("go_overview", False):
    st.switch_page("app_pages/overview.py")
st.title("whyzero: why does my model predict zero?")

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
            model_file = st.file_uploader("Model (.keras, .h5, zipped SavedModel)", type=["keras", "h5", "hdf5", "zip"])
            batch_files = st.file_uploader("Batch (.npy / .npz / .csv, or images)", accept_multiple_files=True,
                                           type=["npy", "npz", "csv", "png", "jpg", "jpeg", "bmp", "zip"])
            preprocess = st.selectbox("Preprocessing applied to uploaded images", PREPROCESSINGS)
            labels_file = st.file_uploader("Labels (optional: .npy, CSV filename,label, zip of class folders)",
                                           type=["npy", "csv", "zip"])
            masks_file = st.file_uploader("Masks (optional: .npy, zip of PNGs)", type=["npy", "zip"])
            train_file = st.file_uploader("Training sample or statistics (optional: .npy or stats .json)",
                                          type=["npy", "npz", "csv", "json"])
            trust = st.checkbox("Trust this model's code (Lambda layers run when the file loads)")
            submitted = st.form_submit_button("Diagnose", type="primary")
        if submitted:
            if model_file is None or not batch_files:
                st.error("Upload a model and a batch to diagnose.")
            else:
                folder = state.upload_folder()
                try:
                    model_path = state.save_upload(model_file, folder)
                    batch_paths = [state.save_upload(f, folder) for f in batch_files]
                    paths = {"inputs": str(batch_paths[0]) if len(batch_paths) == 1 else [str(p) for p in batch_paths]}
                    key = [state.digest(model_file.getvalue()), trust, preprocess]
                    key += [state.digest(f.getvalue()) for f in batch_files]
                    for role, upload in (("labels", labels_file), ("masks", masks_file)):
                        if upload is not None:
                            paths[role] = str(state.save_upload(upload, folder))
                            key.append(role + state.digest(upload.getvalue()))
                    if train_file is not None:
                        role = "train_stats" if train_file.name.endswith(".json") else "train_inputs"
                        paths[role] = str(state.save_upload(train_file, folder))
                        key.append(role + state.digest(train_file.getvalue()))
                    result = Diagnosis.from_json(state.cached_diagnosis(tuple(key), paths, str(model_path), trust,
                                                                        preprocess))
                except WhyzeroError as err:
                    st.error(f"Could not diagnose: {state.scrub(str(err), folder)}")
                except Exception as err:  # noqa: BLE001 - never a traceback on the page: one line, details below
                    render.internal_error(err, folder)
                else:
                    state.set_current(result, f"upload: {model_file.name}")
                    st.session_state["upload_files"] = [str(model_path)] + [str(p) for p in batch_paths]
                    st.session_state["source"] = {"kind": "upload", "model_hash": state.digest(model_file.getvalue()),
                                                  "model_path": str(model_path), "trust": trust, "paths": paths,
                                                  "preprocess": preprocess}
                    st.switch_page("app_pages/overview.py")  # the new diagnosis, root cause first

d = state.current()
render.header(d, "Current diagnosis")
serious = [f for f in d.findings if f.severity != "info"]
if serious:
    st.error(f"{len(serious)} finding(s). Top: **{serious[0].title}** (`{serious[0].cause}`)")
else:
    st.success("Clean: no critical or warning finding.")
st.page_link("app_pages/overview.py", label="Open the overview →")
