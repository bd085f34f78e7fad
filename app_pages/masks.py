"""Labels and masks: class shares, encoding, foreground per image, suggested class weights."""

import pandas as pd
import streamlit as st

from whyzero.ui import render

d = render.panel_page("labels")
s = d.summaries["labels"]
if not s:
    st.stop()
st.caption(f"{s['kind']} of shape {s['shape']}; the model outputs {s['output_classes']} classes; "
           f"values found: {s['unique_values'][:12]}")
if s.get("suggested_class_weights"):
    st.subheader("Suggested class weights")
    st.dataframe(pd.DataFrame({"class": range(len(s["suggested_class_weights"])),
                               "share": s.get("class_shares"), "weight": s["suggested_class_weights"]}),
                 hide_index=True)
if s.get("masks"):
    st.subheader("Masks over their images (foreground in red)")
    render.image_grid(s["masks"])
