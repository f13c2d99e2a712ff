"""``wcviz report ROOT|RUN... --out FILE.html`` and ``wcviz import tensorboard LOGDIR --runs ROOT``.

``report`` writes one self-contained HTML file of the runs (:mod:`wcviz.report.html`): a
co-author opens it from disk, offline, with nothing installed. ``import`` turns the run folders
of a TensorBoard log dir into run stores (:mod:`wcviz.integrations.tensorboard_import`), so old
runs get wcviz's overlays, bands and exports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.extras import require


def report_main(argv: list[str], prog: str = "wcviz report") -> int:
    """Write the HTML report of runs (exit 0)."""
    parser = argparse.ArgumentParser(prog=prog, description=(
        "One self-contained HTML file of runs: the runs table, percentile bands (side by side "
        "and overlaid, a layer picker), near-zero fractions, a/b, metrics, sweep heatmaps, the "
        "claims over seeds and the run configs. Data and scripts are inside the file: it opens "
        "offline, from disk, in any browser."))
    parser.add_argument("runs", nargs="+", help="a runs root, or run directories")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--title", help="the page title (default: from the root's name)")
    args = parser.parse_args(argv)
    require("report", needed_by="wcviz report")
    from wcviz.report.html import write_report

    for raw in args.runs:
        if not Path(raw).exists():
            raise WcvizError(f"{raw} does not exist; pass a runs root or run directories")
    runs = args.runs[0] if len(args.runs) == 1 else args.runs
    out = write_report(runs, args.out, title=args.title)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.1f} MB); open it in a browser, no server needed",
          file=sys.stderr)
    return 0


def import_main(argv: list[str], prog: str = "wcviz import") -> int:
    """Import runs of another tool as run stores (exit 0)."""
    parser = argparse.ArgumentParser(prog=prog, description=(
        "Runs of another tool as wcviz run stores. 'tensorboard LOGDIR': every folder of event "
        "files becomes a run; add_histogram tags become layers (quantiles, histograms and "
        "near-zero fractions approximated within TensorBoard's buckets: the stores say "
        "approximate: tensorboard buckets), scalars become metrics."))
    parser.add_argument("source", choices=["tensorboard"], help="the tool the runs come from")
    parser.add_argument("logdir", help="the TensorBoard log dir")
    parser.add_argument("--runs", required=True, help="the runs root to write the stores under")
    args = parser.parse_args(argv)
    require("tensorboard", needed_by="wcviz import tensorboard")
    from wcviz.integrations.tensorboard_import import import_logdir

    written, skipped = import_logdir(args.logdir, args.runs)
    for run_dir in skipped:
        print(f"skipping {run_dir}: a run store is already there", file=sys.stderr)
    for run_dir in written:
        print(f"imported {run_dir}")
    print(f"imported {len(written)} run(s) into {args.runs}; look at them with: wcviz dash "
          f"{args.runs}", file=sys.stderr)
    return 0
