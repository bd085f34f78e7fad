"""Plotly figures drawn from a ``Diagnosis`` alone: one place makes each figure, for pages and reports.

Every figure is titled with the model's name and has labelled axes; magnitudes that span decades
are on log axes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go

from whyzero.checks.outputs import balanced_accuracy, best_threshold
from whyzero.diagnosis import Diagnosis
from whyzero.panels import PANELS
from whyzero.presenter import SEVERITY_COLOURS

TEMPLATE = "plotly_white"
# Passed per figure, a template is validated and copied again each time (~60 ms a figure, most of a page's
# server time); as Plotly's default it is applied once (~2 ms).  Set only over Plotly's own default.
import plotly.io as _pio  # noqa: E402

if _pio.templates.default == "plotly":
    _pio.templates.default = TEMPLATE
# The lines on the charts are the checks' own thresholds, so a chart and its finding always agree.
from whyzero.checks.activations import COLLAPSE_RELATIVE_SPREAD, DEAD_WARNING, SATURATED_WARNING  # noqa: E402
from whyzero.checks.gradients import UPDATE_RATIO_HIGH, UPDATE_RATIO_LOW  # noqa: E402
from whyzero.checks.inputs import RANGE_WARNING  # noqa: E402
from whyzero.checks.outputs import LOSS_AT_PRIOR  # noqa: E402

UPDATE_BAND = (UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH)


def _layout(fig: go.Figure, d: Diagnosis, title: str, x: str, y: str, **kw: Any) -> go.Figure:
    # the model's name on a second, smaller line: long titles are not clipped on narrow screens
    fig.update_layout(title={"text": f"{title}<br><sup>{_escape(d.model['name'])}</sup>"}, xaxis_title=x,
                      yaxis_title=y,
                      margin={"l": 60, "r": 20, "t": 60, "b": 60}, legend={"orientation": "h", "y": -0.25}, **kw)
    return fig


def _log_y(fig: go.Figure) -> None:
    """A log y axis; ticks at whole decades only when the values span several (no '1000, 5, 2, 100' labels),
    else Plotly's own ticks within the decade."""
    values = np.concatenate([np.asarray(t.y, float) for t in fig.data if getattr(t, "y", None) is not None] or
                            [np.array([1.0])])
    values = values[np.isfinite(values) & (values > 0)]
    span = np.log10(values.max() / values.min()) if values.size else 0.0
    if span >= 2:
        fig.update_yaxes(type="log", dtick=1, exponentformat="power")
    else:
        fig.update_yaxes(type="log", exponentformat="power")


def _escape(text: str) -> str:
    return html.escape(str(text))


def _edge_labels(edges: list[float]) -> list[str]:
    def fmt(v: float) -> str:
        if v == 0:
            return "0"
        exponent = int(np.round(np.log10(abs(v))))
        return ("-" if v < 0 else "") + f"1e{exponent}"

    return [fmt(v) for v in edges]


