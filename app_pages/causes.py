"""Causes: a reference page for every cause id, generated from its declaration (meaning, stage, what it explains, its
proof and figures), its check (thresholds) and the gallery."""

import pandas as pd
import streamlit as st

from whyzero.catalog import CAUSES
from whyzero.figures import PANEL_FIGURES
from whyzero.panels import PAGE
from whyzero.reference import references

st.title("Causes: what whyzero looks for")
ids = list(CAUSES)
wanted = st.query_params.get("cause")
choice = st.selectbox("Cause", ids, index=ids.index(wanted) if wanted in ids else 0,
                      format_func=lambda c: f"{c} — {CAUSES[c].title}")
if choice != wanted:
    st.query_params["cause"] = choice
ref = references()[choice]
st.header(ref.title)
st.caption(f"`{ref.id}` · shown on the {PAGE[ref.panel].title} page · a fault of {ref.stage}")
st.markdown(f"**What it means.** {ref.meaning}")
st.markdown(f"**The evidence a user needs.** {ref.evidence}")
st.markdown(f"**How whyzero measures it** (`{ref.check}`). {ref.measured}")
if ref.thresholds:
    st.markdown("**Thresholds** (the check's named constants; the comment above each says where it comes from):")
    st.dataframe(pd.DataFrame([t.__dict__ for t in ref.thresholds]), hide_index=True,
                 column_config={"source": st.column_config.TextColumn(width="large")})
if ref.proof:
    st.markdown(f"**Proof by re-run.** When this is a root cause, whyzero applies the fix and re-runs the "
                f"model: {ref.proof}; what disappears under the fix becomes a consequence.")
if ref.figures:
    page_of = {spec.name: PAGE[page].title for page, specs in PANEL_FIGURES.items() for spec in specs}
    st.markdown("**Where to see it:** " + ", ".join(
        f"the '{name.replace('_', ' ')}' figure ({page_of.get(name, PAGE[ref.panel].title)} page)"
        for name in ref.figures) + ".")
if ref.explains:
    st.markdown("**Found with it, it can explain:** " + ", ".join(f"`{c}`" for c in ref.explains))
if ref.explained_by:
    st.markdown("**It can be the consequence of:** " + ", ".join(f"`{c}`" for c in ref.explained_by))
if ref.cases:
    st.markdown("**Gallery cases that show it** (open one on the Diagnose page):")
    for name in ref.cases:
        st.page_link("app_pages/diagnose.py", label=f"Open the case '{name}'", query_params={"case": name},
                     icon=":material/science:")
