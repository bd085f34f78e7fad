"""Root cause first: which finding explains which, from the causes' order, layer depth and re-run proofs.

A pure function of the findings (and the layers' order), so a stored diagnosis is attributed the same
way without its model.  A finding is a *consequence* when a root found beside it explains it:
- by proof: re-running the model under the root's fix made it disappear;
- by the causal order of ``causes.STAGES`` and ``EXPLAINS``: a data fault explains dead units, a dead
  layer explains the collapse and the zero gradients after it, a too-high learning rate explains
  weights blown off their scale;
- by depth: among layer faults, the earliest layer where a problem starts explains the later ones.
A consequence is never critical.  ``output.constant`` is the symptom; the output findings that only
restate it are symptoms when nothing explains them.
"""

from __future__ import annotations

from whyzero.causes import CAUSE_ORDER, CRITICAL, SEVERITY_RANK, STAGE, SYMPTOM_LIKE, SYMPTOMS, WARNING
from whyzero.diagnosis import Finding

_OUTPUTS = {"output.saturated", "output.majority_class", "output.constant", "training.loss_at_prior"}
_GRADIENTS = {"gradient.exploding", "gradient.vanishing", "gradient.zero"}
_LEARNING_RATE = {"training.learning_rate_high", "training.learning_rate_low"}
_ACTIVATIONS = {"activation.dead_relu", "activation.saturation", "activation.collapse"}
_DATA_EFFECTS = _ACTIVATIONS | _GRADIENTS | _LEARNING_RATE | _OUTPUTS | {"output.threshold"}
_INPUTS = {"input.range_mismatch", "input.dtype_mismatch", "input.channel_order", "input.double_normalization",
           "input.feature_scale_disparity", "input.unnormalized"}

# Input faults that training saw too (the same scale in training and at inference), unlike a mismatch at inference.
_TRAINED_UNSCALED = {"input.unnormalized", "input.feature_scale_disparity"}

# What each cause, found, can explain when it is found beside it.
EXPLAINS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "input.invalid_values": _INPUTS | _DATA_EFFECTS,
    **{cause: _DATA_EFFECTS for cause in _INPUTS},
    # inputs the model was also trained on unscaled: their gradients blow the first kernels up (see _scale_agrees)
    **{cause: _DATA_EFFECTS | {"model.weight_init"} for cause in _TRAINED_UNSCALED},
    "labels.target_scale": _DATA_EFFECTS,
    "labels.encoding": {"output.majority_class", "training.loss_at_prior", "labels.imbalance"} | _GRADIENTS
    | _LEARNING_RATE,
    "labels.mask_mismatch": {"output.majority_class", "training.loss_at_prior"} | _GRADIENTS | _LEARNING_RATE,
    "output.shape_mismatch": _OUTPUTS | _GRADIENTS | _LEARNING_RATE,
    "model.loss_mismatch": _OUTPUTS | _GRADIENTS | _LEARNING_RATE | {"output.threshold", "activation.collapse"},
    "model.output_activation": _OUTPUTS | _GRADIENTS | _LEARNING_RATE | {"output.threshold"},
    "model.stale_head": _OUTPUTS | _GRADIENTS | _LEARNING_RATE | {"activation.collapse", "activation.saturation"},
    "training.learning_rate_high": _ACTIVATIONS | _GRADIENTS | _OUTPUTS | {"model.weight_init"},
    "training.learning_rate_low": _OUTPUTS,
    "model.weight_init": _ACTIVATIONS | _GRADIENTS | _LEARNING_RATE | _OUTPUTS,
    "model.unstable_lambda": _OUTPUTS | _GRADIENTS | _LEARNING_RATE,
    "output.threshold": {"output.majority_class", "training.loss_at_prior"},
    "labels.imbalance": {"output.majority_class", "training.loss_at_prior", "output.threshold"},
    "activation.dead_relu": _ACTIVATIONS | _GRADIENTS | _LEARNING_RATE | _OUTPUTS,
    "activation.saturation": _ACTIVATIONS | _GRADIENTS | _LEARNING_RATE | _OUTPUTS,
    "activation.collapse": _OUTPUTS | {"gradient.zero", "gradient.vanishing", "training.learning_rate_low"},
    "gradient.exploding": {"training.learning_rate_high"},
    "gradient.vanishing": {"training.learning_rate_low"},
    "gradient.zero": {"training.learning_rate_low", "gradient.vanishing"},
    "output.saturated": {"output.majority_class", "training.loss_at_prior"},
}.items()}
# Faults that live in one layer and travel forward: a later layer's cannot explain an earlier one's.
_LAYER_LOCAL = _ACTIVATIONS | {"model.weight_init"}


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
        elif f.cause in SYMPTOMS or f.cause in SYMPTOM_LIKE:
            f.role = "symptom"
        else:
            f.role = "root"
            roots.append(i)
    _demote_explained_roots(findings, roots, depth)
    for i, f in enumerate(findings):
        if f.cause in SYMPTOMS:
            f.role, f.explained_by = "symptom", None
        if f.role == "root" and f.severity == WARNING and any(
                g.explained_by == i and g.severity == CRITICAL and g.role == "consequence" and g.cause not in _OUTPUTS
                for g in findings):
            f.severity = CRITICAL  # it accounts for a critical fault inside the model: enough on its own
    for f in findings:
        if f.role == "consequence" and f.severity == CRITICAL:
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
    if _diverged(a):
        return b.cause in _DATA_EFFECTS | {"model.weight_init"}
    if a.cause == "model.output_activation" and b.cause in _ACTIVATIONS and a.layer and b.layer == a.layer:
        return True  # the final layer's own activation: its collapse, dead or saturated units follow from it
    if a.cause == "gradient.vanishing" and b.cause == "activation.collapse":
        return _squashing_stack(a)  # one contraction seen from both ends: the stack of sigmoids is the cause
    if a.cause == "activation.collapse" and b.cause == "gradient.vanishing" and _squashing_stack(b):
        return False
    if _diverged(b):  # what drives a training to NaN: its step, or a loss fed what it cannot take the log of
        return a.cause in ("training.learning_rate_high", "model.output_activation", "model.loss_mismatch")
    same_kind_later = a.cause == b.cause and a.cause in _LAYER_LOCAL and _before(a, b, depth, strict=True)
    if not same_kind_later and b.cause not in EXPLAINS.get(a.cause, ()):
        return False
    if a.cause in _LAYER_LOCAL and b.cause in _LAYER_LOCAL and not _before(a, b, depth):
        return False
    return _scale_agrees(a, b)


