"""The Inputs panel: its view of the measurements (statistics, the model's memory, the what-if, thumbnails) and
its figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from whyzero.checks.inputs import RANGE_WARNING
from whyzero.diagnosis import Diagnosis
from whyzero.distances import distance
from whyzero.figures.base import FigureSpec, View, go, has, layout, log_y, symlog_axis
from whyzero.figures.images import THUMBNAILS, thumbnail
from whyzero.measurements import Measurements
from whyzero.presenter import SEVERITY_COLOURS

# A text batch's statistics: each sample's length in words and in characters (``feed.text_features``); the
# first texts are shown cut to this many characters.
TEXT_FEATURES = ("words", "characters")
TEXT_SHOWN_CHARS = 300




@dataclass
class InputsView(View):
    """The Inputs panel's view: the batch's statistics (of the texts' lengths, for text), the training
    reference's, the model's memory (BatchNorm, Normalization, Rescaling) and the what-if, the first samples."""

    PANEL: ClassVar[str] = "inputs"
    table: list[dict] = field(default_factory=list)
    hist: list[list[int]] = field(default_factory=list)
    dtype: str = ""
    texts: list[str] = field(default_factory=list)
    empty_texts: int = 0
    integer_share: float = 0.0
    constant_samples: int = 0
    train_table: list[dict] | None = None
    train_hist: list[list[int]] | None = None
    train_samples: int | None = None  # how many samples the training statistics cover
    batchnorm: list[dict] = field(default_factory=list)
    normalization: dict | None = None
    rescaling: list[dict] = field(default_factory=list)
    memory_score: float | None = None
    memory_source: str | None = None
    whatif: dict | None = None
    thumbnails: list[str] = field(default_factory=list)


def view(m: Measurements, batch: np.ndarray) -> InputsView:
    stats, train, memory = m.input_stats, m.train_stats, m.memory
    table = stats.table()
    if m.is_text:  # the statistics are of each text's length
        for row, name in zip(table, TEXT_FEATURES):
            row["channel"] = name
    return InputsView(**{"table": table, "hist": stats.hist.tolist(), "dtype": stats.dtype,
            "texts": [" | ".join(str(v) for v in np.ravel(row))[:TEXT_SHOWN_CHARS] for row in batch[:THUMBNAILS]]
            if m.is_text else [],
            "empty_texts": int(sum(not "".join(str(v) for v in np.ravel(row)).strip() for row in batch))
            if m.is_text else 0,
            "integer_share": stats.integer_share, "constant_samples": stats.constant_samples,
            "train_table": train.table() if train is not None else None,
            "train_hist": train.hist.tolist() if train is not None else None,
            "train_samples": train.samples if train is not None else None,
            "batchnorm": [asdict(r) for r in memory.batchnorm],
            "normalization": None if memory.normalization is None else asdict(memory.normalization),
            "rescaling": memory.rescaling,
            "memory_score": memory.score, "memory_source": memory.source,
            "whatif": None if m.whatif is None else m.whatif.to_dict(),
            "thumbnails": [thumbnail(img) for img in batch[:THUMBNAILS]] if m.is_image else []})


# -- inputs -------------------------------------------------------------------------------------
# The colour channels in their own colours (R red, G green, B blue).
CHANNEL_COLOURS = ["#d62728", "#2ca02c", "#1f77b4"]


# Channels (features) drawn on the histogram: beyond, the per-feature table shows them.
HISTOGRAM_CHANNELS = 8


def feature_table(d: Diagnosis) -> list[dict]:
    """Tabular inputs, one row per feature (named from the CSV's header): the batch against the training reference
    (or the adapted Normalization layer's memory), with each feature's distance (|mean shift| in reference stds +
    |log10 variance ratio|, 0 = the same) and whether it is flagged (at ``RANGE_WARNING`` or more, or NaN/inf);
    flagged rows first, the farthest first.  Empty for images and text."""
    s = InputsView.of(d)
    if d.inputs.get("is_image") or s.dtype == "text" or len(d.inputs.get("shape") or []) != 2:
        return []
    names = d.inputs.get("features") or []
    ref_mean, ref_std, ref_name = _feature_reference(s)
    rows = []
    for i, row in enumerate(s.table):
        out = {"feature": names[i] if i < len(names) else f"#{i}", "batch mean": row["mean"],
               "batch std": row["std"], "min": row["min"], "max": row["max"]}
        bad = int(row["nan"]) + int(row["inf"])
        if ref_mean is not None and i < len(ref_mean):
            out[f"{ref_name} mean"], out[f"{ref_name} std"] = float(ref_mean[i]), float(ref_std[i])
            out["distance"] = distance([row["mean"]], [row["std"]], [ref_mean[i]], [ref_std[i]])
        out["flagged"] = bad > 0 or out.get("distance", 0.0) >= RANGE_WARNING
        if bad:
            out["NaN/inf"] = bad
        rows.append(out)
    return sorted(rows, key=lambda r: (not r["flagged"], -r.get("distance", 0.0)))


def _feature_reference(s: InputsView) -> tuple[list | None, list | None, str]:
    """Per-feature mean and std to compare with: the training sample's, else a Normalization layer's."""
    if s.train_table and len(s.train_table) == len(s.table):
        return [r["mean"] for r in s.train_table], [r["std"] for r in s.train_table], "training"
    memory = s.normalization
    if memory and len(memory.get("mean", [])) == len(s.table):
        return memory["mean"], [float(np.sqrt(max(v, 0.0))) for v in memory["variance"]], "Normalization"
    return None, None, ""


def input_histograms(d: Diagnosis) -> go.Figure:
    s = InputsView.of(d)
    fig = go.Figure()
    text = s.dtype == "text"
    features = d.inputs.get("features") or []
    names = ["words", "characters"] if text else features if len(features) == len(s.hist) else \
        ["R", "G", "B"] if len(s.hist) == 3 else [f"ch {i}" for i in range(len(s.hist))]
    colours = CHANNEL_COLOURS if names == ["R", "G", "B"] else [None] * len(names)
    for i, counts in enumerate(s.hist[:HISTOGRAM_CHANNELS]):
        share = np.asarray(counts) / max(sum(counts), 1)
        fig.add_bar(x=list(range(len(share))), y=share, name=f"batch {names[i]}", opacity=0.75,
                    marker_color=colours[i])
    for i, counts in enumerate((s.train_hist or [])[:HISTOGRAM_CHANNELS]):
        share = np.asarray(counts) / max(sum(counts), 1)
        fig.add_scatter(x=list(range(len(share))), y=share, name=f"training {names[i]}", mode="lines",
                        line={"dash": "dash", "color": colours[i]})
    fig.update_layout(barmode="overlay")
    symlog_axis(fig, d, s.hist + (s.train_hist or []))
    if text:
        return layout(fig, d, "Text lengths (batch): words and characters per sample", "length (symmetric log bins)",
                       "share of samples")
    title = "Input values per channel" + (" (batch vs training)" if s.train_hist else " (batch)")
    if len(s.hist) > HISTOGRAM_CHANNELS:
        title += f": the first {HISTOGRAM_CHANNELS} of {len(s.hist)} (every one in the table below)"
    return layout(fig, d, title, "value (symmetric log bins)", "share of values")


def batchnorm_memory(d: Diagnosis) -> go.Figure:
    rows = InputsView.of(d).batchnorm
    names = [r["layer"] for r in rows]
    fig = go.Figure()
    fig.add_bar(x=names, y=[r["z_median"] for r in rows], name="median |mean shift| (moving std)")
    fig.add_bar(x=names, y=[abs(r["log10_var_ratio"]) for r in rows], name="|log10 variance ratio|")
    # the threshold named in the legend, not on the plot, where its label would sit on a bar
    fig.add_hline(y=RANGE_WARNING, line_dash="dot", showlegend=True, name="flagged above 1 (1 std / 1 decade)")
    return layout(fig, d, "Batch vs what BatchNorm layers remember", "BatchNormalization layer",
                   "distance (0 = matches training)", barmode="group")


def preprocessing_whatif(d: Diagnosis) -> go.Figure:
    w = InputsView.of(d).whatif or {"candidates": []}
    if w.get("given_accuracy") is not None:  # no memory of the training inputs: the labels judge
        rows = w["candidates"]
        colours = [SEVERITY_COLOURS["ok"] if c["name"] == w.get("best") else "#7f7f7f" for c in rows]
        fig = go.Figure(go.Bar(x=[c["name"] for c in rows], y=[100 * c["accuracy"] for c in rows],
                               marker_color=colours, text=[f"top class {c['top_class_share']:.0%}" for c in rows],
                               textposition="outside"))
        fig.update_yaxes(range=[0, 110])
        return layout(fig, d, f"Which preprocessing the labels agree with ({w['samples']} samples)",
                       "preprocessing", "samples predicted right (%)")
    rows = [c for c in w["candidates"] if c["score"] is not None]
    colours = [SEVERITY_COLOURS["ok"] if c["name"] == w.get("best") else "#7f7f7f" for c in rows]
    # the model's top class share where it was run under a candidate (as given)
    text = [f"top class {c['top_class_share']:.0%}" if c.get("top_class_share") is not None else "" for c in rows]
    fig = go.Figure(go.Bar(x=[c["name"] for c in rows], y=[max(c["score"], 1e-3) for c in rows],
                           marker_color=colours, text=text, textposition="outside"))
    log_y(fig)
    return layout(fig, d, "Which preprocessing matches the model's memory", "preprocessing",
                   "distance to memory (log)")


SPECS = (
        FigureSpec("input_histograms", input_histograms, wide=True,
                   caption="Healthy: the batch's bars lie on the training sample's dashed lines (drawn when one is "
                           "given; without one, the BatchNorm chart below compares with the model's memory)."),
        FigureSpec("batchnorm_memory", batchnorm_memory, has("inputs", "batchnorm"),
                   caption="Healthy: every bar below 1 (the batch matches what BatchNorm saw in training)."),
        FigureSpec("preprocessing_whatif", preprocessing_whatif, has("inputs", "whatif"),
                   caption="Healthy: 'as given' is the closest (lowest) bar."),
    )
