"""What every figure family of :mod:`wcviz.report.plots` shares: axis labels (with units), a new
or given axis, whole-epoch ticks, the y scale, the legend outside the axis, the check that
several runs share a layer (or the layers they all have), and a near-zero axis's finish (the
per-run and the seed-group figures)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import xarray as xr

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.errors import WcvizError

WEIGHT_LABEL = "weight value w (unitless)"
NEAR_ZERO_LABEL = "near-zero weights (%)"
EPOCH_LABEL = "epoch (passes over the training set)"


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


def _outside_legend(ax, handles=None) -> None:
    """Legend to the right of the axis, so it never hides data."""
    kw = {"handles": handles} if handles is not None else {}
    ax.legend(**kw, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              handlelength=1.4)


def _check_common_layer(runs: Sequence[xr.Dataset], layer: str | None) -> str:
    name = an.check_layer(runs[0], layer)
    for ds in runs[1:]:
        an.check_layer(ds, name)
    return name


def _common_layers(runs: Sequence) -> list[str]:
    """The layers every run recorded, in the first run's (model) order."""
    return [n for n in an.layer_names(runs[0]) if all(n in an.layer_names(ds) for ds in runs[1:])]


def _finish_axes(ax, title: str, layers: Sequence[str] | None = None) -> None:
    """A near-zero axis: x = epochs (whole-epoch ticks), or the ``layers`` by depth (named
    ticks); y in % from 0; labels with units, ``title``, the legend outside."""
    if layers is None:
        _epoch_ticks(ax)
    else:
        _layer_ticks(ax, layers)
    ax.set(xlabel=EPOCH_LABEL if layers is None else "layer (input → output)",
           ylabel=NEAR_ZERO_LABEL, title=title)
    ax.set_ylim(bottom=0)
    _outside_legend(ax)


def _layer_ticks(ax, layers: Sequence[str], most: int = 16) -> None:
    """Layer names as x tick labels, thinned to at most ``most``."""
    step = max(1, -(-len(layers) // most))
    ticks = list(range(0, len(layers), step))
    crowded = len(ticks) > 6 or max(len(n) for n in layers) > 8
    ax.set_xticks(ticks, [layers[i] for i in ticks], rotation=45 if crowded else 0,
                  ha="right" if crowded else "center", fontsize=6)
