"""The wcviz dashboard: a read-only Streamlit app over a runs root.

Start it with ``wcviz dash [RUNS_ROOT]``. The app reads run stores only through :mod:`wcviz`
(``wcviz.record.reader.list_runs``, ``wcviz.open_run``) and never writes to them.

* :mod:`wcviz.app.data`: scanning the root, per-run caches keyed on the committed record count, and
  the tidy pandas frames every page draws (importable and tested without a server).
* the charts are :mod:`wcviz.report.charts` (Altair, Vega-Lite): the same functions draw the
  one-file HTML report, so a chart looks the same in both; :class:`wcviz.report.frames.BandColumns`
  names their quantile columns.
* :mod:`wcviz.app.export`: figure and CSV bytes for the download buttons, drawn by :mod:`wcviz.report.plots`.
* :mod:`wcviz.app.ui`: Streamlit pieces the pages share (run picker, live refresh, export buttons).
* ``app/main.py``: the entry script (``streamlit run app/main.py -- RUNS_ROOT``: the root is its
  argument); ``app/views/``: the pages.
"""
