"""``wcviz inspect RUN`` and ``wcviz export RUN... --format csv|netcdf|parquet|tensorboard|mlflow``.

``inspect`` prints a readable summary of one run store: identity, status, config, layers,
epochs and the last record's metrics and first-layer statistics. ``export`` writes runs as one
tidy long-form table with columns run, layer, epoch, statistic, value, bin_lo, bin_hi (layer
is empty for metrics, which keep the names they were recorded under; statistics with a second
axis are named ``weight_quantile@0.5``, ``near_zero_fraction@rel=0.1``,
``weight_histogram@bin=3``; a histogram row's bin_lo/bin_hi are that bin's edges, empty
elsewhere; NaN values are left out). ``--format tensorboard`` writes event files instead
(:mod:`wcviz.integrations.tensorboard`), ``--format mlflow`` one MLflow run per run
(:mod:`wcviz.integrations.mlflow`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import textwrap
from pathlib import Path

import numpy as np

from wcviz.errors import WcvizError
from wcviz.extras import require
from wcviz.record.runfolder import RUNNING
from wcviz.record.metrics import metric_variables
from wcviz.record.locks import writer_alive
from wcviz.record.store import RELEASED
from wcviz.cli.progress import reading
from wcviz.record.reader import list_runs, open_run
from wcviz.record.runfolder import STORE_NAME, store_path
from wcviz.record.schema import LAYER_VARS, OPTIONAL_LAYER_VARS

COLUMNS = ("run", "layer", "epoch", "statistic", "value", "bin_lo", "bin_hi")
FORMATS = ("csv", "netcdf", "parquet", "tensorboard", "mlflow")


# ---------------------------------------------------------------- inspect


def inspect_main(argv: list[str], prog: str = "wcviz inspect") -> int:
    """Print a summary of one run (exit 0), or raise WcvizError for a bad path."""
    parser = argparse.ArgumentParser(prog=prog, description="A readable summary of one run.")
    parser.add_argument("run", help="run directory (or its record.zarr)")
    parser.add_argument("--all-layers", action="store_true", help="list every layer")
    args = parser.parse_args(argv)
    print(summary(open_run(args.run), all_layers=args.all_layers))
    return 0


def summary(ds, all_layers: bool = False, max_layers: int = 8) -> str:
    """The text ``wcviz inspect`` prints for an opened run."""
    from wcviz.report.analysis import run_label  # pandas: kept out of `wcviz inspect --help` (about 1 s)

    a = ds.attrs
    n = ds.sizes["epoch"]
    lines = [f"run       {a['run_id']}  ({a['path']})",
             f"name      {run_label(ds, with_seed=True)}",
             f"status    {_status(a)}   records {n}{_epoch_span(ds)}",
             f"model     {a.get('model')}   dataset {a.get('dataset')}   seed {a.get('seed')}",
             f"method    {_method(a)}",
             f"created   {a.get('created')}   updated {a.get('updated')}   "
             f"torch {a.get('torch_version')} on {a.get('device')}"]
    lines += _config_lines(a.get("config"))
    lines += _layer_lines(ds, all_layers, max_layers)
    lines += _last_record_lines(ds)
    return "\n".join(lines)


def _status(attrs: dict) -> str:
    status = str(attrs.get("status"))
    if status == RUNNING and writer_alive(attrs) is False:
        return "running (its writer process is gone: interrupted; resume to continue)"
    if status == RUNNING and attrs.get(RELEASED):
        return (f"running (no writer since {attrs[RELEASED]}: interrupted, or its Recorder "
                f"was dropped without finish(); resume to continue)")
    return status


def _epoch_span(ds) -> str:
    if ds.sizes["epoch"] == 0:
        return ""
    epochs = ds.epoch.values
    sub = int(np.sum(epochs != np.floor(epochs)))
    extra = f", {sub} sub-epoch" if sub else ""
    return f" (epochs {epochs[0]:g} to {epochs[-1]:g}{extra})"


def _method(attrs: dict) -> str:
    method = attrs.get("method") or "none"
    if method == "none":
        return "none (plain weights)"
    parts = [method]
    for key in ("a", "b", "alpha"):
        if attrs.get(key) is not None:
            parts.append(f"{key}={attrs[key]:g}")
    parts.append(f"learnable={attrs.get('learnable')}")
    return "  ".join(parts)


def _config_lines(text) -> list[str]:
    try:
        config = json.loads(text or "{}")
    except ValueError:
        return [f"config    (unreadable) {text!r}"]
    if not isinstance(config, dict) or not config:
        return [f"config    {json.dumps(config)}"]
    pairs = [f"{key}={json.dumps(value)}" for key, value in sorted(config.items())]
    body = textwrap.wrap("  ".join(pairs), width=92, break_long_words=False,
                         break_on_hyphens=False)
    return [("config    " if i == 0 else "          ") + line for i, line in enumerate(body)]


def _layer_lines(ds, all_layers: bool, max_layers: int) -> list[str]:
    names = [str(x) for x in ds.layer.values]
    kinds = [str(x) for x in ds.layer_kind.values]
    numel = ds.layer_numel.values
    counts = {k: kinds.count(k) for k in dict.fromkeys(kinds)}
    head = ", ".join(f"{c} {k}" for k, c in counts.items())
    lines = [f"layers    {len(names)} ({head}; {int(numel.sum()):,} weights)"]
    shown = len(names) if all_layers else min(len(names), max_layers)
    width = max(len(x) for x in names[:shown]) if shown else 0
    kind_width = max([7, *(len(k) for k in kinds[:shown])])  # "MultiheadAttention" is long
    for name, kind, size in list(zip(names, kinds, numel))[:shown]:
        lines.append(f"  {name:<{width}}  {kind:<{kind_width}} {int(size):>10,}")
    if shown < len(names):
        lines.append(f"  ... {len(names) - shown} more (--all-layers)")
    return lines


def _last_record_lines(ds) -> list[str]:
    if ds.sizes["epoch"] == 0:
        return ["last      no records yet"]
    last = ds.isel(epoch=-1).load()
    lines = [f"last      epoch {float(last.epoch):g}, step {int(last.step)}"]
    metrics = [(name, float(last[var])) for name, var in metric_variables(ds).items()]
    shown = [f"{name} {value:.4g}" for name, value in metrics if not math.isnan(value)]
    wrapped = textwrap.wrap("  ".join(shown), width=90, break_long_words=False) or ["(none)"]
    lines += [("  metrics " if i == 0 else "          ") + line for i, line in enumerate(wrapped)]
    first = last.isel(layer=0)
    q = first.weight_quantile
    probs = q["quantile"].values  # label by the recorded probabilities, not by position
    median = f"median {float(q.sel(quantile=0.5)):.4g}  " if 0.5 in probs else ""
    lo, hi = ("range", "") if (probs[0], probs[-1]) == (0.0, 1.0) else \
        ("quantiles", f" (q={probs[0]:g}..{probs[-1]:g})")
    lines.append(f"  {first.layer.item()}: {median}{lo} [{float(q[0]):.4g}, {float(q[-1]):.4g}]"
                 f"{hi}  std {float(first.weight_std):.4g}  "
                 f"participation {float(first.weight_participation):.3f}")
    near = "  ".join(f"{t}: {float(v):.2%}" for t, v in
                     zip(ds.threshold.values, first.near_zero_fraction.values))
    if near:
        lines.append(f"  near zero {near}")
    if not np.all(np.isnan(last.a.values)):
        lines.append(f"  a [{np.nanmin(last.a.values):.4g}, {np.nanmax(last.a.values):.4g}]  "
                     f"b [{np.nanmin(last.b.values):.4g}, {np.nanmax(last.b.values):.4g}]")
    bad = int(np.nansum(last.weight_nonfinite.values))
    if bad:
        lines.append(f"  WARNING: {bad} non-finite weights in the last record")
    return lines


# ---------------------------------------------------------------- export


def export_main(argv: list[str], prog: str = "wcviz export") -> int:
    """Write runs as a tidy long-form CSV, NetCDF or Parquet table, or TensorBoard events."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Runs as one tidy long-form table (" + ", ".join(COLUMNS) +
        "), or as TensorBoard event files (one folder per run).")
    parser.add_argument("runs", nargs="+", help="run directories, or a runs root")
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument("--out", help="output file, or folder for tensorboard, or MLflow tracking "
                                      "URI for mlflow (sqlite:///mlflow.db, a .db file, a folder, "
                                      "a server URL); '-' or omitted: CSV to stdout")
    parser.add_argument("--experiment", default="wcviz",
                        help="the MLflow experiment the runs go to (--format mlflow)")
    parser.add_argument("--no-histogram", action="store_true",
                        help="leave out the histogram counts (the bulk of the rows)")
    args = parser.parse_args(argv)
    if args.format != "csv" and args.out in (None, "-"):
        target = {"tensorboard": "DIR", "mlflow": "TRACKING_URI (e.g. sqlite:///mlflow.db)"}.get(
            args.format, f"FILE.{_SUFFIX.get(args.format)}")
        raise WcvizError(f"--format {args.format} needs --out {target}")
    datasets = []
    paths = _expand(args.runs)
    for i, (path, root) in enumerate(paths, 1):
        listed = root is not None
        reading(i, len(paths), path)
        try:
            datasets.append(open_run(path, root=root))
        except WcvizError as err:
            if not listed:  # named on the command line: the user asked for it
                raise
            print(f"skipping broken run {path}: {err}", file=sys.stderr)  # found under a root
    _refuse_same_ids(datasets)
    _refuse_out_in_run(args.out, args.format, datasets)
    if args.format == "tensorboard":
        from wcviz.integrations.tensorboard import write_runs

        written = write_runs(datasets, args.out, histogram=not args.no_histogram)
        print(f"wrote TensorBoard events of {len(written)} run(s) to {args.out}; view them "
              f"with: tensorboard --logdir {args.out}", file=sys.stderr)
        return 0
    if args.format == "mlflow":
        from wcviz.integrations.mlflow import export_runs, tracking_uri

        written, skipped = export_runs(datasets, args.out, experiment=args.experiment)
        for path in skipped:
            print(f"skipping {path}: already in MLflow experiment {args.experiment!r}",
                  file=sys.stderr)
        print(f"wrote {len(written)} MLflow run(s) to experiment {args.experiment!r} of "
              f"{tracking_uri(args.out)}; view them with: mlflow ui --backend-store-uri "
              f"{tracking_uri(args.out)}", file=sys.stderr)
        return 0
    table = long_form(datasets, histogram=not args.no_histogram)
    _write(table, args.format, args.out)
    if args.out not in (None, "-"):
        print(f"wrote {len(table):,} rows of {len(datasets)} run(s) to {args.out}",
              file=sys.stderr)
    return 0


