"""Paper figures from run stores: percentile bands (Fig. 3/4), near-zero fractions, a/b, metrics.

Every function takes runs as :func:`wcviz.open_run` Datasets or run paths, draws with the
style of :mod:`wcviz.style`, and returns the :class:`matplotlib.figure.Figure`; functions that
draw one axis accept ``ax=`` to draw into an existing one. :func:`save_figure` writes a figure
as PDF/SVG/PNG and :func:`write_paper_figures` writes the whole set for a group of runs (the
demo and ``wcviz figures`` use it).

Band plots follow TensorBoard's distribution view, with exact values: one nested band per
symmetric pair of the quantile levels the store recorded (:func:`wcviz.bands.band_pairs`; by
default min–max, 6.68–93.32 %, 15.87–84.13 %, 30.85–69.15 %: min/max and the ±1.5σ, ±1σ,
±0.5σ points of a normal) and the median line. Runs are coloured by method
(:func:`wcviz.palette.run_colors`).

Artists carry a ``gid`` so that tests and tools can find them: ``"band:<lo>:<hi>"`` for a
band (a PolyCollection whose edges are the two quantile curves), ``"median"`` for the median
line, ``"bound"`` for the ±aπ/2 line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
from matplotlib.patches import Patch
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from wcviz import analysis as an
from wcviz import style
from wcviz.bands import BAND_OPACITY, band_label, band_pairs, median_quantile, quantile_levels
from wcviz.errors import WcvizError
from wcviz.palette import run_colors

#: Output formats :func:`save_figure` writes.
FORMATS = ("pdf", "svg", "png")
WEIGHT_LABEL = "weight value w (unitless)"
NEAR_ZERO_LABEL = "near-zero weights (%)"
EPOCH_LABEL = "epoch (passes over the training set)"


# --------------------------------------------------------------------------- helpers


def _new_axes(ax, size=None):
    """(figure, axis): the given axis and its figure, or a new one-column figure."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size or style.figsize(1))
    return fig, ax


def _epoch_ticks(ax) -> None:
    """Epoch ticks at whole epochs (records are whole epochs, sub-epoch ones in between)."""
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def _apply_yscale(ax, yscale: str, linthresh: float | None) -> None:
    if yscale == "symlog":
        ax.set_yscale("symlog", linthresh=linthresh or 1e-2)
    elif yscale != "linear":
        raise WcvizError(f"unknown y scale {yscale!r}; choose linear or symlog")


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


def _check_common_layer(runs: Sequence[xr.Dataset], layer: str | None) -> str:
    name = an.check_layer(runs[0], layer)
    for ds in runs[1:]:
        an.check_layer(ds, name)
    return name


# --------------------------------------------------------------------------- band plots


