"""``wcviz figures``, ``wcviz table`` and ``wcviz compare``: paper output from run stores.

* ``wcviz figures RUN... [--layer NAME] [--zoom Y] --out DIR --format pdf,svg,png`` writes the
  paper's figures (:func:`wcviz.plots.write_paper_figures`) and lists the files; with
  ``--sweep``, the (a, b) grid-search heatmaps instead (:mod:`wcviz.plots_sweep`).
* ``wcviz table ROOT [--format md|tex|csv]`` prints the mean ± std accuracy table over seeds.
* ``wcviz compare BASELINE_RUN WC_RUN`` prints per layer the weight range and near-zero
  fractions of both runs and whether the paper's two claims hold.

A RUN is a run directory (``runs/<run_id>``) or its ``record.zarr``; a directory holding run
directories stands for all of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.store import STORE_NAME, check_store, list_runs


def _run_paths(args: list[str]) -> list[Path]:
    """Run directories named on the command line; a runs root expands to its runs."""
    paths: list[Path] = []
    for arg in args:
        path = Path(arg)
        if not path.exists():
            raise WcvizError(f"no run at {arg}; pass a run directory such as runs/<run_id>")
        if path.suffix == ".zarr" or (path / "record.zarr").exists():
            paths.append(path)
            continue
        runs, _ = list_runs(path)
        if not runs:
            raise WcvizError(f"{arg} is neither a run directory nor a root of runs "
                             "(no record.zarr found)")
        for run in runs:  # a damaged run found under a root is named and left out
            try:
                check_store(Path(run.path) / STORE_NAME, run.attrs)
            except WcvizError as err:
                print(f"skipping broken run {run.path}: {err}", file=sys.stderr)
                continue
            paths.append(Path(run.path))
    return paths


def _single_run(arg: str) -> Path:
    """One run directory (not a root of runs)."""
    path = Path(arg)
    if not (path.suffix == ".zarr" or (path / "record.zarr").exists()):
        raise WcvizError(f"no run at {arg}; pass a run directory such as runs/<run_id> "
                         "(one holding record.zarr)")
    return path


def _formats(text: str) -> tuple[str, ...]:
    from wcviz.plots import FORMATS

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
    parser.add_argument("--threshold", help="near-zero threshold label, e.g. rel=0.1 or abs=0.01")
    parser.add_argument("--out", default="figures", help="output directory (default: ./figures)")
    parser.add_argument("--format", default="pdf,png", help="comma list of pdf, svg, png (default: pdf,png)")
    parser.add_argument("--sweep", action="store_true",
                        help="only the (a, b) grid-search heatmaps (test acc at best val, near-zero "
                             "fraction, max|w|/(aπ/2)) of the runs, baseline marked: sweep_ab.*")
    args = parser.parse_args(argv)
    formats = _formats(args.format)
    if args.sweep:
        return _sweep_figure(args.runs, args.out, formats)
    if args.zoom is not None and not args.zoom > 0:
        raise WcvizError(f"--zoom must be a positive number (half range of y), got {args.zoom}")
    from wcviz.plots import write_paper_figures

    files = write_paper_figures(_run_paths(args.runs), args.out, formats, layer=args.layer,
                                zoom=args.zoom, threshold=args.threshold)
    print(f"wrote {len(files)} files to {args.out}:")
    for path in files:
        print(f"  {path}")
    return 0


def _sweep_figure(runs: list[str], out: str, formats: tuple[str, ...]) -> int:
    """``wcviz figures --sweep``: the heatmaps of :mod:`wcviz.plots_sweep`, as ``sweep_ab.*``."""
    from wcviz.plots import save_figure
    from wcviz.plots_sweep import sweep_figure

    files = save_figure(sweep_figure(_run_paths(runs)), Path(out) / "sweep_ab", formats)
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
    from wcviz import analysis

    root = Path(args.root)
    if not root.is_dir():
        raise WcvizError(f"no runs root at {args.root}; pass the directory holding the runs, e.g. ./runs")
    text = analysis.format_table(analysis.accuracy_table(root, finished_only=not args.all), args.format)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def compare_main(argv: list[str], prog: str = "wcviz compare") -> int:
    """Print the per-layer comparison of a baseline and a WC run and the two claims' verdicts."""
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Check the paper's Sec. IV-D claims: (i) WC keeps |w| < aπ/2 from the first epoch; "
        "(ii) WC leaves fewer near-zero weights than the baseline."))
    parser.add_argument("baseline", metavar="BASELINE_RUN")
    parser.add_argument("wc", metavar="WC_RUN")
    parser.add_argument("--threshold", help="near-zero threshold label (default: the largest relative one)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a claim fails")
    args = parser.parse_args(argv)
    from wcviz import analysis

    result = analysis.compare_runs(_single_run(args.baseline), _single_run(args.wc), args.threshold)
    print(result.report())
    failed = result.bound_holds is False or not result.fewer_near_zero
    return 1 if args.strict and failed else 0
