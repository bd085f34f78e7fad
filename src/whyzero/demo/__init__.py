"""The app's opening demo, diagnosed ahead of time so a first visit shows findings at once, and the Timeline page's
demo run, watched ahead of time.

``scripts/make_demo.py`` writes ``photos_wrong_normalization.json`` and ``timeline_binary_lr_spike.jsonl.gz``;
tests fail when the live diagnosis of that case, or the live run of that recipe, no longer gives the same
findings, so the shipped copies cannot go stale.
"""

from __future__ import annotations

import gzip
from pathlib import Path

DEMO_CASE = "photos_wrong_normalization"
DEMO_RECIPE = "binary_lr_spike"
FOLDER = Path(__file__).resolve().parent


def shipped_json(name: str = DEMO_CASE) -> str | None:
    """The precomputed diagnosis of a gallery case, if one ships with this version."""
    path = FOLDER / f"{name}.json"
    return path.read_text(encoding="utf-8") if path.exists() else None


def timeline_path(name: str = DEMO_RECIPE) -> Path:
    return FOLDER / f"timeline_{name}.jsonl.gz"


def shipped_timeline(name: str = DEMO_RECIPE) -> list[str] | None:
    """The lines of a gallery recipe's run, watched ahead of time, if one ships with this version."""
    path = timeline_path(name)
    if not path.exists():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.readlines()
