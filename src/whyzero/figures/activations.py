"""The Activations panel: its view (per-layer summaries) and its figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from whyzero.checks.activations import COLLAPSE_RELATIVE_SPREAD, DEAD_WARNING, SATURATED_WARNING
from whyzero.diagnosis import Diagnosis
from whyzero.figures.base import FigureSpec, View, go, has, layout, log_y, symlog_axis
from whyzero.measurements import Measurements


@dataclass
class ActivationsView(View):
    """The Activations panel's view: each probed layer's summary (stored as the list of them)."""

    PANEL: ClassVar[str] = "activations"
    layers: list[dict] = field(default_factory=list)

    @classmethod
    def of(cls, d: Diagnosis) -> ActivationsView:
        return cls(list(d.summaries.get(cls.PANEL) or []))

    def to_dict(self) -> list[dict]:  # type: ignore[override] - a list, as diagnoses have always stored it
        return self.layers


def view(m: Measurements) -> ActivationsView:
    return ActivationsView([{"layer": r.name, "type": r.type, "activation": r.activation, **r.values.to_row()}
                            for r in m.layers])


# -- activations -----------------------------------------------------------------------------------
def activation_heatmap(d: Diagnosis) -> go.Figure:
    rows = ActivationsView.of(d).layers
    counts = np.asarray([r["hist"] for r in rows], np.float64)
    fig = go.Figure(go.Heatmap(z=np.log10(counts + 1), y=[r["layer"] for r in rows],
                               x=list(range(counts.shape[1] if counts.size else 0)),
                               colorbar={"title": "log10(count+1)"}, colorscale="Viridis"))
    symlog_axis(fig, d, counts if counts.size else None)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 12})  # one row a layer: names readable
    return layout(fig, d, "Activation values, every layer", "value (symmetric log bins)", "layer (input at top)",
                   height=max(400, 18 * len(rows)))


def activation_shares(d: Diagnosis) -> go.Figure:
    rows = ActivationsView.of(d).layers
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["never_active_share"] if r["activation"] in ("relu", "relu6") else 0 for r in rows],
                name="ReLU units never active")
    fig.add_bar(x=names, y=[r.get("gate_saturated_share") or r["flat_share"] for r in rows],
                name="sigmoid/tanh (or recurrent gates) saturated")
    fig.add_hline(y=DEAD_WARNING, line_dash="dot", annotation_text=f"dead flagged at {DEAD_WARNING:.0%}")
    fig.add_hline(y=SATURATED_WARNING, line_dash="dash", annotation_position="bottom right",
                  annotation_text=f"saturated flagged at {SATURATED_WARNING:.0%}")
    return layout(fig, d, "Dead and saturated units per layer", "layer", "share", barmode="group",
                   yaxis_range=[0, 1.05])


def activation_spread(d: Diagnosis) -> go.Figure:
    rows = ActivationsView.of(d).layers
    fig = go.Figure(go.Scatter(x=[r["layer"] for r in rows],
                               y=[max(r["relative_spread"] or 0, 1e-9) for r in rows], mode="lines+markers"))
    fig.add_hline(y=COLLAPSE_RELATIVE_SPREAD, line_dash="dot",
                  annotation_text=f"collapsed below {COLLAPSE_RELATIVE_SPREAD:g}")
    log_y(fig)
    return layout(fig, d, "Spread across samples per layer", "layer",
                   "relative spread (log)")


def layer_histogram(d: Diagnosis, layer: str) -> go.Figure:
    row = next(r for r in ActivationsView.of(d).layers if r["layer"] == layer)
    fig = go.Figure(go.Bar(x=list(range(len(row["hist"]))), y=row["hist"]))
    log_y(fig)
    symlog_axis(fig, d, row["hist"])
    return layout(fig, d, f"Activation values of '{layer}'", "value (symmetric log bins)", "count (log)")


SPECS = (
        FigureSpec("activation_heatmap", activation_heatmap, has("activations"), wide=True,
                   caption="Healthy: each layer's values spread over several bins; a single column is a dead "
                           "or saturated layer."),
        FigureSpec("dead_saturated_shares", activation_shares, has("activations"),
                   caption="Healthy: bars well under the dotted line."),
        FigureSpec("spread_across_samples", activation_spread, has("activations"),
                   caption="Healthy: the line stays above the dotted collapse threshold."),
    )
