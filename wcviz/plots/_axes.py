"""What every figure family of :mod:`wcviz.plots` shares: axis labels (with units), a new
or given axis, whole-epoch ticks, the y scale, the legend outside the axis, and the check that
several runs share a layer."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker
import xarray as xr

from wcviz import analysis as an
from wcviz import style
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