# A stack of this many sigmoid or tanh layers contracts the samples' differences forward as it shrinks the
# gradients backward: when both are found, the vanishing gradient (fix: ReLU-family activations) explains the
# collapse rather than the reverse.
SQUASHING_STACK = 3


def _squashing_stack(vanishing: Finding) -> bool:
    return vanishing.evidence.get("squashing_layers", 0) >= SQUASHING_STACK


def _diverged(a: Finding) -> bool:
    """NaN/Inf weights: every value computed downstream of them, and every gradient, follows from them."""
    return a.cause == "gradient.exploding" and bool(a.evidence.get("nonfinite_weights"))


def _scale_agrees(a: Finding, b: Finding) -> bool:
    """Tiny weights make any learning rate look large; a huge learning rate blows weights up."""
    if a.cause == "model.weight_init" and b.cause == "training.learning_rate_high":
        return _weights_small(a)
    if a.cause == "model.weight_init" and b.cause == "activation.dead_relu":
        return _weights_small(a)  # large kernels scale ReLU inputs both ways; they do not silence units
    if a.cause == "model.weight_init" and b.cause == "training.learning_rate_low":
        return not _weights_small(a)
    if a.cause in ("training.learning_rate_high", *_TRAINED_UNSCALED) and b.cause == "model.weight_init":
        return not _weights_small(b)  # steps that blow weights up; nothing makes them tiny
    return True


def _weights_small(f: Finding) -> bool:
    ratio = f.evidence.get("ratio")
    return f.evidence.get("std") == 0 or (ratio is not None and ratio < 1)


def _disappeared_under(a: Finding, b: Finding) -> bool:
    if not a.proof:
        return False
    return any(cause == b.cause and (layer is None or layer == b.layer)
               for cause, layer in a.proof.get("disappeared", []))


def _before(a: Finding, b: Finding, depth: dict[str, int], strict: bool = False) -> bool:
    if a.layer not in depth or b.layer not in depth:
        return not strict
    return depth[a.layer] < depth[b.layer] if strict else depth[a.layer] <= depth[b.layer]


def _priority(f: Finding, depth: dict[str, int]) -> tuple:
    proven = bool(f.proof and f.proof.get("fixed"))
    stage = STAGE["model.weight_init"] if _diverged(f) else STAGE[f.cause]  # weights before what they compute
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
    if any(f.proof and f.proof.get("fixed") for f in roots[:2]):
        return []
    return [f"The evidence fits two root causes equally: '{roots[0].cause}' and '{roots[1].cause}'. "
            "Both are shown; fix the first and diagnose again."]
