"""The Labels & masks panel: its view (class shares, encodings, overlays) and its figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from whyzero.checks.labels import (
    PERPLEXITY_WARNING,
    class_shares,
    normalized_perplexity,
    suggested_class_weights,
)
from whyzero.diagnosis import Diagnosis
from whyzero.figures.base import FigureSpec, View, go, has, layout
from whyzero.figures.images import THUMBNAILS, overlay
from whyzero.figures.outputs import OutputsView
from whyzero.measurements import Measurements


@dataclass
class LabelsView(View):
    """The Labels & masks panel's view: what was given, its values and their shares, the class shares and the
    class weights that would balance them, masks over their images; empty without labels or masks."""

    PANEL: ClassVar[str] = "labels"
    OMIT_EMPTY: ClassVar[bool] = True
    kind: str | None = None
    shape: list[int] | None = None
    output_classes: int | None = None
    unique_values: list | None = None
    value_shares: list[float] | None = None
    class_shares: list[float] | None = None
    suggested_class_weights: list[float] | None = None
    foreground_share_per_image: list[float] | None = None
    masks: list[str] | None = None


def view(m: Measurements, batch: np.ndarray, labels: np.ndarray | None, masks: np.ndarray | None,
            ids: np.ndarray | None) -> LabelsView:
    values = masks if m.task.kind == "segmentation" else labels
    if values is None:
        return LabelsView()
    values = np.asarray(values)
    kind = "labels" if masks is None else "masks" if values.ndim != 2 else "per-position labels"  # a tagger's
    summary: dict[str, Any] = {"kind": kind, "shape": list(values.shape),
                               "output_classes": m.task.n_classes}
    if values.ndim == 2 and values.shape[1] > 1 and masks is None:
        values = values.argmax(1)
    uniques, shares = class_shares(values.reshape(-1) if values.ndim < 4 or values.shape[-1] != 3 else
                                   values.reshape(-1, 3)[:, 0])
    summary["unique_values"] = uniques[:50].tolist()
    summary["value_shares"] = shares[:50].tolist()
    if ids is not None:
        k = m.task.n_classes
        counts = np.bincount(ids.reshape(-1).astype(int).clip(0, k - 1), minlength=k)[:k]
        shares = counts / max(counts.sum(), 1)
        summary["class_shares"] = shares.tolist()
        present = max(int(np.nonzero(counts)[0].max(initial=0)) + 1, 2)
        if normalized_perplexity(shares[:present], present) < PERPLEXITY_WARNING:  # weights only where they help
            summary["suggested_class_weights"] = suggested_class_weights(counts[:present]).tolist()
        if masks is not None:
            summary["foreground_share_per_image"] = (ids.reshape(len(ids), -1) > 0).mean(1).tolist()
            if np.ndim(batch) == 4:
                summary["masks"] = [overlay(img, m) for img, m in zip(batch[:THUMBNAILS], ids[:THUMBNAILS])]
    return LabelsView(**summary)


# -- labels and masks ----------------------------------------------------------------------------
def label_shares(d: Diagnosis) -> go.Figure:
    s = LabelsView.of(d)
    shares = s.class_shares or s.value_shares or []
    xs = list(range(len(shares))) if s.class_shares else s.unique_values or []
    fig = go.Figure(go.Bar(x=[str(x) for x in xs], y=shares))
    return layout(fig, d, f"{'Pixel' if s.kind == 'masks' else 'Label'} share per class", "class (value)",
                   "share")


def foreground_per_image(d: Diagnosis) -> go.Figure | None:
    s = LabelsView.of(d)
    if s.foreground_share_per_image is None:
        return None
    tags = s.kind == "per-position labels"  # a tagger: sequences of tokens, not images of pixels
    fig = go.Figure()
    fig.add_bar(y=s.foreground_share_per_image, name="labels" if tags else "masks")
    predicted = OutputsView.of(d).foreground_share_per_image
    if predicted:
        fig.add_bar(y=predicted, name="predicted")
    if tags:
        return layout(fig, d, "Share of positions not tagged 0, per sequence", "sequence", "share of positions",
                       barmode="group")
    return layout(fig, d, "Foreground share per image", "image", "share of pixels", barmode="group")


SPECS = (
        FigureSpec("label_shares", label_shares, has("labels"),
                   caption="Healthy: no class far below the others (or weights that balance them)."),
        FigureSpec("foreground_per_image", foreground_per_image, has("labels"),
                   caption="Healthy: predicted foreground follows the masks' foreground."),
    )
