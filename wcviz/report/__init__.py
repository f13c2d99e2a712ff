"""Deciding and drawing: what the recorded runs say, as tables, claims and figures.

* :mod:`wcviz.report.analysis`: runs as labelled data (labels, thresholds, curves, accuracy,
  the runs and accuracy tables).
* :mod:`wcviz.report.claims`: the paper's claims decided over seeds (paired intervals and
  tests, HOLDS / FAILS / INCONCLUSIVE).
* :mod:`wcviz.report.bands`: percentile bands; :mod:`wcviz.report.sweep`: (a, b) grid cells;
  :mod:`wcviz.report.palette` and :mod:`wcviz.report.style`: colours and the figure style.
* :mod:`wcviz.report.plots`: the paper-style figures (matplotlib, the ``[figures]`` extra).

May import: :mod:`wcviz.errors`, :mod:`wcviz.reparam`, :mod:`wcviz.record`, numpy, pandas,
xarray, and the extras it draws or tests with (matplotlib, scipy) inside the modules that need
them. Nothing from integrations, cli, training or app.
"""
