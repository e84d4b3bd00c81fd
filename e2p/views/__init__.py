"""What the web app (`streamlit_app.py`) shows, decided here outside Streamlit so it is tested: a module
per view (inputs, generate, attention, gallery, model_card), and code_html, origin_view, figures draw it."""
