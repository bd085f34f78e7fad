"""Numbers and findings as people write them: 380×, 0.31, 1.2e-07; the evidence without internal keys."""

from __future__ import annotations

import math
from typing import Any

# Evidence keys that say where a number came from rather than what it is: shown only in the JSON.
INTERNAL_KEYS = {"targets", "healthy_band", "compared_with", "memory_source"}


def number(value: float) -> str:
    """A float rounded for reading: 3 significant digits, scientific only outside 1e-3..1e5."""
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.3g}"
    return f"{value:.2e}".replace("e-0", "e-").replace("e+0", "e+")


def times(value: float) -> str:
    """A factor: 380×, 2.5×, 1.2e+06×."""
    if value >= 1e5:
        return f"{value:.1e}×"
    return f"{value:.0f}×" if value >= 10 else f"{value:.2g}×"


def value(v: Any, items: int = 4) -> str:
    """Any evidence value, short."""
    if isinstance(v, float):
        return number(v)
    if isinstance(v, list):
        inner = ", ".join(value(x, items) for x in v[:items])
        return f"[{inner}{', …' if len(v) > items else ''}]"
    return str(v)


def evidence_line(evidence: dict[str, Any], limit: int = 6) -> str:
    """The evidence a person reads: ``name value`` pairs, internal keys left out."""
    shown = [(k, v) for k, v in evidence.items() if k not in INTERNAL_KEYS][:limit]
    return ", ".join(f"{k.replace('_', ' ')} {value(v)}" for k, v in shown)