def _symlog_axis(fig: go.Figure, d: Diagnosis, counts=None, axis: str = "xaxis") -> None:
    """Bins on the fixed symmetric log grid are drawn by index; ticks name decades; the axis spans the bins
    that hold values (``counts``: one or more count vectors), not the whole grid."""
    edges = d.model["histogram_edges"]
    used = [i for i, c in enumerate(np.sum(np.atleast_2d(np.asarray(counts, float)), 0)) if c > 0] \
        if counts is not None and np.size(counts) else []
    lo, hi = (max(used[0] - 2, 0), min(used[-1] + 2, len(edges) - 1)) if used else (0, len(edges) - 1)
    span_decades = max(1, (hi - lo) // 8)
    step = 1 if span_decades <= 6 else 2

    def labelled(i: int) -> bool:
        e = edges[i]
        if e == 0:
            return True
        exponent = np.log10(abs(e))
        return float(np.round(exponent, 6)).is_integer() and int(round(exponent)) % step == 0

    ticks = []
    for i in sorted(range(lo, hi + 1), key=lambda i: (edges[i] != 0, i)):  # 0 first, then no label crowds it
        if labelled(i) and all(abs(i - t) >= 4 for t in ticks):
            ticks.append(i)
    ticks.sort()
    fig.update_layout(**{axis: {"tickmode": "array", "tickvals": [t - 0.5 for t in ticks],
                                "ticktext": _edge_labels([edges[t] for t in ticks]), "range": [lo - 0.5, hi + 0.5]}})


# -- inputs -------------------------------------------------------------------------------------
def input_histograms(d: Diagnosis) -> go.Figure:
    s = d.summaries["inputs"]
    fig = go.Figure()
    text = s.get("dtype") == "text"
    names = ["words", "characters"] if text else ["R", "G", "B"] if len(s["hist"]) == 3 else \
        [f"ch {i}" for i in range(len(s["hist"]))]
    for i, counts in enumerate(s["hist"][:8]):
        share = np.asarray(counts) / max(sum(counts), 1)
        fig.add_bar(x=list(range(len(share))), y=share, name=f"batch {names[i]}", opacity=0.75)
    for i, counts in enumerate((s.get("train_hist") or [])[:8]):
        share = np.asarray(counts) / max(sum(counts), 1)
        fig.add_scatter(x=list(range(len(share))), y=share, name=f"training {names[i]}", mode="lines",
                        line={"dash": "dash"})
    fig.update_layout(barmode="overlay")
    _symlog_axis(fig, d, s["hist"] + (s.get("train_hist") or []))
    if text:
        return _layout(fig, d, "Text lengths (batch): words and characters per sample", "length (symmetric log bins)",
                       "share of samples")
    title = "Input values per channel" + (" (batch vs training)" if s.get("train_hist") else " (batch)")
    return _layout(fig, d, title, "value (symmetric log bins)", "share of values")


def batchnorm_memory(d: Diagnosis) -> go.Figure:
    rows = d.summaries["inputs"].get("batchnorm") or []
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["z_median"] for r in rows], name="median |mean shift| (moving std)")
    fig.add_bar(x=names, y=[abs(r["log10_var_ratio"]) for r in rows], name="|log10 variance ratio|")
    fig.add_hline(y=RANGE_WARNING, line_dash="dot", annotation_text="flagged above (1 std / 1 decade)")
    return _layout(fig, d, "Batch vs what BatchNorm layers remember", "BatchNormalization layer",
                   "distance (0 = matches training)", barmode="group")


def preprocessing_whatif(d: Diagnosis) -> go.Figure:
    w = d.summaries["inputs"].get("whatif") or {"candidates": []}
    if w.get("given_accuracy") is not None:  # no memory of the training inputs: the labels judge
        rows = w["candidates"]
        colours = [SEVERITY_COLOURS["ok"] if c["name"] == w.get("best") else "#7f7f7f" for c in rows]
        fig = go.Figure(go.Bar(x=[c["name"] for c in rows], y=[100 * c["accuracy"] for c in rows],
                               marker_color=colours, text=[f"top class {c['top_class_share']:.0%}" for c in rows],
                               textposition="outside"))
        fig.update_yaxes(range=[0, 110])
        return _layout(fig, d, f"Which preprocessing the labels agree with ({w['samples']} samples)",
                       "preprocessing", "samples predicted right (%)")
    rows = [c for c in w["candidates"] if c["score"] is not None]
    colours = [SEVERITY_COLOURS["ok"] if c["name"] == w.get("best") else "#7f7f7f" for c in rows]
    fig = go.Figure(go.Bar(x=[c["name"] for c in rows], y=[max(c["score"], 1e-3) for c in rows],
                           marker_color=colours, text=[f"top class {c['top_class_share']:.0%}" for c in rows],
                           textposition="outside"))
    _log_y(fig)
    return _layout(fig, d, "Which preprocessing matches the model's memory", "preprocessing",
                   "distance to memory (log)")


# -- model --------------------------------------------------------------------------------------
def weight_scale(d: Diagnosis) -> go.Figure:
    rows = d.summaries["model"]["weights"]
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_scatter(x=names, y=[r["expected_high"] for r in rows], mode="lines", line={"width": 0},
                    showlegend=False, hoverinfo="skip")
    fig.add_scatter(x=names, y=[r["expected_low"] for r in rows], mode="lines", line={"width": 0},
                    fill="tonexty", fillcolor="rgba(44,160,44,0.2)", name="Glorot..He std")
    fig.add_scatter(x=names, y=[max(r["std"], 1e-12) for r in rows], mode="markers+lines", name="kernel std")
    _log_y(fig)
    return _layout(fig, d, "Kernel scale per layer vs Glorot/He", "layer", "std (log)")


