"""Configuration in one place; every default can be overridden from the environment.

| setting | variable | default |
|---|---|---|
| chunk_size | WHYZERO_CHUNK_SIZE | 64 samples per forward pass at most |
| chunk_mb | WHYZERO_CHUNK_MB | 640 MB of activations a chunk holds at most, or 8 samples within twice it |
| max_samples | WHYZERO_MAX_SAMPLES | 512 samples of a batch probed at most |
| cache_dir | WHYZERO_CACHE_DIR | ~/.cache/whyzero (built gallery cases) |
| max_file_mb | WHYZERO_MAX_FILE_MB | 1024 MB: any one input file (model, batch, labels, masks) |
| max_zip_mb | WHYZERO_MAX_ZIP_MB | 2048 MB: everything a zip (or .keras, .npz) would extract to |
| max_zip_members | WHYZERO_MAX_ZIP_MEMBERS | 20000 files in one zip |
| max_zip_ratio | WHYZERO_MAX_ZIP_RATIO | 200: a member may expand at most this many times its compressed size |
| max_array_mb | WHYZERO_MAX_ARRAY_MB | 2048 MB: one array declared by a .npy/.npz header or an .h5 dataset |
| max_pixels | WHYZERO_MAX_PIXELS | 50 million pixels per decoded image (larger JPEGs are decoded smaller) |
| session_days | WHYZERO_SESSION_DAYS | 30 days before a shared session expires |
| run_days | WHYZERO_RUN_DAYS | 90 days a run (every diagnosis the app made, at ?run=) is kept unless deleted |
| store_url | WHYZERO_STORE_URL | unset: SQLite in data_dir; e.g. postgresql+psycopg://user:pw@host/db |
| data_dir | WHYZERO_DATA_DIR | ~/.local/share/whyzero (the default SQLite file) |
| public_url | WHYZERO_PUBLIC_URL | unset: share links use the address the browser used; set it behind a proxy |
| purge_minutes | WHYZERO_PURGE_MINUTES | 60: how often the app purges expired sessions |
| timings_file | WHYZERO_TIMINGS_FILE | unset: a file the app appends each page run's server time to (tests) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Every setting with its default (the table above); ``settings()`` reads each from ``WHYZERO_<NAME>``."""

    chunk_size: int = 64
    chunk_mb: float = 640
    max_samples: int = 512
    cache_dir: Path = Path.home() / ".cache" / "whyzero"
    max_file_mb: float = 1024
    max_zip_mb: float = 2048
    max_zip_members: int = 20000
    max_zip_ratio: float = 200
    max_array_mb: float = 2048
    max_pixels: int = 50_000_000
    session_days: float = 30
    run_days: float = 90
    purge_minutes: float = 60
    store_url: str | None = None
    data_dir: Path = Path.home() / ".local" / "share" / "whyzero"
    public_url: str | None = None
    timings_file: Path | None = None

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)

    @property
    def max_zip_bytes(self) -> int:
        return int(self.max_zip_mb * 2**20)

    @property
    def max_array_bytes(self) -> int:
        return int(self.max_array_mb * 2**20)


def env_name(setting: str) -> str:
    """The environment variable that overrides a setting: ``WHYZERO_`` and its name in capitals."""
    return f"WHYZERO_{setting.upper()}"


def _parse(annotation: str, raw: str):
    kind = annotation.split("|")[0].strip()
    return {"int": int, "float": float, "Path": Path}.get(kind, str)(raw)


def settings() -> Settings:
    """Reads the settings from the environment (anew each call, so tests can change it); an empty variable is
    unset."""
    values = {}
    for f in fields(Settings):
        raw = os.environ.get(env_name(f.name))
        if raw:
            values[f.name] = _parse(str(f.type), raw)
    return Settings(**values)
