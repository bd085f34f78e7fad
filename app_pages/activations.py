"""Activations: every layer in one heatmap, dead and saturated shares, spread across samples; one layer's values."""

import streamlit as st

from whyzero import figures
from whyzero.figures.activations import ActivationsView
from whyzero.ui import render

d = render.panel_page("activations")
rows = ActivationsView.of(d).layers
if rows:
    layer = st.selectbox("One layer's histogram", [r["layer"] for r in rows])
    render.figure(figures.layer_histogram(d, layer), d, f"layer_{layer}")