# -- activations -----------------------------------------------------------------------------------
def activation_heatmap(d: Diagnosis) -> go.Figure:
    rows = d.summaries["activations"]
    counts = np.asarray([r["hist"] for r in rows], np.float64)
    fig = go.Figure(go.Heatmap(z=np.log10(counts + 1), y=[r["layer"] for r in rows],
                               x=list(range(counts.shape[1] if counts.size else 0)),
                               colorbar={"title": "log10(count+1)"}, colorscale="Viridis"))
    _symlog_axis(fig, d, counts if counts.size else None)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, d, "Activation values, every layer", "value (symmetric log bins)", "layer (input at top)",
                   height=max(400, 18 * len(rows)))


def activation_shares(d: Diagnosis) -> go.Figure:
    rows = d.summaries["activations"]
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["never_active_share"] if r["activation"] in ("relu", "relu6") else 0 for r in rows],
                name="ReLU units never active")
    fig.add_bar(x=names, y=[r.get("gate_saturated_share") or r["flat_share"] for r in rows],
                name="sigmoid/tanh (or recurrent gates) saturated")
    fig.add_hline(y=DEAD_WARNING, line_dash="dot", annotation_text=f"dead flagged at {DEAD_WARNING:.0%}")
    fig.add_hline(y=SATURATED_WARNING, line_dash="dash", annotation_position="bottom right",
                  annotation_text=f"saturated flagged at {SATURATED_WARNING:.0%}")
    return _layout(fig, d, "Dead and saturated units per layer", "layer", "share", barmode="group",
                   yaxis_range=[0, 1.05])


def activation_spread(d: Diagnosis) -> go.Figure:
    rows = d.summaries["activations"]
    fig = go.Figure(go.Scatter(x=[r["layer"] for r in rows],
                               y=[max(r["relative_spread"] or 0, 1e-9) for r in rows], mode="lines+markers"))
    fig.add_hline(y=COLLAPSE_RELATIVE_SPREAD, line_dash="dot",
                  annotation_text=f"collapsed below {COLLAPSE_RELATIVE_SPREAD:g}")
    _log_y(fig)
    return _layout(fig, d, "Spread across samples per layer", "layer",
                   "relative spread (log)")


def layer_histogram(d: Diagnosis, layer: str) -> go.Figure:
    row = next(r for r in d.summaries["activations"] if r["layer"] == layer)
    fig = go.Figure(go.Bar(x=list(range(len(row["hist"]))), y=row["hist"]))
    _log_y(fig)
    _symlog_axis(fig, d, row["hist"])
    return _layout(fig, d, f"Activation values of '{layer}'", "value (symmetric log bins)", "count (log)")


# -- gradients -----------------------------------------------------------------------------------
def gradient_norms(d: Diagnosis) -> go.Figure:
    rows = d.summaries["gradients"]["rows"]
    names = [r["layer"] for r in rows]
    fig = go.Figure(go.Scatter(x=names, y=[max(r["grad_norm"] or 0, 1e-30) for r in rows], mode="lines+markers",
                               name="‖gradient‖"))
    bad = [r for r in rows if r["nonfinite"]]
    if bad:
        fig.add_scatter(x=[r["layer"] for r in bad], y=[1.0] * len(bad), mode="markers", name="NaN / Inf",
                        marker={"symbol": "x", "size": 14, "color": SEVERITY_COLOURS["critical"]})
    _log_y(fig)
    return _layout(fig, d, "Gradient norm per layer, input to output", "layer", "‖gradient‖ (log)")


def update_ratios(d: Diagnosis) -> go.Figure:
    rows = [r for r in d.summaries["gradients"]["rows"] if r["update_ratio"] is not None]
    fig = go.Figure(go.Scatter(x=[r["layer"] for r in rows], y=[max(r["update_ratio"], 1e-30) for r in rows],
                               mode="lines+markers", name="measured step / ‖w‖"))
    fig.add_hrect(y0=UPDATE_BAND[0], y1=UPDATE_BAND[1], fillcolor="rgba(44,160,44,0.15)", line_width=0,
                  annotation_text="healthy band")
    _log_y(fig)
    return _layout(fig, d, "Update size relative to the weights, per step (measured)", "layer",
                   "lr·‖g‖/‖w‖ (SGD) or lr·√n/‖w‖ (adaptive), log")


# -- outputs -------------------------------------------------------------------------------------
def output_distribution(d: Diagnosis) -> go.Figure:
    s = d.summaries["outputs"]
    edges = np.asarray(s["edges"])
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=s["hist"], width=np.diff(edges)))
    counts = np.asarray(s["hist"], float)
    if counts[counts > 0].size and counts.max() / counts[counts > 0].min() >= 100:  # log only across decades
        _log_y(fig)
    return _layout(fig, d, "Output values", "output value", "count")


