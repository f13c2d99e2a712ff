"""Reading run stores: one run as a lazy :class:`xarray.Dataset` sliced to its committed
records, every run under a root, and a few arrays of a run read straight from Zarr."""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from wcviz.errors import WcvizError
from wcviz.record.index import RunsIndex
from wcviz.record.integrity import check_chunks_present, check_shape, check_store, damaged
from wcviz.record.metrics import (
    METRIC_ATTR,
    METRICS,
    TABLE,
    TABLE_DIM,
    TABLE_NAMES,
    table_variables,
)
from wcviz.record.runfolder import (
    MAX_DEPTH,
    is_run_dir,
    local_path,
    run_dirs,
    store_path,
)
from wcviz.record.schema import (
    AUX_COORDS,
    LAYER_VARS,
    OPTIONAL_LAYER_VARS,
    REQUIRED,
    epoch_chunk_of,
    read_root_attrs,
)


def run_key(root, run_dir) -> str:
    """A run's identity under a runs root: its directory's path below ``root``, in posix form
    (``reproduce-digits-quick/digits-cnn_baseline_s0``); the directory's name when ``root`` is
    None, is the run itself, or does not hold it.

    The one source of a run's name in exports (the ``run`` column), figure file names,
    TensorBoard folders, the dashboard and tables: two runs of one name in different
    sub-folders of a root stay two runs.
    """
    # Absolute without resolving links: the path as found under the root, and the name of a
    # run directory given as "." (its store's parent) is its real name, not "".
    run_dir = Path(os.path.abspath(run_dir))
    if root is not None:
        rel = os.path.relpath(run_dir, os.path.abspath(root))
        if rel != "." and Path(rel).parts[0] != "..":
            return Path(rel).as_posix()
    return run_dir.name


def open_run(path, root=None):
    """Open one run as a lazy :class:`xarray.Dataset` holding its committed records only.

    Args:
        path: a run directory or its ``record.zarr``.
        root: the runs root it was found under, if any: its ``run_id`` is then its path below
            the root (:func:`run_key`).

    Returns:
        The dataset of the schema (``epoch`` sliced to the committed records, ``step`` as
        int64, string coordinates as Python str objects). ``attrs`` hold the store's attributes
        plus ``run_id`` (:func:`run_key`: the path below ``root``, else the run directory's
        name) and ``path`` (the run directory).

    Raises:
        WcvizError: not a run store, another schema version, or a corrupt store.
    """
    store = store_path(path)
    check_store(store, read_root_attrs(store))
    ds = _open_dataset(store)
    missing = [v for v in REQUIRED if v not in ds.variables]
    if missing:
        raise WcvizError(f"corrupt run store {store}: missing variable(s) {', '.join(missing)}")
    n = min(int(ds.attrs.get("n_committed", 0)), ds.sizes.get("epoch", 0))
    ds = ds.isel(epoch=slice(0, n))
    _check_epochs(store, ds)
    table = _table_metrics(store, ds)
    ds = ds.drop_vars([TABLE], errors="ignore")
    optional = [name for name in OPTIONAL_LAYER_VARS if name in ds.data_vars]
    extras = sorted((set(ds.data_vars) | set(table)) - set(LAYER_VARS) - set(optional)
                    - set(METRICS))
    return _tidied(ds, [*LAYER_VARS, *optional, *METRICS, *extras], store,
                   run_key(root, store.parent), table)


def _table_metrics(store: Path, ds) -> dict:
    """The metric table's named columns (schema 2) as (epoch) variables, each named and
    attributed as its own variable was in schema 1 (``metric_val_acc``, attribute ``metric``
    = ``"val/acc"``): both layouts open to the same Dataset. Empty without a table."""
    import xarray as xr

    if TABLE not in ds.data_vars:
        return {}
    names = ds[TABLE].attrs.get(TABLE_NAMES)
    if (not isinstance(names, list) or not all(isinstance(x, str) for x in names)
            or len(set(names)) != len(names) or len(names) > ds.sizes[TABLE_DIM]):
        raise damaged(store, f"array {TABLE!r} has no valid {TABLE_NAMES} attribute (a list "
                             f"of distinct names, at most one a column)")
    if not names:
        return {}
    try:
        values = np.asarray(ds[TABLE].values, dtype=np.float64)
    except Exception as err:  # a codec error of a damaged chunk
        raise damaged(store, f"array {TABLE!r} cannot be decoded ({type(err).__name__})") from None
    used = (set(ds.variables) | set(ds.dims)) - {TABLE}
    out = {}
    for col, (name, var) in enumerate(table_variables(names, used).items()):
        attrs = {} if var == name else {METRIC_ATTR: name}
        out[var] = xr.Variable(("epoch",), values[:, col], attrs)
    return out


