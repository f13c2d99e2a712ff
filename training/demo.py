"""The offline demo: baseline, WC and learnable-WC CNNs on scikit-learn's digits, and the
results table read back from their run stores.

WC uses the digits-cnn preset's a = 0.5, b = 0.3: the bound aπ/2 = 0.785 caps the first
layer (how much of it the weights reach is computed from the run and printed beside the
table), and Ψ'(0) = a/b = 5/3 > 1 (as in every pair of the paper's Table I), so the mechanism
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
    layer's max |w|, bound, max|w|/bound and near-zero fraction (epoch 0, last) on claim
    (ii)'s headline measure (:func:`wcviz.report.claims.headline_threshold`)."""
    from wcviz.report import analysis, claims  # pandas and xarray: not for `wcviz train --help`

    ds = wcviz.open_run(run_dir)
    layer = str(ds.layer.values[0])
    absmax = analysis.absmax_over_epochs(ds, layer)
    label = claims.headline_threshold(ds, analysis.thresholds(ds)) or analysis.select_threshold(ds)
    near = analysis.near_zero(ds, label, layer)
    bounds = analysis.bound_over_epochs(ds, layer)  # per epoch: learnable a moves it
    return {"label": analysis.run_label(ds), BEST_ACC: analysis.best_val_test_acc(ds)[1],
            "layer": layer, "absmax0": float(absmax[0]), "absmax": float(absmax[-1]),
            "near_zero0": float(near[0]), "near_zero": float(near[-1]),
            "threshold": analysis.threshold_text(ds, label).replace(" ", ""),
            "bound": float(bounds[-1]), "top": float(absmax.max()),
            "reached": float((absmax / bounds).max()),  # of the bound of the same epoch
            "bound_symbol": analysis.bound_symbol(ds)}


def demo_table(run_dirs: list[Path]) -> str:
    """The demo's results table (accuracy, first-layer max |w|, the bound and the fraction of
    it reached, near-zero fraction), then one sentence per bounded run computed from it."""
    stats = [first_layer_stats(d) for d in run_dirs]
    rows = []
    for f in stats:
        bounded = not math.isinf(f["bound"])
        rows.append((f["label"], pct(f[BEST_ACC]).strip(),
                     f"{f['absmax0']:.3f} -> {f['absmax']:.3f}",
                     f"{f['bound']:.3f}" if bounded else "-",
                     f"{f['reached']:.0%}" if bounded else "-",
                     f"{f['near_zero0']:.3f} -> {f['near_zero']:.3f}"))
    head = ("run", "best-val test acc", f"max|w| {stats[0]['layer']} (ep 0 -> last)", "bound",
            "max|w|/bound", f"near-zero {stats[0]['layer']} {stats[0]['threshold']} (ep 0 -> last)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [""] + bound_sentences(stats))


def bound_sentences(stats: list[dict]) -> list[str]:
    """Per bounded run, what its bound did, in words true of the numbers in the table: the
    largest first-layer |w| over epochs as a fraction of the bound (of the same epoch),
    against the first run's (the baseline's) largest |w| over epochs."""
    top = stats[0]["top"]
    out = []
    for f in stats[1:]:
        if math.isinf(f["bound"]):
            continue
        over = "above" if top > f["bound"] else "below"
        out.append(f"{f['label']}: {f['layer']}'s largest |w| reaches {f['reached']:.0%} of its "
                   f"bound {f['bound_symbol']} = {f['bound']:.3f}; the baseline's reaches "
                   f"{top:.3f}, {over} that bound.")
    return out


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
