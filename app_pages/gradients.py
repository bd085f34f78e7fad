"""Gradients: norm per layer along depth, the measured update size against the healthy band."""

import streamlit as st

from whyzero.figures.gradients import GradientsView
from whyzero.ui import render

d = render.panel_page("gradients")
g = GradientsView.of(d)
if g.rows:
    loss = g.loss
    st.caption(f"Targets: {g.labels} · batch loss " + ("—" if loss is None else f"{loss:.4g}"))
    if not any(r["update_ratio"] is not None for r in g.rows):
        st.info("No update size: the model file holds no optimizer (the learning rate is needed), or every "
                "gradient is zero.")
