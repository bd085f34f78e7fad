"""Small pictures stored with a diagnosis: thumbnails, mask and heat-map overlays, as base64 PNG.

Imports inside functions are deliberately lazy: Pillow loads only when a picture is drawn.
"""

from __future__ import annotations

import base64
import io

import numpy as np

# The first samples shown as pictures (thumbnails, mask overlays, heat maps).
THUMBNAILS = 8
THUMBNAIL_SIZE = 96


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


# Every sample of the batch as a small picture for the Samples page's paged grid (JPEG: a few kB each).
GRID_SIZE = 48
GRID_QUALITY = 80
GRID_BLOCK = 32


def grid_thumbnails(batch: np.ndarray) -> list[str]:
    """Small JPEGs (base64) of every image of the batch, each min-max scaled to be visible.  The batch is strided
    down to about twice the picture's size first, in numpy, ``GRID_BLOCK`` images at a time, so 512 MobileNet-sized
    images take ~0.2 s and ~15 MB (the whole batch at once: 220 MB, more than the probe itself needs)."""
    from PIL import Image

    x = np.asarray(batch)
    step = max(1, min(x.shape[1], x.shape[2]) // (2 * GRID_SIZE))
    out = []
    for start in range(0, len(x), GRID_BLOCK):
        block = np.nan_to_num(np.asarray(x[start:start + GRID_BLOCK, ::step, ::step], np.float32), posinf=0.0,
                              neginf=0.0)
        axes = tuple(range(1, block.ndim))
        low, high = block.min(axes, keepdims=True), block.max(axes, keepdims=True)
        block -= low
        block *= 255 / np.where(high > low, high - low, np.inf)  # a flat image black
        for image in block.astype(np.uint8):
            pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image[..., :3])
            pil.thumbnail((GRID_SIZE, GRID_SIZE))
            buffer = io.BytesIO()
            pil.save(buffer, format="JPEG", quality=GRID_QUALITY)
            out.append(base64.b64encode(buffer.getvalue()).decode())
    return out
