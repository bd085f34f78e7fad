"""The vocabulary of a cause declaration: ``Cause``, its ``Fix``, the stages and severities.

A cause of ``shared/CAUSES.md`` is declared once, in the check module that reports it, with everything the
rest of whyzero needs to know about it: its id, panel, stage, what it can explain, the mechanical fix a
proof re-runs the model under, the figures that show it and the reference text.  ``whyzero.catalog``
collects the declarations; attribution, proofs, the reference and the app read them there.

The ids are a public contract: never rename or reuse one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITIES = (CRITICAL, WARNING, INFO)
SEVERITY_RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}


class Stage(IntEnum):
    """Upstream first: the order in which a fault propagates, from the data through the model's build to what
    training left in its layers, to what the user sees.  A finding can only be explained by one of an earlier
    stage (see ``attribution``); among equally certain roots the earlier stage comes first."""

    DATA = 0
    BUILD = 1
    TRAINING = 2
    LAYERS = 3
    EFFECTS = 4
    SEEN = 5


STAGE_NAMES = {Stage.DATA: "the data", Stage.BUILD: "the data and the model's build", Stage.TRAINING: "training",
               Stage.LAYERS: "the layers", Stage.EFFECTS: "the layers' effects", Stage.SEEN: "what the user sees"}

class Kind:
    """The groups causes belong to: what a cause declares it ``explains`` names these, never another cause's id."""

    INPUT = "input"  # a fault of the batch's values that one preprocessing cures
    TRAINED_UNSCALED = "trained_unscaled"  # an input fault that training saw too (same scale in training)
    ACTIVATION = "activation"
    DEAD_UNITS = "dead_units"
    SATURATED_UNITS = "saturated_units"
    COLLAPSE = "collapse"
    GRADIENT = "gradient"
    VANISHING = "vanishing"
    EXPLODING = "exploding"
    ZERO_GRADIENT = "zero_gradient"
    LEARNING_RATE = "learning_rate"
    LR_HIGH = "learning_rate_high"
    LR_LOW = "learning_rate_low"
    OUTPUT = "output"  # the output findings that restate the symptom
    MAJORITY = "majority"
    LOSS_AT_PRIOR = "loss_at_prior"
    THRESHOLD = "threshold"
    IMBALANCE = "imbalance"
    WEIGHTS = "weights"
    LAYER_LOCAL = "layer_local"  # lives in one layer and travels forward: a later layer's cannot explain it
    DRIVES_DIVERGENCE = "drives_divergence"  # what can drive a training to NaN weights
    REGULARIZED = "regularized"  # kernels shrunk by their regularizer
    UNTRAINED = "untrained"  # weights never trained
    OVERFLOW = "overflow"  # values past the float16 range
    BATCHNORM = "batchnorm_statistics"  # BatchNorm memory that does not describe the inputs


# What a fault in the data shows as further down.
DATA_EFFECTS = frozenset({Kind.ACTIVATION, Kind.GRADIENT, Kind.LEARNING_RATE, Kind.OUTPUT, Kind.THRESHOLD})

# What a finding of a cause is to the user: a cause (can be a root), the symptom itself (never a root), or an
# output finding that restates the symptom (a consequence when a root explains it, else a symptom).
CAUSE, SYMPTOM, SYMPTOM_LIKE = "cause", "symptom", "symptom_like"


@dataclass
class Fix:
    """A mechanical fix: a transformation of the batch, the masks or the outputs, or a threshold.

    Attributes:
        key: names the fix in a stored proof; a batch fix's key is rebuilt by ``proofs.batch_fix``.
        description: what the fix does, as a user reads it.
    """

    key: str
    description: str
    batch: Callable[[Any], Any] | None = None  # the batch (an array) -> the fixed batch
    masks: Callable[[Any], Any] | None = None
    outputs: str | None = None
    threshold: float | None = None
    labels: Callable[[Any], Any] | None = None  # the labels (class ids) -> the relabelled ones
    outputs_from: Callable[[Any], Any] | None = None  # the live run -> the outputs a re-run under the fix gave


# refine(root, other, other_kinds) -> True / False where the root's own evidence decides whether it explains the
# other finding, None to let the kinds decide.
Refine = Callable[[Any, Any, frozenset], "bool | None"]
# fix_for(finding, run) -> the mechanical fix, or None where none applies to this finding.
FixFor = Callable[[Any, Any], "Fix | None"]


@dataclass(frozen=True)
class Cause:
    """One cause of zero or constant predictions, declared once.

    Attributes:
        id: the public id of ``CAUSES.md``.
        panel: the page that shows its evidence.
        stage: where in the chain from data to output it acts.
        title: one line.
        meaning: what it means (CAUSES.md's text).
        evidence: the evidence a user needs to see.
        precedence: order among the causes of its stage (lower first): the more specific of two faults that one
            fix cures comes first (a double normalization is also a range mismatch).
        kinds: the groups it belongs to, which other causes' ``explains`` name.
        explains: the kinds of finding it can account for when found beside them.
        refine: where its evidence, not its kind, decides what it explains (see ``Refine``).
        role: ``cause``, ``symptom`` or ``symptom_like``.
        fix: builds its mechanical fix for a finding (see ``FixFor``).
        proof: how that fix is proven, for the reference page.
        figures: the panel's figures that show its evidence.
    """

    id: str
    panel: str
    stage: Stage
    title: str
    meaning: str = ""
    evidence: str = ""
    precedence: float = 0
    kinds: frozenset[str] = frozenset()
    explains: frozenset[str] = frozenset()
    refine: Refine | None = None
    role: str = CAUSE
    fix: FixFor | None = None
    proof: str = ""
    figures: tuple[str, ...] = ()
    checks: list[str] = field(default_factory=list, compare=False, hash=False)


_DECLARED: dict[str, Cause] = {}


def declare(cause: Cause) -> Cause:
    """Adds a cause to the taxonomy and returns it (a check module declares its causes at its top).

    Raises:
        ValueError: an id declared twice.
    """
    if cause.id in _DECLARED and _DECLARED[cause.id] is not cause:
        raise ValueError(f"Cause declared twice. Received: {cause.id!r}")
    _DECLARED[cause.id] = cause
    return cause


def declared() -> dict[str, Cause]:
    """The causes declared so far (``whyzero.catalog`` imports every declaring module)."""
    return dict(_DECLARED)


def get_cause(cause_id: str) -> Cause:
    """Returns the declared cause with this id.

    Raises:
        KeyError: for an id that is not in the taxonomy.
    """
    try:
        return _DECLARED[cause_id]
    except KeyError:
        raise KeyError(f"Unknown cause id. Received: {cause_id!r}") from None
