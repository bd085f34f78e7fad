"""Outputs: distribution, predicted vs true classes, threshold sweep, loss vs prior; predicted masks."""

import streamlit as st

from whyzero import figures
from whyzero.ui import render, state

state.require_navigation()

d = state.ensure_diagnosis()
render.header(d, "Outputs")
render.flags(d, "outputs")
s = d.summaries["outputs"]
cols = st.columns(3)
cols[0].metric("spread across samples", f"{s['spread']:.3g}")
cols[1].metric("exactly 0", f"{s['exact_zero_share']:.1%}")
cols[2].metric("exactly 1", f"{s['exact_one_share']:.1%}")
left, right = st.columns(2)
with left:
    render.figure(figures.output_distribution(d), d, "output_distribution")
with right:
    if s.get("predicted_shares"):
        render.figure(figures.class_shares(d), d, "class_shares")
left, right = st.columns(2)
with left:
    render.figure(figures.threshold_sweep(d), d, "threshold_sweep")
with right:
    render.figure(figures.loss_vs_prior(d), d, "loss_vs_prior")
if s.get("predicted_masks"):
    st.subheader("Predicted masks over the images (foreground in red)")
    render.image_grid(s["predicted_masks"])
