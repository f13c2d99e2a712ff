"""The offline demo: baseline, WC and learnable-WC CNNs on scikit-learn's digits, and the
results table read back from their run stores."""

from __future__ import annotations

import math
from pathlib import Path

import wcviz
from training.sweep import pct
from wcviz.metrics import BEST_ACC


DEMO_PRESET = "digits-cnn"
DEMO_METHODS = ("baseline", "wc", "wc-learnable")


def write_figures(run_dirs: list[Path], out: Path) -> list:
    """The paper-style figures of the demo's runs (``wcviz.plots.write_paper_figures``)."""
    from wcviz import plots  # matplotlib: not for `wcviz train --help`

    return plots.write_paper_figures([str(d) for d in run_dirs], str(out))


def first_layer_stats(run_dir: Path) -> dict:
    """From the store: the run's display name and best-val test accuracy, and the first
    layer's max |w|, bound and near-zero fraction (epoch 0, last)."""
    from wcviz import analysis  # pandas and xarray: not for `wcviz train --help`

    ds = wcviz.open_run(run_dir)
    layer = str(ds.layer.values[0])
    absmax = analysis.absmax_over_epochs(ds, layer)
    label = analysis.select_threshold(ds)  # the analysis' default, rel=0.1 for Recorder stores
    near = analysis.near_zero(ds, label, layer)
    return {"label": analysis.run_label(ds), BEST_ACC: analysis.best_val_test_acc(ds)[1],
            "layer": layer, "absmax0": float(absmax[0]), "absmax": float(absmax[-1]),
            "near_zero0": float(near[0]), "near_zero": float(near[-1]), "threshold": label,
            "bound": float(analysis.bound_over_epochs(ds, layer)[-1])}


def demo_table(run_dirs: list[Path]) -> str:
    """The demo's results table: accuracy, first-layer max |w| and near-zero fraction."""
    stats = [first_layer_stats(d) for d in run_dirs]
    rows = []
    for f in stats:
        bound = "-" if math.isinf(f["bound"]) else f"{f['bound']:.3f}"
        rows.append((f["label"], pct(f[BEST_ACC]).strip(),
                     f"{f['absmax0']:.3f} -> {f['absmax']:.3f}", bound,
                     f"{f['near_zero0']:.3f} -> {f['near_zero']:.3f}"))
    head = ("run", "best-val test acc", f"max|w| {stats[0]['layer']} (ep 0 -> last)", "a·π/2",
            f"near-zero |w|<{stats[0]['threshold']} (ep 0 -> last)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
