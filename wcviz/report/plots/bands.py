"""Band plots: one layer's weight distribution over epochs as nested percentile bands.

One run (:func:`band_plot`), runs side by side on a shared y axis (:func:`band_panels`, the
paper's Fig. 3 :func:`paper_fig3` and its zoom Fig. 4 :func:`paper_fig4`), runs overlaid
(:func:`overlay_bands`), and every layer of one or two runs as small multiples
(:func:`layer_grid`). The bands are those of :mod:`wcviz.report.bands`; artists carry the gids the
package docstring lists.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.report.bands import BAND_OPACITY, band_label, band_pairs, median_quantile, quantile_levels
from wcviz.errors import WcvizError
from wcviz.report.palette import run_colors
from wcviz.report.plots._axes import (EPOCH_LABEL, WEIGHT_LABEL, _apply_yscale, _check_common_layer,
                               _epoch_ticks, _new_axes, _outside_legend)


def default_linthresh(runs: Sequence[xr.Dataset], layer: str) -> float:
    """Linear range of a symlog axis: the initial weight std, rounded down to a power of ten."""
    stds = [float(ds["weight_std"].sel(layer=layer).isel(epoch=0)) for ds in runs if "weight_std" in ds]
    stds = [s for s in stds if np.isfinite(s) and s > 0]
    return 10.0 ** np.floor(np.log10(min(stds))) if stds else 1e-2


def shared_levels(runs: Sequence[xr.Dataset]) -> list[float]:
    """The quantile levels every run recorded, sorted."""
    return sorted(set.intersection(*(set(quantile_levels(ds)) for ds in runs)))


def shared_pairs(runs: Sequence[xr.Dataset]) -> list[tuple[float, float]]:
    """The band pairs every run recorded: what figures with several runs draw and explain."""
    return band_pairs(shared_levels(runs))


def draw_bands(ax, ds: xr.Dataset, layer: str, color: str, label: str | None = None,
               show_bound: bool = True, pairs: Sequence[tuple[float, float]] | None = None) -> None:
    """Draw the nested quantile bands, the median and (companded runs) ±bound of one layer.

    Args:
        ax: matplotlib axis.
        ds: the run.
        layer: a recorded layer name.
        color: the run's colour; bands are this colour at :data:`wcviz.report.bands.BAND_OPACITY` each.
        label: legend text for the run (put on the median line).
        show_bound: draw the method's bound (±aπ/2 for WC, ±a for erf) per epoch, dashed.
        pairs: the (lo, hi) quantile pairs to fill (default: all the run recorded).
    """
    x = an.epochs(ds)
    for lo, hi in band_pairs(ds) if pairs is None else pairs:
        ax.fill_between(x, an.quantile_curve(ds, layer, lo), an.quantile_curve(ds, layer, hi),
                        color=color, alpha=BAND_OPACITY, linewidth=0, gid=f"band:{lo:g}:{hi:g}")
    mid = median_quantile(ds)
    if mid is not None:
        ax.plot(x, an.quantile_curve(ds, layer, mid), color=color, linewidth=1.0,
                label=label, gid="median")
    bound = an.bound_over_epochs(ds, layer)
    if show_bound and np.isfinite(bound).any():
        for sign in (1, -1):
            ax.plot(x, sign * bound, color=color, linestyle=(0, (4, 2)), linewidth=0.8,
                    gid="bound", label="±bound on |w|" if sign == 1 and label is None else None)
        # Name the line where it ends; annotate() skips it when a zoom hides the bound.
        ax.annotate(f"{an.bound_symbol(ds) or 'bound'} = {bound[-1]:.3g}", (x[-1], bound[-1]), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=6, color=color)


def band_handles(pairs: Sequence[tuple[float, float]], color: str = "0.35",
                 bound: str | None = None) -> list:
    """Legend entries explaining the bands ``pairs`` (outermost first) in ``color``, and the
    bound line when ``bound`` names it (e.g. "aπ/2")."""
    handles = []
    for depth, (lo, hi) in enumerate(pairs, start=1):
        alpha = 1 - (1 - BAND_OPACITY) ** depth  # what the stacked fills look like
        handles.append(Patch(facecolor=color, alpha=alpha, linewidth=0, label=band_label(lo, hi)))
    handles.append(plt.Line2D([], [], color=color, linewidth=1.0, label="median"))
    if bound:
        handles.append(plt.Line2D([], [], color=color, linestyle=(0, (4, 2)), linewidth=0.8,
                                  label=f"±{bound} (bound on |w|)"))
    return handles


def _bound_name(runs: Sequence[xr.Dataset], layer: str) -> str | None:
    """The bound's symbol ("aπ/2") if any of the runs has a finite bound on ``layer``."""
    for ds in runs:
        if np.isfinite(an.bound_over_epochs(ds, layer)).any():
            return an.bound_symbol(ds) or "bound"
    return None


