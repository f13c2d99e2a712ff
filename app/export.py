"""Downloads of the current view: figures drawn by :mod:`wcviz.report.plots`, data as CSV.

The dashboard draws interactive charts itself, but a file for a paper comes from the same
figure functions as ``wcviz figures``, so an exported view looks like the rest of the paper's
figures. Figures are drawn only when a download button is clicked, and matplotlib (through
:mod:`wcviz.report.plots`) is imported only then: importing it costs about 1 s, which
every page load would otherwise pay.
"""

from __future__ import annotations

import io

import pandas as pd

from wcviz.app import data

#: Download formats and their MIME types.
FORMATS = {"png": "image/png", "pdf": "application/pdf", "svg": "image/svg+xml"}


def figure_bytes(fig, fmt: str) -> bytes:
    """The matplotlib figure ``fig`` encoded as ``fmt`` (png/pdf/svg); the figure is closed.

    Saved under :func:`wcviz.report.style.paper_style` at :data:`wcviz.report.style.DPI`, as
    ``wcviz.report.plots.save_figure`` does: matplotlib reads the font embedding at save time, so
    saving outside the style would give Type 3 fonts in PDFs and outlined text in SVGs.
    """
    import matplotlib.pyplot as plt

    from wcviz.report import style

    if fmt not in FORMATS:
        raise data.WcvizError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    buf = io.BytesIO()
    try:
        with style.paper_style():
            fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=style.DPI)
    finally:
        plt.close(fig)
    return buf.getvalue()


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A tidy frame as UTF-8 CSV without the index."""
    return frame.to_csv(index=False).encode("utf-8")


def _datasets(runs: list[data.Run], epochs: tuple[float, float] | None = None) -> list:
    sets = [data.dataset(r) for r in runs]
    if epochs is not None:
        sets = [ds.sel(epoch=slice(*epochs)) for ds in sets]
    return sets


def bands_figure(runs: list[data.Run], layer: str, *, layout: str = "side", yscale: str = "linear",
                 y_range: tuple[float, float] | None = None,
                 epochs: tuple[float, float] | None = None):
    """The Distributions view as a paper figure: panels side by side (shared y) or overlaid.

    Args:
        runs: the runs shown (all recording ``layer``).
        layer: the layer shown.
        layout: "side" or "overlay".
        yscale: "linear" or "symlog".
        y_range: the y zoom, or None.
        epochs: the epoch range shown (inclusive), or None for all.
    """
    from wcviz.report import plots

    sets = _datasets(runs, epochs)
    if layout == "overlay":
        return plots.overlay_bands(sets, layer, yscale=yscale, ylim=y_range)
    if len(sets) == 1:
        fig = plots.band_plot(sets[0], layer, yscale=yscale)
        if y_range is not None:
            fig.axes[0].set_ylim(*y_range)
        return fig
    return plots.band_panels(sets, layer, yscale=yscale, ylim=y_range)


def layer_grid_figure(runs: list[data.Run], *, yscale: str = "linear"):
    """The small-multiples view: every layer of one run, or of two runs side by side."""
    from wcviz.report import plots

    sets = _datasets(runs[:2])
    return plots.layer_grid(sets[0], sets[1] if len(sets) > 1 else None, yscale=yscale)


def near_zero_figure(runs: list[data.Run], threshold: str, layer: str | None = None):
    """Near-zero fraction over epochs (one layer, or the whole network for ``layer=None``)."""
    from wcviz.report import plots

    return plots.near_zero_over_epochs(_datasets(runs), threshold, layer)


def near_zero_depth_figure(runs: list[data.Run], threshold: str, epoch: float | None = None):
    """Near-zero fraction by layer at the epoch *value* ``epoch`` (None = each run's last).

    Each run is cut at ``epoch`` and drawn at its last record up to it (the label names that
    record's epoch): runs compared side by side may have different epoch grids, e.g. a finished
    run and one still training, so a position in one run's epoch axis means nothing in another.
    """
    from wcviz.report import plots

    return plots.near_zero_by_layer(_up_to(runs, epoch), threshold, epoch=-1)


def _up_to(runs: list[data.Run], epoch: float | None) -> list:
    """The runs' Datasets cut at the epoch *value* ``epoch`` (None: whole)."""
    return _datasets(runs, None if epoch is None else (None, epoch))


def compander_figure(run: data.Run):
    """a and b trajectories of every layer of one learnable run."""
    from wcviz.report import plots

    return plots.ab_trajectories(data.dataset(run))


def metrics_figure(runs: list[data.Run]):
    """Loss and accuracy curves of the runs."""
    from wcviz.report import plots

    return plots.metrics_curves(_datasets(runs))


def sweep_figure(rows: pd.DataFrame):
    """The Sweeps page's heatmaps (:func:`wcviz.report.plots.sweep.sweep_heatmaps`) of summary rows."""
    from wcviz.report.plots.sweep import sweep_heatmaps

    return sweep_heatmaps(rows)


def seed_bands_figure(groups: list[list[data.Run]], layer: str, *, yscale: str = "linear"):
    """Seed groups of the Distributions view: one :func:`wcviz.report.plots.seed_bands` panel per group
    (seed-mean bands with the spread over seeds), y shared."""
    import matplotlib.pyplot as plt

    from wcviz.report import plots, style

    with style.paper_style():
        fig, axes = plt.subplots(1, len(groups), sharey=True, squeeze=False,
                                 figsize=(style.TWO_COLUMN, style.ROW_HEIGHT))
        for ax, runs in zip(axes[0], groups):
            plots.seed_bands(_datasets(runs), layer, ax=ax, yscale=yscale)
    return fig


def seed_metrics_figure(runs: list[data.Run]):
    """Seed groups of the Metrics view: accuracy and loss as mean ± std over seeds per group
    (:func:`wcviz.report.plots.seed_metric`), test accuracy if recorded, else validation."""
    import matplotlib.pyplot as plt

    from wcviz.report import plots, style

    sets = _datasets(runs)
    acc = "test_acc" if any("test_acc" in ds for ds in sets) else "val_acc"
    with style.paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(style.TWO_COLUMN, style.ROW_HEIGHT))
        plots.seed_metric(sets, "train_loss", ax=axes[0])
        plots.seed_metric(sets, acc, ax=axes[1])
    return fig


def seed_near_zero_figure(runs: list[data.Run], threshold: str, layer: str | None = None):
    """Seed groups of the Near-zero view over epochs: each group's mean ± std over seeds
    (:func:`wcviz.report.plots.seed_near_zero`) of one layer, or of all weights for ``layer=None``."""
    from wcviz.report import plots

    return plots.seed_near_zero(_datasets(runs), threshold, layer)


def seed_near_zero_depth_figure(runs: list[data.Run], threshold: str, epoch: float | None = None):
    """Seed groups of the Near-zero view by layer: mean ± std over seeds
    (:func:`wcviz.report.plots.seed_near_zero_by_layer`) at the epoch value ``epoch``, of the runs
    that recorded it (a seed still short of it would mix an earlier epoch into the mean)."""
    from wcviz.report import plots

    sets = _up_to(runs, epoch)
    if epoch is not None:  # the seeds that reached it, as the chart and CSV fold them
        sets = [ds for ds in sets if ds.sizes["epoch"] and float(ds["epoch"][-1]) == epoch]
    return plots.seed_near_zero_by_layer(sets, threshold, epoch=-1)
