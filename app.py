"""whyzero's dashboard: `streamlit run app.py`.  Every page draws from the session's Diagnosis."""

import streamlit as st

st.set_page_config(page_title="whyzero", page_icon="🔍", layout="wide")

PAGES = [
    st.Page("pages/diagnose.py", title="Diagnose", icon="🧪", default=True),
    st.Page("pages/overview.py", title="Overview", icon="📋"),
    st.Page("pages/inputs.py", title="Inputs", icon="🖼️"),
    st.Page("pages/model.py", title="Model", icon="🧱"),
    st.Page("pages/activations.py", title="Activations", icon="⚡"),
    st.Page("pages/gradients.py", title="Gradients", icon="📉"),
    st.Page("pages/outputs.py", title="Outputs", icon="🎯"),
    st.Page("pages/masks.py", title="Labels & masks", icon="🏷️"),
]

with st.sidebar:
    st.toggle("Review mode (hide upload controls)", key="review_mode")

st.navigation(PAGES).run()
