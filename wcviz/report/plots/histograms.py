"""The recorded histograms over epochs, gradient bands beside weight bands, and the update ratio.

* :func:`histogram_heatmap`: one layer's histogram per record as a column of an epoch × weight
  heatmap (colour = log10 of 1 + the count), runs side by side;
* :func:`histogram_ridgelines`: the same histograms as TensorBoard's offset view: one curve per
  record, later records lower and darker, runs side by side;
* :func:`gradient_bands`: the weight's percentile bands beside the gradient's (``grad_quantile``,
  recorded with ``gradients=True``), one row per run;
* :func:`update_ratio_plot`: ‖w_t − w_prev‖ / ‖w_prev‖ per layer over epochs on a log axis, with
  the customary 1e-3 reference line (gid ``"reference"``).

Artists carry a ``gid``: ``"heatmap"`` (the mesh), ``"ridge:<epoch>"`` (a record's curve),
``"ratio:<layer>"`` (a layer's update-ratio line), plus the band gids of :func:`draw_bands`.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from wcviz.errors import WcvizError
from wcviz.record.measures import UPDATE_RATIO_REFERENCE
from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.report.palette import run_colors
from wcviz.report.plots._axes import (EPOCH_LABEL, WEIGHT_LABEL, _check_common_layer,
                                      _epoch_ticks, _outside_legend)
from wcviz.report.plots.bands import draw_bands

GRAD_LABEL = "gradient ∂L/∂w"


def _panels(n: int, rows: int = 1, width: float = 2.4, height: float = 2.2):
    fig, axes = plt.subplots(rows, n, figsize=(width * n, height * rows), squeeze=False,
                             constrained_layout=True)
    return fig, axes


def _run_histograms(ds, layer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, bin edges, counts (epoch, bin)) of one run's layer."""
    epochs = an.epochs(ds)
    edges = np.asarray(ds["bin_edges"].sel(layer=layer).values, dtype=float)
    counts = np.asarray(ds["weight_histogram"].sel(layer=layer).values, dtype=float)
    return epochs, edges, counts


@style.styled
def histogram_heatmap(runs, layer: str | None = None) -> Figure:
    """One layer's recorded histograms over epochs as a heatmap, one panel per run.

    x = epoch (each record spans to the next), y = weight value over the layer's fixed bin
    edges, colour = log10(1 + count).
    """
    runs = an.as_datasets(runs)
    layer = _check_common_layer(runs, layer)
    fig, axes = _panels(len(runs))
    for ax, ds in zip(axes[0], runs):
        epochs, edges, counts = _run_histograms(ds, layer)
        x = np.append(epochs, epochs[-1] + (epochs[-1] - epochs[-2] if len(epochs) > 1 else 1))
        mesh = ax.pcolormesh(x, edges, np.log10(1 + np.nan_to_num(counts)).T, cmap="viridis",
                             shading="flat", gid="heatmap")
        ax.set(xlabel=EPOCH_LABEL, ylabel=WEIGHT_LABEL, title=f"{an.run_attr(ds, 'run_id', '')}\n{layer}")
        _epoch_ticks(ax)
    fig.colorbar(mesh, ax=axes[0, -1], label="log10(1 + count)")
    return fig


