"""Checks: one function per family of causes, each turning the measurements record into findings.

A check is a pure function of ``Measurements``: it returns findings, or ``Skipped(reason)`` when it
could not run (so a green panel means "checked and fine").  It is registered with the cause ids it can
report and the stored arrays it needs; a test fails when a cause id of ``CAUSES.md`` has no check.  A
check that raises becomes a ``CheckError`` and the other checks still run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from whyzero.diagnosis import CheckError, Finding
from whyzero.measurements import Measurements


@dataclass(frozen=True)
class Skipped:
    """A check that could not run, and why (shown on its panel instead of "nothing found")."""

    reason: str


CheckResult = Union[list[Finding], Skipped]
CheckFn = Callable[[Measurements], CheckResult]


@dataclass(frozen=True)
class Registered:
    name: str
    causes: tuple[str, ...]
    fn: CheckFn
    needs: tuple[str, ...]


REGISTRY: list[Registered] = []


def check(*causes: str, needs: tuple[str, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Registers a check that may report ``causes``; ``needs`` names stored arrays it cannot run without."""

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append(Registered(fn.__name__, causes, fn, needs))
        return fn

    return register


def covered_causes() -> set[str]:
    _load_all()
    return {c for r in REGISTRY for c in r.causes}


@dataclass
class CheckRun:
    """What running every check gave: findings, skips (check, causes, reason) and errors."""

    findings: list[Finding]
    skipped: list[dict]
    errors: list[CheckError]


def run_all(m: Measurements) -> CheckRun:
    """Runs every registered check on the measurements."""
    _load_all()
    run = CheckRun([], [], [])
    for r in REGISTRY:
        missing = [name for name in r.needs if getattr(m, name) is None and not m.stored.get(name, True)]
        if missing:
            run.skipped.append({"check": r.name, "causes": list(r.causes),
                                "reason": f"the {', '.join(missing)} were too large to store with the diagnosis"})
            continue
        if m.is_text and all(c.startswith("input.") for c in r.causes):
            run.skipped.append({"check": r.name, "causes": list(r.causes),
                                "reason": "text inputs: their checks read numbers (only the texts' lengths are "
                                          "measured)"})
            continue
        result = _call(r, m, run)
        if result is None:
            continue
        if isinstance(result, Skipped):
            run.skipped.append({"check": r.name, "causes": list(r.causes), "reason": result.reason})
        else:
            run.findings.extend(result)
    for other in m.other_inputs:
        if _is_text_dtype(other["dtype"]):
            continue  # a text input: its lengths are measured, its values are not numbers to check
        run.findings.extend(_input_checks_on(m, other, run))
    return run


def _is_text_dtype(dtype: str) -> bool:
    import numpy as np

    try:
        return np.dtype(dtype).kind in "US"
    except TypeError:
        return False


def _call(r: Registered, m: Measurements, run: CheckRun, where: str = "") -> CheckResult | None:
    """One check's result, or None when it raised (recorded in ``run.errors``: the other checks still run)."""
    try:
        return r.fn(m)
    except Exception as err:  # noqa: BLE001 - a crashing check is a result, not a crash
        run.errors.append(CheckError(r.name, f"{type(err).__name__}{where}: {err}"[:500]))
        return None


def _input_checks_on(m: Measurements, other: dict, run: CheckRun) -> list[Finding]:
    """The input checks on another input of a model with several: its own statistics, no memory of it."""
    from dataclasses import replace

    from whyzero.measurements import ModelMemory

    shape = other["shape"]
    view = replace(m, input_stats=other["stats"], batch_shape=shape, batch_dtype=other["dtype"], train_stats=None,
                   is_image=len(shape) == 4 and shape[-1] in (1, 3), memory=ModelMemory(), whatif=None,
                   other_inputs=[])
    found = []
    for r in REGISTRY:
        if not all(c.startswith("input.") for c in r.causes):
            continue
        result = _call(r, view, run, where=f" on input '{other['name']}'")
        for f in [] if result is None or isinstance(result, Skipped) else result:
            f.title = f"Input '{other['name']}': {f.title}"
            f.evidence = dict(f.evidence, input=other["name"])
            found.append(f)
    return found


def run_checks(m: Measurements) -> tuple[list[Finding], list[CheckError]]:
    run = run_all(m)
    return run.findings, run.errors


def _load_all() -> None:
    from whyzero.checks import activations, gradients, inputs, labels, model, outputs  # noqa: F401
