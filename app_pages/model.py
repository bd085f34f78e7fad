"""Model: layers, final activation and loss, optimizer, weight scale against Glorot/He."""

import pandas as pd
import streamlit as st

from whyzero.ui import render

d = render.panel_page("model")
m = d.model
cols = st.columns(4)
cols[0].metric("final activation", str(m["final_activation"]))
loss = m["loss"] or {}
cols[1].metric("loss", str(loss.get("name")) + (" (logits)" if loss.get("from_logits") else ""))
opt = m["optimizer"] or {}
cols[2].metric("optimizer", str(opt.get("name")))
cols[3].metric("learning rate", "—" if opt.get("learning_rate") is None else f"{opt['learning_rate']:.3g}")
if m["layers"]:
    st.subheader(f"Layers ({len(m['layers'])}, {m['params']:,} parameters)")
    st.dataframe(pd.DataFrame(m["layers"]).astype({"output_shape": str}), hide_index=True)
else:
    st.info("This model loaded as an inference function only: it has no layers to show.")