@style.styled
def histogram_ridgelines(runs, layer: str | None = None, max_records: int = 30,
                         overlap: float = 2.0) -> Figure:
    """TensorBoard-style offset histograms: one curve per record, each drawn ``overlap``
    spacings tall, the first record on top, later ones lower and darker; one panel per run.
    At most ``max_records`` records are drawn (evenly spaced, the last always)."""
    runs = an.as_datasets(runs)
    layer = _check_common_layer(runs, layer)
    fig, axes = _panels(len(runs), height=3.0)
    for ax, ds in zip(axes[0], runs):
        epochs, edges, counts = _run_histograms(ds, layer)
        keep = np.unique(np.linspace(0, len(epochs) - 1, min(max_records, len(epochs)))
                         .round().astype(int))
        centres = (edges[:-1] + edges[1:]) / 2
        top = np.nanmax(counts[keep]) if np.isfinite(counts[keep]).any() else 1.0
        cmap = plt.get_cmap("YlOrBr")
        for rank, k in enumerate(keep):
            base = -rank  # one spacing per drawn record, the first on top
            curve = base + overlap * np.nan_to_num(counts[k]) / (top or 1.0)
            shade = cmap(0.35 + 0.6 * rank / max(1, len(keep) - 1))
            ax.fill_between(centres, base, curve, color=shade, alpha=0.8, linewidth=0.6,
                            edgecolor="black", zorder=rank, gid=f"ridge:{epochs[k]:g}")
        ax.set_yticks([-r for r in range(len(keep))][::max(1, len(keep) // 6)],
                      [f"{epochs[k]:g}" for k in keep][::max(1, len(keep) // 6)])
        ax.set(xlabel=WEIGHT_LABEL, ylabel="epoch", title=f"{an.run_attr(ds, 'run_id', '')}\n{layer}")
    return fig


@style.styled
def gradient_bands(runs, layer: str | None = None) -> Figure:
    """Per run, the weight's percentile bands (left) beside the gradient's (right).

    Raises:
        WcvizError: a run recorded no gradients (record with ``gradients=True``).
    """
    runs = an.as_datasets(runs)
    layer = _check_common_layer(runs, layer)
    for ds in runs:
        if "grad_quantile" not in ds:
            raise WcvizError(f"run {an.run_attr(ds, 'run_id', '?')} recorded no gradients; "
                             f"record with wcviz.Recorder(..., gradients=True)")
    colors = run_colors(runs)
    fig, axes = _panels(2, rows=len(runs), width=3.0)
    for row, (ds, color) in enumerate(zip(runs, colors)):
        draw_bands(axes[row, 0], ds, layer, color, label=an.run_attr(ds, "run_id", ""))
        grads = ds.assign(weight_quantile=ds["grad_quantile"])  # the same bands, of ∂L/∂w
        draw_bands(axes[row, 1], grads, layer, color, show_bound=False)
        for ax, ylabel in ((axes[row, 0], WEIGHT_LABEL), (axes[row, 1], GRAD_LABEL)):
            ax.set(xlabel=EPOCH_LABEL, ylabel=ylabel)
            _epoch_ticks(ax)
        axes[row, 0].set_title(f"{an.run_attr(ds, 'run_id', '')}: {layer} weights")
        axes[row, 1].set_title(f"{layer} gradients")
    return fig


@style.styled
def update_ratio_plot(runs, layers: Sequence[str] | None = None, *, ax=None) -> Figure:
    """‖w_t − w_prev‖ / ‖w_prev‖ per layer over epochs on a log axis, one line per (run,
    layer), with the 1e-3 reference line.

    Raises:
        WcvizError: a run has no ``update_ratio`` (recorded before it existed, or with
            ``update_ratio=False``).
    """
    runs = an.as_datasets(runs)
    for ds in runs:
        if "update_ratio" not in ds:
            raise WcvizError(f"run {an.run_attr(ds, 'run_id', '?')} has no update_ratio "
                             f"(recorded with update_ratio=False or by an older wcviz)")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=style.figsize(1))
    styles = ["-", "--", ":", "-."]
    cmap = plt.get_cmap("viridis")
    for r, ds in enumerate(runs):
        names = list(layers) if layers is not None else an.layer_names(ds)
        for i, name in enumerate(names):
            values = np.asarray(ds["update_ratio"].sel(layer=name).values, dtype=float)
            ax.plot(an.epochs(ds), values, linestyle=styles[r % len(styles)], linewidth=1.0,
                    color=cmap(i / max(1, len(names) - 1)), gid=f"ratio:{name}",
                    label=f"{name}" if len(runs) == 1 else f"{an.run_attr(ds, 'run_id', '')}: {name}")
    ax.axhline(UPDATE_RATIO_REFERENCE, color="black", linestyle=(0, (4, 2)), linewidth=0.8,
               gid="reference", label="1e-3")
    ax.set_yscale("log")
    ax.set(xlabel=EPOCH_LABEL, ylabel="update ratio ‖Δw‖ / ‖w‖", title="update ratio per layer")
    _epoch_ticks(ax)
    _outside_legend(ax)
    return fig
