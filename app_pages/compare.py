"""Compare: the current diagnosis beside another (an uploaded diagnosis JSON, a share link, or the previous
one in this session): which findings appeared, disappeared or changed, and each panel's figures side by side."""

import streamlit as st

from whyzero.compare import difference
from whyzero.diagnosis import Diagnosis
from whyzero.errors import WhyzeroError
from whyzero.figures import figures_for
from whyzero.panels import PANELS
from whyzero.ui import render, state

d = state.ensure_diagnosis()
render.header(d, "Compare two diagnoses")
source = st.radio("Compare the current diagnosis with", ["the previous diagnosis in this session",
                                                          "an uploaded diagnosis JSON", "a share link"],
                  horizontal=True)
other = None
if source.startswith("the previous"):
    other = st.session_state.get("previous_diagnosis")
    if other is None:
        st.info("No previous diagnosis in this session yet: diagnose another model, batch or demo first.")
elif source.startswith("an uploaded"):
    upload = st.file_uploader("Diagnosis JSON (whyzero diagnose --json, or the Overview's download)", type=["json"])
    if upload is not None:
        try:
            other = Diagnosis.from_json(upload.getvalue().decode("utf-8", "replace"))
        except WhyzeroError as err:
            st.error(f"Could not read it: {err}")
else:
    link = st.text_input("Share link (or its token)")
    if link:
        from whyzero.store import default_store

        saved = default_store().load(link.split("session=")[-1].strip())
        if saved is None:
            st.error("No such session: the link is malformed, unknown, expired or was deleted.")
        else:
            other = saved.diagnosis
if other is not None:
    diff = difference(other, d)
    st.subheader(f"Before: {other.model['name']} ({other.created}) → now: {d.model['name']} ({d.created})")
    cols = st.columns(3)
    cols[0].metric("disappeared", len(diff["disappeared"]))
    cols[1].metric("appeared", len(diff["appeared"]))
    cols[2].metric("changed severity or role", len(diff["changed"]))
    for title, items, show in (("Disappeared", diff["disappeared"], st.success),
                               ("Appeared", diff["appeared"], st.error)):
        for f in items:
            show(f"**{title}:** `{f.cause}` · {f.severity} · {f.title}")
    for before, after in diff["changed"]:
        st.warning(f"**Changed:** `{after.cause}`: {before.severity}/{before.role} → {after.severity}/{after.role}")
    for page in PANELS:
        left_figs = dict((spec.name, fig) for spec, fig in figures_for(page.id, other))
        right_figs = dict((spec.name, fig) for spec, fig in figures_for(page.id, d))
        shared = [name for name in right_figs if name in left_figs]
        if not shared:
            continue
        with st.expander(f"{page.title}: {len(shared)} figure(s) side by side"):
            for name in shared:
                left, right = st.columns(2)
                with left:
                    render.figure(left_figs[name], other, f"before_{name}")
                with right:
                    render.figure(right_figs[name], d, f"now_{name}")
