"""Labels and masks: class shares, encoding, foreground per image, suggested class weights."""

import pandas as pd
import streamlit as st

from whyzero import figures
from whyzero.ui import render, state

state.require_navigation()

d = state.ensure_diagnosis()
render.header(d, "Labels & masks")
render.flags(d, "labels")
s = d.summaries["labels"]
if not s:
    st.info("No labels or masks were given: give them to check balance and encoding.")
    st.stop()
st.caption(f"{s['kind']} of shape {s['shape']}; the model outputs {s['output_classes']} classes; "
           f"values found: {s['unique_values'][:12]}")
left, right = st.columns(2)
with left:
    render.figure(figures.label_shares(d), d, "label_shares")
with right:
    render.figure(figures.foreground_per_image(d), d, "foreground_per_image")
if s.get("suggested_class_weights"):
    st.subheader("Suggested class weights")
    st.dataframe(pd.DataFrame({"class": range(len(s["suggested_class_weights"])),
                               "share": s.get("class_shares"), "weight": s["suggested_class_weights"]}),
                 hide_index=True)
if s.get("masks"):
    st.subheader("Masks over their images (foreground in red)")
    render.image_grid(s["masks"])
