"""Root cause first: which finding explains which, from the causes' order, layer depth and re-run proofs.

A pure function of the findings (and the layers' order), so a stored diagnosis is attributed the same
way without its model.  A finding is a *consequence* when a root found beside it explains it:
- by proof: re-running the model under the root's fix made it disappear;
- by the causal order of the causes' stages and what each declares it ``explains``: a data fault
  explains dead units, a dead layer explains the collapse and the zero gradients after it, a too-high
  learning rate explains weights blown off their scale;
- by depth: among layer faults, the earliest layer where a problem starts explains the later ones.
A consequence is never critical.  ``output.constant`` is the symptom; the output findings that only
restate it are symptoms when nothing explains them.
"""

from __future__ import annotations

from whyzero.catalog import CAUSE_ORDER, CAUSES, STAGE, SYMPTOM_LIKES, SYMPTOMS
from whyzero.causes import CRITICAL, DATA_EFFECTS, SEVERITY_RANK, WARNING, Kind, Stage
from whyzero.findings import Finding


def _kinds(f: Finding) -> frozenset[str]:
    return CAUSES[f.cause].kinds


def attribute(findings: list[Finding], layer_order: dict[str, int] | None = None) -> tuple[list[Finding], list[str]]:
    """Sets ``role`` and ``explained_by`` on every finding; returns them with notes for the reader.

    Args:
        findings: the checks' findings (a proof, where present, names what its fix made disappear).
        layer_order: each probed layer's position, input first, for the depth rule.

    Returns:
        The findings (roles set, ``explained_by`` indexing this same list, consequences capped at
        warning) and notes such as two roots the evidence cannot tell apart.
    """
    depth = layer_order or {}
    order = sorted(range(len(findings)), key=lambda i: _priority(findings[i], depth))
    roots: list[int] = []
    for i in order:
        f = findings[i]
        f.explained_by = None
        explainer = _closest([r for r in roots if explains(findings[r], f, depth)], findings, depth)
        if explainer is not None:
            f.role, f.explained_by = "consequence", explainer
        elif f.cause in SYMPTOMS or f.cause in SYMPTOM_LIKES:
            f.role = "symptom"
        else:
            f.role = "root"
            roots.append(i)
    _demote_explained_roots(findings, roots, depth)
    for i, f in enumerate(findings):
        if f.cause in SYMPTOMS:
            f.role, f.explained_by = "symptom", None
        if f.role == "root" and f.severity == WARNING and any(
                g.explained_by == i and g.severity == CRITICAL and g.role == "consequence"
                and Kind.OUTPUT not in _kinds(g) for g in findings):
            f.severity = CRITICAL  # it accounts for a critical fault inside the model: enough on its own
    for f in findings:
        if f.role == "root" and f.evidence.get("candidates"):
            f.role = "candidate"  # its own evidence says it is not established
        if f.role in ("consequence", "candidate") and f.severity == CRITICAL:
            f.severity = WARNING
    return findings, _undecided(findings)


def _closest(candidates: list[int], findings: list[Finding], depth: dict[str, int]) -> int | None:
    """Of the roots that explain a finding, the nearest upstream one (a dead layer before the data)."""
    if not candidates:
        return None
    return max(candidates, key=lambda r: (STAGE[findings[r].cause], depth.get(findings[r].layer, -1), -r))


def explains(a: Finding, b: Finding, depth: dict[str, int]) -> bool:
    """Whether finding ``a``, found, accounts for finding ``b``."""
    if a is b or a.cause in SYMPTOMS:
        return False
    if _disappeared_under(a, b):
        return True
    kinds = _kinds(b)
    if _diverged(a):
        return bool(kinds & (DATA_EFFECTS | {Kind.WEIGHTS}))
    refine = CAUSES[a.cause].refine
    decided = refine(a, b, kinds) if refine else None
    if decided is not None:
        return decided
    if _diverged(b):  # what drives a training to NaN: its step, or a loss fed what it cannot take the log of
        return Kind.DRIVES_DIVERGENCE in _kinds(a)
    local = Kind.LAYER_LOCAL in _kinds(a)
    same_kind_later = a.cause == b.cause and local and _before(a, b, depth, strict=True)
    if not same_kind_later and not kinds & CAUSES[a.cause].explains:
        return False
    return not (local and Kind.LAYER_LOCAL in kinds and not _before(a, b, depth))


def _diverged(a: Finding) -> bool:
    """NaN/Inf weights: every value computed downstream of them, and every gradient, follows from them."""
    return bool(a.evidence.get("nonfinite_weights") or a.evidence.get("diverged"))


def _disappeared_under(a: Finding, b: Finding) -> bool:
    if not a.proof:
        return False
    return any(cause == b.cause and (layer is None or layer == b.layer)
               for cause, layer in a.proof.disappeared)


def _before(a: Finding, b: Finding, depth: dict[str, int], strict: bool = False) -> bool:
    if a.layer not in depth or b.layer not in depth:
        return not strict
    return depth[a.layer] < depth[b.layer] if strict else depth[a.layer] <= depth[b.layer]


def _priority(f: Finding, depth: dict[str, int]) -> tuple:
    proven = bool(f.proof and f.proof.fixed)
    stage = Stage.TRAINING if _diverged(f) else STAGE[f.cause]  # weights before what they compute
    if f.evidence.get("pins_output"):
        stage = -1  # a fault that by itself fixes the output (softmax on one unit) before any that contributes
    return (stage, SEVERITY_RANK[f.severity], not proven, CAUSE_ORDER[f.cause], depth.get(f.layer, -1))


def _demote_explained_roots(findings: list[Finding], roots: list[int], depth: dict[str, int]) -> None:
    """A root that another root explains (and not the reverse) becomes that root's consequence."""
    changed = True
    while changed:
        changed = False
        for r in [r for r in roots if findings[r].role == "root"]:
            other = next((o for o in roots if o != r and findings[o].role == "root"
                          and explains(findings[o], findings[r], depth)
                          and not explains(findings[r], findings[o], depth)), None)
            if other is not None:
                findings[r].role, findings[r].explained_by = "consequence", other
                changed = True
    for f in findings:  # follow chains to the root
        seen = set()
        while f.explained_by is not None and findings[f.explained_by].role == "consequence":
            if f.explained_by in seen:
                break
            seen.add(f.explained_by)
            f.explained_by = findings[f.explained_by].explained_by


def _undecided(findings: list[Finding]) -> list[str]:
    """A note when the two leading roots are equally severe and no re-run told them apart."""
    roots = sorted((f for f in findings if f.role == "root" and f.severity != "info"),
                   key=lambda f: _priority(f, {}))
    if len(roots) < 2 or roots[0].severity != roots[1].severity or roots[0].cause == roots[1].cause:
        return []
    if any(f.proof and f.proof.fixed for f in roots[:2]):
        return []
    return [f"The evidence fits two root causes equally: '{roots[0].cause}' and '{roots[1].cause}'. "
            "Both are shown; fix the first and diagnose again."]
