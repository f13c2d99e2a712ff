"""Deciding and drawing: what the recorded runs say, as tables, claims and figures.

* :mod:`wcviz.report.analysis`: runs as labelled data (labels, thresholds, curves, accuracy,
  the runs table).
* :mod:`wcviz.report.seeds`: the one place where runs are grouped by recipe and seeds are
  folded (mean, std, count over a ``seed`` dimension or a tidy frame).
* :mod:`wcviz.report.claims`: the one engine that decides the paper's claims over seeds
  (paired t and sign-flip tests, Holm within the declared family, non-inferiority; one pair is
  one seed per arm).
* :mod:`wcviz.report.tables`: mean ± std accuracy tables (Markdown, LaTeX, CSV).
* :mod:`wcviz.report.bands`: percentile bands; :mod:`wcviz.report.sweep`: (a, b) grid cells;
  :mod:`wcviz.report.palette` and :mod:`wcviz.report.style`: colours and the figure style.
* :mod:`wcviz.report.plots`: the paper-style figures (matplotlib, the ``[figures]`` extra).
* :mod:`wcviz.report.charts`: the interactive charts (Altair, Vega-Lite) of the dashboard and of
  the one-file HTML report; :mod:`wcviz.report.histcharts`: those of the recorded histograms,
  gradient bands and update ratios; :mod:`wcviz.report.frames`: the wide quantile frames they
  draw; :mod:`wcviz.report.html`: the one-file HTML report.

May import: :mod:`wcviz.errors`, :mod:`wcviz.reparam`, :mod:`wcviz.record`, numpy, pandas,
xarray, and the extras it draws or tests with (matplotlib, altair, scipy) inside the modules that need
them. Nothing from integrations, cli, training or app.
"""
