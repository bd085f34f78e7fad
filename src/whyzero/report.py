"""The HTML report: one self-contained file (Plotly's JavaScript embedded) that opens offline.

Imports inside functions are deliberately lazy: Plotly's JavaScript and the figures load only when a report is
written.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from whyzero.diagnosis import Diagnosis
from whyzero.panels import PAGE
from whyzero.presenter import present
from whyzero.text import value

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{margin-bottom:.2rem} .meta{color:#666;font-size:.9rem}
.finding{border-left:6px solid;padding:.6rem 1rem;margin:.8rem 0;background:#fafafa}
.finding .sev{font-weight:700;text-transform:uppercase;font-size:.8rem}
.evidence{font-family:ui-monospace,monospace;font-size:.8rem;color:#444;white-space:pre-wrap}
.ok{border-left:6px solid #2ca02c;padding:.6rem 1rem;background:#f3fbf3}
section{margin-top:2rem} code{background:#eee;padding:0 .2rem}
details.consequences{margin-left:2rem} details.consequences summary{cursor:pointer;color:#555}
.note{margin:.2rem 0 .8rem 1.5rem;padding:.3rem .8rem;border-left:3px solid #888;background:#f4f4f8;font-size:.9rem}
"""

# Review notes come as a mapping of a finding's index (a string; "-1": the run as a whole) to notes with
# ``author``, ``created`` and ``text`` (``whyzero.store.Note``), oldest first.
RUN_NOTE = -1  # the finding number of a note on the run as a whole: a clean diagnosis can be annotated too
RUN_NOTE_KEY = str(RUN_NOTE)


def note_line(note) -> str:
    """One review note as a line: its author, time and text."""
    return f"{note.author or 'anonymous'} · {note.created.strftime('%Y-%m-%d %H:%M')} UTC: {note.text}"


def notes_json(notes: dict | None) -> list[dict]:
    """Review notes as plain data for the JSON export (beside the diagnosis; readers of a diagnosis ignore it)."""
    return [{"finding": int(key), "author": n.author, "created": n.created.isoformat(), "text": n.text}
            for key, items in sorted((notes or {}).items(), key=lambda kv: int(kv[0])) for n in items]


def render_html(diagnosis: Diagnosis, notes: dict | None = None) -> str:
    """The report as one HTML string, with the review notes (on the run, and under each finding) if given."""
    from plotly.offline import get_plotlyjs

    from whyzero.figures import panel_figures

    d = diagnosis
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>whyzero — {e(d.model['name'])}</title>",
             f"<style>{STYLE}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>",
             f"<h1>whyzero report — {e(d.model['name'])}</h1>",
             f"<div class='meta'>model sha256 {e(d.model['hash'])} · {e(d.task_words)} · output "
             f"{e(str(d.model['output_shape']))} · {d.inputs['samples']} samples · diagnosed {e(d.created)} · "
             f"report {dt.datetime.now(dt.timezone.utc).date().isoformat()} · whyzero {e(d.version)}</div>",
             "<section><h2>Findings</h2>"]
    notes = notes or {}
    if notes.get(RUN_NOTE_KEY):
        parts.append("<h3>Review notes on the run</h3>" + _notes_html(notes[RUN_NOTE_KEY]))
    if not [f for f in d.findings if f.severity != "info"]:
        parts.append("<div class='ok'>No critical or warning finding.</div>")
    for i, f, consequences in d.grouped():
        parts.append(_finding_html(f) + _notes_html(notes.get(str(i), [])))
        if consequences:
            parts.append(f"<details class='consequences'><summary>{len(consequences)} consequence(s) this explains"
                         "</summary>" + "".join(_finding_html(c) + _notes_html(notes.get(str(d.findings.index(c)), []))
                                                for c in consequences) + "</details>")
    for note in d.notes:
        parts.append(f"<p class='meta'>Note: {e(note)}</p>")
    parts.append("</section>")
    for panel, figs in panel_figures(d).items():
        if not figs:
            continue
        parts.append(f"<section><h2>{e(PAGE[panel].title)}</h2>")
        for _, fig in figs:
            parts.append(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))
        parts.append("</section>")
    parts.append("</body></html>")
    return "".join(parts)


def _notes_html(notes) -> str:
    return "".join(f"<div class='note'>{html.escape(note_line(n))}</div>" for n in notes)


def _finding_html(f) -> str:
    e = html.escape
    p = present(f)
    evidence = "\n".join(f"{k}: {value(v, 8)}" for k, v in f.evidence.items())
    proof = f"<div>Proof: {e(p.proof)}</div>" if p.proof else ""
    return (f"<div class='finding' style='border-color:{p.colour}'>"
            f"<span class='sev' style='color:{p.colour}'>{e(p.heading)}</span> "
            f"<code>{e(p.cause)}</code>{' · layer <code>' + e(p.layer) + '</code>' if p.layer else ''}"
            f"<div><b>{e(p.title)}</b></div><div class='evidence'>{e(evidence)}</div>"
            f"<div>Fix: {e(p.fix)}</div>{proof}</div>")


def write_html(diagnosis: Diagnosis, path: str | Path, notes: dict | None = None) -> Path:
    path = Path(path)
    path.write_text(render_html(diagnosis, notes), encoding="utf-8")
    return path


def render_markdown(diagnosis: Diagnosis, link: str | None = None, notes: dict | None = None) -> str:
    """The findings as Markdown to paste into a pull request or an issue: roots, symptom, consequences, proofs,
    and the review notes if given."""
    d = diagnosis
    lines = [f"### whyzero: `{d.model['name']}` ({d.model['task']}, output {d.model['output_shape']}, "
             f"{d.inputs['samples']} samples)", ""]
    if link:
        lines += [f"Shared session: {link}", ""]
    notes = notes or {}
    if notes.get(RUN_NOTE_KEY):
        lines += ["Review notes on the run:"] + [f"> {_md(note_line(n))}  " for n in notes[RUN_NOTE_KEY]] + [""]
    if not [f for f in d.findings if f.severity != "info"]:
        lines.append("No critical or warning finding.")
    for i, f, consequences in d.grouped():
        lines.append(_markdown_finding(f, ""))
        lines.extend(f"  - note: {_md(note_line(n))}" for n in notes.get(str(i), []))
        for c in consequences:
            lines.append(_markdown_finding(c, "  "))
            lines.extend(f"    - note: {_md(note_line(n))}" for n in notes.get(str(d.findings.index(c)), []))
    if d.notes:
        lines += ["", "<details><summary>Notes</summary>", ""] + [f"- {_md(n)}" for n in d.notes] + ["", "</details>"]
    lines += ["", f"<sub>whyzero {d.version} · model sha256 `{d.model['hash'][:12]}` · {d.created}</sub>"]
    return "\n".join(lines) + "\n"


def _markdown_finding(f, indent: str) -> str:
    p = present(f)
    where = f" (layer `{p.layer}`)" if p.layer else ""
    text = f"{indent}- **{p.label}, {p.severity}** `{p.cause}`{where}: {_md(p.title)}"
    if p.fix and not indent:
        text += f"  \n{indent}  Fix: {_md(p.fix)}"
    if p.proof:
        text += f"  \n{indent}  Proof: {_md(p.proof)}"
    return text


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
