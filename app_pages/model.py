"""Model: final activation, loss and optimizer, the layers (nested models expanded by path), weight scale."""

import pandas as pd
import streamlit as st

from whyzero.ui import render


def summary(d) -> None:
    m = d.model
    loss = m["loss"] or {}
    opt = m["optimizer"] or {}
    lr = "—" if opt.get("learning_rate") is None else f"{opt['learning_rate']:.3g}"
    st.markdown(f"**Final activation** `{m['final_activation']}` · **loss** `{loss.get('name')}`"
                + (" (from logits)" if loss.get("from_logits") else "")
                + f" · **optimizer** `{opt.get('name')}` · **learning rate** {lr}")
    if m["layers"]:
        st.subheader(f"Layers ({len(m['layers'])}, {m['params']:,} parameters)")
        table = pd.DataFrame(m["layers"]).astype({"output_shape": str})
        if "depth" in table:
            nested = int(table["depth"].max())
            st.caption(f"Nested models are expanded under their own row, inner layers named by path "
                       f"(depth up to {nested})." if nested else "No nested models.")
        st.dataframe(table, hide_index=True)
    else:
        st.info("This model loaded as an inference function only: it has no layers to show.")


render.panel_page("model", intro=summary)
