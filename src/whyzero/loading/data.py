"""Reading batches, labels, masks and training references from arrays or files.

Imports inside functions are deliberately lazy: pandas and Pillow load only for CSV files and images.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from whyzero.config import settings
from whyzero.errors import WhyzeroError, first_line
from whyzero.loading import safety
from whyzero.preprocessing import parse_preprocessing
from whyzero.probes.inputs import InputStats

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class LoadedInputs:
    """A batch as fed to the model, with how it was made."""

    array: np.ndarray
    source: str = "array"
    names: list[str] = field(default_factory=list)
    preprocessing: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    raw_images: np.ndarray | None = None
    columns: list[str] = field(default_factory=list)  # a CSV's feature names, from its header


def load_inputs(inputs: Any, preprocess: str = "none", size: tuple[int, int] | None = None,
                channels: int = 3) -> LoadedInputs:
    """Reads a batch.

    Args:
        inputs: an array; a ``.npy``/``.npz``/``.csv`` path; an image file, a folder or a ``.zip``
            of images; or a list of image paths.
        preprocess: for images, the named preprocessing (see ``memory.PREPROCESSINGS``).
        size: (height, width) images are resized to (the model's input).
        channels: 3 for RGB, 1 for grey.

    Raises:
        WhyzeroError: unreadable files, with what was received.
    """
    if isinstance(inputs, np.ndarray):
        return LoadedInputs(inputs)
    if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], (str, Path)):
        return _load_images([(Path(p).name, Path(p).read_bytes) for p in inputs], preprocess, size, channels,
                            source=f"{len(inputs)} image files")
    path = Path(inputs)
    if not path.exists():
        raise WhyzeroError(f"No inputs at that path. Received: {path}")
    if path.suffix in (".npy", ".npz"):
        return LoadedInputs(_read_array(path, text=True), source=path.name)
    if path.suffix == ".csv":
        array, columns = _read_csv(path)
        return LoadedInputs(array, source=path.name, columns=columns)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return _load_images([(p.name, p.read_bytes) for p in files], preprocess, size, channels, source=path.name)
    if path.suffix == ".zip":
        archive = _open_zip(path)
        names = sorted(n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        return _load_images([(n, lambda n=n: safety.read_member(archive, n)) for n in names], preprocess, size,
                            channels, source=path.name)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _load_images([(path.name, path.read_bytes)], preprocess, size, channels, source=path.name)
    raise WhyzeroError("Expected inputs as .npy, .npz, .csv, images, a folder or a .zip of images. "
                       f"Received: {path.name}")


def _read_array(path: Path, keys: tuple[str, ...] = ("x", "inputs", "images", "batch", "arr_0"),
                text: bool = False) -> np.ndarray:
    """A numeric array from ``.npy`` or ``.npz`` (the first of ``keys`` present), bounded before it is read;
    ``text``: strings too (a batch for a model that reads raw text; never Python objects)."""
    safety.check_file_size(path)
    if path.suffix == ".npz":
        safety.check_npz_file(path)
    else:
        safety.check_npy_file(path)
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            names = list(data.keys())
            if not names:
                raise WhyzeroError(f"The .npz file holds no arrays. Received: {path.name}")
            key = next((k for k in keys if k in names), names[0])
            data = data[key]
    except WhyzeroError:
        raise
    except Exception as err:  # noqa: BLE001 - corrupt members raise many kinds
        raise WhyzeroError(f"Could not read the array ({type(err).__name__}: {first_line(err, 150)}). "
                           f"Received: {path.name}") from None
    if data.size == 0:
        raise WhyzeroError(f"The array is empty (shape {data.shape}). Received: {path.name}")
    if data.dtype.kind not in ("biufUS" if text else "biuf"):
        raise WhyzeroError(f"Expected a numeric array{' or strings' if text else ''}. Received: {path.name} of "
                           f"dtype {data.dtype}")
    return data


def read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (one per model input or output), bounded before it is read."""
    safety.check_file_size(path)
    safety.check_npz_file(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.keys()}
    except Exception as err:  # noqa: BLE001 - corrupt members raise many kinds
        raise WhyzeroError(f"Could not read the arrays ({type(err).__name__}: {first_line(err, 150)}). "
                           f"Received: {path.name}") from None
    for key, value in arrays.items():
        if value.size == 0 or value.dtype.kind not in "biuf":
            raise WhyzeroError(f"Expected non-empty numeric arrays. Received: '{key}' of shape {value.shape}, "
                               f"dtype {value.dtype} in {path.name}")
    return arrays


def _read_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    """A CSV's numeric columns as float32, with their names from its header; a file whose first row is all
    numbers has no header (its first row is a sample, and its features are unnamed)."""
    import pandas as pd

    safety.check_file_size(path)
    try:
        frame = pd.read_csv(path)
        headerless = all(_is_number(str(c)) for c in frame.columns)
        if headerless:
            frame = pd.read_csv(path, header=None)
    except Exception as err:  # noqa: BLE001 - pandas raises many kinds
        raise WhyzeroError(f"Could not read the CSV ({err}). Received: {path.name}") from None
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] == 0:
        raise WhyzeroError(f"The CSV has no numeric columns. Received: {path.name} with columns {list(frame.columns)}")
    return numeric.to_numpy(np.float32), [] if headerless else [str(c)[:80] for c in numeric.columns]


