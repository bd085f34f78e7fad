"""The Outputs panel: its view (distribution, class shares, scores, loss against the prior) and its figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from whyzero.checks.labels import entropy, shares_of
from whyzero.checks.outputs import LOSS_AT_PRIOR, balanced_accuracy, best_threshold
from whyzero.diagnosis import Diagnosis
from whyzero.figures.base import FigureSpec, View, go, has, layout, log_y
from whyzero.figures.images import THUMBNAILS, overlay
from whyzero.measurements import Measurements, decision_cut, predicted_classes
from whyzero.presenter import SEVERITY_COLOURS
from whyzero.probes.values import ONE_TOLERANCE

OUTPUT_BINS = 50
SCORES_KEPT = 512


@dataclass
class OutputsView(View):
    """The Outputs panel's view: the outputs' histogram, spread and exact 0/1 shares; the predicted against the
    labels' class shares, a binary model's scores; the loss and the prior's entropy; predicted masks."""

    PANEL: ClassVar[str] = "outputs"
    OMIT_EMPTY: ClassVar[bool] = True
    hist: list[int] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    kind: str = ""
    n_classes: int = 0
    exact_zero_share: float = 0.0
    exact_one_share: float = 0.0
    spread: float = 0.0
    scores: list[float] | None = None
    predicted_shares: list[float] | None = None
    true_shares: list[float] | None = None
    labels: list[int] | None = None
    prior_entropy: float | None = None
    predicted_masks: list[str] | None = None
    foreground_share_per_image: list[float] | None = None
    loss: float | None = None


def view(m: Measurements, batch: np.ndarray, outputs: np.ndarray, ids: np.ndarray | None) -> OutputsView:
    out = np.asarray(outputs, np.float64)
    flat = out.reshape(-1)
    finite = flat[np.isfinite(flat)]
    task = m.task
    lo, hi = (0.0, 1.0) if task.probabilities else (float(finite.min(initial=0)), float(finite.max(initial=1)))
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(finite, lo, hi), bins=OUTPUT_BINS, range=(lo, hi))
    summary: dict[str, Any] = {"hist": counts.tolist(), "edges": edges.tolist(), "kind": task.kind,
                               "n_classes": task.n_classes, "exact_zero_share": float(np.mean(flat == 0)),
                               "exact_one_share": float(np.mean(np.abs(flat - 1) <= ONE_TOLERANCE)),
                               "spread": float(np.max(np.std(out.reshape(len(out), -1), axis=0)))}
    per_sample = out.reshape(len(out), -1)
    if task.kind == "binary":
        summary["scores"] = per_sample[:SCORES_KEPT, 0].tolist()
    if task.kind in ("binary", "multiclass", "segmentation"):
        pred = predicted_classes(outputs, task.kind, decision_cut(task, m.labels))
        k = task.n_classes
        summary["predicted_shares"] = (np.bincount(pred.reshape(-1), minlength=k)[:k] / pred.size).tolist()
        if ids is not None and ids.size:
            valid = ids.reshape(-1)[(ids.reshape(-1) >= 0) & (ids.reshape(-1) < k)].astype(int)
            summary["true_shares"] = shares_of(valid, k).tolist()
            if task.kind == "binary":
                summary["labels"] = ids.reshape(-1)[:SCORES_KEPT].astype(int).tolist()
            prior = np.asarray(summary["true_shares"])
            summary["prior_entropy"] = entropy(prior)
        if task.kind == "segmentation":
            if np.ndim(batch) == 4:  # images; a tagger's token sequences have nothing to draw on
                summary["predicted_masks"] = [overlay(img, p) for img, p in zip(batch[:THUMBNAILS],
                                                                                 pred[:THUMBNAILS])]
            summary["foreground_share_per_image"] = (pred.reshape(len(pred), -1) > 0).mean(1).tolist()
    if m.loss_value is not None:
        summary["loss"] = m.loss_value
    return OutputsView(**summary)


# -- outputs -------------------------------------------------------------------------------------
def output_distribution(d: Diagnosis) -> go.Figure:
    s = OutputsView.of(d)
    edges = np.asarray(s.edges)
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=s.hist, width=np.diff(edges)))
    counts = np.asarray(s.hist, float)
    if counts[counts > 0].size and counts.max() / counts[counts > 0].min() >= 100:  # log only across decades
        log_y(fig)
    return layout(fig, d, "Output values", "output value", "count")


def class_shares(d: Diagnosis) -> go.Figure:
    s = OutputsView.of(d)
    fig = go.Figure()
    k = len(s.predicted_shares or [])
    fig.add_bar(x=list(range(k)), y=s.predicted_shares or [], name="predicted")
    if s.true_shares:
        fig.add_bar(x=list(range(k)), y=s.true_shares, name="labels")
    fig.update_xaxes(dtick=1)  # classes are whole numbers
    return layout(fig, d, "Predicted vs true class shares", "class", "share", barmode="group")


def threshold_sweep(d: Diagnosis) -> go.Figure | None:
    s = OutputsView.of(d)
    if s.scores is None or s.labels is None:
        return None
    scores, labels = np.asarray(s.scores), np.asarray(s.labels)
    best, best_accuracy = best_threshold(scores, labels)  # the same search as output.threshold's finding
    cuts = np.unique(np.concatenate([np.quantile(scores, np.linspace(0, 1, 50)), [0.5, best]]))
    fig = go.Figure(go.Scatter(x=cuts, y=[balanced_accuracy(scores, labels, c) for c in cuts], mode="lines+markers",
                               name="balanced accuracy"))
    fig.add_vline(x=0.5, line_dash="dot", annotation_text="0.5")
    fig.add_vline(x=best, line_dash="dash", line_color=SEVERITY_COLOURS["ok"],
                  annotation_text=f"best {best:.3g} ({best_accuracy:.2f})", annotation_position="bottom right")
    fig.update_yaxes(range=[0, 1.02])  # an accuracy: 0 to 1
    return layout(fig, d, "Balanced accuracy by decision threshold", "threshold on the score", "balanced accuracy")


def loss_vs_prior(d: Diagnosis) -> go.Figure | None:
    found = d.find(LOSS_AT_PRIOR.id)
    s = OutputsView.of(d)
    if not found and s.loss is None:
        return None
    ev = found[0].evidence if found else {"loss": s.loss, "prior_entropy": s.prior_entropy}
    ev = {k: v for k, v in ev.items() if v is not None}
    names = {"loss": "batch loss", "prior_entropy": "entropy of the label prior"}
    fig = go.Figure(go.Bar(x=[names[k] for k in names if k in ev], y=[ev[k] for k in names if k in ev]))
    log_y(fig)  # a loss of 245 beside a prior of 1: both bars readable
    return layout(fig, d, "Loss vs the entropy of the label prior", "", "nats (log scale)")


SPECS = (
        FigureSpec("output_distribution", output_distribution,
                   caption="Healthy: outputs spread over the range, not one bar."),
        FigureSpec("class_shares", class_shares, has("outputs", "predicted_shares"),
                   caption="Healthy: predicted shares close to the labels' shares."),
        FigureSpec("threshold_sweep", threshold_sweep,
                   caption="Healthy: the best threshold is near 0.5."),
        FigureSpec("loss_vs_prior", loss_vs_prior,
                   caption="Healthy: the loss well below the entropy of the label prior."),
    )