def class_shares(d: Diagnosis) -> go.Figure:
    s = d.summaries["outputs"]
    fig = go.Figure()
    k = len(s.get("predicted_shares", []))
    fig.add_bar(x=list(range(k)), y=s.get("predicted_shares", []), name="predicted")
    if s.get("true_shares"):
        fig.add_bar(x=list(range(k)), y=s["true_shares"], name="labels")
    return _layout(fig, d, "Predicted vs true class shares", "class", "share", barmode="group")


def threshold_sweep(d: Diagnosis) -> go.Figure | None:
    s = d.summaries["outputs"]
    if "scores" not in s or "labels" not in s:
        return None

    scores, labels = np.asarray(s["scores"]), np.asarray(s["labels"])
    best, best_accuracy = best_threshold(scores, labels)  # the same search as output.threshold's finding
    cuts = np.unique(np.concatenate([np.quantile(scores, np.linspace(0, 1, 50)), [0.5, best]]))
    fig = go.Figure(go.Scatter(x=cuts, y=[balanced_accuracy(scores, labels, c) for c in cuts], mode="lines+markers",
                               name="balanced accuracy"))
    fig.add_vline(x=0.5, line_dash="dot", annotation_text="0.5")
    fig.add_vline(x=best, line_dash="dash", line_color=SEVERITY_COLOURS["ok"],
                  annotation_text=f"best {best:.3g} ({best_accuracy:.2f})", annotation_position="bottom right")
    return _layout(fig, d, "Balanced accuracy by decision threshold", "threshold on the score", "balanced accuracy")


def loss_vs_prior(d: Diagnosis) -> go.Figure | None:
    found = d.find(LOSS_AT_PRIOR.id)
    s = d.summaries["outputs"]
    if not found and s.get("loss") is None:
        return None
    ev = found[0].evidence if found else {"loss": s["loss"], "prior_entropy": s.get("prior_entropy")}
    ev = {k: v for k, v in ev.items() if v is not None}
    fig = go.Figure(go.Bar(x=[k for k in ("loss", "prior_entropy") if k in ev],
                           y=[ev[k] for k in ("loss", "prior_entropy") if k in ev]))
    return _layout(fig, d, "Loss vs the entropy of the label prior", "", "nats")


# -- labels and masks ----------------------------------------------------------------------------
def label_shares(d: Diagnosis) -> go.Figure:
    s = d.summaries["labels"]
    shares = s.get("class_shares") or s.get("value_shares", [])
    xs = list(range(len(shares))) if s.get("class_shares") else s.get("unique_values", [])
    fig = go.Figure(go.Bar(x=[str(x) for x in xs], y=shares))
    return _layout(fig, d, f"{'Pixel' if s.get('kind') == 'masks' else 'Label'} share per class", "class (value)",
                   "share")


def foreground_per_image(d: Diagnosis) -> go.Figure | None:
    s = d.summaries["labels"]
    if "foreground_share_per_image" not in s:
        return None
    tags = s.get("kind") == "per-position labels"  # a tagger: sequences of tokens, not images of pixels
    fig = go.Figure()
    fig.add_bar(y=s["foreground_share_per_image"], name="labels" if tags else "masks")
    predicted = d.summaries["outputs"].get("foreground_share_per_image")
    if predicted:
        fig.add_bar(y=predicted, name="predicted")
    if tags:
        return _layout(fig, d, "Share of positions not tagged 0, per sequence", "sequence", "share of positions",
                       barmode="group")
    return _layout(fig, d, "Foreground share per image", "image", "share of pixels", barmode="group")


# -- one sample ------------------------------------------------------------------------------------
def _sample_layers(d: Diagnosis, index: int) -> list[dict]:
    return [r for r in d.summaries.get("samples", {}).get("layers", []) if index < len(r["rms"])]


def sample_size(d: Diagnosis, index: int) -> go.Figure | None:
    """One sample's activation size (RMS) per layer against the batch's: where it shrinks to nothing or blows up."""
    rows = _sample_layers(d, index)
    if not rows:
        return None
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_scatter(x=names, y=[max(r["batch_rms"], 1e-12) for r in rows], mode="lines+markers", name="batch",
                    line={"dash": "dot"})
    fig.add_scatter(x=names, y=[max(r["rms"][index], 1e-12) for r in rows], mode="lines+markers",
                    name=f"sample {index}")
    _log_y(fig)
    return _layout(fig, d, f"Sample {index}: activation size per layer", "layer", "RMS of the layer's values (log)")


