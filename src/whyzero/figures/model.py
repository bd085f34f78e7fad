"""The Model panel: its view (kernel scales) and its figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from whyzero.diagnosis import Diagnosis
from whyzero.figures.base import FigureSpec, View, go, has, layout, log_y
from whyzero.measurements import Measurements


@dataclass
class ModelView(View):
    """The Model panel's view: each kernel's spread against its initializer's expected range."""

    PANEL: ClassVar[str] = "model"
    weights: list[dict] = field(default_factory=list)


def view(m: Measurements) -> ModelView:
    return ModelView(m.memory.weights)


# -- model --------------------------------------------------------------------------------------
def weight_scale(d: Diagnosis) -> go.Figure:
    rows = ModelView.of(d).weights
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_scatter(x=names, y=[r["expected_high"] for r in rows], mode="lines", line={"width": 0},
                    showlegend=False, hoverinfo="skip")
    fig.add_scatter(x=names, y=[r["expected_low"] for r in rows], mode="lines", line={"width": 0},
                    fill="tonexty", fillcolor="rgba(44,160,44,0.2)", name="Glorot..He std")
    fig.add_scatter(x=names, y=[max(r["std"], 1e-12) for r in rows], mode="markers+lines", name="kernel std")
    log_y(fig)
    return layout(fig, d, "Kernel scale per layer vs Glorot/He", "layer", "std (log)")


SPECS = (
        FigureSpec("weight_scale", weight_scale, has("model", "weights"), wide=True,
                   caption="Healthy: every kernel's std inside the green Glorot..He band."),
    )
