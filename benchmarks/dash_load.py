"""How fast the dashboard lists many runs and prepares the Distributions page's data.

Builds 100 runs × 50 layers × 200 epochs of synthetic stores in a temporary directory (through
``wcviz.record.store.RunStore``), then times the app's own data functions (``wcviz.app.data``) the way the
pages call them:

* listing: scan the root and build the Runs table from attributes (every rerun does this);
* Distributions, cold: one layer's quantiles of the selected runs, stores not opened before;
* Distributions, warm: the same on the next rerun (cached on each store's committed count);
* the Distributions page with all 100 runs selected, cold: listing, data and the chart as
  ``st.altair_chart`` converts it (median of :data:`REPEATS`), and the chart's bytes; then the
  whole page script through Streamlit's ``AppTest`` (everything but the browser);
* the runs table with its accuracy columns (one store read per run), and small multiples;
* the whole-store frames (small multiples, near zero, compander) of :data:`FRAME_RUNS` runs
  whose stores are open: how fast the app turns the arrays into frames.

The goals (issue 13) are ≤ 1 s for listing 1,000 runs and ≤ 1 s for the Distributions page
with 100 runs selected, cold; both are printed last with their goal. Run::

    python benchmarks/dash_load.py [--runs 100 --layers 50 --epochs 200] [--keep DIR]

Building the stores is not timed: appending 200 records through ``RunStore.append`` takes about
15 s per run here, so two distinct template runs are written record by record and copied; the
copies get their own attributes (seed, method) through ``RunStore.set_attrs``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

GOAL_S = 1.0
Z = np.array([-2.6, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.6])  # normal z of each quantile


def write_template(run_dir: Path, n_layers: int, n_epochs: int, learnable: bool, seed: int):
    """One run of ``n_layers`` layers and ``n_epochs`` records with plausible statistics."""
    from wcviz.record.store import RunStore

    rng = np.random.default_rng(seed)
    layers = [f"layer{i // 4}.{i % 4}.conv" for i in range(n_layers)]
    store = RunStore.create(
        run_dir, layers=layers, layer_kinds=["Conv2d"] * n_layers,
        layer_numel=rng.integers(1_000, 2_000_000, n_layers),
        bin_edges=np.tile(np.linspace(-1, 1, 65), (n_layers, 1)),
        thresholds=["abs=0.001", "abs=0.01", "rel=0.01", "rel=0.1"],
        attrs={"model": "resnet18", "dataset": "cifar10",
               "method": "arctan" if learnable else "none", "learnable": "fine" if learnable else None,
               "a": 0.5 if learnable else None, "b": 1.0 if learnable else None, "seed": seed})
    std0 = rng.uniform(0.01, 0.1, n_layers)
    for epoch in range(n_epochs):
        std = std0 * (1 + 0.003 * epoch)
        stats = {"weight_quantile": std[:, None] * Z[None, :],
                 "near_zero_fraction": rng.uniform(0, 0.05, (n_layers, 4)),
                 "weight_std": std}
        if learnable:
            stats["a"] = 0.5 + 0.001 * epoch * np.ones(n_layers)
            stats["b"] = 1.0 - 0.001 * epoch * np.ones(n_layers)
        store.append(float(epoch), epoch * 390, stats,
                     {"train_loss": 2 * np.exp(-epoch / 50),
                      "val_acc": 0.9 - 0.8 * np.exp(-epoch / 40)})
    store.finish("finished")


def build(root: Path, n_runs: int, n_layers: int, n_epochs: int) -> None:
    """``n_runs`` stores under ``root``: two templates written record by record, then copied."""
    from wcviz.record.store import RunStore

    root.mkdir(parents=True, exist_ok=True)
    templates = [root / "template-baseline", root / "template-wc"]
    for i, path in enumerate(templates):
        write_template(path, n_layers, n_epochs, learnable=bool(i), seed=i)
    for i in range(len(templates), n_runs):
        target = root / f"run-{i:03d}"
        shutil.copytree(templates[i % 2], target)
        RunStore.open(target).set_attrs(seed=i)


#: Cold page measurements per run of this script (their median is reported).
REPEATS = 3
PAGE = "Distributions page, 100 runs, cold (listing + data + chart)"
SCRIPT = "Distributions page script (AppTest), 100 runs, cold"


def chart_bytes(chart) -> int:
    """Bytes of data the page sends for ``chart``, converted as ``st.altair_chart`` does.

    Streamlit turns the Altair chart into a Vega-Lite spec with each dataset as Arrow IPC
    bytes (named by content, so a frame two layers share is sent once); that conversion, not
    Altair's JSON ``to_dict``, is what a page pays. Falls back to ``to_dict`` (JSON) where
    Streamlit's private converter is not found.
    """
    try:
        from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec
    except ImportError:  # pragma: no cover - another Streamlit
        import json

        import altair as alt

        with alt.data_transformers.disable_max_rows():
            return len(json.dumps(chart.to_dict()))
    spec = _convert_altair_to_vega_lite_spec(chart)
    return sum(len(v) for v in spec.get("datasets", {}).values())


def timed(fn):
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fresh_caches() -> None:
    """Forget everything the app cached: the next read is a cold one."""
    from wcviz.app import data

    for name in dir(data):
        cached = getattr(data, name)
        if hasattr(cached, "cache_clear") and not isinstance(cached, type):  # not a class's
            cached.cache_clear()


def build_many(root: Path, n_runs: int) -> None:
    """``n_runs`` small stores (3 layers × 2 epochs) for the listing: listing reads only each
    store's attributes, so their size does not matter, and 1,000 full stores would fill the disk."""
    from wcviz.record.store import RunStore

    root.mkdir(parents=True, exist_ok=True)
    template = root / "template"
    write_template(template, 3, 2, learnable=False, seed=0)
    for i in range(1, n_runs):
        target = root / f"run-{i:04d}"
        shutil.copytree(template, target)
        RunStore.open(target).set_attrs(seed=i)


