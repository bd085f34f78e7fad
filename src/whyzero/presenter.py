"""How a finding reads, the same everywhere: its role and severity labels and colours, its parts in reading order.

The CLI, the HTML and Markdown reports and the app format these parts in their own syntax; none of them names a
role, a severity or a colour of its own.  Findings come in ``Diagnosis.grouped()`` order: each root cause and the
symptom, with the consequences it explains under it.
"""

from __future__ import annotations

from dataclasses import dataclass

from whyzero.findings import Finding
from whyzero.text import evidence_line

ROLE_LABELS = {"root": "root cause", "candidate": "candidate cause", "symptom": "symptom",
               "consequence": "consequence"}
# An info finding is a note whatever its role: it explains nothing and is not a fault.
NOTE = "note"
SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4", "ok": "#2ca02c"}
# The same colours by the names Streamlit's Markdown knows.
SEVERITY_COLOUR_NAMES = {"critical": "red", "warning": "orange", "info": "blue", "ok": "green"}


def role_label(f: Finding) -> str:
    """What the finding is to the reader: root cause, symptom, consequence, or note (info)."""
    return NOTE if f.severity == "info" else ROLE_LABELS[f.role]


@dataclass(frozen=True)
class Presented:
    """A finding's parts as text, in reading order; empty strings for the parts it lacks."""

    label: str
    severity: str
    colour: str
    cause: str
    layer: str
    title: str
    evidence: str
    fix: str
    proof: str

    @property
    def heading(self) -> str:
        """``root cause · critical``."""
        return f"{self.label} · {self.severity}"


def present(f: Finding) -> Presented:
    """The parts every output shows of a finding."""
    return Presented(label=role_label(f), severity=f.severity, colour=SEVERITY_COLOURS[f.severity], cause=f.cause,
                     layer=f.layer or "", title=f.title, evidence=evidence_line(f.evidence), fix=f.fix or "",
                     proof=f.proof.text if f.proof else "")


@dataclass(frozen=True)
class Headline:
    """The first line a user reads of a diagnosis, and how serious it is (a severity, or "ok")."""

    level: str
    text: str


def headline(d) -> Headline:
    """The root cause; or, when the evidence establishes none, that it is not established, with the candidates and
    what would separate them; or what the model shows; or that nothing was found."""
    serious = [f for f in d.findings if f.severity != "info"]
    roots = [f for f in serious if f.role == "root"]
    candidates = [f for f in serious if f.role == "candidate"]
    if roots:
        more = f" (and {len(roots) - 1} more root cause(s) below)" if len(roots) > 1 else ""
        if roots[0].fix:  # what to do first, then what was measured
            return Headline(roots[0].severity, f"Fix: {roots[0].fix.rstrip('.')}. Root cause: {roots[0].title}{more}.")
        return Headline(roots[0].severity, f"Root cause: {roots[0].title}{more}.")
    if candidates:
        named = []
        for f in candidates:
            for cause in [f.cause] + [c for c in f.evidence.get("candidates", []) if c != f.cause]:
                if cause not in named:
                    named.append(cause)
        decide = candidates[0].evidence.get("separated_by")
        return Headline("warning", "Root cause not established: the candidates are " + ", ".join(named)
                        + (f"; what would separate them: {decide}" if decide else ""))
    if serious:
        return Headline(serious[0].severity, f"No root cause found; what the model shows: {serious[0].title}")
    return Headline("ok", "No critical or warning finding: nothing here explains constant predictions.")
