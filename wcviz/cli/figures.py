"""``wcviz figures``, ``wcviz table`` and ``wcviz compare``: paper output from run stores.

* ``wcviz figures RUN... [--layer NAME] [--zoom Y] --out DIR --format pdf,svg,png`` writes the
  paper's figures (:func:`wcviz.report.plots.write_paper_figures`) and lists the files; with
  ``--sweep``, the (a, b) grid-search heatmaps instead (:mod:`wcviz.report.plots.sweep`).
* ``wcviz table ROOT [--format md|tex|csv]`` prints the mean ± std accuracy table over seeds.
* ``wcviz compare --baseline RUN... --wc RUN...`` (or a runs root, or one pair) decides the
  paper's claims over seeds (:mod:`wcviz.report.claims`): paired differences, 95 % CIs, verdicts.

A RUN is a run directory (``runs/<run_id>``) or its ``record.zarr``; a directory holding run
directories stands for all of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.extras import require
from wcviz.record.runfolder import STORE_NAME
from wcviz.record.reader import list_runs
from wcviz.cli.progress import reading


def _open_runs(args: list[str]) -> list:
    """The runs named on the command line as Datasets, each opened (and checked) once; a runs
    root expands to its runs, and a damaged one found there is named and left out."""
    from wcviz.record.reader import open_run
    from wcviz.report.analysis import as_dataset

    opened = []
    for arg in args:
        path = Path(arg)
        if not path.exists():
            raise WcvizError(f"no run at {arg}; pass a run directory such as runs/<run_id>")
        if path.suffix == ".zarr" or (path / STORE_NAME).exists():
            opened.append(as_dataset(path))
            continue
        runs, broken = list_runs(path)
        for bad in broken:  # named, as export and open_runs name them, not silently dropped
            print(f"skipping broken run {bad.path}: {bad.error}", file=sys.stderr)
        if not runs:
            raise WcvizError(f"{arg} is neither a run directory nor a root of runs "
                             "(no record.zarr found)")
        for i, run in enumerate(runs, 1):  # a damaged run found under a root is named, left out
            reading(i, len(runs), run.path)
            try:
                # Its id is its path below the root: same-named runs of two sub-folders differ.
                opened.append(open_run(run.path, root=path).load())
            except WcvizError as err:
                print(f"skipping broken run {run.path}: {err}", file=sys.stderr)
    return opened


def _single_run(arg: str) -> Path:
    """One run directory (not a root of runs)."""
    path = Path(arg)
    if not (path.suffix == ".zarr" or (path / STORE_NAME).exists()):
        raise WcvizError(f"no run at {arg}; pass a run directory such as runs/<run_id> "
                         "(one holding record.zarr)")
    return path


def _formats(text: str) -> tuple[str, ...]:
    from wcviz.report.plots import FORMATS

    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise WcvizError(f"unknown figure format {', '.join(bad) or repr(text)}; "
                         f"use a comma list of {', '.join(FORMATS)}")
    return formats


def figures_main(argv: list[str], prog: str = "wcviz figures") -> int:
    """Write the paper-style figures of the given runs; prints the files written."""
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Paper figures from run stores: Fig. 3/4 percentile bands of one layer (baseline vs WC), "
        "all layers, near-zero fractions, learnable a/b trajectories, loss/accuracy curves."))
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or a runs root)")
    parser.add_argument("--layer", help="layer of the band figures (default: the first layer)")
    parser.add_argument("--zoom", type=float, help="half range of Fig. 4's y axis (default: fits WC)")
    parser.add_argument("--threshold", help="near-zero measure, e.g. std=0.5, med=0.1, rel=0.1 or abs=0.01 "
                        "(default: the largest std one; kinds in wcviz.record.measures)")
    parser.add_argument("--out", default="figures", help="output directory (default: ./figures)")
    parser.add_argument("--format", default="pdf,png", help="comma list of pdf, svg, png (default: pdf,png)")
    parser.add_argument("--sweep", action="store_true",
                        help="only the (a, b) grid-search heatmaps (test acc at best val, near-zero "
                             "fraction, max|w|/(aπ/2)) of the runs, baseline marked: sweep_ab.*")
    args = parser.parse_args(argv)
    require("figures", needed_by="drawing figures")
    formats = _formats(args.format)
    if args.sweep:
        return _sweep_figure(args.runs, args.out, formats)
    if args.zoom is not None and not args.zoom > 0:
        raise WcvizError(f"--zoom must be a positive number (half range of y), got {args.zoom}")
    from wcviz.report.plots import write_paper_figures

    files = write_paper_figures(_open_runs(args.runs), args.out, formats, layer=args.layer,
                                zoom=args.zoom, threshold=args.threshold)
    print(f"wrote {len(files)} files to {args.out}:")
    for path in files:
        print(f"  {path}")
    return 0


def _sweep_figure(runs: list[str], out: str, formats: tuple[str, ...]) -> int:
    """``wcviz figures --sweep``: the heatmaps of :mod:`wcviz.report.plots.sweep`, as ``sweep_ab.*``."""
    from wcviz.report.plots import save_figure
    from wcviz.report.plots.sweep import sweep_figure

    files = save_figure(sweep_figure(_open_runs(runs)), Path(out) / "sweep_ab", formats)
    print(f"wrote {len(files)} files to {out}:")
    for path in files:
        print(f"  {path}")
    return 0


def table_main(argv: list[str], prog: str = "wcviz table") -> int:
    """Print the mean ± std test-accuracy table over seeds of all runs under ROOT."""
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Mean ± std over seeds of the best-validation and last-epoch test accuracy per "
        "(dataset, model, method), with the gap to the baseline, like the paper's Tables II-VII."))
    parser.add_argument("root", metavar="ROOT", help="runs root (a directory of run directories)")
    parser.add_argument("--format", default="md", choices=("md", "tex", "csv"), help="output format")
    parser.add_argument("--all", action="store_true", help="include unfinished (running/failed) runs")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    require("stats", needed_by="the table's confidence intervals")
    from wcviz.report import tables

    root = Path(args.root)
    if not root.is_dir():
        raise WcvizError(f"no runs root at {args.root}; pass the directory holding the runs, e.g. ./runs")
    text = tables.format_table(tables.accuracy_table(root, finished_only=not args.all), args.format)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def compare_main(argv: list[str], prog: str = "wcviz compare") -> int:
    """Decide the paper's claims over seeds: groups of runs paired by seed, CIs, verdicts."""
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Check the paper's claims over seeds: (i) WC keeps |w| < aπ/2 from the first epoch; "
        "(ii) WC leaves fewer near-zero weights (every recorded measure, all weights and "
        "layer-mean; the headline is a cutoff fixed at the layer's initial std, which "
        "clipping the tails cannot move); (iii) WC keeps or improves test accuracy. Runs are "
        "paired by seed and must share their recipe (config beyond method, a, b, learnable, "
        "alpha and seed); each measure gets mean ± std per group, the paired difference with "
        "a 95% paired-t CI, its p (Holm-adjusted over the headline tests), an exact "
        "sign-flip p, and a verdict HOLDS / FAILS (IMPROVES / KEEPS / WORSE for accuracy) / "
        "INCONCLUSIVE with the difference n could have detected. "
        "Forms: 'compare --baseline RUN... --wc RUN...', "
        "'compare ROOT' (every companded configuration against its baseline), or "
        "'compare BASELINE_RUN WC_RUN' (one pair: per-layer table, verdicts INCONCLUSIVE)."))
    parser.add_argument("runs", nargs="*", metavar="RUN", help="a runs root, or BASELINE_RUN WC_RUN")
    parser.add_argument("--baseline", nargs="+", metavar="RUN", help="baseline runs (one per seed)")
    parser.add_argument("--wc", nargs="+", metavar="RUN", help="companded runs of one configuration")
    parser.add_argument("--threshold", action="append", metavar="LABEL",
                        help="near-zero measure(s) for claim (ii), e.g. std=0.5 (repeatable; "
                             "default: every recorded one)")
    parser.add_argument("--margin", type=float, default=None, metavar="POINTS",
                        help="non-inferiority margin of claim (iii), accuracy points "
                             "(default 0.5): WC KEEPS accuracy when it is shown not worse by this")
    parser.add_argument("--csv", metavar="FILE", help="also write the rows as CSV")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a claim FAILS (or accuracy is WORSE)")
    args = parser.parse_args(argv)
    require("stats", needed_by="the claims' confidence intervals")
    from wcviz.report import claims
    from wcviz.cli.runs import _checked_parent, _writing

    if args.csv:
        _checked_parent(args.csv)  # before the comparison, not after it (one line, no traceback)
    results = _compare_results(args, claims)
    for i, result in enumerate(results):
        print(("\n" if i else "") + result.report())
    if args.csv:
        import pandas as pd

        frames = [r.frame().assign(baseline=r.baseline, wc=r.wc) for r in results]
        with _writing(args.csv):
            pd.concat(frames).to_csv(args.csv, index=False, float_format="%.6g")
    failed = any(r.verdict in (claims.FAILS, claims.WORSE) for res in results for r in res.results)
    return 1 if args.strict and failed else 0


def _compare_results(args, claims) -> list:
    """The group comparisons the arguments ask for (see compare_main's forms)."""
    margin = claims.NI_MARGIN if args.margin is None else args.margin
    if args.baseline or args.wc:
        if not (args.baseline and args.wc) or args.runs:
            raise WcvizError("pass both --baseline RUN... and --wc RUN..., and no positional runs")
        return [claims.compare_groups(_open_runs(args.baseline), _open_runs(args.wc),
                                      args.threshold, margin)]
    if len(args.runs) == 1:
        root = Path(args.runs[0])
        if not root.is_dir() or (root / STORE_NAME).exists() or root.suffix == ".zarr":
            raise WcvizError(f"{args.runs[0]} is not a runs root; pass a directory of runs, "
                             "two runs (BASELINE_RUN WC_RUN) or --baseline/--wc groups")
        return claims.compare_root(root, args.threshold, margin)
    if len(args.runs) == 2:
        result = claims.compare_pair(*(_single_run(run) for run in args.runs), args.threshold,
                                     margin)
        print(result.layers.report() + "\n")
        return [result]
    raise WcvizError("nothing to compare; pass --baseline RUN... --wc RUN..., a runs root, "
                     "or BASELINE_RUN WC_RUN")
