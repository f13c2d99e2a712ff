"""What the dashboard reads and how it shapes it: tidy pandas frames from run stores.

Everything here is plain Python (no Streamlit), so tests and ``benchmarks/dash_load.py`` call
the very functions the pages call. Reading goes through :mod:`wcviz` only and stays inside the
runs root: a run whose directory resolves outside it (a symlink out) is listed as a problem and
never opened.

Caching: a store only ever grows by whole committed records, so ``(path, n_epochs, status)`` of
its listing names one immutable state of it. Every per-run read is memoised on that key; a
running store that commits one more record gets a new key on the next scan, finished stores are
read once per process. Frames returned from the caches are shared: callers must not mutate them.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from wcviz.errors import WcvizError
from wcviz.metrics import metric_variables, split_kind

#: Environment variable through which ``wcviz dash`` hands the runs root to the app.
ROOT_ENV = "WCVIZ_RUNS_ROOT"

#: Runs-table columns taken from store attributes, in display order.
ATTR_COLUMNS = ("model", "dataset", "method", "a", "b", "learnable", "seed")

#: Accuracy metrics tried in order for the runs table's best/last accuracy columns.
ACC_METRICS = ("val_acc", "test_acc", "train_acc")

#: Per-epoch metric variables of the store schema (DESIGN.md, "Run store").
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
           "epoch_seconds")

# Per-run caches hold small frames (a layer's quantiles: epochs × 9 floats); this many entries
# cover a few hundred runs × a few views without unbounded growth in a long-lived server.
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Run:
    """One healthy run as listed by a scan; the cache key of everything read from it.

    Attributes:
        run_id: the run directory's path below the root (its name for a flat root).
        path: absolute, resolved run directory (inside the root).
        n_epochs: committed records (epoch 0 included).
        status: "running", "finished" or "failed".
        attrs: store attributes (model, dataset, method, a, b, learnable, seed, ...).
    """

    run_id: str
    path: str
    n_epochs: int
    status: str
    attrs: tuple  # sorted (key, value) pairs: hashable, so Run can key the caches

    @property
    def key(self) -> tuple[str, int, str]:
        """The state of the store this listing saw: changes only when it commits or finishes."""
        return (self.path, self.n_epochs, self.status)

    def attr(self, name: str, default=None):
        """One store attribute, or ``default``."""
        return dict(self.attrs).get(name, default)


@dataclass(frozen=True)
class Problem:
    """A directory under the root that the app will not show, and why (one line)."""

    path: str
    error: str


@dataclass(frozen=True)
class Scan:
    """Healthy runs in name order, and the problems found next to them."""

    root: Path
    runs: tuple[Run, ...]
    problems: tuple[Problem, ...]

    def by_id(self) -> dict[str, Run]:
        """Runs keyed by run id."""
        return {r.run_id: r for r in self.runs}


def runs_root(value: str | os.PathLike | None = None) -> Path:
    """The runs root the app serves: ``value``, else ``$WCVIZ_RUNS_ROOT``, else ``./runs``.

    Raises:
        WcvizError: the directory does not exist.
    """
    raw = value if value is not None else os.environ.get(ROOT_ENV) or "runs"
    root = Path(raw).expanduser().resolve()
    if not root.is_dir():
        raise WcvizError(f"runs root {str(raw)!r} is not a directory; pass an existing RUNS_ROOT "
                         "(e.g. the ./runs that 'wcviz demo' writes)")
    return root


def is_inside(root: Path, path: str | os.PathLike) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def _attr_items(attrs: dict) -> tuple:
    # Store attributes are JSON values; lists/dicts become strings so the tuple stays hashable.
    return tuple(sorted((str(k), v if isinstance(v, (str, int, float, bool, type(None))) else repr(v))
                        for k, v in attrs.items()))


def _run_id(root: Path, info) -> str:
    # Runs may sit in nested folders (sweep/seed0, other/seed0): the path below the root is
    # unique where the directory name alone is not.
    rel = Path(info.path).resolve().relative_to(root).as_posix()
    return str(info.run_id) if rel == "." else rel


#: Folder levels searched below the root for runs (as ``wcviz.store.list_runs`` does).
MAX_DEPTH = 3


def _walk(root: Path, folder: Path, depth: int, infos: list, problems: list) -> None:
    """Collect runs below ``folder``, never reading a directory or store outside ``root``."""
    from wcviz.store import STORE_NAME, check_confined, list_runs

    store = folder / STORE_NAME
    if store.exists() and not is_inside(root, store):  # a run folder whose store is a link out
        problems.append(Problem(str(folder), "its record.zarr resolves outside the runs root; "
                                             "not read"))
        return
    if store.exists():  # its zarr.json must be the store's own file, not a link out
        try:
            check_confined(store, root, deep=False)
        except WcvizError as err:
            problems.append(Problem(str(folder), f"{err}"))
            return
    runs, broken = list_runs(folder, max_depth=0)  # only asks: is this folder itself a run?
    if runs or broken:
        infos.extend(runs)
        problems.extend(Problem(str(b.path), str(b.error)) for b in broken)
        return
    if depth == 0:
        return
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not is_inside(root, child):
            problems.append(Problem(str(child), "resolves outside the runs root; not read"))
            continue
        _walk(root, child, depth - 1, infos, problems)


def scan(root: Path) -> Scan:
    """List the runs under ``root`` (attributes only: no array is read).

    The walk is ``wcviz.store.list_runs``' (run folders up to :data:`MAX_DEPTH` levels down),
    one folder at a time, so that a symlink leading out of the root is reported, not followed.

    Args:
        root: a directory returned by :func:`runs_root`.

    Returns:
        The healthy runs sorted by run id; stores that fail to open and folders that resolve
        outside ``root`` as :class:`Problem` entries.
    """
    root = Path(root).resolve()
    infos: list = []
    problems: list[Problem] = []
    _walk(root, root, MAX_DEPTH, infos, problems)
    by_path = {}  # a run reached twice (a symlink to it inside the root) is listed once
    for info in infos:
        path = str(Path(info.path).resolve())
        by_path.setdefault(path, Run(_run_id(root, info), path, int(info.n_epochs),
                                     str(info.status), _attr_items(dict(info.attrs))))
    runs = sorted(by_path.values(), key=lambda r: r.run_id)
    problems.sort(key=lambda p: p.path)
    return Scan(root, tuple(runs), tuple(problems))


@lru_cache(maxsize=_CACHE_SIZE)
def _dataset(path: str, n_epochs: int, status: str):
    # Keyed on the listing's (path, n_epochs, status): see the module docstring.
    import wcviz
    from wcviz.store import STORE_NAME, check_confined

    # Every file the open reads stays inside the run folder (which the scan found inside the
    # root): no symlink or hard link anywhere in its store.
    check_confined(Path(path) / STORE_NAME, path)
    return wcviz.open_run(path)


def dataset(run: Run):
    """The run's lazy :class:`xarray.Dataset` (opened once per committed state)."""
    return _dataset(*run.key)


