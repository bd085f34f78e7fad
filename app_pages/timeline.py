"""Timeline: a training watched by whyzero.Monitor: when each cause appeared, what it explained, when it went away;
per-layer statistics over the epochs; the loss against the prior.  Choosing an observation shows its diagnosis on
every other page."""

import pandas as pd
import streamlit as st

from whyzero.figures.timeline import causes_by_epoch, layer_heatmap, loss_over_epochs
from whyzero.timeline import LAYER_STATS, timeline_of
from whyzero.ui import render, state
from whyzero.ui import timeline as actions

MONITOR_CODE = """import whyzero
model.fit(x, y, epochs=50,
          callbacks=[whyzero.Monitor(probe=(x_val[:64], y_val[:64]), run="runs/exp1")])
# then upload runs/exp1/timeline.jsonl here, or: whyzero timeline runs/exp1"""

d = state.ensure_diagnosis()
found = timeline_of(d)
st.title("Timeline: when did it go flat?")
if st.session_state.get("timeline_error"):
    st.error(st.session_state.pop("timeline_error"))
if not st.session_state.get("review_mode") and not state.read_only():
    with st.expander("Open a training run", expanded=found is None, icon=":material/upload_file:"):
        st.markdown("`whyzero.Monitor` diagnoses a fixed probe batch at each epoch's end (or every N steps) while "
                    "the model trains, and appends each epoch to its run's file as soon as it exists:")
        st.code(MONITOR_CODE, language="python")
        st.file_uploader("A run's timeline.jsonl", type=["jsonl"], key="timeline_upload")
        left, right = st.columns(2)
        left.button("Open this run", type="primary", on_click=actions.open_upload)
        right.button("Open the demo run (a learning rate raised to 20 at epoch 3)", on_click=actions.open_demo)
if found is None:
    st.info("The current diagnosis is of a finished model, not of a training run: open a run above.")
    st.stop()
timeline, index = found
labels = timeline.labels
render.model_line(d)
first = timeline.first_root()
if first is not None:
    st.error(f"**Root cause established at {labels[first[0]]}:** `{first[1]['cause']}`: {first[1]['title']}",
             icon=":material/error:")
else:
    st.success(f"No root cause established at any of the {len(labels)} observations.")
for note in timeline.notes:
    st.caption(f"note: {note}")
chosen = st.select_slider("Observation shown on every page", options=list(range(len(labels))), value=index,
                          format_func=lambda i: labels[i], key=f"timeline_epoch_{timeline.header.get('created')}")
if chosen != index:
    actions.show(timeline, chosen)
    st.rerun()
st.caption(f"The other pages show the diagnosis at {labels[index]}: its findings, activations and gradients.")
spans = timeline.spans()
if spans:
    st.subheader("Causes over the run")
    st.dataframe(pd.DataFrame([{"cause": s.cause, "severity": s.severity, "role when it appeared": s.role,
                                "appeared": labels[s.appeared],
                                "went away": labels[s.gone] if s.gone is not None else "still there",
                                "explained": ", ".join(s.explained), "finding": s.title} for s in spans]),
                 hide_index=True)
render.figure(causes_by_epoch(timeline, render.cause_title), d, "timeline_causes")
render.figure(loss_over_epochs(timeline), d, "timeline_loss")
st.subheader("Layers over the run")
for key, _label, _decades in LAYER_STATS:
    render.figure(layer_heatmap(timeline, key), d, f"timeline_{key}")
