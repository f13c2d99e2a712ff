"""Near-zero fractions: the share of weights with |w| below a threshold, over epochs and by
layer depth, for every threshold the runs recorded (:mod:`wcviz.record.measures`)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.report.palette import PALETTE, run_colors
from wcviz.report.plots._axes import (NEAR_ZERO_LABEL, _check_common_layer, _common_layers, _finish_axes,
                               _new_axes)


@style.styled
def near_zero_over_epochs(runs, threshold: str | float | None = None, layer: str | None = None,
                          *, ax=None, how: str = "weights") -> Figure:
    """Fraction of near-zero weights over epochs, one line per run, one threshold.

    Args:
        runs: runs (Datasets or paths).
        threshold: threshold label or value (see :func:`wcviz.report.analysis.select_threshold`).
        layer: one layer; ``None`` for the whole network.
        ax: draw into this axis.
        how: whole-network aggregation (:func:`wcviz.record.measures.network_fraction`): "weights"
            (fraction of all weights), "layers" (layer-mean, each layer once), or "both"
            (the layer-mean dashed beside the weight-weighted line, gid "layer-mean").

    Returns:
        The figure.
    """
    runs = an.as_datasets(runs)
    label = an.select_threshold(runs[0], threshold)
    if layer is not None:
        layer = _check_common_layer(runs, layer)
    fig, ax = _new_axes(ax)
    styles = {"weights": ("-", None), "layers": ("--", "layer-mean")}
    kinds = ["weights", "layers"] if how == "both" else [how]
    for i, (ds, name, color) in enumerate(zip(runs, an.unique_labels(runs), run_colors(runs))):
        for kind in (kinds if layer is None else ["weights"]):
            frac = an.near_zero(ds, an.select_threshold(ds, label), layer, how=kind)
            linestyle, gid = styles[kind]
            few = ds.sizes["epoch"] <= 30 or i >= len(PALETTE)  # a repeated colour keeps a marker
            ax.plot(an.epochs(ds), 100 * frac, color=color, linestyle=linestyle,
                    label=name if gid is None or len(kinds) == 1 else None, gid=gid,
                    marker=repeat_marker(i) if few and gid is None else None,
                    markersize=2.5, markevery=None if ds.sizes["epoch"] <= 30 else 10)
    where = f"layer {layer}" if layer else {"weights": "all weights", "layers": "layer-mean",
                                            "both": "all weights (—), layer-mean (--)"}[how]
    _finish_axes(ax, f"{an.threshold_text(runs[0], label)}, {where}")
    return fig


@style.styled
def near_zero_by_layer(runs, threshold: str | float | None = None, *, epoch: int = -1,
                       ax=None, show_init: bool = True) -> Figure:
    """Near-zero fraction per layer (x = depth) at one epoch (default the last), one line per run.

    With ``show_init`` the first run's epoch-0 fractions are drawn in grey: baseline and WC
    start from the same weights, so the lines show how training moved them.

    Args:
        runs: runs sharing their layers (e.g. baseline and WC).
        threshold: threshold label or value.
        epoch: epoch index (position; -1 = last recorded).
        ax: draw into this axis.
        show_init: also draw the initial fractions.

    Returns:
        The figure.
    """
    runs = an.as_datasets(runs)
    label = an.select_threshold(runs[0], threshold)
    layers = _common_layers(runs)
    fig, ax = _new_axes(ax, style.figsize(1, row_height=2.6))
    depth = np.arange(len(layers))
    if show_init:
        init = runs[0]["near_zero_fraction"].sel(threshold=label, layer=layers).isel(epoch=0)
        ax.plot(depth, 100 * np.asarray(init, dtype=float), color=style.REFERENCE_COLOR,
                linestyle=":", marker=".", label="init (epoch 0)", gid="init")
    ats = [ds["near_zero_fraction"].sel(threshold=an.select_threshold(ds, label), layer=layers)
           .isel(epoch=epoch) for ds in runs]
    for i, (at, name, color) in enumerate(zip(ats, an.unique_labels(runs), run_colors(runs))):
        ax.plot(depth, 100 * np.asarray(at, dtype=float), color=color,
                marker=repeat_marker(i), markersize=3, label=f"{name} (epoch {float(at['epoch']):g})")
    _finish_axes(ax, f"{an.threshold_text(runs[0], label)}, by layer depth", layers)
    return fig


#: Markers of runs whose colour repeats (more runs than :data:`wcviz.report.palette.PALETTE`
#: has colours): the first round of colours dots, the next squares, triangles, ...
MARKERS = ("o", "s", "^", "D", "v", "P")


def repeat_marker(i: int) -> str:
    """The marker of the ``i``-th run: it changes each time the palette's colours start over,
    so no two runs share both colour and marker."""
    return MARKERS[(i // len(PALETTE)) % len(MARKERS)]


def legend_layout(labels: Sequence[str]) -> dict:
    """Columns and font size of a figure legend below the panels, so that it stays within the
    figure's width: three columns of short names, fewer of long ones, smaller type past 8."""
    longest = max((len(t) for t in labels), default=0)
    ncols = max(1, min(len(labels), 3 if longest <= 28 else 2 if longest <= 44 else 1))
    return {"ncols": ncols, "fontsize": 6 if len(labels) > 8 else None}