def _check_epochs(store: Path, ds) -> None:
    """Every committed record has its epoch (a lost chunk of an old store reads as NaN)."""
    try:
        epochs = np.asarray(ds["epoch"].values, dtype=np.float64)
    except Exception as err:  # a codec error of a damaged chunk
        raise damaged(store, f"array 'epoch' cannot be decoded ({type(err).__name__})") from None
    bad = np.flatnonzero(~np.isfinite(epochs))
    if bad.size:
        raise damaged(store, f"record {int(bad[0])} has no epoch (its chunk of 'epoch' is "
                              f"missing or blank)")


def _tidied(ds, names: list[str], store: Path, run_id: str, table: dict | None = None):
    """``ds`` with its data variables in ``names`` order (not the directory listing's), ``step``
    as int64, string coordinates as Python str objects, and ``run_id``/``path`` attributes;
    ``table``: variables to add (the metric table's).

    Built in one constructor call: adding variables or coordinates one at a time re-aligns
    the whole dataset each time, which was most of a cold ``open_run`` (about 60 ms a store).
    """
    import xarray as xr

    coords = {name: ds.coords[name].variable for name in ds.coords}
    coords["step"] = coords["step"].astype(np.int64)
    for name in ("layer", "layer_kind", "threshold", "threshold_kind", "original"):
        if name in coords:
            coords[name] = coords[name].astype(object)
    table = table or {}
    out = xr.Dataset({name: table[name] if name in table else ds[name].variable
                      for name in names}, coords=coords, attrs=ds.attrs)
    out.attrs["run_id"] = run_id
    out.attrs["path"] = str(store.parent.resolve())
    return out


def _open_dataset(store: Path, retries: int = 20):
    """``xarray.open_zarr``, retried while a writer is growing the arrays (milliseconds)."""
    import xarray as xr

    last = None
    for attempt in range(retries):
        try:
            return xr.open_zarr(store, consolidated=False, zarr_format=3)
        except ValueError as err:
            if "conflicting sizes" not in str(err):
                raise WcvizError(f"corrupt run store {store}: {err}") from None
            last = err
            time.sleep(0.05)
        except Exception as err:  # zarr, codec and json errors of a damaged store
            raise WcvizError(f"corrupt run store {store}: {type(err).__name__}: {err}") from None
    try:  # a writer killed mid-grow: read the committed rows eagerly
        return _open_eager(store)
    except Exception as err:
        raise WcvizError(f"corrupt run store {store}: {last}; {err}") from None


def _open_eager(store: Path):
    """Build the dataset from the zarr arrays directly, cutting epoch arrays to n_committed."""
    import xarray as xr
    import zarr

    group = zarr.open_group(store, mode="r", zarr_format=3)
    attrs = dict(group.attrs)
    n = int(attrs["n_committed"])
    variables, coord_names = {}, set(AUX_COORDS)
    for name, arr in group.arrays():
        dims = tuple(arr.metadata.dimension_names)
        data = arr[:n] if dims[:1] == ("epoch",) else arr[...]
        # the attributes name metrics (``metric``, ``metric_names``); ``coordinates`` is CF
        # decoding's, done here by hand
        own = {k: v for k, v in arr.attrs.items() if k != "coordinates"}
        variables[name] = xr.Variable(dims, np.asarray(data), own)
    coords = {k: v for k, v in variables.items() if k in coord_names or k in v.dims}
    data_vars = {k: v for k, v in variables.items() if k not in coords}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def open_runs(root) -> list:
    """Open every run under ``root`` (see :func:`list_runs`), skipping broken ones; each run's
    ``run_id`` is its path below ``root`` (:func:`run_key`).

    Broken stores are reported in one warning each, naming the path and the problem.
    """
    runs, broken = list_runs(root)
    out = []
    for bad in broken:
        warnings.warn(f"skipping broken run {bad.path}: {bad.error}", stacklevel=2)
    for info in runs:
        try:
            out.append(open_run(info.path, root=local_path(root)))
        except WcvizError as err:
            warnings.warn(f"skipping broken run {info.path}: {err}", stacklevel=2)
    return out