def _values(da) -> np.ndarray:
    return np.asarray(da.values, dtype=float)


def layers(run: Run) -> list[str]:
    """The run's recorded layer names, in model order."""
    return [str(name) for name in dataset(run)["layer"].values]


def quantile_columns() -> dict[float, str]:
    """Quantile level -> column name of the wide frames, e.g. ``0.0668 -> "p6_68"``.

    No dots in the names: Vega-Lite reads a dot in a field name as nesting.
    """
    from wcviz.measures import QUANTILES

    return {float(q): f"p{q * 100:g}".replace(".", "_") for q in QUANTILES}


def bands() -> list[tuple[str, str, str]]:
    """Nested percentile bands as ``(label, low column, high column)``, widest first.

    The quantile list is symmetric (min/max, then ±1.5σ, ±1σ, ±0.5σ of a normal), so band i
    spans quantiles i and -1-i; the middle quantile is the median line.
    """
    cols = list(quantile_columns().items())
    out = []
    for (q_lo, lo), (q_hi, hi) in zip(cols[: len(cols) // 2], cols[::-1]):
        out.append((f"{q_lo * 100:g}–{q_hi * 100:g} %", lo, hi))
    return out


def median_column() -> str:
    """Name of the median's column in the wide quantile frames."""
    return quantile_columns()[0.5]


@lru_cache(maxsize=_CACHE_SIZE)
def _layer_quantiles(key: tuple, run_id: str, layer: str, variable: str) -> pd.DataFrame:
    ds = _dataset(*key)
    da = ds[variable].sel(layer=layer)  # (epoch, quantile): one layer is all that is read
    frame = pd.DataFrame(_values(da.transpose("epoch", "quantile")),
                         columns=list(quantile_columns().values()))
    frame.insert(0, "epoch", _values(ds["epoch"]))
    frame.insert(0, "layer", layer)
    frame.insert(0, "run", run_id)
    return frame


def layer_quantiles(run: Run, layer: str, variable: str = "weight_quantile") -> pd.DataFrame:
    """Wide quantile frame of one layer of one run: ``run, layer, epoch, p0 … p100``.

    Args:
        run: a listed run.
        layer: a recorded layer name.
        variable: ``"weight_quantile"`` (w = Ψ(v)) or ``"v_quantile"`` (the raw parameter).

    Raises:
        WcvizError: the run has no such layer.
    """
    if layer not in layers(run):
        raise WcvizError(f"run {run.run_id!r} has no layer {layer!r}; pick one of its recorded layers")
    return _layer_quantiles(run.key, run.run_id, layer, variable)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The frames stacked, or an empty frame with ``columns`` when there are none."""
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def distributions(runs: list[Run], layer: str, variable: str = "weight_quantile") -> pd.DataFrame:
    """The Distributions page's data: one layer's wide quantile frame for each run that has it."""
    frames = [layer_quantiles(r, layer, variable) for r in runs if layer in layers(r)]
    return _concat(frames, ["run", "layer", "epoch", *quantile_columns().values()])


@lru_cache(maxsize=_CACHE_SIZE)
def _all_quantiles(key: tuple, run_id: str, variable: str) -> pd.DataFrame:
    ds = _dataset(*key)
    values = _values(ds[variable].transpose("epoch", "layer", "quantile"))  # (E, L, Q)
    n_ep, n_layer, n_q = values.shape
    frame = pd.DataFrame(values.reshape(n_ep * n_layer, n_q), columns=list(quantile_columns().values()))
    frame.insert(0, "epoch", np.repeat(_values(ds["epoch"]), n_layer))
    frame.insert(0, "depth", np.tile(np.arange(n_layer), n_ep))
    frame.insert(0, "layer", np.tile(np.asarray([str(x) for x in ds["layer"].values], object), n_ep))
    frame.insert(0, "run", run_id)
    return frame


def all_layers(runs: list[Run], variable: str = "weight_quantile") -> pd.DataFrame:
    """Wide quantile frames of every layer (small multiples): ``run, layer, depth, epoch, p…``."""
    frames = [_all_quantiles(r.key, r.run_id, variable) for r in runs]
    return _concat(frames, ["run", "layer", "depth", "epoch", *quantile_columns().values()])


def tidy_quantiles(wide: pd.DataFrame) -> pd.DataFrame:
    """Long form of a wide quantile frame for CSV: ``run, layer, epoch, quantile, value``."""
    names = {col: q for q, col in quantile_columns().items()}
    ids = [c for c in ("run", "layer", "depth", "epoch") if c in wide.columns]
    long = wide.melt(id_vars=ids, value_vars=list(names), var_name="quantile", value_name="value")
    long["quantile"] = long["quantile"].map(names)
    return long.sort_values([*ids[:-1], "epoch", "quantile"], kind="stable", ignore_index=True)


@lru_cache(maxsize=_CACHE_SIZE)
def _near_zero(key: tuple, run_id: str) -> pd.DataFrame:
    ds = _dataset(*key)
    da = ds["near_zero_fraction"].transpose("epoch", "layer", "threshold")
    values = _values(da)
    n_ep, n_layer, n_thr = values.shape
    thresholds = [str(t) for t in ds["threshold"].values]
    names = np.asarray([str(x) for x in ds["layer"].values], object)
    numel = (_values(ds["layer_numel"]) if "layer_numel" in ds.variables
             else np.full(n_layer, np.nan))
    frame = pd.DataFrame({
        "run": run_id,
        "epoch": np.repeat(_values(ds["epoch"]), n_layer * n_thr),
        "layer": np.tile(np.repeat(names, n_thr), n_ep),
        "depth": np.tile(np.repeat(np.arange(n_layer), n_thr), n_ep),
        "numel": np.tile(np.repeat(numel, n_thr), n_ep),
        "threshold": np.tile(np.asarray(thresholds, object), n_ep * n_layer),
        "fraction": values.reshape(-1),
    })
    return frame


def near_zero(runs: list[Run]) -> pd.DataFrame:
    """Near-zero fractions, long: ``run, epoch, layer, depth, numel, threshold, fraction``."""
    frames = [_near_zero(r.key, r.run_id) for r in runs]
    return _concat(frames, ["run", "epoch", "layer", "depth", "numel", "threshold",
                                     "fraction"])


def near_zero_overall(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-network fraction per run, epoch and threshold: layers weighted by their size."""
    weight = frame["numel"].fillna(1.0)
    tmp = frame.assign(weighted=frame["fraction"] * weight, weight=weight)
    groups = tmp.groupby(["run", "epoch", "threshold"], as_index=False, sort=False)
    out = groups[["weighted", "weight"]].sum()
    out["fraction"] = out["weighted"] / out["weight"]
    out["layer"] = "all layers"
    return out[["run", "epoch", "layer", "threshold", "fraction"]]


def thresholds(runs: list[Run]) -> list[str]:
    """Threshold labels (``"abs=0.001"``, ``"rel=0.1"``) recorded by the runs, first run's order."""
    seen: dict[str, None] = {}
    for r in runs:
        for t in dataset(r)["threshold"].values:
            seen.setdefault(str(t), None)
    return list(seen)


@lru_cache(maxsize=_CACHE_SIZE)
def _compander(key: tuple, run_id: str) -> pd.DataFrame:
    ds = _dataset(*key)
    names = np.asarray([str(x) for x in ds["layer"].values], object)
    epochs = _values(ds["epoch"])
    a = _values(ds["a"].transpose("epoch", "layer"))
    b = _values(ds["b"].transpose("epoch", "layer"))
    frame = pd.DataFrame({
        "run": run_id,
        "epoch": np.repeat(epochs, len(names)),
        "layer": np.tile(names, len(epochs)),
        "depth": np.tile(np.arange(len(names)), len(epochs)),
        "a": a.reshape(-1),
        "b": b.reshape(-1),
    })
    return frame.dropna(subset=["a", "b"], how="all").reset_index(drop=True)


def compander(runs: list[Run]) -> pd.DataFrame:
    """a and b per layer over epochs, long: ``run, epoch, layer, depth, a, b`` (NaN rows dropped)."""
    frames = [_compander(r.key, r.run_id) for r in runs]
    return _concat(frames, ["run", "epoch", "layer", "depth", "a", "b"])


def is_learnable(run: Run) -> bool:
    """Whether the run trained its a, b (store attribute ``learnable`` is "fine"/"coarse")."""
    from wcviz.analysis import learnable_attr

    return learnable_attr(run.attr("learnable"))


@lru_cache(maxsize=_CACHE_SIZE)
def _metrics(key: tuple, run_id: str) -> pd.DataFrame:
    ds = _dataset(*key)
    epochs = _values(ds["epoch"])
    parts = []
    for name, var in metric_variables(ds).items():  # every metric, by the user's name
        split, kind = split_kind(name)
        parts.append(pd.DataFrame({"run": run_id, "epoch": epochs, "metric": name, "split": split,
                                   "kind": kind, "value": _values(ds[var])}))
    frame = _concat(parts, ["run", "epoch", "metric", "split", "kind", "value"])
    return frame.dropna(subset=["value"]).reset_index(drop=True)


def metrics(runs: list[Run]) -> pd.DataFrame:
    """Per-epoch metrics, long: ``run, epoch, metric, split (train/val/test/""), kind, value``."""
    frames = [_metrics(r.key, r.run_id) for r in runs]
    return _concat(frames, ["run", "epoch", "metric", "split", "kind", "value"])


def accuracy_summary(run: Run) -> dict:
    """``{"epochs": last epoch, "acc metric": name, "best acc": max, "last acc": last}`` of one run."""
    frame = _metrics(run.key, run.run_id)
    out = {"epochs": np.nan, "acc metric": "", "best acc": np.nan, "last acc": np.nan}
    ds = dataset(run)
    if ds.sizes.get("epoch", 0):
        out["epochs"] = float(ds["epoch"].values[-1])
    for wanted in ACC_METRICS:  # also under a framework's name: "val/acc", "eval_accuracy"
        split, kind = split_kind(wanted)
        rows = frame[(frame["split"] == split) & (frame["kind"] == kind)]
        name = rows["metric"].iloc[0] if len(rows) else wanted
        values = rows.loc[rows["metric"] == name, "value"]
        if len(values):
            out.update({"acc metric": name, "best acc": float(values.max()),
                        "last acc": float(values.iloc[-1])})
            break
    return out


# Opening a store costs ~0.1-0.3 s (xarray metadata), so a root of 100 runs would keep the Runs
# page blank for many seconds. One background thread opens them instead and reads their
# accuracy into the caches above, while the page shows what is ready.
# A daemon thread, not a ThreadPoolExecutor: the executor's exit hook would make the server
# finish every queued store before it can stop.
_todo: queue.SimpleQueue = queue.SimpleQueue()
_worker: threading.Thread | None = None
_lock = threading.Lock()
_queued: set[tuple] = set()  # run keys handed to the prefetch thread
_ready: set[tuple] = set()  # run keys whose dataset and accuracy are cached (or unreadable)


def _prefetch_forever() -> None:
    while True:
        _warm(_todo.get())


def _warm(run: Run) -> None:
    try:
        accuracy_summary(run)
    except Exception:  # noqa: BLE001 - an unreadable store is reported when a page opens it
        pass
    with _lock:
        _ready.add(run.key)


def prefetch(runs) -> int:
    """Open ``runs`` and read their accuracy in the background; returns how many are not ready.

    Each committed state is queued once; the calling thread never waits.
    """
    global _worker
    with _lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_prefetch_forever, name="wcviz-prefetch", daemon=True)
            _worker.start()
        for run in runs:
            if run.key not in _queued:
                _queued.add(run.key)
                _todo.put(run)
        return sum(run.key not in _ready for run in runs)


def is_ready(run: Run) -> bool:
    """Whether the run's dataset and accuracy are cached (reading them costs nothing)."""
    with _lock:
        return run.key in _ready


def runs_table(scan_: Scan, *, accuracy: bool | str = True) -> pd.DataFrame:
    """The Runs page's table: one row per healthy run.

    Args:
        scan_: a :func:`scan` result.
        accuracy: True reads each run's metrics for epochs done and best/last accuracy (one
            small read per run, cached on its committed state); ``"ready"`` fills them only for
            runs already cached (:func:`is_ready`), NaN for the others; False keeps to attributes.

    Returns:
        Columns ``run, model, dataset, method, a, b, learnable, seed, status, records`` and, with
        ``accuracy``, ``epochs, acc metric, best acc, last acc``.
    """
    rows = []
    for run in scan_.runs:
        row = {"run": run.run_id, **{c: run.attr(c) for c in ATTR_COLUMNS},
               "status": run.status, "records": run.n_epochs}
        if accuracy is True or (accuracy == "ready" and is_ready(run)):
            try:
                row.update(accuracy_summary(run))
            except WcvizError:
                row["acc metric"] = "unreadable"
        rows.append(row)
    columns = ["run", *ATTR_COLUMNS, "status", "records"]
    if accuracy:
        columns += ["epochs", "acc metric", "best acc", "last acc"]
    table = pd.DataFrame(rows, columns=columns)
    for col in ("model", "dataset", "method", "learnable", "seed"):  # text, "" where unset
        table[col] = table[col].map(lambda v: "" if v is None or v != v else str(v))
    for col in ("a", "b"):  # numbers; NaN where the method has none
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def filter_table(table: pd.DataFrame, text: str = "", **equal: list) -> pd.DataFrame:
    """Rows whose cells contain ``text`` (any column, case-insensitive) and whose columns match.

    Args:
        table: a :func:`runs_table` frame.
        text: substring to look for; empty keeps every row.
        **equal: column -> allowed values; an empty list keeps every row.
    """
    mask = pd.Series(True, index=table.index)
    if text:
        cells = table.map(lambda v: "" if v is None or v != v else str(v))  # NaN -> ""
        hay = cells.agg(" ".join, axis=1).str.lower()
        mask &= hay.str.contains(text.lower(), regex=False)
    for col, allowed in equal.items():
        if allowed:
            mask &= table[col].astype(str).isin([str(v) for v in allowed])
    return table[mask]
