"""The small summaries behind every panel, as plain data for the ``Diagnosis``."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from whyzero.checks.gradients import gradient_rows
from whyzero.checks.labels import (
    PERPLEXITY_WARNING,
    class_shares,
    entropy,
    normalized_perplexity,
    shares_of,
    suggested_class_weights,
)
from whyzero.context import Context
from whyzero.loading.data import LoadedInputs
from whyzero.probes.summary import ONE_TOLERANCE

THUMBNAILS = 8
THUMBNAIL_SIZE = 96
OUTPUT_BINS = 50
SCORES_KEPT = 512


def build_summaries(ctx: Context, batch_in: LoadedInputs) -> dict[str, Any]:
    return {"inputs": _inputs(ctx, batch_in), "activations": _activations(ctx), "gradients": _gradients(ctx),
            "outputs": _outputs(ctx), "labels": _labels(ctx), "model": {"weights": ctx.memory.get("weights", [])}}


def _inputs(ctx: Context, batch_in: LoadedInputs) -> dict[str, Any]:
    stats = ctx.input_stats
    out = {"table": stats.table(), "hist": stats.hist.tolist(), "dtype": stats.dtype,
           "integer_share": stats.integer_share, "constant_samples": stats.constant_samples,
           "train_table": ctx.train_stats.table() if ctx.train_stats is not None else None,
           "train_hist": ctx.train_stats.hist.tolist() if ctx.train_stats is not None else None,
           "batchnorm": ctx.memory.get("batchnorm", []), "normalization": ctx.memory.get("normalization"),
           "rescaling": ctx.memory.get("rescaling", []), "memory_score": ctx.memory.get("score"),
           "memory_source": ctx.memory.get("source"), "whatif": ctx.whatif, "thumbnails": []}
    if ctx.is_image:
        out["thumbnails"] = [thumbnail(img) for img in ctx.batch[:THUMBNAILS]]
    return out


def _unit(image: np.ndarray) -> np.ndarray:
    """An image min-max scaled to 0..1 so it is visible whatever its preprocessing."""
    x = np.asarray(image, np.float64)
    lo, hi = np.nanmin(x), np.nanmax(x)
    return np.nan_to_num(np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo))


def png_base64(pil) -> str:
    """One place turns a picture into the base64 PNG the Diagnosis carries."""
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def thumbnail(image: np.ndarray) -> str:
    """A small PNG (base64) of one image as the model sees it, min-max scaled to be visible."""
    from PIL import Image

    pixels = (_unit(image) * 255).astype(np.uint8)
    pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    pil.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return png_base64(pil)


def _activations(ctx: Context) -> list[dict[str, Any]]:
    if ctx.forward is None:
        return []
    return [{"layer": p.name, "type": p.type, "activation": p.activation, **p.values.to_dict()}
            for p in ctx.forward.layers]


def _gradients(ctx: Context) -> dict[str, Any]:
    return {"rows": gradient_rows(ctx), "labels": ctx.gradient_labels,
            "loss": None if ctx.forward is None else ctx.forward.loss, "optimizer": ctx.optimizer}


def _outputs(ctx: Context) -> dict[str, Any]:
    out = np.asarray(ctx.outputs, np.float64)
    flat = out.reshape(-1)
    finite = flat[np.isfinite(flat)]
    lo, hi = (0.0, 1.0) if ctx.task.probabilities else (float(finite.min(initial=0)), float(finite.max(initial=1)))
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(finite, lo, hi), bins=OUTPUT_BINS, range=(lo, hi))
    summary: dict[str, Any] = {"hist": counts.tolist(), "edges": edges.tolist(), "kind": ctx.task.kind,
                               "n_classes": ctx.task.n_classes, "exact_zero_share": float(np.mean(flat == 0)),
                               "exact_one_share": float(np.mean(np.abs(flat - 1) <= ONE_TOLERANCE)),
                               "spread": float(np.max(np.std(out.reshape(len(out), -1), axis=0)))}
    per_sample = out.reshape(len(out), -1)
    if ctx.task.kind == "binary":
        summary["scores"] = per_sample[:SCORES_KEPT, 0].tolist()
    if ctx.task.kind in ("binary", "multiclass", "segmentation"):
        pred = ctx.predicted_classes()
        k = ctx.task.n_classes
        summary["predicted_shares"] = (np.bincount(pred.reshape(-1), minlength=k)[:k] / pred.size).tolist()
        ids = ctx.label_ids
        if ids is not None and ids.size:
            valid = ids.reshape(-1)[(ids.reshape(-1) >= 0) & (ids.reshape(-1) < k)].astype(int)
            summary["true_shares"] = shares_of(valid, k).tolist()
            if ctx.task.kind == "binary":
                summary["labels"] = ids.reshape(-1)[:SCORES_KEPT].astype(int).tolist()
            prior = np.asarray(summary["true_shares"])
            summary["prior_entropy"] = entropy(prior)
        if ctx.task.kind == "segmentation":
            summary["predicted_masks"] = [overlay(img, p) for img, p in zip(ctx.batch[:THUMBNAILS], pred[:THUMBNAILS])]
            summary["foreground_share_per_image"] = (pred.reshape(len(pred), -1) > 0).mean(1).tolist()
    if ctx.forward is not None and ctx.forward.loss is not None:
        summary["loss"] = ctx.forward.loss
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


def _labels(ctx: Context) -> dict[str, Any]:
    values = ctx.masks if ctx.task.kind == "segmentation" else ctx.labels
    if values is None:
        return {}
    values = np.asarray(values)
    summary: dict[str, Any] = {"kind": "masks" if ctx.masks is not None else "labels", "shape": list(values.shape),
                               "output_classes": ctx.task.n_classes}
    if values.ndim == 2 and values.shape[1] > 1 and ctx.masks is None:
        values = values.argmax(1)
    uniques, shares = class_shares(values.reshape(-1) if values.ndim < 4 or values.shape[-1] != 3 else
                                   values.reshape(-1, 3)[:, 0])
    summary["unique_values"] = uniques[:50].tolist()
    summary["value_shares"] = shares[:50].tolist()
    if ctx.label_ids is not None:
        ids = ctx.label_ids
        k = ctx.task.n_classes
        counts = np.bincount(ids.reshape(-1).astype(int).clip(0, k - 1), minlength=k)[:k]
        shares = counts / max(counts.sum(), 1)
        summary["class_shares"] = shares.tolist()
        present = max(int(np.nonzero(counts)[0].max(initial=0)) + 1, 2)
        if normalized_perplexity(shares[:present], present) < PERPLEXITY_WARNING:  # weights only where they help
            summary["suggested_class_weights"] = suggested_class_weights(counts[:present]).tolist()
        if ctx.masks is not None:
            summary["foreground_share_per_image"] = (ids.reshape(len(ids), -1) > 0).mean(1).tolist()
            summary["masks"] = [overlay(img, m) for img, m in zip(ctx.batch[:THUMBNAILS], ids[:THUMBNAILS])]
    return summary
