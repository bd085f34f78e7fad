"""Streamlit rendering helpers: the only part of the package that imports Streamlit."""
