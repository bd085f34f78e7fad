"""Compare: diagnoses in time order, oldest on the left: whether they are of one model, which findings appeared,
disappeared or changed from each to the next, and each panel's figures side by side on shared axes."""

import streamlit as st

from whyzero.compare import difference, in_time_order, same_model
from whyzero.figures import figures_for
from whyzero.figures.base import share_axes
from whyzero.panels import PANELS
from whyzero.ui import compare as choose
from whyzero.ui import render, state

MAX_SIDE_BY_SIDE = 4  # columns of figures; a longer series shows its latest four

d = state.ensure_diagnosis()
render.header(d, "Compare diagnoses")
series = choose.series(d)
if len(series) < 2:
    st.stop()
series = in_time_order(series)
st.subheader(" → ".join(f"{label} ({diagnosis.created[:16].replace('T', ' ')})" for label, diagnosis in series))
for (before_label, before), (after_label, after) in zip(series, series[1:]):
    same, words = same_model(before, after)
    diff = difference(before, after)
    with st.container(border=True):
        st.markdown(f"**{before_label} → {after_label}**")
        (st.info if same else st.warning)(words)
        cols = st.columns(3)
        cols[0].metric("disappeared", len(diff["disappeared"]))
        cols[1].metric("appeared", len(diff["appeared"]))
        cols[2].metric("changed severity or role", len(diff["changed"]))
        for title, items, show in (("Disappeared", diff["disappeared"], st.success),
                                   ("Appeared", diff["appeared"], st.error)):
            for f in items:
                show(f"**{title}:** `{f.cause}` · {f.severity} · {f.title}")
        for was, now in diff["changed"]:
            st.warning(f"**Changed:** `{now.cause}`: {was.severity}/{was.role} → {now.severity}/{now.role}")
shown = series[-MAX_SIDE_BY_SIDE:]
if len(series) > MAX_SIDE_BY_SIDE:
    st.caption(f"Figures side by side: the latest {MAX_SIDE_BY_SIDE} of {len(series)}.")
for page in PANELS:
    drawn = [dict((spec.name, fig) for spec, fig in figures_for(page.id, diagnosis)) for _, diagnosis in shown]
    names = [name for name in drawn[-1] if all(name in figs for figs in drawn)]
    if not names:
        continue
    with st.expander(f"{page.title}: {len(names)} figure(s) side by side, oldest on the left"):
        for name in names:
            figs = [figs[name] for figs in drawn]
            share_axes(figs)
            for column, fig, (label, diagnosis) in zip(st.columns(len(shown)), figs, shown):
                with column:
                    st.caption(label)
                    render.figure(fig, diagnosis, f"{label}_{name}")
