"""Outputs: distribution, predicted vs true classes, threshold sweep, loss vs prior; predicted masks."""

import streamlit as st

from whyzero.figures.outputs import OutputsView
from whyzero.ui import render


def metrics(d) -> None:
    s = OutputsView.of(d)
    cols = st.columns(3)
    cols[0].metric("spread across samples", f"{s.spread:.3g}")
    cols[1].metric("exactly 0", f"{s.exact_zero_share:.1%}")
    cols[2].metric("exactly 1", f"{s.exact_one_share:.1%}")


d = render.panel_page("outputs", intro=metrics)
masks = OutputsView.of(d).predicted_masks
if masks:
    st.subheader("Predicted masks over the images (foreground in red)")
    render.image_grid(masks)
