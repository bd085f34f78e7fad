"""Gradients: norm per layer along depth, update ratio against the healthy band."""

import streamlit as st

from whyzero import figures
from whyzero.ui import render, state

state.require_navigation()

d = state.ensure_diagnosis()
render.header(d, "Gradients")
render.flags(d, "gradients")
g = d.summaries["gradients"]
if not g["rows"]:
    st.info("No gradients: the model has no trainable kernels, or the loss could not be computed. "
            + " ".join(n for n in d.notes if "gradient" in n))
    st.stop()
loss = g["loss"]
st.caption(f"Targets: {g['labels']} · batch loss " + ("—" if loss is None else f"{loss:.4g}"))
left, right = st.columns(2)
with left:
    render.figure(figures.gradient_norms(d), d, "gradient_norms")
with right:
    if any(r["update_ratio"] is not None for r in g["rows"]):
        render.figure(figures.update_ratios(d), d, "update_ratios")
    else:
        st.info("No optimizer in the model file: the update ratio needs the learning rate.")