def _refuse_same_ids(datasets) -> None:
    """Refuse two runs with one id (two folders of one name, named on the command line): their
    rows, or TensorBoard folders, would merge."""
    seen: dict[str, str] = {}
    for ds in datasets:
        rid, path = str(ds.attrs["run_id"]), str(ds.attrs["path"])
        if rid in seen and seen[rid] != path:
            raise WcvizError(f"two runs are named {rid!r} ({seen[rid]}, {path}); their rows "
                             "would merge: pass the folder that holds both (each run is then "
                             "named by its path below it)")
        seen.setdefault(rid, path)


def _refuse_out_in_run(out: str | None, fmt: str, datasets) -> None:
    """Refuse an --out that would write inside a run folder (a run's config.json, or its
    folder as the tensorboard target): exports never touch the runs they read."""
    if out in (None, "-"):
        return
    if fmt == "mlflow":  # a tracking URI: only a local store's file or folder is ours to check
        from urllib.parse import urlparse

        from wcviz.integrations.mlflow import tracking_uri

        uri = urlparse(tracking_uri(out))
        if uri.scheme not in ("sqlite", "file"):
            return
        out = uri.path
    base = Path(out).absolute()
    targets = [base / str(ds.attrs["run_id"]) for ds in datasets] if fmt == "tensorboard" \
        else [base]
    for target in targets:
        for folder in (target, *target.parents):
            if folder.name == STORE_NAME or (folder / STORE_NAME).is_dir():
                raise WcvizError(f"--out {out} would write inside the run {folder}; pass "
                                 "--out a path outside every run folder (e.g. ./exports)")


