"""The compander's learnable a and b: their trajectories per layer over epochs."""

from __future__ import annotations

from typing import Sequence

import matplotlib.cm
import matplotlib.colors
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.errors import WcvizError
from wcviz.report.plots._axes import EPOCH_LABEL, _epoch_ticks


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
