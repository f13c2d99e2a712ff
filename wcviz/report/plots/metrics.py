"""Training metrics: loss and accuracy over epochs per run and split."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.report.palette import run_colors
from wcviz.report.plots._axes import EPOCH_LABEL, _epoch_ticks

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