@dataclass
class RunInfo:
    """A run found by :func:`list_runs` (attributes only, no arrays read).

    Attributes:
        run_id: its identity, the path below the root searched (:func:`run_key`).
    """

    run_id: str
    path: Path
    attrs: dict
    n_epochs: int
    status: str


@dataclass
class BrokenRun:
    """A directory that looks like a run but cannot be opened, and why."""

    path: Path
    error: str


def list_runs(root, max_depth: int = MAX_DEPTH,
              index=None) -> tuple[list[RunInfo], list[BrokenRun]]:
    """Find runs under ``root`` fast, from their root attributes only.

    A run is a directory holding ``record.zarr`` (or only ``config.json``, then it is reported
    broken); subdirectories of a run are not searched. ``root`` may itself be a run.

    The attributes come from the root's runs index (:mod:`wcviz.record.index`) where its
    entry is as fresh as the store (one ``stat`` per run), else from the store, and the
    index is brought up to date. ``index``: a :class:`wcviz.record.index.RunsIndex` of an
    enclosing root to use (its caller saves it) instead of ``root``'s own.

    Returns:
        (runs sorted by path, broken runs).

    Raises:
        WcvizError: ``root`` is not a directory.
    """
    root = local_path(root)
    if not root.is_dir():
        raise WcvizError(f"runs root {root} is not a directory; pass the folder that holds "
                         f"run directories (e.g. ./runs)")
    own = index is None
    if own:  # a run given as the root is indexed in its parent, where its writer indexes it
        index = RunsIndex(root.parent if is_run_dir(root) else root)
    runs, broken = [], []
    for run_dir in run_dirs(root, max_depth):
        try:
            attrs = index.attrs(run_dir)
        except WcvizError as err:
            broken.append(BrokenRun(run_dir, str(err)))
            continue
        runs.append(RunInfo(run_key(root, run_dir), run_dir, attrs, int(attrs["n_committed"]),
                            str(attrs.get("status"))))
    if own:
        index.save()
    return runs, broken


