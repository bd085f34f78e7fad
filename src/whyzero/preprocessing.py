"""The standard image preprocessings, and how to map a preprocessed batch back to raw 0..255 pixels."""

from __future__ import annotations

from typing import Callable

import numpy as np

from whyzero.errors import WhyzeroError

# Standard image preprocessings, as Keras applications apply them to raw 0..255 RGB pixels.
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
TORCH_MEAN = np.array([0.485, 0.456, 0.406])
TORCH_STD = np.array([0.229, 0.224, 0.225])


def _per_channel(fn3, fn1):
    return lambda raw: fn3(raw) if raw.shape[-1] == 3 else fn1(raw)


PREPROCESSINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda raw: raw,
    "unit": lambda raw: raw / 255.0,
    "symmetric": lambda raw: raw / 127.5 - 1.0,
    "caffe": _per_channel(lambda raw: raw[..., ::-1] - CAFFE_MEAN_BGR, lambda raw: raw - CAFFE_MEAN_BGR.mean()),
    "torch": _per_channel(lambda raw: (raw / 255.0 - TORCH_MEAN) / TORCH_STD,
                          lambda raw: (raw / 255.0 - TORCH_MEAN.mean()) / TORCH_STD.mean()),
}


# What each standard preprocessing does to 0..255 pixels, in words.
PREPROCESSING_WORDS = {"none": "raw 0..255 pixels", "unit": "x / 255", "symmetric": "x / 127.5 - 1",
                       "caffe": "'caffe' (BGR, ImageNet means subtracted)",
                       "torch": "'torch' (x / 255, ImageNet mean and std)"}


def parse_preprocessing(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """A named preprocessing: one of PREPROCESSINGS or ``mean-std:m1,m2,m3:s1,s2,s3`` (on 0..255)."""
    if name in PREPROCESSINGS:
        return PREPROCESSINGS[name]
    if name.startswith("mean-std:"):
        try:
            _, mean, std = name.split(":")
            m = np.array([float(v) for v in mean.split(",")])
            s = np.array([float(v) for v in std.split(",")])
        except ValueError:
            pass
        else:
            return lambda raw: (raw - m) / s
    raise WhyzeroError(f"Expected a preprocessing among {sorted(PREPROCESSINGS)} or "
                       f"'mean-std:M1,M2,M3:S1,S2,S3'. Received: {name!r}")


def recover_raw(batch: np.ndarray) -> tuple[np.ndarray, str]:
    """Maps an image batch back to 0..255 RGB pixels, and says how.

    Known preprocessings are inverted exactly by their range; anything else is an
    unknown per-channel affine map, undone approximately by min-max per channel.
    """
    x = batch.astype(np.float64)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if lo >= 0 and hi > 1.5 and hi <= 255.5:
        return x, "the batch is already 0..255"
    if lo >= 0 and hi <= 1.0 + 1e-6:
        return x * 255.0, "the batch looks like 0..1 (x/255)"
    if lo >= -1.0 - 1e-6 and hi <= 1.0 + 1e-6:
        return (x + 1.0) * 127.5, "the batch looks like -1..1 (x/127.5 - 1)"
    mins = np.nanmin(x.reshape(-1, x.shape[-1]), 0)
    maxs = np.nanmax(x.reshape(-1, x.shape[-1]), 0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    return (x - mins) / span * 255.0, "unknown scaling, undone approximately by per-channel min-max"
