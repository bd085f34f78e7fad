"""Two diagnoses side by side: which findings appeared, disappeared or changed severity or role."""

from __future__ import annotations

from pathlib import Path

from whyzero.diagnosis import Diagnosis, Finding
from whyzero.errors import WhyzeroError


def read(path: str | Path) -> Diagnosis:
    """A stored diagnosis (``whyzero diagnose --json``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise WhyzeroError(f"Could not read the diagnosis ({err.strerror}). Received: {Path(path).name}") from None
    return Diagnosis.from_json(text)


def _key(f: Finding) -> tuple[str, str | None]:
    return f.cause, f.layer


def difference(before: Diagnosis, after: Diagnosis) -> dict[str, list]:
    """Findings (at warning or worse) only in ``before``, only in ``after``, and in both but changed."""
    a = {_key(f): f for f in before.findings if f.severity != "info"}
    b = {_key(f): f for f in after.findings if f.severity != "info"}
    changed = [(a[k], b[k]) for k in a.keys() & b.keys() if (a[k].severity, a[k].role) != (b[k].severity, b[k].role)]
    return {"disappeared": [a[k] for k in a.keys() - b.keys()], "appeared": [b[k] for k in b.keys() - a.keys()],
            "changed": changed, "kept": [b[k] for k in a.keys() & b.keys()]}


def compare_text(before: Diagnosis, after: Diagnosis) -> str:
    diff = difference(before, after)
    lines = [f"before: {before.model['name']} ({before.inputs.get('samples')} samples, {before.created})",
             f"after:  {after.model['name']} ({after.inputs.get('samples')} samples, {after.created})"]
    for title, items in (("disappeared", diff["disappeared"]), ("appeared", diff["appeared"])):
        lines.append(f"{title} ({len(items)}):")
        lines.extend(f"  {f.severity:8s} {f.role:11s} {f.cause}{f' [{f.layer}]' if f.layer else ''}: {f.title}"
                     for f in items)
    lines.append(f"changed ({len(diff['changed'])}):")
    lines.extend(f"  {a.cause}: {a.severity}/{a.role} -> {b.severity}/{b.role}" for a, b in diff["changed"])
    lines.append(f"unchanged: {len(diff['kept']) - len(diff['changed'])}")
    return "\n".join(lines)