def read_arrays(path, names: Sequence[str], layer: str | None = None,
                layers: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """A few arrays of one run, committed rows only, read straight from its zarr arrays.

    For views over many runs that need little of each (one layer's quantiles, the layer
    names): opening the whole :func:`open_run` Dataset costs tens of ms a store in metadata,
    reading three small arrays a few ms. Each name may be a data variable or a coordinate;
    arrays along ``epoch`` are cut to the committed records, per-layer arrays to ``layer``
    when given (its index looked up in ``layers``, the run's layer names when the caller
    knows them, else in the store's ``layer`` coordinate).

    Every array is opened and read concurrently in one pass of zarr's event loop: a read
    per array (each a round trip to that loop) was most of the time of a 100-run page.

    Raises:
        WcvizError: not a run store, a missing array, or a corrupt store (one line).
    """
    from zarr.core.sync import sync

    store = store_path(path)
    try:
        return sync(_read_arrays(store, list(names), layer, layers))
    except Exception as err:  # noqa: BLE001 - zarr/json/KeyError of a damaged store: one line
        raise _one_line(store, err) from None


def _one_line(store: Path, err: Exception) -> WcvizError:
    """``err`` of reading ``store`` as the one-line error :func:`read_arrays` raises."""
    if isinstance(err, WcvizError):
        return err
    return WcvizError(f"corrupt run store {store}: {type(err).__name__}: {err}")


@dataclass(frozen=True)
class ArrayRead:
    """One run's part of :func:`read_arrays_each`: the arguments of :func:`read_arrays`."""

    path: str | os.PathLike
    names: tuple[str, ...]
    layer: str | None = None
    layers: tuple[str, ...] | None = None


def read_arrays_each(reads: Sequence[ArrayRead]) -> list[dict[str, np.ndarray] | WcvizError]:
    """:func:`read_arrays` of several runs at once, in one pass of zarr's event loop.

    A page over 100 runs paid a round trip to that loop per run (and, before, per array);
    here every store's arrays are opened and read concurrently. Each read gets what
    :func:`read_arrays` would return, or the one-line :class:`~wcviz.errors.WcvizError` it
    would raise: one damaged store fails alone, in its own slot (``reads``' order).
    """
    from zarr.core.sync import sync

    stores = [store_path(r.path) for r in reads]

    async def each():
        return await asyncio.gather(
            *(_read_arrays(store, list(r.names), r.layer, r.layers)
              for store, r in zip(stores, reads)), return_exceptions=True)

    results = sync(each()) if reads else []
    for result in results:  # KeyboardInterrupt, cancellation: not a store's fault
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    return [_one_line(store, out) if isinstance(out, Exception) else out
            for store, out in zip(stores, results)]


async def _read_arrays(store: Path, names: list[str], layer: str | None,
                       layers: Sequence[str] | None) -> dict[str, np.ndarray]:
    """:func:`read_arrays` as one coroutine: open the group, then its arrays, then read them."""
    from zarr.api.asynchronous import open_group

    group = await open_group(await _direct_store(store), mode="r", zarr_format=3)
    n = int(group.attrs.get("n_committed", 0))
    wanted = list(dict.fromkeys([*names, *(["layer"] if layer is not None and layers is None
                                             else [])]))
    arrays = dict(zip(wanted, await asyncio.gather(*(group.getitem(k) for k in wanted))))
    epoch_chunk = epoch_chunk_of(dict(group.attrs))
    for name, array in arrays.items():  # before any chunk is decoded: no crafted grid is read
        check_shape(store, name, array.metadata.dimension_names or (), array.metadata.shape,
                    array.chunks, epoch_chunk)
    index = None
    if layer is not None:
        known = layers if layers is not None else [
            str(x) for x in np.asarray(await arrays["layer"].getitem(...))]
        if layer not in known:
            raise WcvizError(f"run {store.parent.name!r} has no layer {layer!r}")
        index = list(known).index(layer)

    def key(name):
        dims = tuple(arrays[name].metadata.dimension_names or ())
        return tuple(slice(0, n) if d == "epoch" else index if d == "layer" and index is not None
                     and name != "layer" else slice(None) for d in dims) or ...

    for name in names:
        check_chunks_present(store, arrays[name], key(name), n)
    values = await asyncio.gather(*(arrays[name].getitem(key(name)) for name in names))
    return {name: np.asarray(value) for name, value in zip(names, values)}


async def _direct_store(store: Path):
    """A read-only zarr ``LocalStore`` of ``store`` that reads each whole file in the event
    loop's own thread (:func:`_direct_store_class`)."""
    return await _direct_store_class().open(store, read_only=True)


@lru_cache(maxsize=1)
def _direct_store_class():
    """zarr's ``LocalStore``, but whole files are read in the event loop's own thread.

    ``LocalStore`` hands every read to a worker thread and back; on a 100-run page those two
    thread switches per file (some 1,500 files: metadata and chunks) were a good part of the
    read: reading the names, then one layer, of 100 runs took 0.45 -> 0.38 s
    with the files in the page cache, 0.64 -> 0.51 s with them evicted (2 cores, local disk,
    load 1.0-1.4).
    Partial reads (byte ranges, which wcviz stores do not use) stay zarr's. Built on first
    use: zarr is imported only when a store is read.
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import LocalStore

    class DirectStore(LocalStore):
        async def get(self, key, prototype=None, byte_range=None):
            if byte_range is not None:
                return await super().get(key, prototype, byte_range)
            try:
                with open(self.root / key, "rb") as file:
                    data = file.read()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None  # as LocalStore.get: no such key
            return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    return DirectStore