def draw_bands(ax, ds: xr.Dataset, layer: str, color: str, label: str | None = None,
               show_bound: bool = True, pairs: Sequence[tuple[float, float]] | None = None) -> None:
    """Draw the nested quantile bands, the median and (companded runs) ±bound of one layer.

    Args:
        ax: matplotlib axis.
        ds: the run.
        layer: a recorded layer name.
        color: the run's colour; bands are this colour at :data:`wcviz.bands.BAND_OPACITY` each.
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


def _outside_legend(ax, handles=None) -> None:
    """Legend to the right of the axis, so it never hides data."""
    kw = {"handles": handles} if handles is not None else {}
    ax.legend(**kw, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              handlelength=1.4)


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
        color: band colour (default: the method's, :data:`wcviz.palette.METHOD_COLORS`).
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


# --------------------------------------------------------------------------- near-zero fractions


@style.styled
def near_zero_over_epochs(runs, threshold: str | float | None = None, layer: str | None = None,
                          *, ax=None, how: str = "weights") -> Figure:
    """Fraction of near-zero weights over epochs, one line per run, one threshold.

    Args:
        runs: runs (Datasets or paths).
        threshold: threshold label or value (see :func:`wcviz.analysis.select_threshold`).
        layer: one layer; ``None`` for the whole network.
        ax: draw into this axis.
        how: whole-network aggregation (:func:`wcviz.measures.network_fraction`): "weights"
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
    for ds, name, color in zip(runs, an.unique_labels(runs), run_colors(runs)):
        for kind in (kinds if layer is None else ["weights"]):
            frac = an.near_zero(ds, an.select_threshold(ds, label), layer, how=kind)
            linestyle, gid = styles[kind]
            ax.plot(an.epochs(ds), 100 * frac, color=color, linestyle=linestyle,
                    label=name if gid is None or len(kinds) == 1 else None, gid=gid,
                    marker="o" if ds.sizes["epoch"] <= 30 and gid is None else None,
                    markersize=2.5)
    where = f"layer {layer}" if layer else {"weights": "all weights", "layers": "layer-mean",
                                            "both": "all weights (—), layer-mean (--)"}[how]
    _epoch_ticks(ax)
    ax.set(xlabel=EPOCH_LABEL, ylabel=NEAR_ZERO_LABEL,
           title=f"{an.threshold_text(runs[0], label)}, {where}")
    ax.set_ylim(bottom=0)
    _outside_legend(ax)
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
    layers = [n for n in an.layer_names(runs[0]) if all(n in an.layer_names(ds) for ds in runs[1:])]
    fig, ax = _new_axes(ax, style.figsize(1, row_height=2.6))
    depth = np.arange(len(layers))
    if show_init:
        init = runs[0]["near_zero_fraction"].sel(threshold=label, layer=layers).isel(epoch=0)
        ax.plot(depth, 100 * np.asarray(init, dtype=float), color=style.REFERENCE_COLOR,
                linestyle=":", marker=".", label="init (epoch 0)", gid="init")
    for ds, name, color in zip(runs, an.unique_labels(runs), run_colors(runs)):
        at = ds["near_zero_fraction"].sel(threshold=an.select_threshold(ds, label), layer=layers)
        at = at.isel(epoch=epoch)
        ax.plot(depth, 100 * np.asarray(at, dtype=float), color=color,
                marker="o", markersize=3, label=f"{name} (epoch {float(at['epoch']):g})")
    _layer_ticks(ax, layers)
    ax.set(xlabel="layer (input → output)",
           ylabel=NEAR_ZERO_LABEL, title=f"{an.threshold_text(runs[0], label)}, by layer depth")
    ax.set_ylim(bottom=0)
    _outside_legend(ax)
    return fig


def _layer_ticks(ax, layers: Sequence[str], most: int = 16) -> None:
    """Layer names as x tick labels, thinned to at most ``most``."""
    step = max(1, -(-len(layers) // most))
    ticks = list(range(0, len(layers), step))
    crowded = len(ticks) > 6 or max(len(n) for n in layers) > 8
    ax.set_xticks(ticks, [layers[i] for i in ticks], rotation=45 if crowded else 0,
                  ha="right" if crowded else "center", fontsize=6)


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
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3))
    label = an.select_threshold(runs[0], threshold)
    note = ", σ₀ = the layer's weight std at init" if "σ₀" in an.threshold_text(runs[0], label) else ""
    fig.suptitle(f"Fraction of near-zero weights, {an.threshold_text(runs[0], label)}{note}", fontsize=9)
    return fig


