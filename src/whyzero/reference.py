"""A reference page for every cause, generated from the registries: what it means, how whyzero measures
it, the thresholds and their sources (the checks' own named constants and the comments above them), the
mechanical fix it can prove, and the gallery cases that show it."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache

from whyzero.catalog import CAUSES, EXPLAINS
from whyzero.causes import STAGE_NAMES
from whyzero.checks import REGISTRY
from whyzero.gallery import CASES


@dataclass
class Threshold:
    name: str
    value: str
    source: str


@dataclass
class CauseReference:
    id: str
    title: str
    panel: str
    meaning: str
    evidence: str
    check: str
    measured: str
    thresholds: list[Threshold] = field(default_factory=list)
    explains: list[str] = field(default_factory=list)
    explained_by: list[str] = field(default_factory=list)
    proof: str = ""
    cases: list[str] = field(default_factory=list)
    stage: str = ""
    figures: list[str] = field(default_factory=list)


@lru_cache(None)
def references() -> dict[str, CauseReference]:
    """The reference of every cause id, read from its declaration and its check."""
    cases = _cases()
    out = {}
    for cause_id, cause in CAUSES.items():
        fn = _check_of(cause_id)
        out[cause_id] = CauseReference(
            id=cause_id, title=cause.title, panel=cause.panel, meaning=cause.meaning, evidence=cause.evidence,
            check=f"{fn.__module__}.{fn.__name__}" if fn else "",
            measured=(inspect.getdoc(fn) or "").split("\n\n")[0] if fn else "",
            thresholds=[t for t in thresholds_of(fn.__module__) if t.name in _names_used(fn)] if fn else [],
            explains=sorted(EXPLAINS[cause_id]),
            explained_by=sorted(k for k, v in EXPLAINS.items() if cause_id in v),
            proof=cause.proof, cases=cases.get(cause_id, []), stage=STAGE_NAMES[cause.stage],
            figures=list(cause.figures))
    return out


def _check_of(cause_id: str):
    return next((r.fn for r in REGISTRY if cause_id in r.causes), None)


def _cases() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for case in CASES.values():
        for cause in case.causes:
            found.setdefault(cause, []).append(case.name)
    return found


@lru_cache(None)
def thresholds_of(module_name: str) -> list[Threshold]:
    """A check module's named constants (UPPER_CASE numbers) with the comment lines above them."""
    source = inspect.getsource(importlib.import_module(module_name))
    lines = source.splitlines()
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            continue
        name = node.targets[0].id
        if not name.isupper() or not _numeric(node.value):
            continue
        comments = []
        line = node.lineno - 2
        while line >= 0 and re.match(r"^[A-Z_0-9]+ = ", lines[line]):  # a group of constants under one comment
            line -= 1
        while line >= 0 and lines[line].lstrip().startswith("#"):
            comments.insert(0, lines[line].lstrip()[1:].strip())
            line -= 1
        out.append(Threshold(name, ast.get_source_segment(source, node.value) or "", " ".join(comments)))
    return out


def _names_used(fn) -> set[str]:
    """Names a check reads, its helpers in the same module included (one level)."""
    module = importlib.import_module(fn.__module__)
    names = {n.id for n in ast.walk(ast.parse(inspect.getsource(fn))) if isinstance(n, ast.Name)}
    for name in list(names):
        helper = getattr(module, name, None)
        if callable(helper) and getattr(helper, "__module__", None) == fn.__module__:
            names |= {n.id for n in ast.walk(ast.parse(inspect.getsource(helper))) if isinstance(n, ast.Name)}
    return names


def _numeric(value: ast.AST) -> bool:
    if isinstance(value, ast.Constant):
        return isinstance(value.value, (int, float)) and not isinstance(value.value, bool)
    if isinstance(value, (ast.BinOp, ast.UnaryOp)):
        return all(_numeric(v) for v in ast.iter_child_nodes(value) if not isinstance(v, (ast.operator, ast.unaryop)))
    if isinstance(value, ast.Tuple):
        return all(_numeric(v) for v in value.elts)
    return False
