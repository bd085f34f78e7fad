"""The ``Diagnosis`` document: findings plus the small summaries behind every panel.

It is the one document that flows everywhere (CLI JSON, dashboard, report,
shared sessions); panels draw from it alone.  Everything in it is plain JSON
data, cleaned on the way in, so ``from_json(to_json(d)) == d`` holds exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from whyzero.catalog import CAUSE_ORDER
from whyzero.causes import SEVERITY_RANK
from whyzero.errors import WhyzeroError, first_line
from whyzero.findings import ROLE_RANK, CheckError, Finding, clean

SCHEMA_VERSION = 2
# Documents this version reads: 1 lacks roles and proofs (they default to a root without proof).
READABLE_SCHEMAS = (1, 2)


@dataclass
class Diagnosis:
    """Findings and panel summaries for one model and one batch.

    Attributes:
        model: identity and structure (name, hash, layers, loss, optimizer).
        inputs: what was fed (shape, dtype, source, preprocessing).
        findings: ranked: root causes first (most certain first), then the symptom, then consequences.
        summaries: per panel, the small data its figures are drawn from.
        errors: checks that raised.
        version: the whyzero version that wrote it.
        created: ISO timestamp.
        rechecked: ISO timestamp of the last ``whyzero recheck``, or empty.
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
    rechecked: str = ""

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

    def root_of(self, finding: Finding) -> Finding | None:
        """The finding that explains ``finding`` (a consequence), or None."""
        i = finding.explained_by
        return self.findings[i] if i is not None and 0 <= i < len(self.findings) else None

    def consequences_of(self, index: int) -> list[Finding]:
        """The findings that the finding at ``index`` explains."""
        return [f for f in self.findings if f.explained_by == index]

    def grouped(self) -> list[tuple[int, Finding, list[Finding]]]:
        """Roots and symptoms in order, each with the consequences it explains (shown under it)."""
        return [(i, f, self.consequences_of(i)) for i, f in enumerate(self.findings) if f.role != "consequence"]

    @property
    def is_clean(self) -> bool:
        """No critical and no warning finding."""
        return not self.causes("warning")

    @property
    def task_words(self) -> str:
        """The task as a reader names it: a class per position of a sequence is tagging, not segmentation."""
        task = str(self.model.get("task", ""))
        if task == "segmentation" and len(self.model.get("output_shape") or []) == 2:
            return "tagging (a class per position)"
        return task

    # -- serialization ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The document as plain data.  Its model, inputs and summaries are the diagnosis' own dicts, not copies
        (a deep copy took most of a small model's diagnosis time): serialize the result, do not change it."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["findings"] = [asdict(f) for f in self.findings]
        out["errors"] = [asdict(e) for e in self.errors]
        return out

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """Reads a stored document.

        Raises:
            WhyzeroError: a document that is not a diagnosis, or one of a schema this version cannot read.
        """
        if not isinstance(data, dict) or "findings" not in data or "model" not in data:
            raise WhyzeroError("Expected a whyzero diagnosis (a JSON object with 'model' and 'findings'). "
                               f"Received: {type(data).__name__}")
        schema = data.get("schema", 1)
        if schema not in READABLE_SCHEMAS:
            raise WhyzeroError(f"This whyzero reads diagnosis schemas {list(READABLE_SCHEMAS)}. "
                               f"Received: schema {schema!r}")
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["schema"] = SCHEMA_VERSION
        try:
            data["findings"] = [Finding(**f) for f in data.get("findings", [])]
            data["errors"] = [CheckError(**e) for e in data.get("errors", [])]
            return cls(**data)
        except (TypeError, ValueError, KeyError) as err:
            raise WhyzeroError(f"The diagnosis document is malformed: {first_line(err, 200)}. "
                               f"Received: schema {schema}") from None

    @classmethod
    def from_json(cls, text: str) -> Diagnosis:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise WhyzeroError(f"Expected a diagnosis in JSON: {err}. Received: {len(text)} characters") from None
        return cls.from_dict(data)


def _proven(f: Finding) -> bool:
    return bool(f.proof and f.proof.fixed)


def _pins(f: Finding) -> bool:
    """A fault that by itself fixes the output (softmax on one unit): first among equally severe roots."""
    return bool(f.evidence.get("pins_output"))


def rank(findings: list[Finding]) -> list[Finding]:
    """Root causes first (critical, proven by a re-run, upstream first), then symptoms, then consequences.

    Consequences follow in the order of their roots.  ``explained_by`` indices are remapped to the
    new order, so ranking an already ranked list changes nothing.
    """
    order = sorted(range(len(findings)), key=lambda i: _key(findings, i))
    new_index = {old: new for new, old in enumerate(order)}
    ranked = []
    for old in order:
        f = findings[old]
        if f.explained_by is not None:
            f.explained_by = new_index.get(f.explained_by)
            if f.explained_by is None:
                f.role = "root"
        ranked.append(f)
    return ranked


def _key(findings: list[Finding], i: int) -> tuple:
    f = findings[i]
    base = (SEVERITY_RANK[f.severity], not _pins(f), not _proven(f), CAUSE_ORDER[f.cause])
    if f.role == "consequence" and f.explained_by is not None and 0 <= f.explained_by < len(findings):
        root = findings[f.explained_by]
        root_key = (ROLE_RANK[root.role], SEVERITY_RANK[root.severity], not _pins(root), not _proven(root),
                    CAUSE_ORDER[root.cause])
        return (ROLE_RANK["consequence"], root_key, base)
    return (ROLE_RANK[f.role], base, ())
