"""Checks: one function per family of causes, each turning measurements into findings.

A check is registered with the cause ids it can report; a test fails when a cause
id of ``CAUSES.md`` has no check.  A check that raises becomes a ``CheckError``
and the other checks still run.
"""

from __future__ import annotations

from typing import Callable

from whyzero.context import Context
from whyzero.diagnosis import CheckError, Finding

CheckFn = Callable[[Context], list[Finding]]
REGISTRY: list[tuple[str, tuple[str, ...], CheckFn]] = []


def check(*causes: str) -> Callable[[CheckFn], CheckFn]:
    """Registers a check that may report ``causes``."""

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.append((fn.__name__, causes, fn))
        return fn

    return register


def covered_causes() -> set[str]:
    _load_all()
    return {c for _, causes, _ in REGISTRY for c in causes}


def run_checks(ctx: Context) -> tuple[list[Finding], list[CheckError]]:
    _load_all()
    findings: list[Finding] = []
    errors: list[CheckError] = []
    for name, _, fn in REGISTRY:
        try:
            findings.extend(fn(ctx))
        except Exception as err:  # noqa: BLE001 - a crashing check is a result, not a crash
            errors.append(CheckError(name, f"{type(err).__name__}: {err}"[:500]))
    return findings, errors


def _load_all() -> None:
    from whyzero.checks import activations, gradients, inputs, labels, model, outputs  # noqa: F401
