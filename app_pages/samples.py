"""Samples: every sample of the batch, filtered and sorted (wrong ones, highest loss, by class), a page of
pictures at a time; one sample opened: its prediction against its label, its layers against the batch's, and what
drives its prediction (Grad-CAM or gradient x input).  Keys: Left/Right open the previous/next sample, PageUp/
PageDown turn the page."""

import base64

import pandas as pd
import streamlit as st

from whyzero import figures
from whyzero.figures import sample_differences
from whyzero.figures.inputs import InputsView
from whyzero.figures.samples import SAMPLE_FILTERS, SAMPLE_ORDERS, SamplesView, order_samples
from whyzero.ui import render, state

PAGE_SIZE = 16  # pictures a page, two rows of eight

d = state.ensure_diagnosis()
render.header(d, "Samples")
s = SamplesView.of(d)
rows = s.rows
if not rows:
    st.info("This diagnosis holds no per-sample statistics (it was made by an older whyzero): diagnose again to "
            "open single samples.")
    st.stop()

labelled = any("label" in r for r in rows)
controls = st.columns([1, 1, 2])
order = controls[0].selectbox("Sort", [o for o in SAMPLE_ORDERS if o != "highest loss first" or labelled],
                              key="sample_order")
show = controls[1].selectbox("Show", SAMPLE_FILTERS if labelled else SAMPLE_FILTERS[:1], key="sample_show")
classes = sorted({r.get("label", r.get("predicted")) for r in rows} - {None})
picked = controls[2].multiselect("Classes" + (" (label)" if labelled else " (predicted)"), classes,
                                 key="sample_classes") if classes and len(classes) <= 1000 else []
listed = order_samples(rows, order, show, picked)
if not listed:
    st.info("No sample matches these filters.")
    st.stop()

try:
    selected = int(st.session_state.get("sample", st.query_params.get("sample", listed[0])))
except ValueError:
    selected = listed[0]
if selected not in listed:
    selected = listed[0]