@style.styled
def near_zero_measures(runs, labels: Sequence[str] | None = None) -> Figure:
    """Every near-zero measure side by side: one panel per threshold, network fraction over
    epochs per run, the weight-weighted fraction solid and the layer-mean dashed.

    Puts the measures of :mod:`wcviz.measures` next to each other, so a reader sees whether
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


# --------------------------------------------------------------------------- learnable a, b


@style.styled
def ab_trajectories(run, layers: Sequence[str] | None = None) -> Figure:
    """a and b of every layer over epochs for a learnable run (the paper's Sec. IV-E).

    Lines are coloured by layer depth (viridis); linear layers are dashed so the classifier
    (whose a and b grow large in the paper) stands out.

    Args:
        run: a run whose a, b were learned.
        layers: layers to draw (default: all).

    Returns:
        The figure: (a) a per layer, (b) b per layer.

    Raises:
        WcvizError: when the run recorded no a, b.
    """
    ds = an.as_dataset(run)
    layers = [an.check_layer(ds, n) for n in (layers or an.layer_names(ds))]
    if "a" not in ds or not np.isfinite(np.asarray(ds["a"].values, dtype=float)).any():
        raise WcvizError(f"run {ds.attrs.get('run_id', '?')} recorded no a, b "
                         "(it is not companded); pick a WC run, ideally with learnable a, b")
    fig, axes = plt.subplots(1, 2, figsize=style.figsize(2, row_height=2.6))
    # viridis without its last, light-yellow 15 %, which is hard to see on white
    cmap = matplotlib.colors.ListedColormap(plt.get_cmap(style.DEPTH_CMAP)(np.linspace(0, 0.85, 256)))
    for depth, name in enumerate(layers):
        color = cmap(depth / max(1, len(layers) - 1))
        for ax, var in zip(axes, ("a", "b")):
            ax.plot(an.epochs(ds), an.scale_over_epochs(ds, var, name), color=color,
                    linestyle=_kind_style(ds, name), linewidth=1.0, label=name, gid=f"{var}:{name}")
    init = {var: an.run_attr(ds, var) for var in ("a", "b")}
    for ax, var, unit in zip(axes, ("a", "b"), ("a (bound: |w| < aπ/2)", "b (scale of v)")):
        ax.set(xlabel=EPOCH_LABEL, ylabel=unit, title=f"({var}) learned {var} per layer")
        _epoch_ticks(ax)
        if init[var] is not None:
            ax.axhline(float(init[var]), color=style.REFERENCE_COLOR, linestyle=":", linewidth=0.8,
                       gid=f"init:{var}")
    if len(layers) <= LEGEND_MAX_LAYERS:
        handles = [plt.Line2D([], [], color=cmap(d / max(1, len(layers) - 1)),
                              linestyle=_kind_style(ds, n), label=n) for d, n in enumerate(layers)]
        handles.append(plt.Line2D([], [], color=style.REFERENCE_COLOR, linestyle=":", label="init"))
        fig.legend(handles=handles, loc="outside right center", title="layer", title_fontsize=7)
    else:
        norm = matplotlib.colors.Normalize(0, len(layers) - 1)
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.9)
        bar.ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        bar.set_label("layer depth (0 = input)")
    fig.suptitle(f"{an.run_label(ds)} (dashed: linear layers; dotted: initial value)", fontsize=9)
    return fig


#: Up to this many layers, a/b lines are named in a legend; beyond, a depth colour bar.
LEGEND_MAX_LAYERS = 10


def _kind_style(ds: xr.Dataset, layer: str) -> str:
    return "--" if str(ds["layer_kind"].sel(layer=layer).values) == "Linear" else "-"


# --------------------------------------------------------------------------- metrics


METRIC_STYLES = {"train": "-", "val": "--", "test": ":"}


@style.styled
def metrics_curves(runs) -> Figure:
    """Loss and accuracy over epochs: colour = run, line style = split (train/val/test).

    Args:
        runs: runs (Datasets or paths).

    Returns:
        The figure: (a) loss in nats, (b) accuracy in %.
    """
    runs = an.as_datasets(runs)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=style.figsize(2, row_height=2.6))
    for ds, name, color in zip(runs, an.unique_labels(runs), run_colors(runs)):
        for split, dash in METRIC_STYLES.items():
            for ax, metric, scale in ((loss_ax, f"{split}_loss", None), (acc_ax, f"{split}_acc", "pct")):
                y = an.metric_values(ds, metric)
                mask = np.isfinite(y)
                if not mask.any():
                    continue
                y = an.as_percent(y) if scale else y
                ax.plot(an.epochs(ds)[mask], y[mask], color=color, linestyle=dash, gid=f"{metric}:{name}")
    loss_ax.set(xlabel=EPOCH_LABEL, ylabel="cross-entropy loss (nats)", title="(a) loss")
    acc_ax.set(xlabel=EPOCH_LABEL, ylabel="accuracy (%)", title="(b) accuracy")
    _epoch_ticks(loss_ax)
    _epoch_ticks(acc_ax)
    fig.legend(handles=_metric_handles(runs), loc="outside right center", handlelength=2.0)
    return fig


def _metric_handles(runs) -> list:
    names = an.unique_labels(runs)
    handles = [plt.Line2D([], [], color=c, label=n) for c, n in zip(run_colors(runs), names)]
    return handles + [plt.Line2D([], [], color="0.3", linestyle=d, label=s) for s, d in METRIC_STYLES.items()]


# --------------------------------------------------------------------------- seed aggregation


def _stack(runs: Sequence[xr.Dataset], values) -> xr.DataArray:
    """Per-run curves (epoch,) stacked on a ``seed`` axis, on the epochs all runs share."""
    arrays = [xr.DataArray(values(ds), dims="epoch", coords={"epoch": an.epochs(ds)}) for ds in runs]
    arrays = xr.align(*arrays, join="inner")
    if arrays[0].sizes["epoch"] == 0:
        raise WcvizError("the runs share no recorded epoch; seed aggregation needs common epochs")
    return xr.concat(arrays, dim="seed")


@style.styled
def seed_bands(runs, layer: str | None = None, *, ax=None, color: str | None = None,
               yscale: str = "linear") -> Figure:
    """Band plot of the seed-mean quantiles of one layer, with the spread over seeds.

    Each band edge is the mean over seeds of that quantile. The spread over seeds (mean ± std)
    of the median, min and max is drawn as thin dotted lines.

    Args:
        runs: runs of one configuration that differ by seed.
        layer: layer present in every run.
        ax: draw into this axis.
        color: colour (default by method).
        yscale: "linear" or "symlog".

    Returns:
        The figure.
    """
    runs = an.as_datasets(runs)
    layer = _check_common_layer(runs, layer)
    color = color or run_colors(runs[:1])[0]
    fig, ax = _new_axes(ax)
    levels = shared_levels(runs)
    pairs, mid = band_pairs(levels), median_quantile(levels)
    curves = {q: _stack(runs, lambda ds, q=q: an.quantile_curve(ds, layer, q)) for q in levels}
    x = np.asarray(next(iter(curves.values()))["epoch"], dtype=float)
    for lo, hi in pairs:
        ax.fill_between(x, curves[lo].mean("seed"), curves[hi].mean("seed"), color=color,
                        alpha=BAND_OPACITY, linewidth=0, gid=f"band:{lo:g}:{hi:g}")
    for q in (0.0, mid, 1.0):
        if q in curves:
            mean, std = curves[q].mean("seed"), curves[q].std("seed", ddof=1 if len(runs) > 1 else 0)
            if q == mid:
                ax.plot(x, mean, color=color, linewidth=1.0, gid="median", label="median (seed mean)")
            for sign in (1, -1):
                ax.plot(x, mean + sign * std, color=color, linestyle=":", linewidth=0.7,
                        gid=f"spread:{q:g}", label="± std over seeds" if (sign == 1 and q == 0.0) else None)
    _apply_yscale(ax, yscale, default_linthresh(runs, layer))
    _epoch_ticks(ax)
    ax.set(xlabel=EPOCH_LABEL, ylabel=WEIGHT_LABEL,
           title=f"{an.run_label(runs[0])}, layer {layer}: mean of {len(runs)} seeds")
    handles = band_handles(pairs, color)[:-1] + ax.get_legend_handles_labels()[0]
    _outside_legend(ax, handles)
    return fig


@style.styled
def seed_metric(runs, metric: str = "test_acc", *, ax=None) -> Figure:
    """A metric over epochs as mean ± std over seeds, one line and band per configuration.

    Runs are grouped by everything but the seed (:func:`wcviz.analysis.iter_groups`).

    Args:
        runs: runs (Datasets or paths).
        metric: a metric variable, e.g. "test_acc", "val_loss".
        ax: draw into this axis.

    Returns:
        The figure.
    """
    runs = an.as_datasets(runs)
    fig, ax = _new_axes(ax)
    pct = metric.endswith("_acc")
    groups = an.iter_groups(runs)
    colors = run_colors([group[0] for group in groups.values()])
    for (key, group), color in zip(groups.items(), colors):
        values = (lambda ds: an.as_percent(an.metric_values(ds, metric))) if pct else \
            (lambda ds: an.metric_values(ds, metric))
        curves = _stack(group, values)
        x = np.asarray(curves["epoch"], dtype=float)
        mean = curves.mean("seed")
        std = curves.std("seed", ddof=1) if len(group) > 1 else xr.zeros_like(mean)
        ax.plot(x, mean, color=color, label=f"{an.run_label(group[0])} (n={len(group)})", gid=f"mean:{key}")
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.25, linewidth=0, gid=f"std:{key}")
    unit = "accuracy (%)" if pct else ("loss (nats)" if metric.endswith("_loss") else metric)
    _epoch_ticks(ax)
    ax.set(xlabel=EPOCH_LABEL, ylabel=f"{metric.split('_')[0]} {unit}",
           title=f"{metric.split('_')[0]} {unit.split(' ')[0]}: mean ± std over seeds")
    _outside_legend(ax)
    return fig


# --------------------------------------------------------------------------- files


def save_figure(fig: Figure, stem, formats: Sequence[str] = ("pdf", "png")) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format (pdf, svg, png at 300 dpi).

    Args:
        fig: the figure.
        stem: output path without extension; parent directories are created.
        formats: any of :data:`FORMATS`.

    Returns:
        The written paths, in the order of ``formats``.
    """
    formats = [f.lower().lstrip(".") for f in formats]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise WcvizError(f"unknown figure format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with style.paper_style():
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            fig.savefig(path, format=fmt, dpi=style.DPI)
            paths.append(path)
    return paths


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_paper_figures(runs, out_dir, formats: Sequence[str] = ("png", "pdf"), *,
                        layer: str | None = None, zoom: float | None = None,
                        threshold: str | float | None = None) -> list[Path]:
    """Write the paper's figures for a set of runs and return the files.

    With a baseline (method none) and a companded run among ``runs``: ``fig3_bands_<layer>``
    (Fig. 3: both band panels, shared y), ``fig4_bands_zoom_<layer>`` (Fig. 4: zoomed to
    ±``zoom``), ``layers_bands`` (baseline beside WC for every layer, or for
    :data:`GRID_MAX_LAYERS` spread over depth in deeper networks). Otherwise one
    ``bands_<run>_<layer>`` per run. Always ``near_zero`` (over epochs and by layer),
    ``near_zero_measures`` (every threshold kind, all weights and layer-mean) and
    ``metrics`` (loss/accuracy); ``ab_<run>`` for each run with learnable a, b;
    ``seeds_test_acc`` (mean ± std over seeds) when a configuration has several seeds.

    Args:
        runs: run directories or Datasets.
        out_dir: output directory (created).
        formats: file formats (see :func:`save_figure`).
        layer: layer of the band figures (default: the first layer, as in the paper).
        zoom: Fig. 4's half range (default: :func:`default_zoom`).
        threshold: near-zero threshold (default: :func:`wcviz.analysis.select_threshold`'s).

    Returns:
        Paths of the written files.
    """
    runs = an.as_datasets(runs)
    if not runs:
        raise WcvizError("no runs given; pass run directories (e.g. runs/<run_id>)")
    # Legends in the paper's order: baseline, WC, learnable WC, other methods.
    order = {"none": 0, "arctan": 1, "arctan+learnable": 2}
    runs = sorted(runs, key=lambda ds: order.get(an.run_kind(ds), 3))
    out = Path(out_dir)
    written: list[Path] = []

    def emit(fig: Figure, name: str) -> None:
        written.extend(save_figure(fig, out / _safe(name), formats))
        plt.close(fig)

    base = next((ds for ds in runs if an.is_baseline(ds)), None)
    comp = next((ds for ds in runs if not an.is_baseline(ds) and not an.is_learnable(ds)), None)
    comp = comp or next((ds for ds in runs if not an.is_baseline(ds)), None)
    layer = _check_common_layer(runs, layer)
    if base is not None and comp is not None:
        emit(paper_fig3(base, comp, layer), f"fig3_bands_{layer}")
        emit(paper_fig4(base, comp, layer, zoom), f"fig4_bands_zoom_{layer}")
        emit(layer_grid(base, comp, layers=grid_layers(an.layer_names(base))), "layers_bands")
    else:
        for ds in runs:
            emit(band_plot(ds, layer), f"bands_{ds.attrs.get('run_id', 'run')}_{layer}")
    emit(near_zero_figure(runs, threshold), "near_zero")
    emit(near_zero_measures(runs), "near_zero_measures")
    for ds in runs:
        if an.is_learnable(ds):
            emit(ab_trajectories(ds), f"ab_{ds.attrs.get('run_id', 'run')}")
    emit(metrics_curves(runs), "metrics")
    if any(len(group) > 1 for group in an.iter_groups(runs).values()):
        emit(seed_metric(runs, "test_acc"), "seeds_test_acc")
    return written
