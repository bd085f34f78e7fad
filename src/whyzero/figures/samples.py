"""The Samples page: its view (the first samples, their predictions, per-layer sizes, heat maps) and the
drill-down's figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from whyzero.checks.activations import DEAD_WARNING
from whyzero.diagnosis import Diagnosis
from whyzero.figures.base import View, go, layout, log_y
from whyzero.figures.images import grid_thumbnails, heat_overlay
from whyzero.measurements import Measurements, decision_cut, predicted_classes


@dataclass
class SamplesView(View):
    """The Samples page's view: the first samples' predictions, labels and own per-layer sizes, and heat maps."""

    PANEL: ClassVar[str] = "samples"
    rows: list[dict] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    saliency_method: str | None = None
    saliency: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)  # every image, small (JPEG), for the paged grid


def view(m: Measurements, batch: np.ndarray, outputs: np.ndarray, ids: np.ndarray | None,
             saliency: tuple[list[np.ndarray], str] | None) -> SamplesView:
    """The per-sample drill-down: every sample's prediction, label, loss and right or wrong, and a small picture
    of each image; the first samples' own per-layer statistics (``SAMPLES_KEPT``) and heat maps."""
    out = np.asarray(outputs, np.float64)
    flat = out.reshape(len(out), -1)
    classified = m.task.kind in ("binary", "multiclass")
    predicted = predicted_classes(out, m.task.kind, decision_cut(m.task, m.labels)) if classified and len(out) else None
    labels = None
    if classified and ids is not None and len(ids) == len(out):
        labels = np.asarray(ids).reshape(len(ids), -1)[:, 0].astype(np.int64)
    losses = sample_losses(flat, labels, m.task) if labels is not None else None
    rows = []
    for i in range(len(out)):
        row: dict[str, Any] = {"index": i}
        if classified:
            pred = int(predicted[i])
            row["predicted"] = pred
            row["score"] = float(flat[i, 0] if flat.shape[1] == 1 else flat[i, pred])
        elif m.task.kind == "regression":
            row["predicted"] = float(flat[i, 0])
        if labels is not None:
            row["label"] = int(labels[i])
            row["right"] = bool(row["predicted"] == row["label"])
        if losses is not None:
            row["loss"] = float(losses[i])
        rows.append(row)
    kept = min(len(out), max((len(r.values.sample_rms) for r in m.layers), default=0))
    layers = [{"layer": r.name, "rms": r.values.sample_rms[:kept], "zero": r.values.sample_zero[:kept],
               "batch_rms": r.values.rms, "batch_zero": r.values.share("zero")} for r in m.layers]
    maps, method = saliency if saliency else ([], None)
    return SamplesView(rows, layers, method,
                       [heat_overlay(img, heat) for img, heat in zip(batch, maps)] if m.is_image else [],
                       grid_thumbnails(batch) if m.is_image and len(batch) else [])


def sample_losses(flat: np.ndarray, labels: np.ndarray, task) -> np.ndarray | None:
    """Each sample's cross-entropy against its label, from the outputs as probabilities (logits through a sigmoid
    or softmax first); None where a label is not one of the output's classes."""
    if task.probabilities:
        probs = flat
    elif flat.shape[1] == 1:
        probs = 1.0 / (1.0 + np.exp(-np.clip(flat, -60, 60)))
    else:
        shifted = np.exp(flat - flat.max(1, keepdims=True))
        probs = shifted / shifted.sum(1, keepdims=True)
    probs = np.concatenate([1 - probs, probs], 1) if probs.shape[1] == 1 else probs
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        return None
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))


# A sample whose activation size falls this far below (or rises this far above) the batch's at a layer.
SAMPLE_SIZE_FACTOR = 100.0


def sample_differences(samples: SamplesView, index: int) -> list[str]:
    """Where sample ``index``'s layers part from the batch's: it dies, collapses or blows up (Markdown lines)."""
    out = []
    for layer in samples.layers:
        if index >= len(layer["rms"]):
            continue
        name, size, zero, batch = layer["layer"], layer["rms"][index], layer["zero"][index], layer["batch_rms"]
        if zero >= DEAD_WARNING > layer["batch_zero"]:
            out.append(f"dies at **{name}**: {zero:.0%} of its values are 0 (batch {layer['batch_zero']:.0%})")
        elif batch > 0 and size * SAMPLE_SIZE_FACTOR < batch:
            out.append(f"collapses at **{name}**: size {size:.2g} against the batch's {batch:.2g}")
        elif size > SAMPLE_SIZE_FACTOR * max(batch, 1e-12):
            out.append(f"blows up at **{name}**: size {size:.2g} against the batch's {batch:.2g}")
    return out


# -- one sample ------------------------------------------------------------------------------------
def _sample_layers(d: Diagnosis, index: int) -> list[dict]:
    return [r for r in SamplesView.of(d).layers if index < len(r["rms"])]


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
    log_y(fig)
    return layout(fig, d, f"Sample {index}: activation size per layer", "layer", "RMS of the layer's values (log)")


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
    return layout(fig, d, f"Sample {index}: share of exact zeros per layer", "layer", "share of values = 0",
                   barmode="group", yaxis_range=[0, 1.05])


# How the Samples page orders its samples: the key of a row, and whether the largest comes first.
SAMPLE_ORDERS = {"batch order": ("index", False), "highest loss first": ("loss", True),
                 "lowest score first": ("score", False), "class": ("label", False)}
SAMPLE_FILTERS = ("all", "wrong only", "right only")


def order_samples(rows: list[dict], order: str = "batch order", show: str = "all",
                  classes: list[int] | None = None) -> list[int]:
    """The sample indices the Samples page lists: filtered by right or wrong and by label (or predicted class when
    there are no labels), sorted by ``SAMPLE_ORDERS[order]`` (ties in batch order; rows without the key last)."""
    kept = [r for r in rows if show == "all" or ("right" in r and r["right"] == (show == "right only"))]
    if classes:
        kept = [r for r in kept if r.get("label", r.get("predicted")) in classes]
    key, largest_first = SAMPLE_ORDERS.get(order, ("index", False))
    if key == "label" and not any("label" in r for r in kept):
        key = "predicted"
    present = [r for r in kept if r.get(key) is not None]
    missing = [r for r in kept if r.get(key) is None]
    present.sort(key=lambda r: (-r[key] if largest_first else r[key], r["index"]))
    return [r["index"] for r in present + missing]