def _open_zip(path: Path) -> zipfile.ZipFile:
    safety.check_file_size(path)
    return safety.open_zip(path)


def read_image(data: bytes, channels: int, size: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decodes one image, bounded: JPEGs larger than ``max_pixels`` decode at a reduced scale, anything
    else that large is refused before its pixels are decoded."""
    from PIL import Image

    limit = settings().max_pixels
    Image.MAX_IMAGE_PIXELS = None  # our own bound below replaces PIL's warning
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if width * height > limit:
        target = size or (int(np.sqrt(limit)),) * 2
        image.draft("RGB" if channels == 3 else "L", (target[1], target[0]))
        if image.size[0] * image.size[1] > limit:
            raise WhyzeroError(f"The image is {width}x{height} pixels, above the limit of {limit:,} "
                               "(WHYZERO_MAX_PIXELS)")
    image.load()
    image = image.convert("RGB" if channels == 3 else "L")
    original = (image.height, image.width)
    if size is not None and original != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, np.float32)
    return (array if channels == 3 else array[..., None]), original


def _load_images(items, preprocess: str, size, channels: int, source: str) -> LoadedInputs:
    transform = parse_preprocessing(preprocess)
    images, names, skipped, resized = [], [], [], set()
    for name, read in items:
        try:
            array, original = read_image(read(), channels, size)
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds; the rest go on
            skipped.append(f"{name} ({err})" if isinstance(err, WhyzeroError) else f"{name} ({type(err).__name__})")
            continue
        if size is not None and original != tuple(size):
            resized.add(original)
        images.append(array)
        names.append(name)
    if not images:
        raise WhyzeroError(f"No readable image among the inputs. Received: {source}"
                           + (f" (unreadable: {', '.join(skipped[:5])})" if skipped else ""))
    raw = np.stack(images)
    try:
        batch = np.asarray(transform(raw), np.float32)
    except ValueError as err:
        raise WhyzeroError(f"The preprocessing '{preprocess}' does not fit images with {raw.shape[-1]} channels "
                           f"({first_line(err, 120)}). Received: {source}") from None
    notes = [f"{len(images)} images read from {source}, preprocessing '{preprocess}'"]
    if resized:
        notes.append(f"resized from {sorted(resized)[:3]} to {tuple(size)} (the model's input)")
    if skipped:
        notes.append(f"skipped unreadable images: {', '.join(skipped)}")
    return LoadedInputs(batch, source, names, preprocess, notes, skipped, raw)


def load_labels(labels: Any, names: list[str] | None = None) -> np.ndarray | None:
    """Reads labels: an array, ``.npy`` ids or one-hot, a CSV ``filename,label``, or a folder per class."""
    if labels is None or isinstance(labels, np.ndarray):
        return labels
    if isinstance(labels, (list, tuple)):
        return np.asarray(labels)
    path = Path(labels)
    if not path.exists():
        raise WhyzeroError(f"No labels at that path. Received: {path}")
    if path.suffix in (".npy", ".npz"):
        return _read_array(path)
    if path.suffix == ".csv":
        return _labels_from_csv(path, names)
    if path.is_dir():
        classes = sorted(p.name for p in path.iterdir() if p.is_dir())
        by_name = {f.name: i for i, c in enumerate(classes) for f in (path / c).iterdir()}
        return _align(by_name, names, path.name)
    if path.suffix == ".zip":  # a folder per class, zipped: class/filename entries
        members = [Path(n) for n in _open_zip(path).namelist() if not n.endswith("/")]
        classes = sorted({m.parts[-2] for m in members if len(m.parts) >= 2})
        by_name = {m.name: classes.index(m.parts[-2]) for m in members if len(m.parts) >= 2}
        return _align(by_name, names, path.name)
    raise WhyzeroError("Expected labels as .npy, a CSV of filename,label, or a folder (or .zip) per class. "
                       f"Received: {path.name}")


def _labels_from_csv(path: Path, names: list[str] | None) -> np.ndarray:
    with open(path, newline="") as handle:
        rows = [r for r in csv.reader(handle) if r]
    if rows and not _is_number(rows[0][-1]):
        rows = rows[1:]  # header
    if not rows:
        raise WhyzeroError(f"The labels CSV is empty. Received: {path.name}")
    try:
        if len(rows[0]) == 1:
            return np.asarray([float(r[0]) for r in rows])
        by_name = {r[0]: float(r[1]) for r in rows}
    except (ValueError, IndexError):
        bad = next((r for r in rows if not _is_number(r[-1])), rows[0])
        raise WhyzeroError(f"Expected numeric labels (class ids) in the CSV. Received: {path.name} with a row "
                           f"{bad[:2]}") from None
    return _align(by_name, names, path.name)


def _align(by_name: dict, names: list[str] | None, source: str) -> np.ndarray:
    if not names:
        return np.asarray(list(by_name.values()))
    missing = [n for n in names if Path(n).name not in by_name]
    if missing:
        raise WhyzeroError(f"No label for {len(missing)} images (e.g. {missing[0]}). Received: {source}")
    values = np.asarray([by_name[Path(n).name] for n in names])
    return values.astype(np.int64) if np.all(np.round(values) == values) else values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_masks(masks: Any) -> np.ndarray | None:
    """Reads masks: an array, a ``.npy`` (N, H, W), or a folder / ``.zip`` of PNG masks in order."""
    if masks is None or isinstance(masks, np.ndarray):
        return masks
    path = Path(masks)
    if not path.exists():
        raise WhyzeroError(f"No masks at that path. Received: {path}")
    if path.suffix in (".npy", ".npz"):
        return _read_array(path)
    from PIL import Image

    if path.is_dir():
        items = [(p.name, p.read_bytes) for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    elif path.suffix == ".zip":
        archive = _open_zip(path)
        items = [(n, lambda n=n: safety.read_member(archive, n)) for n in sorted(archive.namelist())
                 if Path(n).suffix.lower() in IMAGE_SUFFIXES]
    else:
        raise WhyzeroError(f"Expected masks as .npy, a folder or a .zip of PNGs. Received: {path.name}")
    arrays = []
    for name, read in items:
        try:
            mask = Image.open(io.BytesIO(read()))
            if mask.size[0] * mask.size[1] > settings().max_pixels:
                raise WhyzeroError(f"The mask is {mask.size[0]}x{mask.size[1]} pixels, above the limit "
                                   "(WHYZERO_MAX_PIXELS)")
            arrays.append(np.asarray(mask))
        except WhyzeroError as err:
            raise WhyzeroError(f"{err}. Received: {name}") from None
        except Exception as err:  # noqa: BLE001
            raise WhyzeroError(f"Could not read mask ({type(err).__name__}). Received: {name}") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise WhyzeroError(f"Expected masks of one size. Received sizes {sorted(shapes)[:4]}")
    if not arrays:
        raise WhyzeroError(f"No mask images found. Received: {path.name}")
    return np.stack(arrays)


def load_train_reference(train_inputs: Any = None, train_stats: Any = None) -> InputStats | None:
    """A training reference: statistics of a sample of training inputs, or a stats file."""
    if train_stats is not None:
        if isinstance(train_stats, InputStats):
            return train_stats
        safety.check_file_size(Path(train_stats))
        return InputStats.load(train_stats)
    if train_inputs is None:
        return None
    return InputStats.of(load_inputs(train_inputs).array)