def sample_dead(d: Diagnosis, index: int) -> go.Figure | None:
    """One sample's share of exact zeros per layer against the batch's."""
    rows = _sample_layers(d, index)
    if not rows:
        return None
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["batch_zero"] for r in rows], name="batch")
    fig.add_bar(x=names, y=[r["zero"][index] for r in rows], name=f"sample {index}")
    fig.add_hline(y=DEAD_WARNING, line_dash="dot", annotation_text=f"dead flagged at {DEAD_WARNING:.0%}")
    return _layout(fig, d, f"Sample {index}: share of exact zeros per layer", "layer", "share of values = 0",
                   barmode="group", yaxis_range=[0, 1.05])


# -- the figures of each panel -----------------------------------------------------------------------
@dataclass(frozen=True)
class FigureSpec:
    """A figure of a panel: its file-name stem, the function that draws it, when it applies and a one-line
    caption (what healthy looks like)."""

    name: str
    build: Callable[[Diagnosis], go.Figure | None]
    applies: Callable[[Diagnosis], bool] = lambda d: True
    wide: bool = False
    caption: str = ""


def _panel_figures() -> dict[str, tuple[FigureSpec, ...]]:
    def has(*path):
        def check(d: Diagnosis) -> bool:
            value = d.summaries
            for key in path:
                value = (value or {}).get(key) if isinstance(value, dict) else None
            return bool(value)
        return check

    def update_ratio(d: Diagnosis) -> bool:
        return any(r.get("update_ratio") is not None for r in d.summaries["gradients"]["rows"])

    return {
        "inputs": (
            FigureSpec("input_histograms", input_histograms, wide=True,
                       caption="Healthy: the batch's histogram lies on the training one (or the model's memory)."),
            FigureSpec("batchnorm_memory", batchnorm_memory, has("inputs", "batchnorm"),
                       caption="Healthy: every bar below 1 (the batch matches what BatchNorm saw in training)."),
            FigureSpec("preprocessing_whatif", preprocessing_whatif, has("inputs", "whatif"),
                       caption="Healthy: 'as given' is the closest (lowest) bar."),
        ),
        "model": (
            FigureSpec("weight_scale", weight_scale, has("model", "weights"), wide=True,
                       caption="Healthy: every kernel's std inside the green Glorot..He band."),
        ),
        "activations": (
            FigureSpec("activation_heatmap", activation_heatmap, has("activations"), wide=True,
                       caption="Healthy: each layer's values spread over several bins; a single column is a dead "
                               "or saturated layer."),
            FigureSpec("dead_saturated_shares", activation_shares, has("activations"),
                       caption="Healthy: bars well under the dotted line."),
            FigureSpec("spread_across_samples", activation_spread, has("activations"),
                       caption="Healthy: the line stays above the dotted collapse threshold."),
        ),
        "gradients": (
            FigureSpec("gradient_norms", gradient_norms, has("gradients", "rows"),
                       caption="Healthy: norms of one order of magnitude across layers, none zero or NaN."),
            FigureSpec("update_ratios", update_ratios, update_ratio,
                       caption="Healthy: every layer inside the green band of update sizes."),
        ),
        "outputs": (
            FigureSpec("output_distribution", output_distribution,
                       caption="Healthy: outputs spread over the range, not one bar."),
            FigureSpec("class_shares", class_shares, has("outputs", "predicted_shares"),
                       caption="Healthy: predicted shares close to the labels' shares."),
            FigureSpec("threshold_sweep", threshold_sweep,
                       caption="Healthy: the best threshold is near 0.5."),
            FigureSpec("loss_vs_prior", loss_vs_prior,
                       caption="Healthy: the loss well below the entropy of the label prior."),
        ),
        "labels": (
            FigureSpec("label_shares", label_shares, has("labels"),
                       caption="Healthy: no class far below the others (or weights that balance them)."),
            FigureSpec("foreground_per_image", foreground_per_image, has("labels"),
                       caption="Healthy: predicted foreground follows the masks' foreground."),
        ),
    }


PANEL_FIGURES: dict[str, tuple[FigureSpec, ...]] = _panel_figures()


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
