"""``whyzero gallery score``: recall, root cause first (top-1) and false alarms over the gallery.

Imports inside functions are deliberately lazy: the gallery's models (TensorFlow) load when the score runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class CaseScore:
    """How one case came out."""

    name: str
    healthy: bool
    first: str | None
    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    top1: bool = False
    false_alarms: list[str] = field(default_factory=list)
    seconds: float = 0.0


def score_case(name: str) -> CaseScore:
    """Builds (or loads) a case, diagnoses it and compares with what it declares."""
    import whyzero
    from whyzero import gallery

    case = gallery.get(name)
    start = time.monotonic()
    built = gallery.build(name)
    d = whyzero.diagnose(built.model, built.inputs, labels=built.labels, masks=built.masks,
                         train_inputs=built.train_inputs, trust_model=case.trust)
    serious = [f for f in d.findings if f.severity != "info"]
    first = serious[0].cause if serious else None
    result = CaseScore(name, case.healthy, first, seconds=time.monotonic() - start)
    if case.healthy:
        result.false_alarms = [f"{f.cause} ({f.severity})" for f in serious]
        result.top1 = not serious
    else:
        found = d.causes("warning")
        result.found = [c for c in case.causes if c in found]
        result.missing = [c for c in case.causes if c not in found]
        result.top1 = first in case.expected_roots
    return result


def score(names: list[str] | None = None, progress: Callable[[CaseScore], None] | None = None) -> dict:
    """Scores the named cases (all by default).

    Returns:
        ``recall`` (declared causes found at warning or worse, over broken cases), ``top1`` (broken
        cases whose first finding is their root cause), ``false_alarms`` (healthy cases with any
        warning or critical), and the per-case rows.
    """
    from whyzero import gallery

    rows = []
    for name in names or gallery.names():
        row = score_case(name)
        rows.append(row)
        if progress:
            progress(row)
    broken = [r for r in rows if not r.healthy]
    healthy = [r for r in rows if r.healthy]
    declared = sum(len(r.found) + len(r.missing) for r in broken)
    return {"cases": len(rows), "broken": len(broken), "healthy": len(healthy),
            "recall": sum(len(r.found) for r in broken) / declared if declared else None,
            "top1": sum(r.top1 for r in broken) / len(broken) if broken else None,
            "false_alarms": sum(bool(r.false_alarms) for r in healthy),
            "rows": [r.__dict__ for r in rows]}


def row_text(row: CaseScore) -> str:
    if row.healthy:
        verdict = "clean" if not row.false_alarms else "FALSE ALARM: " + ", ".join(row.false_alarms)
    else:
        verdict = ("root first" if row.top1 else f"FIRST IS {row.first}") + (
            f"; missing {', '.join(row.missing)}" if row.missing else "")
    return f"{row.name:34s} {verdict}  ({row.seconds:.1f}s)"
