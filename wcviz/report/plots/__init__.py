"""Paper figures from run stores: percentile bands (Fig. 3/4), near-zero fractions, a/b, metrics.

Every function takes runs as :func:`wcviz.open_run` Datasets or run paths, draws with the
style of :mod:`wcviz.report.style`, and returns the :class:`matplotlib.figure.Figure`; functions that
draw one axis accept ``ax=`` to draw into an existing one. :func:`save_figure` writes a figure
as PDF/SVG/PNG and :func:`write_paper_figures` writes the whole set for a group of runs (the
demo and ``wcviz figures`` use it).

One module per figure family, all re-exported here (``from wcviz import plots; plots.band_plot``):

* :mod:`wcviz.report.plots.bands`: band plots of one layer (``band_plot``, ``band_panels``,
  ``paper_fig3``, ``paper_fig4``, ``overlay_bands``, ``layer_grid``);
* :mod:`wcviz.report.plots.near_zero`: near-zero fractions over epochs and by layer;
* :mod:`wcviz.report.plots.compander`: the learnable a, b over epochs (``ab_trajectories``);
* :mod:`wcviz.report.plots.metrics`: loss and accuracy curves (``metrics_curves``);
* :mod:`wcviz.report.plots.seeds`: mean ± std over seeds (``seed_bands``, ``seed_metric``,
  ``seed_near_zero``, ``seed_near_zero_by_layer``);
* :mod:`wcviz.report.plots.histograms`: the recorded histograms over epochs (heatmap and
  TensorBoard-style ridgelines), gradient bands beside weight bands, the update ratio per layer;
* :mod:`wcviz.report.plots.sweep`: the (a, b) grid search's heatmaps (``wcviz figures --sweep``);
* :mod:`wcviz.report.plots.files`: ``save_figure``, ``write_paper_figures``;
* :mod:`wcviz.report.plots._axes`: what they share (axis labels, epoch ticks, y scale, legend place).

Band plots follow TensorBoard's distribution view, with exact values: one nested band per
symmetric pair of the quantile levels the store recorded (:func:`wcviz.report.bands.band_pairs`; by
default min–max, 6.68–93.32 %, 15.87–84.13 %, 30.85–69.15 %: min/max and the ±1.5σ, ±1σ,
±0.5σ points of a normal) and the median line. Runs are coloured by method
(:func:`wcviz.report.palette.run_colors`).

Artists carry a ``gid`` so that tests and tools can find them: ``"band:<lo>:<hi>"`` for a
band (a PolyCollection whose edges are the two quantile curves), ``"median"`` for the median
line, ``"bound"`` for the ±aπ/2 line; a seed group's mean line ``"mean:<group>"`` and its
mean ± std band ``"std:<group>"``.
"""

from __future__ import annotations

from wcviz.extras import require

# Before the imports below: without matplotlib, one clear line instead of a traceback.
require("figures", needed_by="wcviz.report.plots")

from wcviz.report.plots._axes import EPOCH_LABEL, NEAR_ZERO_LABEL, WEIGHT_LABEL
from wcviz.report.plots.bands import (GRID_MAX_LAYERS, band_handles, band_panels, band_plot,
                               default_linthresh, default_zoom, draw_bands, grid_layers,
                               layer_grid, nice_ceil, overlay_bands, paper_fig3, paper_fig4,
                               shared_levels, shared_pairs)
from wcviz.report.plots.compander import LEGEND_MAX_LAYERS, ab_trajectories
from wcviz.report.plots.files import FORMATS, save_figure, write_paper_figures
from wcviz.report.plots.histograms import (UPDATE_RATIO_REFERENCE, gradient_bands,
                                           histogram_heatmap, histogram_ridgelines,
                                           update_ratio_plot)
from wcviz.report.plots.metrics import METRIC_STYLES, metrics_curves
from wcviz.report.plots.near_zero import (near_zero_by_layer, near_zero_figure, near_zero_measures,
                                   near_zero_over_epochs)
from wcviz.report.plots.seeds import seed_bands, seed_metric, seed_near_zero, seed_near_zero_by_layer
from wcviz.report.plots.sweep import sweep_figure, sweep_heatmaps

__all__ = [
    # axis labels
    "EPOCH_LABEL", "NEAR_ZERO_LABEL", "WEIGHT_LABEL",
    # band plots
    "GRID_MAX_LAYERS", "band_handles", "band_panels", "band_plot", "default_linthresh",
    "default_zoom", "draw_bands", "grid_layers", "layer_grid", "nice_ceil", "overlay_bands",
    "paper_fig3", "paper_fig4", "shared_levels", "shared_pairs",
    # near-zero fractions
    "near_zero_by_layer", "near_zero_figure", "near_zero_measures", "near_zero_over_epochs",
    # learnable a, b
    "LEGEND_MAX_LAYERS", "ab_trajectories",
    # metrics
    "METRIC_STYLES", "metrics_curves",
    # seed aggregation
    "seed_bands", "seed_metric", "seed_near_zero", "seed_near_zero_by_layer",
    # histograms, gradients, update ratio
    "UPDATE_RATIO_REFERENCE", "gradient_bands", "histogram_heatmap", "histogram_ridgelines",
    "update_ratio_plot",
    # (a, b) sweep
    "sweep_figure", "sweep_heatmaps",
    # files
    "FORMATS", "save_figure", "write_paper_figures",
]
