"""What every figure shares: Plotly (loaded on first use), the layout with the model's name and labelled axes,
log axes for magnitudes that span decades, the spec of a panel's figure."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, fields, is_dataclass
from functools import lru_cache
from typing import Any, Callable, ClassVar

import numpy as np

from whyzero._lazy import LazyModule
from whyzero.diagnosis import Diagnosis

# imported on first use: the engine builds the panels' views here without loading Plotly
go = LazyModule("plotly.graph_objects", tensorflow=False)
TEMPLATE = "plotly_white"


@lru_cache(None)
def use_template() -> None:
    """Passed per figure, a template is validated and copied again each time (~60 ms a figure, most of a page's
    server time); as Plotly's default it is applied once (~2 ms).  Set only over Plotly's own default."""
    import plotly.io as pio  # deliberately lazy, with Plotly

    if pio.templates.default == "plotly":
        pio.templates.default = TEMPLATE


@dataclass
class View:
    """A panel's view of the measurements: the plain data a diagnosis stores under ``summaries[PANEL]``, read back
    typed with ``of``; a stored document missing a part reads its default.  ``OMIT_EMPTY``: the parts that do not
    apply (None) are left out of the stored document, as they always were for that panel."""

    PANEL: ClassVar[str] = ""
    OMIT_EMPTY: ClassVar[bool] = False

    @classmethod
    def of(cls, d: Diagnosis):
        data = d.summaries.get(cls.PANEL) or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """The view's fields as they are (plain data already: lists, dicts, numbers), not deep-copied."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: asdict(v) if is_dataclass(v) else v for k, v in values.items()
                if v is not None or not self.OMIT_EMPTY}


def has(*path):
    """A figure applies when the diagnosis' summaries hold a value at ``path``."""
    def check(d: Diagnosis) -> bool:
        value = d.summaries
        for key in path:
            value = (value or {}).get(key) if isinstance(value, dict) else None
        return bool(value)
    return check


def layout(fig: go.Figure, d: Diagnosis, title: str, x: str, y: str, **kw: Any) -> go.Figure:
    use_template()
    # the model's name on a second, smaller line: long titles are not clipped on narrow screens
    fig.update_layout(title={"text": f"{title}<br><sup>{escape(d.model['name'])}</sup>"}, xaxis_title=x,
                      yaxis_title=y,
                      margin={"l": 60, "r": 20, "t": 60, "b": 60}, legend={"orientation": "h", "y": -0.25}, **kw)
    return fig


def log_y(fig: go.Figure) -> None:
    """A log y axis; ticks at whole decades only when the values span several (no '1000, 5, 2, 100' labels),
    else Plotly's own ticks within the decade."""
    values = np.concatenate([np.asarray(t.y, float) for t in fig.data if getattr(t, "y", None) is not None] or
                            [np.array([1.0])])
    values = values[np.isfinite(values) & (values > 0)]
    span = np.log10(values.max() / values.min()) if values.size else 0.0
    if span >= 2:
        fig.update_yaxes(type="log", dtick=1, exponentformat="power")
    else:
        fig.update_yaxes(type="log", exponentformat="power")


def escape(text: str) -> str:
    return html.escape(str(text))


def edge_labels(edges: list[float]) -> list[str]:
    def fmt(v: float) -> str:
        if v == 0:
            return "0"
        exponent = int(np.round(np.log10(abs(v))))
        return ("-" if v < 0 else "") + f"1e{exponent}"

    return [fmt(v) for v in edges]


def symlog_axis(fig: go.Figure, d: Diagnosis, counts=None, axis: str = "xaxis") -> None:
    """Bins on the fixed symmetric log grid are drawn by index; ticks name decades; the axis spans the bins
    that hold values (``counts``: one or more count vectors), not the whole grid."""
    edges = d.model["histogram_edges"]
    used = [i for i, c in enumerate(np.sum(np.atleast_2d(np.asarray(counts, float)), 0)) if c > 0] \
        if counts is not None and np.size(counts) else []
    lo, hi = (max(used[0] - 2, 0), min(used[-1] + 2, len(edges) - 1)) if used else (0, len(edges) - 1)
    span_decades = max(1, (hi - lo) // 8)
    step = 1 if span_decades <= 6 else 2

    def labelled(i: int) -> bool:
        e = edges[i]
        if e == 0:
            return True
        exponent = np.log10(abs(e))
        return float(np.round(exponent, 6)).is_integer() and int(round(exponent)) % step == 0

    ticks = []
    for i in sorted(range(lo, hi + 1), key=lambda i: (edges[i] != 0, i)):  # 0 first, then no label crowds it
        if labelled(i) and all(abs(i - t) >= 4 for t in ticks):
            ticks.append(i)
    ticks.sort()
    fig.update_layout(**{axis: {"tickmode": "array", "tickvals": [t - 0.5 for t in ticks],
                                "ticktext": edge_labels([edges[t] for t in ticks]), "range": [lo - 0.5, hi + 0.5]}})


# -- the figures of each panel -----------------------------------------------------------------------
@dataclass(frozen=True)
class FigureSpec:
    """A figure of a panel: its file-name stem, the function that draws it, when it applies and a one-line
    caption (what healthy looks like)."""

    name: str
    build: Callable[[Diagnosis], go.Figure | None]
    applies: Callable[[Diagnosis], bool] = lambda d: True
    wide: bool = False
    caption: str = ""


def _numbers(values) -> np.ndarray | None:
    """A trace's coordinates as finite floats; None when they are not numbers (a categorical axis)."""
    if values is None:
        return np.empty(0)
    try:
        array = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    return array[np.isfinite(array)]


def _data_range(fig: go.Figure, axis: str) -> tuple[float, float] | None:
    """The span of a single-panel figure's data on ``axis`` ("x" or "y"), bars from 0; None where the axis is not
    numeric, the figure has several panels, or a trace bins or grids its data itself (histograms, heat maps)."""
    values = []
    for trace in fig.data:
        if trace.type not in ("bar", "scatter") or getattr(trace, f"{axis}axis", axis) not in (axis, None):
            return None
        numbers = _numbers(getattr(trace, axis))
        if numbers is None:
            return None
        bar_values = trace.type == "bar" and (trace.orientation == "h") == (axis == "x")
        values.append(np.append(numbers, 0.0) if bar_values and numbers.size else numbers)
    joined = np.concatenate(values) if values else np.empty(0)
    if not joined.size:
        return None
    log = fig.layout[f"{axis}axis"].type == "log"
    if log:
        joined = joined[joined > 0]
        if not joined.size:
            return None
        joined = np.log10(joined)
    return float(joined.min()), float(joined.max())


def share_axes(figures: list[go.Figure]) -> None:
    """Gives side-by-side figures one range per numeric axis (the union of their data, with a margin), so their
    bars and lines compare by eye; axes that are categorical, binned or of another scale stay as they are."""
    for axis in ("x", "y"):
        types = {fig.layout[f"{axis}axis"].type for fig in figures}
        spans = [_data_range(fig, axis) for fig in figures]
        if len(figures) < 2 or len(types) != 1 or any(span is None for span in spans):
            continue
        low, high = min(s[0] for s in spans), max(s[1] for s in spans)
        margin = (high - low) * 0.05 or 0.5
        for fig in figures:
            fig.update_layout({f"{axis}axis": {"range": [low - margin, high + margin]}})
