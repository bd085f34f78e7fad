"""A ``Finding``: one cause found, with the numbers that show it; and a ``CheckError``, a check that raised.

Both are plain data that cross every module: checks make them, attribution sets their roles, the diagnosis
stores them.  Every value is JSON data, cleaned on the way in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whyzero.causes import SEVERITIES, get_cause

# A candidate is a possible root the evidence does not establish (it names what would); never critical.
ROLES = ("root", "candidate", "symptom", "consequence")
ROLE_RANK = {"root": 0, "candidate": 1, "symptom": 2, "consequence": 3}


def clean(value: Any) -> Any:
    """Turns numpy scalars/arrays and tuples into JSON data; non-finite floats become None."""
    kind = type(value)  # the plain scalars first, by identity: a diagnosis holds tens of thousands of them
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        kinds = set(map(type, value))  # the common long lists (histograms, per-sample values) in one pass
        if kinds <= {int}:
            return list(value)
        if kinds <= {int, float}:
            return [v if type(v) is int or math.isfinite(v) else None for v in value]
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub":
            return value.tolist()
        return clean(value.astype(np.float64).tolist() if value.dtype.kind == "f" else value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass
class Proof:
    """What re-running the model (or re-judging its outputs) under a root cause's mechanical fix showed.

    Attributes:
        fix: the fix, as a user reads it.
        fixed: whether the symptom went away (or the model got its labels right again).
        text: one line: the numbers before and after.
        fix_key: names the fix for ``proofs.batch_fix`` (the app re-diagnoses under a batch fix).
        rerun: whether it could run at all.
        before / after: the output's spread, majority share and accuracy on the labels.
        disappeared: the (cause, layer) findings gone under the fix; appeared: the critical causes it brought.
    """

    fix: str = ""
    fixed: bool = False
    text: str = ""
    fix_key: str = ""
    rerun: bool = True
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    disappeared: list[list] = field(default_factory=list)
    appeared: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.before, self.after = clean(self.before), clean(self.after)
        self.disappeared = [list(d) for d in clean(self.disappeared)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Proof:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


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
        role: ``root`` (nothing else found explains it and its evidence establishes it), ``candidate`` (a
            possible root its evidence does not establish: ``evidence["candidates"]`` lists the causes it could be
            and ``evidence["separated_by"]`` what would decide), ``symptom`` (what the user sees) or
            ``consequence`` (the finding at index ``explained_by`` explains it).
        explained_by: for a consequence, the index in the diagnosis' findings of its root.
        proof: for a root cause with a mechanical fix, what re-running the model under the fix showed.
    """

    cause: str
    severity: str
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""
    layer: str | None = None
    panel: str = ""
    role: str = "root"
    explained_by: int | None = None
    proof: Proof | None = None

    def __post_init__(self) -> None:
        cause = get_cause(self.cause)
        if self.severity not in SEVERITIES:
            raise ValueError(f"Expected severity in {SEVERITIES}. Received: {self.severity!r}")
        if self.role not in ROLES:
            raise ValueError(f"Expected role in {ROLES}. Received: {self.role!r}")
        if isinstance(self.proof, dict):
            self.proof = Proof.from_dict(self.proof)
        self.panel = self.panel or cause.panel
        self.evidence = clean(self.evidence)


@dataclass
class CheckError:
    """A check that raised: recorded, and the other checks still ran."""

    check: str
    message: str