def _expand(paths: list[str]) -> list[tuple[Path, Path | None]]:
    """Run dirs as given; a directory that is no run but holds runs expands to them.

    Returns (run dir, the root it was found under, or None when named itself) pairs: a run's
    id is its path below that root (``wcviz.record.reader.run_key``); a damaged run found under
    a root is skipped with a line, one named on the command line is an error."""
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not store_path(path).exists():
            runs, broken = list_runs(path)
            for bad in broken:  # reported, as open_runs does, not silently dropped
                print(f"skipping broken run {bad.path}: {bad.error}", file=sys.stderr)
            if runs:
                out += [(r.path, path) for r in runs]
                continue
        out.append((path, None))
    return out


def long_form(datasets, histogram: bool = True):
    """One tidy ``pandas.DataFrame`` (run, layer, epoch, statistic, value) of the runs."""
    import pandas as pd

    frames = [_run_frame(ds, histogram) for ds in datasets]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: [] for c in COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _run_frame(ds, histogram: bool):
    import pandas as pd

    run = ds.attrs["run_id"]
    epochs = ds.epoch.values
    layers = np.array([str(x) for x in ds.layer.values], dtype=object)
    parts = []
    optional = [name for name in OPTIONAL_LAYER_VARS if name in ds.data_vars]
    for name in [*LAYER_VARS, *optional]:
        if name == "weight_histogram" and not histogram:
            continue
        values = ds[name].values  # (epoch, layer[, extra...])
        if values.ndim == 2:
            parts.append(_block(run, layers, epochs, values, np.array([name], dtype=object)))
            continue
        labels = _labels(ds, name)
        edges = ds["bin_edges"].values if name == "weight_histogram" else None
        parts.append(_block(run, layers, epochs, values, labels, edges))
    for name, var in metric_variables(ds).items():  # by the user's metric names
        values = ds[var].values[:, None]
        parts.append(_block(run, np.array([""], dtype=object), epochs, values,
                            np.array([name], dtype=object)))
    frame = pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True)
    return frame[list(COLUMNS)]


