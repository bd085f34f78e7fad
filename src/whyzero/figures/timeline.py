"""The Timeline page's figures: a training run watched by ``whyzero.Monitor`` (``whyzero.timeline.Timeline``).

One figure per idea: the causes by observation (severity by colour, role by marker), the loss against the
prior's entropy, and one layer × observation heatmap per statistic, on a log colour scale where it spans decades.
"""

from __future__ import annotations

import numpy as np

from whyzero.figures.base import go, layout, log_y
from whyzero.presenter import SEVERITY_COLOURS
from whyzero.timeline import LAYER_STATS, Timeline

ROLE_MARKERS = {"root": "star", "candidate": "square", "symptom": "diamond", "consequence": "circle"}
# the colour scale of a statistic's heatmap spans decades when its largest value is this many times its smallest
DECADES = 100.0


def causes_by_epoch(t: Timeline, title_of) -> go.Figure:
    """Each cause (critical or warning) at each observation it was found: colour = severity, marker = role; every
    observation has its place on the x axis, clean ones too."""
    labels = t.labels
    fig = go.Figure()
    order = [s.cause for s in t.spans()]
    seen = set()
    for severity in ("critical", "warning"):
        for role, marker in ROLE_MARKERS.items():
            xs, ys, texts = [], [], []
            for i, entry in enumerate(t.epochs):
                for f in entry.get("findings", []):
                    if f["severity"] == severity and f["role"] == role and (i, f["cause"]) not in seen:
                        seen.add((i, f["cause"]))
                        xs.append(i)
                        ys.append(f["cause"])
                        texts.append(f"{labels[i]}: {f['title']}")
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{severity} {role}", text=texts,
                                         hovertemplate="%{text}<extra></extra>",
                                         marker={"symbol": marker, "size": 14, "color": SEVERITY_COLOURS[severity],
                                                 "line": {"width": 1, "color": "#333"}}))
    layout(fig, _doc(t), "Causes by observation", "observation", "cause",
           height=max(260, 60 + 34 * len(order)))
    _observation_axis(fig, labels)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(reversed(order)),
                     ticktext=[title_of(c) for c in reversed(order)], tickvals=list(reversed(order)))
    return fig


def _observation_axis(fig: go.Figure, labels: list[str]) -> None:
    """Observations by index, each named, all of them shown (at most ~12 named ticks)."""
    step = max(1, int(np.ceil(len(labels) / 12)))
    ticks = list(range(0, len(labels), step))
    fig.update_xaxes(range=[-0.5, len(labels) - 0.5], tickvals=ticks, ticktext=[labels[i] for i in ticks])


def loss_over_epochs(t: Timeline) -> go.Figure | None:
    """The loss the fit reported and the probe's, against the entropy of the label prior (where a flat classifier's
    loss settles)."""
    labels = t.labels
    series = {"loss the fit reported": [e.get("logs", {}).get("loss") for e in t.epochs],
              "probe's loss": [e.get("loss") for e in t.epochs],
              "prior's entropy (a flat model's loss)": [e.get("prior_entropy") for e in t.epochs]}
    if not any(v is not None for values in series.values() for v in values):
        return None
    fig = go.Figure()
    for (name, values), dash in zip(series.items(), ("solid", "solid", "dash")):
        if any(v is not None for v in values):
            fig.add_trace(go.Scatter(x=labels, y=values, name=name, mode="lines+markers", line={"dash": dash}))
    layout(fig, _doc(t), "Loss against the prior's entropy", "observation", "loss (nats)")
    values = np.array([v for values in series.values() for v in values if v is not None and v > 0], float)
    if values.size and values.max() / values.min() >= DECADES:
        log_y(fig)
    return fig


def layer_heatmap(t: Timeline, stat: str) -> go.Figure | None:
    """One statistic of every layer (rows, in model order) at every observation (columns)."""
    label, decades = next((lab, dec) for key, lab, dec in LAYER_STATS if key == stat)
    names, rows = t.layer_matrix(stat)
    z = np.array([[np.nan if v is None else float(v) for v in row] for row in rows], float)
    if not names or not np.isfinite(z).any():
        return None
    positive = z[np.isfinite(z) & (z > 0)]
    log = decades and positive.size and positive.max() / positive.min() >= DECADES
    shown, title = z, label
    if log:  # a zero (dead layer, weights that did not move) sits a decade under the smallest value, hover says 0
        floor = np.log10(positive.min()) - 1.0
        shown = np.where(z > 0, np.log10(np.where(z > 0, z, 1.0)), np.where(np.isfinite(z), floor, np.nan))
        title = f"log10 {label}<br>(0 at the bottom)" if (z[np.isfinite(z)] <= 0).any() else f"log10 {label}"
    fig = go.Figure(go.Heatmap(z=shown, x=t.labels, y=names, colorscale="Viridis", colorbar={"title": title},
                               customdata=z, hovertemplate="%{y} at %{x}: %{customdata:.3g}<extra></extra>",
                               zmin=0.0 if stat == "dead" else None, zmax=1.0 if stat == "dead" else None))
    layout(fig, _doc(t), f"{label[0].upper()}{label[1:]}, layer by observation", "observation", "layer",
           height=max(260, 80 + 22 * len(names)))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


class _doc:
    """What ``layout`` reads of a diagnosis (the model's name), for a timeline."""

    def __init__(self, t: Timeline) -> None:
        self.model = {"name": t.header.get("model", "model")}
