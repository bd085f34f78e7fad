"""The panels' views, as plain data for the ``Diagnosis``: a function of the measurements record.

Everything here is read from ``Measurements``; the only live values are the pictures (the batch, for
thumbnails and mask overlays) and the full outputs and label ids, which the record keeps only when
small (``measurements.MAX_STORED_VALUES``).
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict
from typing import Any

import numpy as np

from whyzero.checks.activations import DEAD_WARNING
from whyzero.checks.gradients import update_ratio
from whyzero.checks.labels import (
    PERPLEXITY_WARNING,
    class_shares,
    entropy,
    normalized_perplexity,
    shares_of,
    suggested_class_weights,
)
from whyzero.measurements import Measurements, decision_cut, predicted_classes
from whyzero.probes.values import ONE_TOLERANCE

THUMBNAILS = 8
THUMBNAIL_SIZE = 96
OUTPUT_BINS = 50
SCORES_KEPT = 512


def panel_views(m: Measurements, batch: np.ndarray, outputs: np.ndarray, label_ids: np.ndarray | None = None,
                    labels: np.ndarray | None = None, masks: np.ndarray | None = None,
                    saliency: tuple[list[np.ndarray], str] | None = None) -> dict[str, Any]:
    """Every panel's view of the record ``m``; ``batch`` and the full arrays give the pictures and output shares;
    ``saliency`` the heat maps of the first images (``probes.saliency``)."""
    return {"samples": _samples(m, batch, outputs, label_ids, saliency), "inputs": _inputs(m, batch),
            "activations": [{"layer": r.name, "type": r.type, "activation": r.activation, **r.values.to_row()}
                            for r in m.layers],
            "gradients": {"rows": [dict(asdict(r), update_ratio=update_ratio(m.optimizer, r)) for r in m.gradients],
                          "labels": m.gradient_labels, "loss": m.loss_value, "optimizer": m.optimizer},
            "outputs": _outputs(m, batch, outputs, label_ids), "labels": _labels(m, batch, labels, masks, label_ids),
            "model": {"weights": m.memory.weights}}


# A text batch's statistics: each sample's length in words and in characters (``feed.text_features``); the
# first texts are shown cut to this many characters.
TEXT_FEATURES = ("words", "characters")
TEXT_SHOWN_CHARS = 300


def _inputs(m: Measurements, batch: np.ndarray) -> dict[str, Any]:
    stats, train, memory = m.input_stats, m.train_stats, m.memory
    table = stats.table()
    if m.is_text:  # the statistics are of each text's length
        for row, name in zip(table, TEXT_FEATURES):
            row["channel"] = name
    return {"table": table, "hist": stats.hist.tolist(), "dtype": stats.dtype,
            "texts": [" | ".join(str(v) for v in np.ravel(row))[:TEXT_SHOWN_CHARS] for row in batch[:THUMBNAILS]]
            if m.is_text else [],
            "empty_texts": int(sum(not "".join(str(v) for v in np.ravel(row)).strip() for row in batch))
            if m.is_text else 0,
            "integer_share": stats.integer_share, "constant_samples": stats.constant_samples,
            "train_table": train.table() if train is not None else None,
            "train_hist": train.hist.tolist() if train is not None else None,
            "batchnorm": [asdict(r) for r in memory.batchnorm],
            "normalization": None if memory.normalization is None else asdict(memory.normalization),
            "rescaling": memory.rescaling,
            "memory_score": memory.score, "memory_source": memory.source,
            "whatif": None if m.whatif is None else m.whatif.to_dict(),
            "thumbnails": [thumbnail(img) for img in batch[:THUMBNAILS]] if m.is_image else []}


def _samples(m: Measurements, batch: np.ndarray, outputs: np.ndarray, ids: np.ndarray | None,
             saliency: tuple[list[np.ndarray], str] | None) -> dict[str, Any]:
    """The per-sample drill-down: each of the first samples' prediction, label and own per-layer statistics."""
    kept = min(len(outputs), max((len(r.values.sample_rms) for r in m.layers), default=0) or THUMBNAILS)
    out = np.asarray(outputs[:kept], np.float64)
    flat = out.reshape(len(out), -1)
    classified = m.task.kind in ("binary", "multiclass")
    predicted = predicted_classes(out, m.task.kind, decision_cut(m.task, m.labels)) if classified and kept else None
    rows = []
    for i in range(kept):
        row: dict[str, Any] = {"index": i}
        if classified:
            pred = int(predicted[i])
            row["predicted"] = pred
            row["score"] = float(flat[i, 0] if flat.shape[1] == 1 else flat[i, pred])
        elif m.task.kind == "regression":
            row["predicted"] = float(flat[i, 0])
        if m.task.kind in ("binary", "multiclass") and ids is not None and i < len(ids):
            row["label"] = int(np.asarray(ids[i]).reshape(-1)[0])
        rows.append(row)
    layers = [{"layer": r.name, "rms": r.values.sample_rms[:kept], "zero": r.values.sample_zero[:kept],
               "batch_rms": r.values.rms, "batch_zero": r.values.share("zero")} for r in m.layers]
    maps, method = saliency if saliency else ([], None)
    return {"rows": rows, "layers": layers, "saliency_method": method,
            "saliency": [heat_overlay(img, heat) for img, heat in zip(batch, maps)] if m.is_image else []}


