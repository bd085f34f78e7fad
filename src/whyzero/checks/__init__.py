"""Checks: one function per family of causes, each turning the measurements record into findings.

A check is a pure function of ``Measurements``: it returns findings, or ``Skipped(reason)`` when it
could not run (so a green panel means "checked and fine").  It is registered with the cause ids it can
report and the stored arrays it needs; a test fails when a cause id of ``CAUSES.md`` has no check.  A
check that raises becomes a ``CheckError`` and the other checks still run (``whyzero.catalog.run_all``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from whyzero.causes import Cause
from whyzero.findings import Finding
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


def check(*causes: Cause, needs: tuple[str, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Registers a check that may report ``causes`` (their declarations); ``needs`` names stored arrays it cannot
    run without."""

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append(Registered(fn.__name__, tuple(c.id for c in causes), fn, needs))
        for cause in causes:
            cause.checks.append(f"{fn.__module__}.{fn.__name__}")
        return fn

    return register
