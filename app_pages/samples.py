"""Samples: one sample at a time: its prediction against its label, its layers against the batch's, and what
drives its prediction (Grad-CAM or gradient x input)."""

import base64

import pandas as pd
import streamlit as st

from whyzero import figures
from whyzero.figures import sample_differences
from whyzero.figures.inputs import InputsView
from whyzero.figures.samples import SamplesView
from whyzero.ui import render, state

d = state.ensure_diagnosis()
render.header(d, "Samples")
s = SamplesView.of(d)
rows = s.rows
if not rows:
    st.info("This diagnosis holds no per-sample statistics (it was made by an older whyzero): diagnose again to "
            "open single samples.")
    st.stop()

count = len(rows)


def _open(i: int) -> None:
    st.session_state["sample"] = i


def _open_selected_row() -> None:
    chosen = st.session_state["sample_table"].selection.rows
    if chosen:
        st.session_state["sample"] = int(chosen[0])


try:
    selected = int(st.session_state.get("sample", st.query_params.get("sample", 0)))
except ValueError:
    selected = 0
selected = min(max(selected, 0), count - 1)

thumbs = InputsView.of(d).thumbnails
if thumbs:
    st.caption("Click a sample to open it (the first images of the batch, as the model sees them).")
    cols = st.columns(len(thumbs))
    for i, png in enumerate(thumbs):
        with cols[i]:
            st.image(base64.b64decode(png), width=88)
            st.button(f"#{i}", key=f"open_sample_{i}", type="primary" if i == selected else "secondary",
                      use_container_width=True, on_click=_open, args=(i,))

table = pd.DataFrame(rows).rename(columns={"index": "sample"})
if "label" in table and "predicted" in table:
    table["right"] = table["predicted"] == table["label"]
with st.expander(f"All {count} samples with per-sample statistics: click a row to open it", expanded=not thumbs):
    st.dataframe(table, hide_index=True, on_select=_open_selected_row, selection_mode="single-row",
                 key="sample_table", height=min(36 * (count + 1), 320))
st.query_params["sample"] = str(selected)

row = rows[selected]
st.subheader(f"Sample {selected}")
left, right = st.columns([1, 1])
with left:
    cols = st.columns(3)
    if "predicted" in row:
        shown = f"{row['predicted']:.4g}" if isinstance(row["predicted"], float) else str(row["predicted"])
        cols[0].metric("predicted", shown, help="The class with the highest output (or > 0.5 for one unit).")
    if "score" in row:
        cols[1].metric("its score", f"{row['score']:.3f}")
    if "label" in row:
        cols[2].metric("label", str(row["label"]))
        if row["label"] == row.get("predicted"):
            st.success(f"Right: predicted as labelled (class {row['label']}).")
        else:
            st.error(f"Wrong: predicted class {row['predicted']}, labelled class {row['label']}.")
    notes = sample_differences(s, selected)
    if notes:
        st.markdown("**Where this sample differs from the batch**\n\n" + "\n".join(f"- {n}" for n in notes[:5]))
    else:
        st.caption("Its layers behave like the batch's (charts below): a fault seen here is the batch's, not only "
                   "this sample's.")
with right:
    maps = s.saliency
    if selected < len(maps):
        pictures = st.columns(2)
        if selected < len(thumbs):
            pictures[0].image(base64.b64decode(thumbs[selected]), width=200, caption="as the model sees it")
        pictures[1].image(base64.b64decode(maps[selected]), width=200,
                          caption=f"{s.saliency_method}: yellow = drives the predicted class most")
    elif d.inputs.get("is_image"):
        st.info(f"Saliency maps are kept for the first {len(maps)} images; open one of those.")
    texts = InputsView.of(d).texts
    if selected < len(texts):
        st.markdown("**The text, as given**")
        st.text(texts[selected])
for name, build in (("sample_size", figures.sample_size), ("sample_dead", figures.sample_dead)):
    render.figure(build(d, selected), d, f"{name}_{selected}")
st.caption("Healthy: the sample's line follows the batch's; a sample that drops to zero or blows up at a layer "
           "is where its prediction is lost.")