def measure_listing(root: Path) -> float:
    """Seconds to list the root and build the Runs table from attributes (every rerun)."""
    from wcviz.app import data

    fresh_caches()
    seconds, _ = timed(lambda: data.runs_table(data.scan(root), accuracy=False))
    return seconds


def measure(root: Path) -> dict[str, float]:
    """Seconds of each step, on cold caches where the name says so.

    "Cold" is a running server that has not read these runs yet: caches cleared, modules
    imported (a first chart is drawn before the cold ones).
    The 100-run page is its data (one layer of each run, read concurrently) plus its chart
    spec as ``st.altair_chart`` converts it (:func:`chart_bytes`), overlaid as side by side
    switches to overlay beyond a few runs; the median of :data:`REPEATS` cold runs. Not
    included: Streamlit's own rerun (:func:`measure_page_script` has it) and the browser
    drawing the chart.
    """
    from wcviz.app import data
    from wcviz.report import charts

    fresh_caches()
    out = {}

    def listing():
        scan = data.scan(root)
        data.runs_table(scan, accuracy=False)
        return scan

    out["listing"], scan = timed(listing)
    runs = list(scan.runs)
    layer = data.layers(runs[0])[len(data.layers(runs[0])) // 2]
    fresh_caches()
    out["distributions, 2 runs, cold"], wide = timed(lambda: data.distributions(runs[:2], layer))
    out["distributions, 2 runs, warm"], _ = timed(lambda: data.distributions(runs[:2], layer))
    chart_bytes(charts.band_chart(wide, data.band_columns(wide), layout="overlay"))  # a running server has drawn a chart
    fresh_caches()

    sent = {}

    def page():
        scan_ = data.scan(root)
        picked = list(scan_.runs)
        with data.page_checks():  # as the app runs a page: each store's links checked once
            wide_ = data.distributions(picked, layer)
        sent["bytes"] = chart_bytes(charts.band_chart(wide_, data.band_columns(wide_),
                                                      layout="overlay"))
        return wide_

    for _ in range(REPEATS):  # a shared 2-core machine is noisy: the median of a few cold runs
        fresh_caches()
        out.setdefault(PAGE, []).append(timed(page)[0])
    wide_all = page()
    out[PAGE] = float(np.median(out[PAGE]))
    out["  its chart data, MB (Arrow, as st.altair_chart sends it)"] = sent["bytes"] / 1e6
    out["distributions, 100 runs, warm"], _ = timed(
        lambda: data.distributions(data.scan(root).runs, layer))
    fresh_caches()
    name = "runs table with accuracy, cold (the page reads it in the background)"
    out[name], _ = timed(lambda: data.runs_table(data.scan(root)))
    fresh_caches()
    out["small multiples, 2 runs, cold"], _ = timed(lambda: data.all_layers(runs[:2]))
    out.update(measure_frames(runs[:FRAME_RUNS]))
    assert len(wide) == 2 * len(wide[wide["run"] == runs[0].run_id])
    assert wide_all["run"].nunique() == len(runs)
    return out


#: Runs of the frame-building measurements (a page with this many runs selected).
FRAME_RUNS = 10


def measure_frames(runs) -> dict[str, float]:
    """Seconds to build each whole-store frame of ``runs`` with their stores already open:
    the array reads and the frame building, not the opening (``data.dataset``, 0.1-0.3 s a
    run, which would hide the frame building). Only the frame's own cache is cleared before
    each call; the median of :data:`REPEATS`."""
    from wcviz.app import data

    for run in runs:
        data.dataset(run)
    cases = {"small multiples": (data._all_quantiles, lambda: data.all_layers(runs)),
             "near zero": (data._near_zero, lambda: data.near_zero(runs)),
             "compander": (data._compander, lambda: data.compander(runs))}
    out = {}
    for name, (cache, build) in cases.items():
        times = []
        for _ in range(REPEATS):
            cache.cache_clear()
            times.append(timed(build)[0])
        out[f"{name} frame, {len(runs)} runs, stores open"] = float(np.median(times))
    return out


def measure_page_script(root: Path) -> float:
    """Seconds of the whole Distributions page script with every run under ``root`` selected,
    cold: Streamlit's ``AppTest`` runs the app as the server would (sidebar, widgets, data, the
    chart converted and sent), without the browser. Median of :data:`REPEATS`.

    The server's prefetch thread (which opens every listed run's Dataset) is let finish first:
    "cold" is a server that has been up a while but has not drawn these runs' quantiles.
    """
    import sys

    from streamlit.testing.v1 import AppTest

    from wcviz.app import data, ui

    main = str(Path(data.__file__).with_name("main.py"))
    sys.argv = [main, str(root)]  # as `streamlit run main.py -- ROOT` (wcviz dash) sets it
    app = AppTest.from_file(main, default_timeout=300)
    app.run()
    app.switch_page("views/distributions.py").run()
    runs = data.scan(root).runs
    while data.prefetch(runs):
        time.sleep(0.2)
    picker = app.multiselect(key=ui.SELECTED)
    times = []
    for _ in range(REPEATS):
        picker.set_value([]).run()
        fresh_caches()
        seconds, _ = timed(lambda: picker.set_value([r.run_id for r in runs]).run())
        if app.exception or not app.get("vega_lite_chart"):
            raise SystemExit(f"the Distributions page failed: {app.exception}")
        times.append(seconds)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the stores here, keep them")
    parser.add_argument("--list-runs", type=int, default=1000,
                        help="runs of the listing benchmark (small stores)")
    args = parser.parse_args()

    tmp = None
    if args.keep is None:
        tmp = tempfile.mkdtemp(prefix="wcviz-dash-bench-")
    root = Path(args.keep or tmp)
    try:
        dist, many = root / "distributions", root / "listing"
        if not any(dist.glob("*/record.zarr")):
            root.mkdir(parents=True, exist_ok=True)
            t_build, _ = timed(lambda: build(dist, args.runs, args.layers, args.epochs))
            print(f"built {args.runs} runs × {args.layers} layers × {args.epochs} epochs "
                  f"in {t_build:.1f} s under {dist}")
        if not any(many.glob("*/record.zarr")):
            t_build, _ = timed(lambda: build_many(many, args.list_runs))
            print(f"built {args.list_runs} small runs for the listing in {t_build:.1f} s")
        listing = measure_listing(many)
        results = measure(dist)
        results[SCRIPT] = measure_page_script(dist)
        width = max(map(len, results))
        for name, value in results.items():
            print(f"{name:<{width}}  {value:7.3f}" + ("" if "MB" in name else " s"))
        page = results[PAGE]
        print(f"\nlisting {args.list_runs} runs: {listing:.3f} s (goal ≤ {GOAL_S:g} s)")
        print(f"Distributions page with 100 runs selected, cold: {page:.3f} s (data + chart), "
              f"{results[SCRIPT]:.3f} s (the whole page script) (goal ≤ {GOAL_S:g} s)")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
