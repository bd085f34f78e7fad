"""The ``Diagnosis`` document: findings plus the small summaries behind every panel.

It is the one document that flows everywhere (CLI JSON, dashboard, report,
shared sessions); panels draw from it alone.  Everything in it is plain JSON
data, cleaned on the way in, so ``from_json(to_json(d)) == d`` holds exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from whyzero.causes import CAUSE_ORDER, SEVERITIES, SEVERITY_RANK, get_cause

SCHEMA_VERSION = 1


def clean(value: Any) -> Any:
    """Turns numpy scalars/arrays and tuples into JSON data; non-finite floats become None."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass
class Finding:
    """One cause found, with the numbers that show it.

    Attributes:
        cause: a cause id of ``CAUSES.md``.
        severity: ``critical`` | ``warning`` | ``info``.
        title: one line a person reads.
        evidence: the numbers, by name.
        fix: what to do.
        layer: the layer it concerns, or None.
        panel: the page that shows the evidence (the cause's panel by default).
    """

    cause: str
    severity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""
    layer: str | None = None
    panel: str = ""

    def __post_init__(self) -> None:
        cause = get_cause(self.cause)
        if self.severity not in SEVERITIES:
            raise ValueError(f"Expected severity in {SEVERITIES}. Received: {self.severity!r}")
        self.panel = self.panel or cause.panel
        self.evidence = clean(self.evidence)


@dataclass
class CheckError:
    """A check that raised: recorded, and the other checks still ran."""

    check: str
    message: str


@dataclass
class Diagnosis:
    """Findings and panel summaries for one model and one batch.

    Attributes:
        model: identity and structure (name, hash, layers, loss, optimizer).
        inputs: what was fed (shape, dtype, source, preprocessing).
        findings: ranked: the symptom first, then its causes by severity.
        summaries: per panel, the small data its figures are drawn from.
        errors: checks that raised.
        version: the whyzero version that wrote it.
        created: ISO timestamp.
    """

    model: dict[str, Any]
    inputs: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    summaries: dict[str, Any] = field(default_factory=dict)
    errors: list[CheckError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    version: str = ""
    created: str = ""
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        self.model = clean(self.model)
        self.inputs = clean(self.inputs)
        self.summaries = clean(self.summaries)
        self.findings = rank(self.findings)

    # -- queries ---------------------------------------------------------
    def causes(self, min_severity: str = "warning") -> set[str]:
        """The cause ids found at ``min_severity`` or worse."""
        limit = SEVERITY_RANK[min_severity]
        return {f.cause for f in self.findings if SEVERITY_RANK[f.severity] <= limit}

    def find(self, cause: str) -> list[Finding]:
        """The findings of one cause id, worst first."""
        return [f for f in self.findings if f.cause == cause]

    def for_panel(self, panel: str) -> list[Finding]:
        return [f for f in self.findings if f.panel == panel]

    @property
    def is_clean(self) -> bool:
        """No critical and no warning finding."""
        return not self.causes("warning")

    # -- serialization ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        data = dict(data)
        data["findings"] = [Finding(**f) for f in data.get("findings", [])]
        data["errors"] = [CheckError(**e) for e in data.get("errors", [])]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Diagnosis:
        return cls.from_dict(json.loads(text))


def rank(findings: list[Finding]) -> list[Finding]:
    """Severity first; within one, the symptom before its causes."""
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], CAUSE_ORDER[f.cause]))
