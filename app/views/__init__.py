"""The dashboard pages, one script each, run by ``st.navigation`` from ``app/main.py``.

Not named ``pages/``: Streamlit treats a ``pages/`` folder beside the entry script as an old-style
multi-page app, and ``AppTest`` then runs page scripts without the entry script.
"""