@style.styled
def band_plot(run, layer: str | None = None, *, ax=None, yscale: str = "linear",
              linthresh: float | None = None, ylim: tuple[float, float] | None = None,
              color: str | None = None, title: str | None = None, legend: bool = True,
              pairs: Sequence[tuple[float, float]] | None = None) -> Figure:
    """Percentile bands of one layer's weights over epochs (TensorBoard's distribution look).

    Args:
        run: a run (Dataset or path).
        layer: layer name (default: the first recorded layer).
        ax: draw into this axis instead of a new figure.
        yscale: "linear" or "symlog".
        linthresh: linear range of the symlog axis (default: initial std, see
            :func:`default_linthresh`).
        ylim: (low, high) y range; ``None`` fits the data.
        color: band colour (default: the method's, :data:`wcviz.report.palette.METHOD_COLORS`).
        title: panel title (default: the run's label and the layer).
        legend: explain the band levels in a legend.
        pairs: the quantile pairs to fill (default: all the run recorded).

    Returns:
        The figure.
    """
    ds = an.as_dataset(run)
    layer = an.check_layer(ds, layer)
    color = color or run_colors([ds])[0]
    fig, ax = _new_axes(ax)
    draw_bands(ax, ds, layer, color, pairs=pairs)
    linthresh = linthresh or default_linthresh([ds], layer)
    _apply_yscale(ax, yscale, linthresh)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(EPOCH_LABEL)
    _epoch_ticks(ax)
    ax.set_ylabel(WEIGHT_LABEL if yscale == "linear" else f"{WEIGHT_LABEL}\n(symlog, linear within ±{linthresh:g})")
    ax.set_title(title if title is not None else f"{an.run_label(ds)} — {layer}")
    if legend:
        _outside_legend(ax, band_handles(band_pairs(ds) if pairs is None else pairs, color,
                                         _bound_name([ds], layer)))
    return fig


@style.styled
def band_panels(runs, layer: str | None = None, *, yscale: str = "linear",
                ylim: tuple[float, float] | None = None, titles: Sequence[str] | None = None,
                linthresh: float | None = None) -> Figure:
    """The runs' band plots of one layer side by side, sharing the y axis (the paper's Fig. 3).

    Args:
        runs: two or more runs (Datasets or paths), e.g. (baseline, WC).
        layer: layer name present in every run (default: the first layer).
        yscale: "linear" or "symlog".
        ylim: shared y range (a zoom, as in the paper's Fig. 4); ``None`` fits all runs.
        titles: panel titles (default: "(a) baseline", "(b) WC a=…, b=…").
        linthresh: symlog linear range.

    Returns:
        The figure, one panel per run.
    """
    runs = an.as_datasets(runs)
    layer = _check_common_layer(runs, layer)
    fig, axes = plt.subplots(1, len(runs), sharey=True, squeeze=False,
                             figsize=style.figsize(2, row_height=2.4))
    labels = an.unique_labels(runs)
    linthresh = linthresh or default_linthresh(runs, layer)
    pairs = shared_pairs(runs)
    for i, (ax, ds, color) in enumerate(zip(axes[0], runs, run_colors(runs))):
        title = titles[i] if titles else f"({chr(97 + i)}) {labels[i]}"
        band_plot(ds, layer, ax=ax, yscale=yscale, linthresh=linthresh, title=title, legend=False,
                  color=color, pairs=pairs)
        if i:
            ax.set_ylabel("")
    if ylim is not None:
        axes[0][0].set_ylim(*ylim)
    # Name the bound line only if the (zoomed) y range shows it.
    visible = ylim is None or any(np.nanmin(an.bound_over_epochs(ds, layer)) < max(map(abs, ylim))
                                  for ds in runs)
    fig.legend(handles=band_handles(pairs, bound=_bound_name(runs, layer) if visible else None),
               loc="outside right center", handlelength=1.4)
    fig.suptitle(f"Weight distribution over epochs, layer {layer}"
                 + (f" (zoom to ±{max(map(abs, ylim)):.3g})" if ylim else ""), fontsize=9)
    return fig


#: Most layers :func:`write_paper_figures` puts in its small multiples (a page's height).
GRID_MAX_LAYERS = 8


def grid_layers(names: Sequence[str], most: int = GRID_MAX_LAYERS) -> list[str]:
    """All layers if there are at most ``most``, else ``most`` spread evenly over depth
    (always the first and the last)."""
    if len(names) <= most:
        return list(names)
    picks = np.unique(np.linspace(0, len(names) - 1, most).round().astype(int))
    return [names[i] for i in picks]


