"""The offline demo: baseline, WC and learnable-WC CNNs on scikit-learn's digits, and the
results table read back from their run stores.

WC uses the digits-cnn preset's a = 0.5, b = 0.3: the bound aπ/2 = 0.785 shows in the first
layer, and Ψ'(0) = a/b = 5/3 > 1 (as in every pair of the paper's Table I), so the mechanism
that pushes small weights away from zero can act. The closing claims come from
:mod:`wcviz.report.claims`: one seed never decides a claim (INCONCLUSIVE, "1 paired seed < 3");
``wcviz reproduce digits`` trains the seeds that can.
"""

from __future__ import annotations

import math
from pathlib import Path

import wcviz
from wcviz.training.sweep import pct
from wcviz.record.metrics import BEST_ACC


DEMO_PRESET = "digits-cnn"
DEMO_METHODS = ("baseline", "wc", "wc-learnable")


def write_figures(run_dirs: list[Path], out: Path) -> list:
    """The paper-style figures of the demo's runs (``wcviz.report.plots.write_paper_figures``)."""
    from wcviz.report import plots  # matplotlib: not for `wcviz train --help`

    return plots.write_paper_figures([str(d) for d in run_dirs], str(out))


def write_report(runs: list, out: Path, title: str) -> Path | None:
    """The one-file HTML report of ``runs`` (run folders or opened runs) at ``out`` (:mod:`wcviz.report.html`), beside
    the figures; None, with one line saying how to get it, without the ``[report]`` extra."""
    from wcviz.extras import installed

    if not (installed("altair") and installed("vl_convert")):
        print("(no report.html: pip install 'wcviz[report]' for the one-file HTML report)")
        return None
    from wcviz.report.html import write_report as write

    return write(list(runs), out, title=title)


def first_layer_stats(run_dir: Path) -> dict:
    """From the store: the run's display name and best-val test accuracy, and the first
    layer's max |w|, bound and near-zero fraction (epoch 0, last)."""
    from wcviz.report import analysis  # pandas and xarray: not for `wcviz train --help`

    ds = wcviz.open_run(run_dir)
    layer = str(ds.layer.values[0])
    absmax = analysis.absmax_over_epochs(ds, layer)
    label = analysis.select_threshold(ds)  # the analysis' default: std=0.5 for Recorder stores
    near = analysis.near_zero(ds, label, layer)
    return {"label": analysis.run_label(ds), BEST_ACC: analysis.best_val_test_acc(ds)[1],
            "layer": layer, "absmax0": float(absmax[0]), "absmax": float(absmax[-1]),
            "near_zero0": float(near[0]), "near_zero": float(near[-1]),
            "threshold": analysis.threshold_text(ds, label).replace(" ", ""),
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
            f"near-zero {stats[0]['layer']} {stats[0]['threshold']} (ep 0 -> last)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def claim_lines(run_dirs: list[Path], seeds: int = 1) -> str:
    """The seed-aware claims of each companded demo run against the baseline (first run):
    per claim its headline measure, baseline -> companded, and the verdict with its reason."""
    from wcviz.report import analysis, claims

    lines = []
    for run_dir in run_dirs[1:]:
        result = claims.compare_groups([run_dirs[0]], [run_dir])
        label = analysis.run_label(wcviz.open_run(run_dir))
        lines.append(f"{label} vs baseline ({Path(run_dir).name}):")
        for _, r in result.headline_frame().iterrows():
            claim = r["claim"]
            shown = (f"{r['wc_mean']:.3g}" if not math.isfinite(r["base_mean"]) else
                     f"baseline {r['base_mean']:.3g}, companded {r['wc_mean']:.3g}")
            lines.append(f"  {claim:<5} {r['measure']}: {shown}  {r['verdict']} ({r['why']})")
    if seeds < claims.MIN_SEEDS:
        lines.append("One seed cannot decide a claim (one more could flip it). For verdicts over "
                     "seeds: wcviz reproduce digits (5 seeds; --quick: 3 seeds, shorter runs).")
    return "\n".join(lines)
