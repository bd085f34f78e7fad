"""The panels: each one's view of the measurements (the plain data a ``Diagnosis`` stores) beside the Plotly
figures drawn from it, one module a panel.

Every figure is titled with the model's name and has labelled axes; magnitudes that span decades are on log
axes.  Plotly loads on the first figure drawn: the engine builds the views here without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyzero.diagnosis import Diagnosis
from whyzero.figures import activations, gradients, inputs, labels, model, outputs, samples
from whyzero.figures.activations import layer_histogram
from whyzero.figures.base import FigureSpec, go
from whyzero.figures.samples import sample_dead, sample_differences, sample_size
from whyzero.measurements import Measurements
from whyzero.panels import PANELS

__all__ = ["PANEL_FIGURES", "FigureSpec", "figures_for", "layer_histogram", "panel_figures", "panel_views",
           "sample_dead", "sample_differences", "sample_size"]

# Each cause panel's figures, in the order a page shows them.
PANEL_FIGURES: dict[str, tuple[FigureSpec, ...]] = {
    "inputs": inputs.SPECS, "model": model.SPECS, "activations": activations.SPECS, "gradients": gradients.SPECS,
    "outputs": outputs.SPECS, "labels": labels.SPECS}


def panel_views(m: Measurements, batch: np.ndarray, outputs_: np.ndarray, label_ids: np.ndarray | None = None,
                labels_: np.ndarray | None = None, masks: np.ndarray | None = None,
                saliency: tuple[list[np.ndarray], str] | None = None) -> dict[str, Any]:
    """Every panel's view of the record ``m``; ``batch`` and the full arrays give the pictures and output shares;
    ``saliency`` the heat maps of the first images (``probes.saliency``)."""
    views = {"samples": samples.view(m, batch, outputs_, label_ids, saliency), "inputs": inputs.view(m, batch),
             "activations": activations.view(m), "gradients": gradients.view(m),
             "outputs": outputs.view(m, batch, outputs_, label_ids),
             "labels": labels.view(m, batch, labels_, masks, label_ids), "model": model.view(m)}
    return {panel: v.to_dict() for panel, v in views.items()}


def figures_for(page_id: str, d: Diagnosis) -> list[tuple[FigureSpec, go.Figure]]:
    """The figures of a panel page that apply to ``d``, drawn."""
    out = []
    for spec in PANEL_FIGURES.get(page_id, ()):
        if not spec.applies(d):
            continue
        fig = spec.build(d)
        if fig is not None:
            out.append((spec, fig))
    return out


def panel_figures(d: Diagnosis) -> dict[str, list[tuple[str, go.Figure]]]:
    """Every figure that applies to this diagnosis, by panel (the report draws them all)."""
    return {page.id: [(spec.name, fig) for spec, fig in figures_for(page.id, d)] for page in PANELS}
