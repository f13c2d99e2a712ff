"""The (a, b) grid search as a paper figure: heatmaps of a sweep's cells (``wcviz figures --sweep``).

One panel per summary of :data:`wcviz.report.sweep.SWEEP_METRICS` (test accuracy at best validation,
near-zero fraction, max|w|/(aπ/2)) over the (a, b) grid; each cell is the mean over its seeds,
written in the cell with the seed count. The baseline's value is marked on each colour bar, and
the accuracy panel's colour scale is centred on it (cells better than the baseline one hue,
worse the other). The same cells as the dashboard's Sweeps page (:func:`wcviz.report.sweep.sweep_cells`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from wcviz.report import style
from wcviz.errors import WcvizError
from wcviz.report.sweep import (SWEEP_METRICS, baseline_values, check_one_setup, sweep_cells,
                         sweep_table)

#: Colour maps per summary: accuracy diverges around the baseline; the others are sequential.
CMAPS = {"best_val_test_acc": "RdBu", "near_zero": "viridis", "absmax_over_bound": "magma"}


def _grid(cells: pd.DataFrame, metric: str) -> tuple[np.ndarray, list[float], list[float]]:
    """(values[b, a], a levels, b levels) of one summary."""
    a_levels = sorted(set(cells["a"]))
    b_levels = sorted(set(cells["b"]))
    values = np.full((len(b_levels), len(a_levels)), np.nan)
    for _, row in cells.iterrows():
        values[b_levels.index(row["b"]), a_levels.index(row["a"])] = row[metric]
    return values, a_levels, b_levels


def _panel(fig: Figure, ax, cells: pd.DataFrame, metric: str, base: float) -> None:
    values, a_levels, b_levels = _grid(cells, metric)
    finite = values[np.isfinite(values)]
    norm = None
    if metric == "best_val_test_acc" and np.isfinite(base) and finite.size:
        half = max(abs(finite.max() - base), abs(finite.min() - base), 1e-9)
        norm = TwoSlopeNorm(vcenter=base, vmin=base - half, vmax=base + half)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap=CMAPS[metric], norm=norm)
    ax.set_xticks(range(len(a_levels)), [f"{a:g}" for a in a_levels])
    ax.set_yticks(range(len(b_levels)), [f"{b:g}" for b in b_levels])
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(SWEEP_METRICS[metric])
    counts, _, _ = _grid(cells, f"{metric}_n")
    fmt = "{:.2f}" if metric == "best_val_test_acc" else "{:.3g}"
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, fmt.format(value) + f"\nn={int(counts[i, j])}", ha="center",
                    va="center", fontsize=6, color="black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6})
    bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
    if np.isfinite(base):
        bar.ax.axhline(base, color="black", linewidth=1.2)
        bar.ax.text(1.05, base, " baseline", transform=bar.ax.get_yaxis_transform(),
                    va="center", ha="left", fontsize=6)


def sweep_heatmaps(rows: pd.DataFrame, metrics=tuple(SWEEP_METRICS)) -> Figure:
    """Heatmaps over (a, b) of a sweep (:func:`wcviz.report.sweep.run_summary` rows of its runs).

    Args:
        rows: one summary row per run; WC runs with fixed a, b form the grid, baseline runs
            (method "none") give the marked baseline values.
        metrics: which summaries to draw, one panel each (keys of ``SWEEP_METRICS``).

    Raises:
        WcvizError: no run with a fixed a and b (nothing to put on a grid), or runs of more
            than one dataset, model or method (:func:`wcviz.report.sweep.check_one_setup`).
    """
    check_one_setup(rows)
    cells = sweep_cells(rows)
    if cells.empty:
        raise WcvizError("no sweep to draw: no run has a fixed compander a and b (a grid search "
                         "is runs of method arctan at several a, b values, e.g. 'wcviz sweep')")
    base = baseline_values(rows)
    measures = sorted(set(rows.get("near_zero_measure", pd.Series(dtype=str)).dropna()) - {""})
    with style.paper_style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(style.TWO_COLUMN, 2.6),
                                 constrained_layout=True, squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            _panel(fig, ax, cells, metric, base[metric])
            if metric == "near_zero" and measures:  # which of the recorded measures
                ax.set_title(f"{SWEEP_METRICS[metric]}\n{' / '.join(measures)}")
    return fig


def sweep_figure(runs) -> Figure:
    """:func:`sweep_heatmaps` of run directories (or Datasets)."""
    return sweep_heatmaps(sweep_table(runs))
