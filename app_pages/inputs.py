"""Inputs: the batch against the training reference or the model's memory; the preprocessing what-if."""

import pandas as pd
import streamlit as st

from whyzero.figures.inputs import InputsView, feature_table
from whyzero.preprocessing import PREPROCESSING_WORDS
from whyzero.text import number
from whyzero.ui import render


def whatif_row(candidate: dict) -> dict:
    """One preprocessing the what-if tried, as a person reads it: its name in words, rounded numbers."""
    judged = candidate.get("score") is not None
    return {"preprocessing": PREPROCESSING_WORDS.get(candidate["name"], candidate["name"]),
            ("distance to memory" if judged else "right on the labels"):
            number(candidate["score"]) if judged else f"{candidate.get('accuracy') or 0:.0%}",
            **_outputs(candidate)}


def _outputs(candidate: dict) -> dict:
    """What the model outputs under a candidate, where it was run (the batch as given; the best match's proof on
    the Overview says what it does under the fix)."""
    if candidate.get("output_spread") is None:
        return {"output spread": "—", "top class share": "—", "output mean": "—"}
    return {"output spread": number(candidate["output_spread"]),
            "top class share": f"{candidate['top_class_share']:.0%}", "output mean": number(candidate["output_mean"])}


def features_section(rows: list[dict]) -> None:
    """Tabular inputs: every feature by name, the batch against its reference, flagged rows first."""
    flagged = sum(r["flagged"] for r in rows)
    compared = "distance" in rows[0]
    st.subheader(f"Features: {len(rows)}" + (f", {flagged} flagged" if compared else ""))
    if compared:
        st.caption("Distance: the mean's shift in reference standard deviations plus the variance ratio in decades "
                   "(0 = the same; flagged at 1 or more, or with NaN/inf). Flagged features first, farthest first.")
    else:
        st.info(f"No per-feature reference: give a training sample (or a stats .json) to compare every feature. "
                f"Compared with: {s.memory_source or 'nothing the model holds'}.")
    table = pd.DataFrame(rows)
    numbers = {c: st.column_config.NumberColumn(format="%.4g") for c in table.columns
               if c not in ("feature", "flagged")}
    st.dataframe(table, hide_index=True, column_config=numbers, height=min(36 * (len(rows) + 1), 420))
    st.caption(f"dtype {s.dtype} · integer-valued share {s.integer_share:.2f} · constant samples {s.constant_samples}")


def channels_section() -> None:
    """Images and text: the batch's statistics per channel beside the training reference's."""
    left, right = st.columns(2)
    left.subheader("Text lengths" if text else "Batch statistics")
    left.dataframe(pd.DataFrame(s.table), hide_index=True)
    if text:
        left.caption("The model reads raw text: the batch is measured by each text's length in words and "
                     "characters; the checks of input values do not apply.")
    if s.train_table:
        right.subheader("Training statistics")
        right.dataframe(pd.DataFrame(s.train_table), hide_index=True)
        if s.train_samples:
            right.caption(f"over {s.train_samples:,} training samples")
    else:
        right.info(f"No training reference given. Compared with: {s.memory_source or 'nothing the model holds'}.")
    if text:
        right.caption(f"dtype text · {s.empty_texts} empty texts" if s.empty_texts else "dtype text")
    else:
        right.caption(f"dtype {s.dtype} · integer-valued share {s.integer_share:.2f} · "
                      f"constant samples {s.constant_samples}")


d = render.panel_page("inputs")
s = InputsView.of(d)
text = s.dtype == "text"
features = feature_table(d)
if features:
    features_section(features)
else:
    channels_section()
if s.whatif:
    w = s.whatif
    st.subheader("Preprocessing what-if")
    st.caption(f"Raw pixels recovered: {w['raw_from']}. Best match: **{w['best']}**.")
    table = pd.DataFrame([whatif_row(c) for c in w["candidates"]])
    constant = [col for col in table.columns[1:] if table[col].nunique() == 1]  # says nothing about a candidate
    st.dataframe(table.drop(columns=constant), hide_index=True)
if s.texts:
    st.subheader("The first texts, as given")
    st.dataframe(pd.DataFrame({"sample": range(len(s.texts)), "text": s.texts}), hide_index=True)
if s.thumbnails:
    st.subheader("Samples as the model sees them (min-max scaled for display)")
    render.image_grid(s.thumbnails)
    st.page_link("app_pages/samples.py", label="Open one sample: its prediction, its layers, what drives it",
                 icon=":material/photo_library:")
