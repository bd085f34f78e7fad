"""A gallery of real broken models, one or more for every cause, each family with a healthy twin.

    from whyzero import gallery
    built = gallery.build("photos_wrong_normalization")
    whyzero.diagnose(built.model, built.inputs, labels=built.labels)

Built cases are cached on disk (``WHYZERO_CACHE_DIR``); a second build loads them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from whyzero._lazy import LazyModule
from whyzero.config import settings
from whyzero.errors import WhyzeroError
from whyzero.gallery.cases import CASES, Built, Case

keras = LazyModule("keras")  # imported on first use: `gallery list` needs no TensorFlow

# Bump when a case's construction changes, so caches rebuild.
GALLERY_VERSION = 2
_ARRAYS = ("inputs", "labels", "masks", "train_inputs")


def names() -> list[str]:
    return list(CASES)


def get(name: str) -> Case:
    try:
        return CASES[name]
    except KeyError:
        raise WhyzeroError(f"No gallery case of that name; see `whyzero gallery list`. Received: {name!r}") from None


def cache_folder(name: str) -> Path:
    return settings().cache_dir / f"gallery-v{GALLERY_VERSION}" / name


def build(name: str, cache: bool = True) -> Built:
    """Builds a case (trains or breaks its model), or loads it from the cache."""
    case = get(name)
    folder = cache_folder(name)
    if cache and (folder / "done").exists():
        return _load(folder, case)
    built = case.build()
    if cache:
        _save(folder, built)
    return built


def _save(folder: Path, built: Built) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    built.model.save(tmp / "model.keras")
    for key in _ARRAYS:
        value = getattr(built, key)
        if value is not None:
            np.save(tmp / f"{key}.npy", value)
    (tmp / "done").write_text("ok")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _load(folder: Path, case: Case) -> Built:
    model = keras.saving.load_model(folder / "model.keras", safe_mode=not case.trust)
    arrays = {k: np.load(folder / f"{k}.npy") if (folder / f"{k}.npy").exists() else None for k in _ARRAYS}
    return Built(model, **arrays)


def export(name: str, target: str | Path) -> dict[str, str]:
    """Writes a case as files a user can upload or pass to ``whyzero diagnose``.

    Returns:
        What was written, by role (model, inputs, labels, masks, train_inputs).
    """
    built = build(name)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written = {"model": str(target / "model.keras")}
    built.model.save(target / "model.keras")
    for key in _ARRAYS:
        value = getattr(built, key)
        if value is not None:
            np.save(target / f"{key}.npy", value)
            written[key] = str(target / f"{key}.npy")
    case = get(name)
    (target / "case.json").write_text(json.dumps({"name": name, "causes": list(case.causes),
                                                  "summary": case.summary, "trust_model": case.trust}, indent=2))
    return written


__all__ = ["CASES", "Built", "Case", "build", "export", "get", "names"]
