"""The Gradients panel: its view (norms, update ratios) and its figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from whyzero.checks.gradients import UPDATE_RATIO_HIGH, UPDATE_RATIO_LOW, update_ratio
from whyzero.diagnosis import Diagnosis
from whyzero.figures.base import FigureSpec, View, go, has, layout, log_y
from whyzero.measurements import Measurements
from whyzero.presenter import SEVERITY_COLOURS

UPDATE_BAND = (UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH)


@dataclass
class GradientsView(View):
    """The Gradients panel's view: per kernel, its gradient and weight norms and the update they make."""

    PANEL: ClassVar[str] = "gradients"
    rows: list[dict] = field(default_factory=list)
    labels: str = "none"
    loss: float | None = None
    optimizer: dict | None = None


def view(m: Measurements) -> GradientsView:
    """The Gradients panel's view of the record: the update ratio judged by ``checks.gradients``."""
    return GradientsView([dict(asdict(r), update_ratio=update_ratio(m.optimizer, r)) for r in m.gradients],
                         m.gradient_labels, m.loss_value, m.optimizer)


def _has_update_ratio(d: Diagnosis) -> bool:
    return any(r.get("update_ratio") is not None for r in GradientsView.of(d).rows)


# -- gradients -----------------------------------------------------------------------------------
def gradient_norms(d: Diagnosis) -> go.Figure:
    rows = GradientsView.of(d).rows
    names = [r["layer"] for r in rows]
    fig = go.Figure(go.Scatter(x=names, y=[max(r["grad_norm"] or 0, 1e-30) for r in rows], mode="lines+markers",
                               name="‖gradient‖"))
    bad = [r for r in rows if r["nonfinite"]]
    if bad:
        fig.add_scatter(x=[r["layer"] for r in bad], y=[1.0] * len(bad), mode="markers", name="NaN / Inf",
                        marker={"symbol": "x", "size": 14, "color": SEVERITY_COLOURS["critical"]})
    log_y(fig)
    return layout(fig, d, "Gradient norm per layer, input to output", "layer", "‖gradient‖ (log)")


def update_ratios(d: Diagnosis) -> go.Figure:
    rows = [r for r in GradientsView.of(d).rows if r["update_ratio"] is not None]
    fig = go.Figure(go.Scatter(x=[r["layer"] for r in rows], y=[max(r["update_ratio"], 1e-30) for r in rows],
                               mode="lines+markers", name="measured step / ‖w‖"))
    fig.add_hrect(y0=UPDATE_BAND[0], y1=UPDATE_BAND[1], fillcolor="rgba(44,160,44,0.15)", line_width=0,
                  annotation_text="healthy band")
    log_y(fig)
    return layout(fig, d, "Update size relative to the weights, per step (measured)", "layer",
                   "lr·‖g‖/‖w‖ (SGD) or lr·√n/‖w‖ (adaptive), log")


SPECS = (
        FigureSpec("gradient_norms", gradient_norms, has("gradients", "rows"),
                   caption="Healthy: norms of one order of magnitude across layers, none zero or NaN."),
        FigureSpec("update_ratios", update_ratios, _has_update_ratio,
                   caption="Healthy: every layer inside the green band of update sizes."),
    )
