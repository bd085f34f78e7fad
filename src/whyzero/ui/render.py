"""Page furniture: the header, the flags of a panel, figures with a named PNG download.

Imports inside functions are deliberately lazy: the figures (Plotly) and the worker load with the first page that
needs them, not with the navigation.
"""

from __future__ import annotations

import base64
import re
import traceback

import streamlit as st

from whyzero.catalog import CAUSES
from whyzero.diagnosis import Diagnosis, Finding
from whyzero.errors import first_line
from whyzero.panels import PAGE, PANELS
from whyzero.presenter import SEVERITY_COLOUR_NAMES, present
from whyzero.presenter import headline as presenter_headline

PAGE_OF_PANEL = {page.id: page.file for page in PANELS}
ICONS = {"critical": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}


def header(d: Diagnosis, title: str) -> None:
    st.title(title)
    model_line(d)


def model_line(d: Diagnosis) -> None:
    """The model, its task and output, the batch, the hash and version, and what the diagnosis is of."""
    label = st.session_state.get("label", "")
    st.caption(f"Model **{d.model['name']}** · {d.task_words} · output {d.model['output_shape']} · "
               f"{d.inputs['samples']} samples · sha256 {d.model['hash'][:12]} · whyzero {d.version}"
               + (f" · {label}" if label else ""))


def finding_text(f: Finding, with_cause: bool = True, root: Finding | None = None) -> str:
    """A finding as Markdown: title, where, role, evidence, fix, and the re-run proof."""
    p = present(f)
    where = f" — layer `{p.layer}`" if p.layer else ""
    role = p.label + (f" of *{_md(root.title)}*" if root is not None else "")
    cause = f"  \n`{p.cause}` · {p.severity} · {role}" if with_cause else ""
    text = f"**{_md(p.title)}**{where}{cause}  \nEvidence: {_md(p.evidence)}"
    if p.fix:
        text += f"  \nFix: {_md(p.fix)}"
    if p.proof:
        text += f"  \nProof: {_md(p.proof)}"
    return text


def headline(d: Diagnosis) -> None:
    """The first line a user reads: the root cause, or that none is established and the candidates."""
    line = presenter_headline(d)
    {"critical": st.error, "warning": st.warning, "info": st.info, "ok": st.success}[line.level](line.text)


def card_heading(f: Finding) -> str:
    """A finding card's first line: role and severity in the severity's colour, the cause's title and id."""
    p = present(f)
    return (f":{SEVERITY_COLOUR_NAMES[p.severity]}[**{p.label.upper()} · {p.severity.upper()}**] · "
            f"{cause_title(p.cause)} · `{p.cause}`")


def _md(text: str) -> str:
    """Text from a model file shown as text: Markdown and HTML markup escaped."""
    return re.sub(r"([\\`*\[\]<>|~$])", r"\\\1", str(text))


def flags(d: Diagnosis, panel: str) -> None:
    """The panel's findings, coloured by severity (a consequence names its root), or a green line."""
    found = d.for_panel(panel)
    skipped = skipped_on(d, panel)
    if not found:
        st.success("Nothing found here" + (" among the checks that ran" if skipped else "")
                   + ": no cause on this panel explains constant predictions.")
    for f in found:
        {"critical": st.error, "warning": st.warning, "info": st.info}[f.severity](
            finding_text(f, root=d.root_of(f)), icon=ICONS[f.severity])
    for s in skipped:
        st.caption(f"Not checked: {', '.join(f'`{c}`' for c in s['causes'])}: {_md(s['reason'])}.")


def skipped_on(d: Diagnosis, panel: str) -> list[dict]:
    """The checks of this panel that could not run, with why."""
    return [s for s in d.summaries.get("skipped", []) if any(CAUSES[c].panel == panel for c in s["causes"])]


def figure(fig, d: Diagnosis, name: str) -> None:
    """A figure; the chart's camera button downloads a PNG named after the model and the figure."""
    if fig is None:
        return
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"whyzero_{d.model['name']}_{name}")
    st.plotly_chart(fig, config={"toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
                                 "displaylogo": False})


def image_grid(pngs: list[str], captions: list[str] | None = None, width: int = 120) -> None:
    if not pngs:
        return
    cols = st.columns(min(len(pngs), 8))
    for i, png in enumerate(pngs):
        cols[i % len(cols)].image(base64.b64decode(png), width=width,
                                  caption=captions[i] if captions else None)


def cause_title(cause: str) -> str:
    return CAUSES[cause].title


def internal_error(err: BaseException, folder=None) -> None:
    """An unexpected error as one line, with the traceback in an expander (upload paths scrubbed)."""
    from whyzero.ui.state import scrub
    from whyzero.worker import WorkerError

    first = first_line(err, 300)
    details = "".join(traceback.format_exception(err))
    if isinstance(err, WorkerError):  # the worker's own traceback, and its first line already names the type
        details = err.details or details
    else:
        first = f"{type(err).__name__}: {first}"
    if folder is not None:
        first, details = scrub(first, folder), scrub(details, folder)
    st.error(f"internal error: {first}")
    with st.expander("Details (for a bug report)"):
        st.code(details, language="text")


def panel_page(panel_id: str, intro=None) -> Diagnosis:
    """A panel page drawn from the registry: header, flags, ``intro(d)`` if given, then every figure that
    applies with its caption (wide ones full width, the others two to a row).  Returns the diagnosis for
    the page's extras."""
    from whyzero.ui import state

    page = PAGE[panel_id]
    d = state.ensure_diagnosis()
    header(d, page.title)
    flags(d, panel_id)
    if intro is not None:
        intro(d)
    # Plotly and the figures load with the first panel page (``state.warm_up`` imports them in the background),
    # not with the navigation
    from whyzero.figures import figures_for

    built = figures_for(panel_id, d)
    if not built and page.empty:
        st.info(page.empty + (" " + "; ".join(d.notes) if d.notes else ""))
        return d
    pending = []
    for spec, fig in built:
        if spec.wide:
            _figure_row([(spec, fig)], d)
        else:
            pending.append((spec, fig))
            if len(pending) == 2:
                _figure_row(pending, d)
                pending = []
    if pending:
        _figure_row(pending, d)
    return d


def _figure_row(items, d: Diagnosis) -> None:
    columns = st.columns(len(items)) if len(items) > 1 else [st.container()]
    for column, (spec, fig) in zip(columns, items):
        with column:
            figure(fig, d, spec.name)
            if spec.caption:
                st.caption(spec.caption)