position = listed.index(selected)
pages = (len(listed) + PAGE_SIZE - 1) // PAGE_SIZE
page = min(max(int(st.session_state.get("sample_page", position // PAGE_SIZE)), 0), pages - 1)


def _open(i: int) -> None:
    st.session_state["sample"] = i


def _step(offset: int) -> None:
    """Previous or next sample in the listed order; the page follows it."""
    target = listed[min(max(position + offset, 0), len(listed) - 1)]
    st.session_state["sample"] = target
    st.session_state["sample_page"] = listed.index(target) // PAGE_SIZE


def _turn(offset: int) -> None:
    st.session_state["sample_page"] = min(max(page + offset, 0), pages - 1)


def _open_selected_row() -> None:
    chosen = st.session_state["sample_table"].selection.rows
    if chosen:
        st.session_state["sample"] = listed[int(chosen[0])]
        st.session_state["sample_page"] = int(chosen[0]) // PAGE_SIZE


nav = st.columns(4)
nav[0].button("← Sample", on_click=_step, args=(-1,), shortcut="Left", disabled=position == 0,
              help="The previous sample in this order (key: Left)", use_container_width=True)
nav[1].button("Sample →", on_click=_step, args=(1,), shortcut="Right", disabled=position == len(listed) - 1,
              help="The next sample in this order (key: Right)", use_container_width=True)
nav[2].button("← Page", on_click=_turn, args=(-1,), shortcut="PageUp", disabled=page == 0, key="page_back",
              use_container_width=True)
nav[3].button("Page →", on_click=_turn, args=(1,), shortcut="PageDown", disabled=page == pages - 1,
              key="page_next", use_container_width=True)
st.caption(f"Sample {position + 1} of {len(listed)} listed ({len(rows)} in the batch) · page {page + 1} of {pages} "
           "· keys: Left/Right sample, PageUp/PageDown page")

shown = listed[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
grid = s.grid or InputsView.of(d).thumbnails  # older diagnoses kept pictures of the first samples only
if grid:
    for start in range(0, len(shown), 8):
        cols = st.columns(8)
        for col, i in zip(cols, shown[start:start + 8]):
            with col:
                if i < len(grid):
                    st.image(base64.b64decode(grid[i]), width=64)
                row = rows[i]
                mark = "" if "right" not in row else (" ✓" if row["right"] else " ✗")
                st.button(f"#{i}{mark}", key=f"open_sample_{i}", type="primary" if i == selected else "secondary",
                          use_container_width=True, on_click=_open, args=(i,),
                          help=f"predicted {row.get('predicted')}" + (f", label {row['label']}" if "label" in row
                                                                         else ""))

table = pd.DataFrame([rows[i] for i in listed]).rename(columns={"index": "sample"})
with st.expander(f"The {len(listed)} listed samples as a table: click a row to open it", expanded=not grid):
    st.dataframe(table, hide_index=True, on_select=_open_selected_row, selection_mode="single-row",
                 key="sample_table", height=min(36 * (len(listed) + 1), 320),
                 column_config={"loss": st.column_config.NumberColumn(format="%.3f"),
                                "score": st.column_config.NumberColumn(format="%.3f")})
st.query_params["sample"] = str(selected)

row = rows[selected]
st.subheader(f"Sample {selected}")
left, right = st.columns([1, 1])
with left:
    cols = st.columns(4)
    if "predicted" in row:
        shown_value = f"{row['predicted']:.4g}" if isinstance(row["predicted"], float) else str(row["predicted"])
        cols[0].metric("predicted", shown_value, help="The class with the highest output (or > 0.5 for one unit).")
    if "score" in row:
        cols[1].metric("its score", f"{row['score']:.3f}")
    if "label" in row:
        cols[2].metric("label", str(row["label"]))
    if "loss" in row:
        cols[3].metric("loss", f"{row['loss']:.3f}", help="Cross-entropy of the output against the label.")
    if "label" in row:
        if row["label"] == row.get("predicted"):
            st.success(f"Right: predicted as labelled (class {row['label']}).")
        else:
            st.error(f"Wrong: predicted class {row['predicted']}, labelled class {row['label']}.")
    notes = sample_differences(s, selected)
    if notes:
        st.markdown("**Where this sample differs from the batch**\n\n" + "\n".join(f"- {n}" for n in notes[:5]))
    elif any(selected < len(layer["rms"]) for layer in s.layers):
        st.caption("Its layers behave like the batch's (charts below): a fault seen here is the batch's, not only "
                   "this sample's.")
    elif s.layers:
        st.caption(f"Per-layer statistics are kept for the first {len(s.layers[0]['rms'])} samples.")
with right:
    maps = s.saliency
    thumbs = InputsView.of(d).thumbnails
    if selected < len(maps):
        pictures = st.columns(2)
        if selected < len(thumbs):
            pictures[0].image(base64.b64decode(thumbs[selected]), width=200, caption="as the model sees it")
        pictures[1].image(base64.b64decode(maps[selected]), width=200,
                          caption=f"{s.saliency_method}: yellow = drives the predicted class most")
    elif selected < len(grid):
        st.image(base64.b64decode(grid[selected]), width=160, caption="as the model sees it")
        if maps:
            st.caption(f"Saliency maps are kept for the first {len(maps)} images.")
    texts = InputsView.of(d).texts
    if selected < len(texts):
        st.markdown("**The text, as given**")
        st.text(texts[selected])
for name, build in (("sample_size", figures.sample_size), ("sample_dead", figures.sample_dead)):
    render.figure(build(d, selected), d, f"{name}_{selected}")
if any(selected < len(layer["rms"]) for layer in s.layers):
    st.caption("Healthy: the sample's line follows the batch's; a sample that drops to zero or blows up at a layer "
               "is where its prediction is lost.")