def paper_fig3(baseline, wc, layer: str | None = None, yscale: str = "linear") -> Figure:
    """The paper's Fig. 3: baseline (a) and WC (b) bands of one layer, shared y axis."""
    return band_panels([baseline, wc], layer, yscale=yscale)


def default_zoom(runs: Sequence[xr.Dataset], layer: str) -> float:
    """Fig. 4's half range: the companded runs' largest |w|, ×1.05 rounded up to a round number.

    So the zoom fills the panel with the whole WC distribution (as the paper's Fig. 4 does)
    and crops the baseline's tails; all runs' |w| when none is companded.
    """
    chosen = [ds for ds in runs if not an.is_baseline(ds)] or list(runs)
    top = max(float(np.nanmax(an.absmax_over_epochs(ds, layer))) for ds in chosen)
    return nice_ceil(1.05 * top) if top > 0 else 1.0


def nice_ceil(x: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (× a power of ten) that is ≥ x."""
    power = 10.0 ** np.floor(np.log10(x))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * power >= x * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)


def paper_fig4(baseline, wc, layer: str | None = None, zoom: float | None = None) -> Figure:
    """The paper's Fig. 4: Fig. 3 zoomed to ±``zoom`` (default :func:`default_zoom`)."""
    runs = an.as_datasets([baseline, wc])
    layer = _check_common_layer(runs, layer)
    zoom = zoom or default_zoom(runs, layer)
    if not zoom > 0:
        raise WcvizError(f"zoom must be a positive half range of y, got {zoom!r}")
    return band_panels(runs, layer, ylim=(-zoom, zoom))


@style.styled
def overlay_bands(runs, layer: str | None = None, *, ax=None, yscale: str = "linear",
                  ylim: tuple[float, float] | None = None, linthresh: float | None = None) -> Figure:
    """Several runs' bands of one layer on one axis, one colour per run.

    Args:
        runs: runs (Datasets or paths).
        layer: layer present in every run (default: the first).
        ax: draw into this axis.
        yscale: "linear" or "symlog".
        ylim: y range.
        linthresh: symlog linear range.

    Returns:
        The figure.
    """
    runs = an.as_datasets(runs)
    layer = _check_common_layer(runs, layer)
    fig, ax = _new_axes(ax, style.figsize(1, row_height=2.6))
    pairs = shared_pairs(runs)
    for ds, label, color in zip(runs, an.unique_labels(runs), run_colors(runs)):
        draw_bands(ax, ds, layer, color, label=label, pairs=pairs)
    _apply_yscale(ax, yscale, linthresh or default_linthresh(runs, layer))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set(xlabel=EPOCH_LABEL, ylabel=WEIGHT_LABEL, title=f"layer {layer}: median and bands")
    _epoch_ticks(ax)
    _outside_legend(ax)
    return fig


@style.styled
def layer_grid(run, other=None, *, layers: Sequence[str] | None = None, yscale: str = "linear",
               ncols: int = 4, linthresh: float | None = None) -> Figure:
    """Small multiples: the band plot of every layer of a run (or two runs side by side).

    Args:
        run: a run.
        other: a second run; then each row is one layer, with ``run`` left and ``other`` right
            on a shared y axis.
        layers: the layers to show (default: all recorded layers of ``run``).
        yscale: "linear" or "symlog".
        ncols: panels per row for a single run.
        linthresh: symlog linear range.

    Returns:
        The figure.
    """
    runs = [an.as_dataset(run)] + ([an.as_dataset(other)] if other is not None else [])
    layers = [_check_common_layer(runs, name) for name in (layers or an.layer_names(runs[0]))]
    if other is None:
        ncols = max(1, min(ncols, len(layers)))
        nrows = -(-len(layers) // ncols)
        fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                                 figsize=style.figsize(2, rows=nrows, row_height=1.6))
        cells = [(axes.flat[i], 0, name) for i, name in enumerate(layers)]
        for ax in axes.flat[len(layers):]:
            ax.set_visible(False)
    else:
        fig, axes = plt.subplots(len(layers), 2, squeeze=False, sharey="row",
                                 figsize=style.figsize(2, rows=len(layers), row_height=1.5))
        cells = [(axes[r][c], c, name) for r, name in enumerate(layers) for c in range(2)]
    labels = an.unique_labels(runs)
    colors = run_colors(runs)
    pairs = shared_pairs(runs)
    for ax, which, name in cells:
        draw_bands(ax, runs[which], name, colors[which], pairs=pairs)
        _apply_yscale(ax, yscale, linthresh or default_linthresh(runs, name))
        ax.set_title(name if other is None else f"({chr(97 + which)}) {labels[which]}: {name}", fontsize=7)
        ax.tick_params(labelsize=6)
        _epoch_ticks(ax)
    fig.supxlabel(EPOCH_LABEL, fontsize=8)
    fig.supylabel(WEIGHT_LABEL, fontsize=8)
    return fig
