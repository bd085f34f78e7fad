"""Labels and masks: class shares, encoding, foreground per image, suggested class weights."""

import pandas as pd
import streamlit as st

from whyzero.figures.labels import LabelsView
from whyzero.ui import render

d = render.panel_page("labels")
s = LabelsView.of(d)
if s.kind is None:  # no labels or masks were given
    st.stop()
classified = d.model.get("task") in ("binary", "multiclass", "segmentation") and (s.output_classes or 0) > 1
outputs = f"{s.output_classes} classes" if classified else f"shape {d.model['output_shape']} ({d.task_words})"
st.caption(f"{s.kind} of shape {s.shape}; the model outputs {outputs}; values found: {s.unique_values[:12]}")
if s.suggested_class_weights:
    st.subheader("Suggested class weights")
    st.dataframe(pd.DataFrame({"class": range(len(s.suggested_class_weights)),
                               "share": s.class_shares, "weight": s.suggested_class_weights}),
                 hide_index=True)
if s.masks:
    st.subheader("Masks over their images (foreground in red)")
    render.image_grid(s.masks)