# A sample whose activation size falls this far below (or rises this far above) the batch's at a layer.
SAMPLE_SIZE_FACTOR = 100.0


def sample_differences(samples: dict[str, Any], index: int) -> list[str]:
    """Where sample ``index``'s layers part from the batch's: it dies, collapses or blows up (Markdown lines)."""
    out = []
    for layer in samples.get("layers", []):
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


def heat_overlay(image: np.ndarray, heat: np.ndarray) -> str:
    """The image (greyed) under a heat map (0..1) in red-yellow: where the prediction comes from.  Both are resized
    to the picture's size before they are blended (8 MobileNetV2 images: 57 ms when blended at 224x224)."""
    from PIL import Image

    size = (THUMBNAIL_SIZE * 2, THUMBNAIL_SIZE * 2)
    x = _unit(image)
    grey = Image.fromarray(((x.mean(-1) if x.ndim == 3 else x) * 255).astype(np.uint8)).resize(size, Image.BILINEAR)
    grey = (np.asarray(grey, np.float32) / 255)[..., None]
    h = np.clip(np.nan_to_num(np.asarray(heat, np.float32)), 0, 1)
    h = np.clip(np.asarray(Image.fromarray(h, mode="F").resize(size, Image.BILINEAR)), 0, 1)[..., None]
    hot = np.concatenate([np.ones_like(h), h, np.zeros_like(h)], -1)  # red at low heat to yellow at full
    rgb = (1 - 0.5 * h) * grey + 0.5 * h * hot
    return png_base64(Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)))


def _unit(image: np.ndarray) -> np.ndarray:
    """An image min-max scaled to 0..1 (float32) so it is visible whatever its preprocessing; NaN and Inf at 0."""
    x = np.asarray(image, np.float32)
    finite = np.isfinite(x)
    clean = finite.all()
    lo, hi = (x.min(), x.max()) if clean else (np.min(x, where=finite, initial=np.inf),
                                               np.max(x, where=finite, initial=-np.inf))
    if not hi > lo:
        return np.zeros_like(x)
    out = (x - lo) / (hi - lo)
    return out if clean else np.where(finite, out, 0).astype(np.float32)


def png_base64(pil) -> str:
    """One place turns a picture into the base64 PNG the Diagnosis carries (fastest compression: thumbnails are
    small, and the default level took ~5 ms each)."""
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


def thumbnail(image: np.ndarray) -> str:
    """A small PNG (base64) of one image as the model sees it, min-max scaled to be visible."""
    from PIL import Image

    pixels = (_unit(image) * 255).astype(np.uint8)
    pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    pil.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return png_base64(pil)


def _outputs(m: Measurements, batch: np.ndarray, outputs: np.ndarray, ids: np.ndarray | None) -> dict[str, Any]:
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
    return summary


def overlay(image: np.ndarray, mask: np.ndarray) -> str:
    """A thumbnail of the image (min-max scaled, grey or colour) with the mask's foreground in red."""
    from PIL import Image

    x = _unit(image)
    rgb = np.repeat(x, 3, -1) if x.shape[-1] == 1 else x[..., :3]
    if mask.shape[:2] == rgb.shape[:2]:
        fg = (mask > 0)[..., None]
        rgb = np.where(fg, 0.5 * rgb + 0.5 * np.array([1.0, 0.0, 0.0]), rgb)
    pil = Image.fromarray((np.nan_to_num(rgb) * 255).astype(np.uint8))
    return png_base64(pil.resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.NEAREST))


def _labels(m: Measurements, batch: np.ndarray, labels: np.ndarray | None, masks: np.ndarray | None,
            ids: np.ndarray | None) -> dict[str, Any]:
    values = masks if m.task.kind == "segmentation" else labels
    if values is None:
        return {}
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
    return summary
