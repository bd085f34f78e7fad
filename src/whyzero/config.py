"""Configuration in one place; every default can be overridden from the environment.

| setting | variable | default |
|---|---|---|
| chunk_size | WHYZERO_CHUNK_SIZE | 64 samples per forward pass at most |
| chunk_mb | WHYZERO_CHUNK_MB | 256 MB of activations a chunk holds at most (big models: small chunks) |
| max_samples | WHYZERO_MAX_SAMPLES | 512 samples of a batch probed at most |
| cache_dir | WHYZERO_CACHE_DIR | ~/.cache/whyzero (built gallery cases) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    chunk_size: int
    chunk_mb: float
    max_samples: int
    cache_dir: Path


def settings() -> Settings:
    """Reads the settings from the environment (anew each call, so tests can change it)."""
    return Settings(
        chunk_size=int(os.environ.get("WHYZERO_CHUNK_SIZE", "64")),
        chunk_mb=float(os.environ.get("WHYZERO_CHUNK_MB", "256")),
        max_samples=int(os.environ.get("WHYZERO_MAX_SAMPLES", "512")),
        cache_dir=Path(os.environ.get("WHYZERO_CACHE_DIR", Path.home() / ".cache" / "whyzero")),
    )
