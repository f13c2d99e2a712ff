"""Seconds from opening a dashboard page to its first chart, cold, for every page, in one run.

Each page is timed in its own fresh Python process (nothing imported or cached before), the
way a user meets it: the dashboard starts on the Runs page, every run of the root is selected
in the sidebar, the stores are opened by the server's background thread (as they are a moment
after the server starts), then the page is opened. Timed: that page's script run through
Streamlit's ``AppTest`` (everything the server does, with the chart converted and sent; not
the browser drawing it), and the bytes of chart data it sends. The machine's load average
(``os.getloadavg``, 1 min) is printed beside each time: on a shared machine it explains
most of the spread. Run::

    wcviz demo --runs /tmp/demo-runs --no-figures     # the demo's three runs
    python benchmarks/dash_first_chart.py /tmp/demo-runs [--repeats 3]

Each page is measured ``--repeats`` times (fresh processes); the median is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PAGES = ("distributions", "histograms", "near_zero", "compander", "metrics", "sweeps")


def first_chart(root: str, page: str, wait: bool = True) -> dict:
    """In this (fresh) process: seconds of ``page``'s first script run with every run selected;
    ``wait``: after the background thread has opened the stores, else at once (a user who
    goes straight to the page while the server is still starting)."""
    from streamlit.testing.v1 import AppTest

    from wcviz.app import data, ui

    main = str(Path(data.__file__).with_name("main.py"))
    sys.argv = [main, root]
    app = AppTest.from_file(main, default_timeout=120)
    app.run()
    runs = data.scan(data.runs_root(root)).runs
    app.multiselect(key=ui.SELECTED).set_value([r.run_id for r in runs]).run()
    while wait and data.prefetch(runs):  # the server's background thread opens the stores
        time.sleep(0.05)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    app.switch_page(f"views/{page}.py").run()
    seconds = time.perf_counter() - t0
    if app.exception:
        raise SystemExit(f"the {page} page failed: {app.exception}")
    charts = app.get("vega_lite_chart")
    sent = sum(len(d.data.data) for c in charts for d in c.proto.datasets)
    return {"seconds": seconds, "load": load, "charts": len(charts), "bytes": sent}


def measure(root: str, page: str, wait: bool) -> dict:
    """:func:`first_chart` of ``page`` in a new interpreter (cold imports and caches)."""
    out = subprocess.run([sys.executable, __file__, root, "--child", page,
                          *(() if wait else ("--at-once",))], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a runs root, e.g. what `wcviz demo --runs` wrote")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pages", nargs="*", default=list(PAGES))
    parser.add_argument("--at-once", action="store_true",
                        help="open the page without waiting for the stores to be opened")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(first_chart(args.root, args.child, wait=not args.at_once)))
        return
    print("stores opened first" if not args.at_once else "page opened at once after selecting")
    print(f"{'page':<14} {'first chart, s':>14} {'min..max':>12} {'charts':>6} {'data kB':>8} "
          f"{'load (1 min)':>12}")
    for page in args.pages:
        runs = [measure(args.root, page, not args.at_once) for _ in range(args.repeats)]
        times = sorted(r["seconds"] for r in runs)
        median = times[len(times) // 2]
        loads = [r["load"] for r in runs]
        print(f"{page:<14} {median:14.2f} {times[0]:5.2f}..{times[-1]:<5.2f} "
              f"{runs[0]['charts']:6d} {runs[0]['bytes'] / 1e3:8.1f} "
              f"{min(loads):5.2f}..{max(loads):<5.2f}")


if __name__ == "__main__":
    main()
