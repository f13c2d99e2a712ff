"""Figure files: one figure as PDF/SVG/PNG (:func:`save_figure`), and the paper's whole set
for a group of runs (:func:`write_paper_figures`, used by the demo and ``wcviz figures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from wcviz.report import analysis as an
from wcviz.report import style
from wcviz.errors import WcvizError
from wcviz.report.plots._axes import _check_common_layer
from wcviz.report.plots.bands import band_plot, grid_layers, layer_grid, paper_fig3, paper_fig4
from wcviz.report.plots.compander import ab_trajectories
from wcviz.report.plots.metrics import metrics_curves
from wcviz.report.plots.near_zero import near_zero_figure, near_zero_measures
from wcviz.report.plots.seeds import seed_metric
from wcviz.report.seeds import iter_groups

#: Output formats :func:`save_figure` writes.
FORMATS = ("pdf", "svg", "png")


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


def run_stem(ds) -> str:
    """A run's part of a figure file name: its id (its path below the runs root, see
    :func:`wcviz.record.reader.run_key`) with each ``/`` as ``--``, so that same-named runs of
    two sub-folders get two files (``ab_reproduce-digits-quick--digits-cnn_wc_s0.png``)."""
    return str(ds.attrs.get("run_id", "run")).replace("/", "--")


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
        threshold: near-zero threshold (default: :func:`wcviz.report.analysis.select_threshold`'s).

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

    stems: set[str] = set()

    def emit(fig: Figure, name: str) -> None:
        stem, n = _safe(name), 1
        while stem in stems:  # two names made alike by _safe: never overwrite a figure
            n += 1
            stem = f"{_safe(name)}-{n}"
        stems.add(stem)
        written.extend(save_figure(fig, out / stem, formats))
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
            emit(band_plot(ds, layer), f"bands_{run_stem(ds)}_{layer}")
    emit(near_zero_figure(runs, threshold), "near_zero")
    emit(near_zero_measures(runs), "near_zero_measures")
    for ds in runs:
        if an.is_learnable(ds):
            emit(ab_trajectories(ds), f"ab_{run_stem(ds)}")
    emit(metrics_curves(runs), "metrics")
    if any(len(group) > 1 for group in iter_groups(runs).values()):
        emit(seed_metric(runs, "test_acc"), "seeds_test_acc")
    return written