@style.styled
def near_zero_figure(runs, threshold: str | float | None = None) -> Figure:
    """Two panels: near-zero fraction of the network over epochs, and per layer at the end."""
    runs = an.as_datasets(runs)
    fig, (left, right) = plt.subplots(1, 2, figsize=style.figsize(2, row_height=2.6))
    near_zero_over_epochs(runs, threshold, ax=left, how="both")
    near_zero_by_layer(runs, threshold, ax=right)
    left.set_title("(a) network over epochs: all weights (—), layer-mean (--)")
    right.set_title("(b) per layer, at the end")
    left.get_legend().remove()
    right.get_legend().remove()
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", **legend_layout(labels))
    label = an.select_threshold(runs[0], threshold)
    note = ", σ₀ = the layer's weight std at init" if "σ₀" in an.threshold_text(runs[0], label) else ""
    fig.suptitle(f"Fraction of near-zero weights, {an.threshold_text(runs[0], label)}{note}", fontsize=9)
    return fig


@style.styled
def near_zero_measures(runs, labels: Sequence[str] | None = None) -> Figure:
    """Every near-zero measure side by side: one panel per threshold, network fraction over
    epochs per run, the weight-weighted fraction solid and the layer-mean dashed.

    Puts the measures of :mod:`wcviz.record.measures` next to each other, so a reader sees whether
    a difference between runs survives the scale-free ones (std, med) or only shows with
    thresholds tied to a fixed scale (abs, rel).

    Args:
        runs: runs (Datasets or paths).
        labels: threshold labels (default: all recorded by the first run).

    Returns:
        The figure.
    """
    runs = an.as_datasets(runs)
    labels = [an.select_threshold(runs[0], t) for t in (labels or an.thresholds(runs[0]))]
    cols = min(4, len(labels))
    rows = -(-len(labels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=style.figsize(2, rows=rows, row_height=2.0),
                             squeeze=False, sharex=True)
    for i, (ax, label) in enumerate(zip(axes.flat, labels)):
        near_zero_over_epochs(runs, label, ax=ax, how="both")
        ax.set_title(an.threshold_text(runs[0], label), fontsize=7)
        ax.set_xlabel("epoch" if i >= len(labels) - cols else "")  # bottom row only
        ax.set_ylabel("")
        ax.get_legend().remove()
    for ax in list(axes.flat)[len(labels):]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 3))
    fig.supylabel(NEAR_ZERO_LABEL, fontsize=8)
    fig.suptitle("Near-zero measures: all weights (—), layer-mean (--); σ₀ = std at init, "
                 "std(w), median|w| of the same epoch", fontsize=8)
    return fig
