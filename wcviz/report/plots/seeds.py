"""Seed aggregation: band plots, metric curves and near-zero fractions as mean (± std) over
runs that differ only by seed, grouped and folded by :mod:`wcviz.report.seeds`.

A group's mean line has gid ``"mean:<group key>"`` and its mean ± std band ``"std:<group key>"``."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.report.bands import BAND_OPACITY, band_pairs, median_quantile
from wcviz.report.palette import run_colors
from wcviz.report.plots._axes import (EPOCH_LABEL, WEIGHT_LABEL, _apply_yscale, _check_common_layer,
                               _common_layers, _epoch_ticks, _finish_axes, _new_axes,
                               _outside_legend)
from wcviz.report.plots.bands import band_handles, default_linthresh, shared_levels
from wcviz.report.seeds import SEED, fold, iter_groups, stack


def _mean_spread(curves: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """The seed mean of ``curves`` and its std over seeds (:func:`wcviz.report.seeds.fold`),
    of zero width for one seed: its line is drawn, without a spread around it."""
    folded = fold(curves)
    std = folded["std"] if curves.sizes[SEED] > 1 else xr.zeros_like(folded["mean"])
    return folded["mean"], std


def _mean_std(ax, x, curves: xr.DataArray, key: str, color: str, label: str, **line) -> None:
    """One seed group's mean line (gid ``mean:<key>``) and its mean ± std band over seeds
    (gid ``std:<key>``; no width for one seed) from ``curves`` over ``seed`` and x."""
    mean, std = _mean_spread(curves)
    ax.plot(x, mean, color=color, label=label, gid=f"mean:{key}", **line)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.25, linewidth=0, gid=f"std:{key}")


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
    curves = {q: _mean_spread(stack(runs, lambda ds, q=q: an.quantile_curve(ds, layer, q)))
              for q in levels}
    x = np.asarray(next(iter(curves.values()))[0]["epoch"], dtype=float)
    for lo, hi in pairs:
        ax.fill_between(x, curves[lo][0], curves[hi][0], color=color,
                        alpha=BAND_OPACITY, linewidth=0, gid=f"band:{lo:g}:{hi:g}")
    for q in (0.0, mid, 1.0):
        if q in curves:
            mean, std = curves[q]
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

    Runs are grouped by everything but the seed (:func:`wcviz.report.seeds.iter_groups`).

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
    groups = iter_groups(runs)
    colors = run_colors([group[0] for group in groups.values()])
    for (key, group), color in zip(groups.items(), colors):
        values = (lambda ds: an.as_percent(an.metric_values(ds, metric))) if pct else \
            (lambda ds: an.metric_values(ds, metric))
        curves = stack(group, values)
        _mean_std(ax, np.asarray(curves["epoch"], dtype=float), curves, key, color,
                  f"{an.run_label(group[0])} (n={len(group)})")
    unit = "accuracy (%)" if pct else ("loss (nats)" if metric.endswith("_loss") else metric)
    _epoch_ticks(ax)
    ax.set(xlabel=EPOCH_LABEL, ylabel=f"{metric.split('_')[0]} {unit}",
           title=f"{metric.split('_')[0]} {unit.split(' ')[0]}: mean ± std over seeds")
    _outside_legend(ax)
    return fig


def _labelled_groups(runs, threshold):
    """Runs (as Datasets), their threshold label, and the seed groups with a colour each."""
    runs = an.as_datasets(runs)
    label = an.select_threshold(runs[0], threshold)
    groups = iter_groups(runs)
    return runs, label, groups, run_colors([group[0] for group in groups.values()])


@style.styled
def seed_near_zero(runs, threshold: str | float | None = None, layer: str | None = None, *,
                   ax=None) -> Figure:
    """Near-zero fraction over epochs as mean ± std over seeds, one line and band per
    configuration (:func:`wcviz.report.seeds.iter_groups`), as
    :func:`wcviz.report.plots.near_zero_over_epochs` draws one run: of one layer, or of all weights
    (each run's size-weighted fraction first).

    Args:
        runs: runs (Datasets or paths).
        threshold: threshold label or value (see :func:`wcviz.report.analysis.select_threshold`).
        layer: one layer; ``None`` for the whole network.
        ax: draw into this axis.

    Returns:
        The figure.
    """
    runs, label, groups, colors = _labelled_groups(runs, threshold)
    if layer is not None:
        layer = _check_common_layer(runs, layer)
    fig, ax = _new_axes(ax)
    for (key, group), color in zip(groups.items(), colors):
        curves = stack(group, lambda ds: 100 * an.near_zero(ds, an.select_threshold(ds, label), layer))
        _mean_std(ax, np.asarray(curves["epoch"], dtype=float), curves, key, color,
                  f"{an.run_label(group[0])} (n={len(group)})",
                  marker="o" if curves.sizes["epoch"] <= 30 else None, markersize=2.5)
    where = f"layer {layer}" if layer else "all weights"
    _finish_axes(ax, f"{an.threshold_text(runs[0], label)}, {where}: mean ± std over seeds")
    return fig


@style.styled
def seed_near_zero_by_layer(runs, threshold: str | float | None = None, *, epoch: int = -1,
                            ax=None, show_init: bool = True) -> Figure:
    """Near-zero fraction per layer (x = depth) at one epoch as mean ± std over seeds, one
    line and band per configuration, as :func:`wcviz.report.plots.near_zero_by_layer` draws one run.

    Args:
        runs: runs sharing their layers.
        threshold: threshold label or value.
        epoch: epoch index of each run (position; -1 = its last record); the legend names
            the epochs the seeds were taken at.
        ax: draw into this axis.
        show_init: also draw the first group's seed-mean epoch-0 fractions in grey.

    Returns:
        The figure.
    """
    runs, label, groups, colors = _labelled_groups(runs, threshold)
    layers = _common_layers(runs)
    fig, ax = _new_axes(ax, style.figsize(1, row_height=2.6))
    depth = np.arange(len(layers))

    def at(ds, index):
        return ds["near_zero_fraction"].sel(threshold=an.select_threshold(ds, label),
                                            layer=layers).isel(epoch=index)

    if show_init:
        init = xr.DataArray([100 * np.asarray(at(ds, 0), dtype=float)
                             for ds in next(iter(groups.values()))], dims=(SEED, "layer"))
        ax.plot(depth, fold(init)["mean"], color=style.REFERENCE_COLOR, linestyle=":",
                marker=".", label="init (epoch 0)", gid="init")
    for (key, group), color in zip(groups.items(), colors):
        cut = [at(ds, epoch) for ds in group]
        shown = "/".join(f"{e:g}" for e in dict.fromkeys(float(c["epoch"]) for c in cut))
        values = xr.DataArray([100 * np.asarray(c, dtype=float) for c in cut], dims=(SEED, "layer"))
        _mean_std(ax, depth, values, key, color,
                  f"{an.run_label(group[0])} (n={len(group)}, epoch {shown})",
                  marker="o", markersize=3)
    _finish_axes(ax, f"{an.threshold_text(runs[0], label)}, by layer depth: mean ± std over seeds",
                 layers)
    return fig
