"""whyzero's dashboard: `streamlit run app.py`.  Every page draws from the session's Diagnosis."""

import streamlit as st

st.set_page_config(page_title="whyzero", page_icon=":material/search:", layout="wide")

PAGES = [
    st.Page("pages/diagnose.py", title="Diagnose", icon=":material/science:", default=True),
    st.Page("pages/overview.py", title="Overview", icon=":material/checklist:"),
    st.Page("pages/inputs.py", title="Inputs", icon=":material/image:"),
    st.Page("pages/model.py", title="Model", icon=":material/account_tree:"),
    st.Page("pages/activations.py", title="Activations", icon=":material/bolt:"),
    st.Page("pages/gradients.py", title="Gradients", icon=":material/trending_down:"),
    st.Page("pages/outputs.py", title="Outputs", icon=":material/target:"),
    st.Page("pages/masks.py", title="Labels & masks", icon=":material/label:"),
]

with st.sidebar:
    st.toggle("Review mode (hide upload controls)", key="review_mode")

st.navigation(PAGES).run()