def _labels(ds, name: str) -> np.ndarray:
    """Statistic labels of a variable's dims after (epoch, layer), e.g. ``weight_quantile@0.5``,
    ``original_quantile@original1@0.5`` (row-major, as ``values`` reshapes)."""
    labels = [name]
    for dim in ds[name].dims[2:]:
        labels = [f"{lab}@{_label(dim, v)}" for lab in labels for v in ds[dim].values]
    return np.array(labels, dtype=object)


def _label(dim: str, value) -> str:
    if dim == "bin":
        return f"bin={int(value)}"
    if dim == "quantile":
        return f"{float(value):g}"
    return str(value)


def _block(run, layers, epochs, values, labels, edges=None) -> dict:
    """Long rows of ``values`` shaped (epoch, layer[, label]); NaN values dropped.

    ``edges`` (layer, label + 1): the histogram bin edges, giving the bin_lo/bin_hi columns.
    """
    values = values.reshape(len(epochs), len(layers), len(labels))
    e, lay, lab = np.meshgrid(np.arange(len(epochs)), np.arange(len(layers)),
                              np.arange(len(labels)), indexing="ij")
    keep = ~np.isnan(values)
    if edges is None:
        lo = hi = np.full(int(keep.sum()), np.nan)
    else:
        lo, hi = edges[lay[keep], lab[keep]], edges[lay[keep], lab[keep] + 1]
    return {"run": np.full(int(keep.sum()), run, dtype=object), "layer": layers[lay[keep]],
            "epoch": epochs[e[keep]], "statistic": labels[lab[keep]], "value": values[keep],
            "bin_lo": lo, "bin_hi": hi}


_SUFFIX = {"netcdf": "nc", "parquet": "parquet", "tensorboard": ""}


def _write(table, fmt: str, out: str | None) -> None:
    if fmt == "parquet":
        _checked_parent(out)
        require("pyarrow", needed_by="--format parquet")
        with _writing(out):
            table.to_parquet(out, index=False, engine="pyarrow")
        return
    if fmt == "csv":
        if out in (None, "-"):
            try:
                table.to_csv(sys.stdout, index=False)
            except BrokenPipeError:  # `wcviz export RUN | head`: the reader left early
                sys.stdout = open(os.devnull, "w")
        else:
            _checked_parent(out)
            with _writing(out):
                table.to_csv(out, index=False)
        return
    import xarray as xr

    _checked_parent(out)
    ds = xr.Dataset({c: ("row", table[c].to_numpy()) for c in COLUMNS})
    ds.attrs["description"] = "wcviz runs in tidy long form: " + ", ".join(COLUMNS)
    with _writing(out):
        ds.to_netcdf(out)


@contextlib.contextmanager
def _writing(out: str):
    """Turn the OS's refusal to write ``out`` (a directory, no permission...) into one line."""
    try:
        yield
    except OSError as err:
        raise WcvizError(f"cannot write {out}: {err.strerror or err}; pass --out a file path "
                         "in a writable folder") from None


def _checked_parent(out: str) -> None:
    parent = Path(out).resolve().parent
    if not parent.is_dir():
        raise WcvizError(f"cannot write {out}: folder {parent} does not exist")
