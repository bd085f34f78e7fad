"""Page furniture: the header, the flags of a panel, figures with a named PNG download."""

from __future__ import annotations

import base64
import re

import streamlit as st

from whyzero.causes import CAUSES
from whyzero.diagnosis import Diagnosis, Finding

PAGE_OF_PANEL = {"inputs": "pages/inputs.py", "model": "pages/model.py", "activations": "pages/activations.py",
                 "gradients": "pages/gradients.py", "outputs": "pages/outputs.py", "labels": "pages/masks.py"}
ICONS = {"critical": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}


def header(d: Diagnosis, title: str) -> None:
    st.title(title)
    label = st.session_state.get("label", "")
    st.caption(f"Model **{d.model['name']}** · {d.model['task']} · output {d.model['output_shape']} · "
               f"{d.inputs['samples']} samples · sha256 {d.model['hash'][:12]} · whyzero {d.version}"
               + (f" · {label}" if label else ""))


def finding_text(f: Finding, with_cause: bool = True) -> str:
    where = f" — layer `{f.layer}`" if f.layer else ""
    evidence = ", ".join(f"{k}={_short(v)}" for k, v in list(f.evidence.items())[:6])
    cause = f"  \n`{f.cause}` · {f.severity}" if with_cause else ""
    return f"**{f.title}**{where}{cause}  \nEvidence: {evidence}" + (f"  \nFix: {f.fix}" if f.fix else "")


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        inner = ", ".join(_short(v) for v in value[:4])
        return f"[{inner}{', …' if len(value) > 4 else ''}]"
    return str(value)


def flags(d: Diagnosis, panel: str) -> None:
    """The panel's findings, coloured by severity, or a green line."""
    found = d.for_panel(panel)
    if not found:
        st.success("Nothing found here: no cause on this panel explains constant predictions.")
        return
    for f in found:
        {"critical": st.error, "warning": st.warning, "info": st.info}[f.severity](finding_text(f),
                                                                                 icon=ICONS[f.severity])


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
