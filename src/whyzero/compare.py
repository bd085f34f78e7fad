"""Diagnoses side by side: whether they are of the same model, and which findings appeared, disappeared or
changed severity or role from one to the next."""

from __future__ import annotations

import hashlib
import json
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


def architecture(d: Diagnosis) -> str:
    """A hash of the model's architecture: its layers' types, output shapes and parameter counts, in order (names
    left out: Keras numbers them per session)."""
    layers = [(layer.get("type"), layer.get("output_shape"), layer.get("params"))
              for layer in d.model.get("layers", [])]
    shape = {"layers": layers, "output": d.model.get("output_shape"), "params": d.model.get("params")}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def same_model(before: Diagnosis, after: Diagnosis) -> tuple[bool, str]:
    """Whether two diagnoses are of one model (then what differs is the data or the fix), in words: (same
    architecture, sentence)."""
    if architecture(before) != architecture(after):
        counts = f"{len(before.model.get('layers', []))} and {len(after.model.get('layers', []))} layers"
        return False, (f"Different models: their architectures differ ({before.model.get('name')} and "
                       f"{after.model.get('name')}; {counts}, {before.task_words} and {after.task_words}). "
                       "Findings are compared by cause only.")
    if before.model.get("hash") == after.model.get("hash"):
        return True, "Same model: the same architecture and the same weights (the batch or its options differ)."
    return True, (f"Same architecture, other weights (sha256 {str(before.model.get('hash'))[:12]} and "
                  f"{str(after.model.get('hash'))[:12]}): a retrained or edited model.")


def in_time_order(labelled: list[tuple[str, Diagnosis]]) -> list[tuple[str, Diagnosis]]:
    """(label, diagnosis) pairs oldest first (ISO timestamps sort as text; one without a time first)."""
    return sorted(labelled, key=lambda item: item[1].created or "")


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
    lines = [same_model(before, after)[1],
             f"before: {before.model['name']} ({before.inputs.get('samples')} samples, {before.created})",
             f"after:  {after.model['name']} ({after.inputs.get('samples')} samples, {after.created})"]
    for title, items in (("disappeared", diff["disappeared"]), ("appeared", diff["appeared"])):
        lines.append(f"{title} ({len(items)}):")
        lines.extend(f"  {f.severity:8s} {f.role:11s} {f.cause}{f' [{f.layer}]' if f.layer else ''}: {f.title}"
                     for f in items)
    lines.append(f"changed ({len(diff['changed'])}):")
    lines.extend(f"  {a.cause}: {a.severity}/{a.role} -> {b.severity}/{b.role}" for a, b in diff["changed"])
    lines.append(f"unchanged: {len(diff['kept']) - len(diff['changed'])}")
    return "\n".join(lines)
