"""Activations: every layer in one heatmap, dead and saturated shares, spread across samples."""

import streamlit as st

from whyzero import figures
from whyzero.ui import render, state

state.require_navigation()

d = state.ensure_diagnosis()
render.header(d, "Activations")
render.flags(d, "activations")
rows = d.summaries["activations"]
if not rows:
    st.info("No layer activations: " + ("; ".join(d.notes) or "the model has no probe-able layers."))
    st.stop()
render.figure(figures.activation_heatmap(d), d, "activation_heatmap")
left, right = st.columns(2)
with left:
    render.figure(figures.activation_shares(d), d, "dead_saturated_shares")
with right:
    render.figure(figures.activation_spread(d), d, "spread_across_samples")
layer = st.selectbox("One layer's histogram", [r["layer"] for r in rows])
render.figure(figures.layer_histogram(d, layer), d, f"layer_{layer}")
