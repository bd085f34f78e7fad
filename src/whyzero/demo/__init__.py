"""The app's opening demo, diagnosed ahead of time so a first visit shows findings at once.

``scripts/make_demo.py`` writes ``photos_wrong_normalization.json``; a test fails when the live
diagnosis of that case no longer gives the same findings, so the shipped copy cannot go stale.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CASE = "photos_wrong_normalization"
FOLDER = Path(__file__).resolve().parent


def shipped_json(name: str = DEMO_CASE) -> str | None:
    """The precomputed diagnosis of a gallery case, if one ships with this version."""
    path = FOLDER / f"{name}.json"
    return path.read_text(encoding="utf-8") if path.exists() else None
