"""The run store: one Zarr v3 directory per run, crash-safe appends, xarray reading.

A run lives in ``<runs_root>/<run_id>/``: ``record.zarr`` (this module), ``config.json`` (the
resolved config) and ``checkpoints/``. ``xarray.open_zarr(".../record.zarr")`` opens the raw
store with nothing else; :func:`open_run` is the same, sliced to the committed records.

Write protocol (each step is one atomic file write, zarr >= 3.1.3 writes via rename):

1. **create**: the whole store is built in a temporary directory and renamed into place, so a
   store either exists complete with zero records or not at all.
2. **append** record k: the epoch axis is preallocated in blocks of :data:`EPOCH_CHUNK` rows
   (NaN-filled, one chunk file per block); when full, every array grows by one block. The
   record is written as row k of every epoch array (data first, the ``epoch``/``step``
   coordinates last), then **committed** by rewriting the root attribute ``n_committed``.
3. **read**: readers take ``n_committed`` and slice to it, so they see records 0..k-1 whole,
   never a torn one. Rows beyond it are NaN (``epoch`` is NaN there) in normal operation; after
   a kill mid-append the uncommitted row may hold part of a record until the run is resumed.

A kill during the (rare, once per block) grow can leave arrays of two lengths; :func:`open_run`
reads such a store anyway and :meth:`RunStore.open` (resume) finishes the grow.

One writer: a writer holds an exclusive lock on ``<run_dir>/.writer.lock`` (released by
:meth:`RunStore.finish` or when the process ends, even by a kill), so a second writer resuming
or replacing the same run, in another process or in the same one (a second ``Recorder`` of a
re-run notebook cell), gets a :class:`WcvizError` instead of interleaving records.
Readers take no lock.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import os
import shutil
import socket
import stat
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from wcviz.errors import WcvizError
from wcviz.fsutil import write_atomic
from wcviz.measures import QUANTILES, check_quantiles, parse_threshold
from wcviz.metrics import METRIC_ATTR, metric_float, user_name, variable_for

SCHEMA_VERSION = 1
STORE_NAME = "record.zarr"
CONFIG_NAME = "config.json"
#: Rows per chunk along ``epoch``, and the block by which the epoch axis grows.
EPOCH_CHUNK = 128

#: Metrics with a fixed place in the schema (NaN where not measured). Other metric names
#: passed to ``append`` get their own (epoch) variable on first use.
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
           "epoch_seconds")

#: Per-layer variables: name -> dims after ``epoch``. The single source of truth of the schema.
LAYER_VARS: dict[str, tuple[str, ...]] = {
    "weight_quantile": ("layer", "quantile"),
    "near_zero_fraction": ("layer", "threshold"),
    "weight_histogram": ("layer", "bin"),
    "weight_mean": ("layer",),
    "weight_std": ("layer",),
    "weight_absmax": ("layer",),
    "weight_l2": ("layer",),
    "weight_participation": ("layer",),
    "weight_nonfinite": ("layer",),  # count of NaN/±inf weights (0 normally)
    "v_quantile": ("layer", "quantile"),
    "a": ("layer",),
    "b": ("layer",),
}

#: Non-index coordinates, listed in every data variable's CF ``coordinates`` attribute so that
#: xarray opens them as coordinates.
AUX_COORDS = ("step", "layer_kind", "layer_numel", "threshold_kind", "threshold_value",
              "bin_edges", "weight_std_init")

STATUSES = ("running", "finished", "failed")

#: Every variable and coordinate a valid store has (checked when opening).
REQUIRED = ("epoch", "layer", "quantile", "threshold", "bin", *AUX_COORDS, *LAYER_VARS, *METRICS)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_safe(value):
    """Attribute values as JSON: NaN/inf become None (zarr attributes are JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def config_json(config: dict | None) -> str:
    """The canonical JSON text of a config (sorted keys), used for storing and comparing.

    Paths are stored as strings; any other value JSON cannot hold is refused (its ``str()``
    could differ between processes, e.g. an address, and then no resume would match).

    Raises:
        WcvizError: a value that is not JSON (nor a path).
    """
    try:
        return json.dumps(_json_safe(config or {}), sort_keys=True, default=_path_text)
    except (TypeError, ValueError) as err:
        raise WcvizError(f"config is not JSON-serializable ({err}); pass plain values") from None


def _path_text(value) -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} value {value!r:.60} is not JSON")


def _as_config(config) -> dict:
    """A config dict or config JSON text as the plain dict its canonical JSON reads back as."""
    if isinstance(config, str):
        try:
            config = json.loads(config or "{}")
        except ValueError:
            return {"<unreadable config>": config}
    return json.loads(config_json(config))


def config_changes(new, old) -> str:
    """How config ``new`` differs from ``old`` (dicts or config JSON texts), for an error
    message: the first differing top-level keys with both values; "" when they are the same.

    The one definition of "same config" (resume, the train/sweep/demo run states): configs are
    compared as their canonical JSON (:func:`config_json`), so key order and tuple/list do not
    count.
    """
    new, old = _as_config(new), _as_config(old)
    if not isinstance(new, dict) or not isinstance(old, dict):
        return "" if new == old else "its value"
    keys = sorted(k for k in set(new) | set(old) if new.get(k, ...) != old.get(k, ...))
    return ", ".join(f"{k} ({old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r})"
                     for k in keys[:5]) + (" ..." if len(keys) > 5 else "")


def same_config(a, b) -> bool:
    """Whether two configs (dicts or config JSON texts) are the same (:func:`config_changes`)."""
    return not config_changes(a, b)


def url_scheme(path) -> str | None:
    """The scheme of a URL such as ``"s3://bucket/run"`` or ``"memory://x"``; None for a path."""
    if isinstance(path, str) and "://" in path:
        scheme = path.split("://", 1)[0]
        if scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
            return scheme.lower()
    return None


def local_path(path) -> Path:
    """``path`` as a local :class:`Path` for reading: a ``file://`` URL gives its path; any other
    URL is refused (run stores are read from local disk).

    Raises:
        WcvizError: a non-file URL.
    """
    scheme = url_scheme(path)
    if scheme == "file":
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(path).path))
    if scheme is not None:
        raise WcvizError(f"{path!r} is a {scheme}:// URL; wcviz reads run stores from local "
                         f"disk only: copy the run to a local folder (or mount it) and pass "
                         f"that path")
    return Path(path)


def store_path(path) -> Path:
    """The ``record.zarr`` of a run directory (or the path itself if it is one)."""
    path = local_path(path)
    return path if path.name == STORE_NAME or (path / "zarr.json").is_file() else path / STORE_NAME


def writer_alive(attrs: dict) -> bool | None:
    """Whether the process that last opened a run for writing still runs (None: unknown,
    e.g. another host). Tells an interrupted run from a live one whose status is "running"."""
    if attrs.get("host") != socket.gethostname() or not isinstance(attrs.get("pid"), int):
        return None
    try:
        os.kill(attrs["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_root_attrs(store: Path) -> dict:
    """The root attributes of a store from its ``zarr.json`` (no array is read).

    Raises:
        WcvizError: not a run store, corrupt, or another schema version.
    """
    meta = store / "zarr.json"
    if not store.exists():
        raise WcvizError(f"no run store at {store}; pass a run directory that holds "
                         f"{STORE_NAME} (made by wcviz.Recorder)")
    try:
        doc = json.loads(meta.read_text())
    except FileNotFoundError:
        raise WcvizError(f"{store} is not a Zarr store (no zarr.json); pass a run directory "
                         f"made by wcviz.Recorder") from None
    except (OSError, ValueError) as err:
        raise WcvizError(f"corrupt run store {store}: unreadable zarr.json ({err})") from None
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict) or "schema_version" not in attrs:
        raise WcvizError(f"{store} is a Zarr store but not a wcviz run store "
                         f"(no schema_version attribute)")
    if attrs["schema_version"] != SCHEMA_VERSION:
        raise WcvizError(f"{store} has run-store schema version {attrs['schema_version']!r}; "
                         f"this wcviz reads version {SCHEMA_VERSION}; use the wcviz that wrote it")
    if not isinstance(attrs.get("n_committed"), int) or attrs["n_committed"] < 0:
        raise WcvizError(f"corrupt run store {store}: bad n_committed attribute")
    return attrs


# ---------------------------------------------------------------- writer


class RunStore:
    """Writer of one run store. Use :meth:`create` (new run) or :meth:`open` (resume)."""

    def __init__(self, run_dir: Path, group):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / STORE_NAME
        self._group = group
        self._arrays = {name: arr.with_config(_WRITE_CONFIG) for name, arr in group.arrays()}
        self._epoch_vars = [n for n, a in self._arrays.items()
                            if a.metadata.dimension_names and a.metadata.dimension_names[0] == "epoch"]
        attrs = dict(group.attrs)
        self.n_committed = int(attrs["n_committed"])
        self.layers = [str(s) for s in self._arrays["layer"][:]]
        self.quantiles = tuple(float(q) for q in self._arrays["quantile"][:])
        self.thresholds = [str(s) for s in self._arrays["threshold"][:]]
        self.n_bins = int(self._arrays["bin"].shape[0])
        self.epoch_chunk = int(attrs.get("epoch_chunk") or EPOCH_CHUNK)
        self.last_epoch = (float(self._arrays["epoch"][self.n_committed - 1])
                           if self.n_committed else None)
        #: user metric name -> variable (see wcviz.metrics)
        self.metrics = {user_name(n, self._arrays[n].attrs): n for n in self._metric_names()}

    # ---- creation

    @classmethod
    def create(cls, run_dir, *, layers: Sequence[str], layer_kinds: Sequence[str],
               layer_numel: Sequence[int], bin_edges, thresholds: Sequence[str],
               quantiles: Sequence[float] = QUANTILES, attrs: dict | None = None,
               config: dict | None = None, overwrite: bool = False,
               weight_std_init: Sequence[float] | None = None,
               epoch_chunk: int = EPOCH_CHUNK) -> "RunStore":
        """Create a new run store with zero records (atomically).

        Args:
            run_dir: the run directory (created if missing); the store is ``run_dir/record.zarr``.
            layers, layer_kinds, layer_numel: per tracked layer, in model order.
            bin_edges: array (layer, bins + 1) of increasing histogram edges.
            thresholds: near-zero labels "<kind>=<t>" (kinds abs, rel, std, med: wcviz.measures).
            quantiles: the quantile probabilities.
            attrs: store attributes (model, dataset, seed, method, a, b, learnable, ...).
            config: the run's resolved config (stored as JSON and as ``config.json``).
            overwrite: replace an existing store (otherwise an existing store is an error).
            weight_std_init: per-layer std at epoch 0 (what "rel" thresholds multiply).
            epoch_chunk: rows per chunk along ``epoch`` (and the growth block).

        Raises:
            WcvizError: bad arguments, or an existing store without ``overwrite``.
        """
        run_dir = Path(run_dir)
        target = run_dir / STORE_NAME
        if target.exists() and not overwrite:
            raise WcvizError(f"a run store already exists at {target}; pass resume=True to "
                             f"continue it, overwrite=True to replace it, or use a new run dir")
        spec = _Spec.build(layers, layer_kinds, layer_numel, bin_edges, thresholds, quantiles,
                           weight_std_init)
        if int(epoch_chunk) < 1:
            raise WcvizError(f"epoch_chunk must be >= 1, got {epoch_chunk}")
        text = config_json(config)
        root_attrs = _root_attrs(attrs, text, int(epoch_chunk))
        tmp = run_dir / f".{STORE_NAME}.{os.getpid()}.creating"
        lock = None
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = _lock_writer(run_dir)
            shutil.rmtree(tmp, ignore_errors=True)
            _build_store(tmp, spec, root_attrs)
            _swap_into_place(tmp, target)
            write_atomic(run_dir / CONFIG_NAME, json.dumps(json.loads(text), indent=2) + "\n")
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            _unlock_writer(lock)
            raise WcvizError(f"cannot create the run store in {run_dir}: {err.strerror or err}; "
                             f"pass a writable directory path") from None
        store = cls.open(run_dir, repair=False, lock=lock)
        return store

    @classmethod
    def open(cls, run_dir, repair: bool = True, lock=None) -> "RunStore":
        """Reopen an existing store for appending (resume).

        With ``repair`` (default), finishes a grow a killed writer left half done and blanks
        the uncommitted row it may have left, so the raw store again holds NaN beyond
        ``n_committed``. A run another process is writing is refused (WcvizError).
        """
        import zarr

        path = store_path(run_dir)
        read_root_attrs(path)
        lock = lock if lock is not None else _lock_writer(path.parent)
        try:
            group = zarr.open_group(path, mode="r+", zarr_format=3)
            store = cls(path.parent, group)
        except Exception as err:  # zarr/json errors of a damaged store
            _unlock_writer(lock)
            if isinstance(err, WcvizError):
                raise
            raise WcvizError(f"corrupt run store {path}: {type(err).__name__}: {err}") from None
        store._lock = lock
        if repair:
            store._repair()
        return store

    # ---- appending

    @property
    def capacity(self) -> int:
        """Rows currently allocated along ``epoch``."""
        return int(self._arrays["epoch"].shape[0])

    def append(self, epoch: float, step: int | None, stats: dict[str, np.ndarray],
               metrics: dict[str, float] | None = None) -> int:
        """Write one whole record and commit it; returns its index.

        Args:
            epoch: the record's epoch (0 = before training; fractional for sub-epoch records);
                must be finite and larger than the last committed epoch.
            step: the optimizer step count at the record (None: unknown, stored as -1).
            stats: per-layer statistics keyed by variable name (see :data:`LAYER_VARS`), each
                shaped like the variable without ``epoch``; missing variables are written NaN.
            metrics: scalar metrics (loss, accuracy, lr, seconds, ...); NaN where absent.

        Raises:
            WcvizError: bad epoch, unknown variable or wrong shape.
        """
        epoch = float(epoch)
        if not math.isfinite(epoch):
            raise WcvizError(f"epoch must be a finite number, got {epoch!r}")
        if self.last_epoch is not None and epoch <= self.last_epoch:
            raise WcvizError(f"epoch {epoch:g} is not after the last recorded epoch "
                             f"{self.last_epoch:g}; records must have increasing epochs")
        rows = self._rows(stats, metrics or {})
        k = self.n_committed
        if k >= self.capacity:
            self._grow(k + 1)
        self._write_rows(k, rows)  # data first, coordinates last, then the commit
        self._write_rows(k, {"epoch": np.float64(epoch),
                             "step": np.float64(-1.0 if step is None else step)})
        self._group.update_attributes({"n_committed": k + 1, "updated": _now()})  # the commit
        self.n_committed, self.last_epoch = k + 1, epoch
        return k

    def _write_rows(self, k: int, rows: dict[str, np.ndarray]) -> None:
        """Write row ``k`` of several arrays concurrently (each chunk write is atomic)."""
        from zarr.core.sync import sync

        async def write_all():
            await asyncio.gather(*(self._arrays[name].async_array.setitem(k, row)
                                   for name, row in rows.items()))

        sync(write_all())

    def _rows(self, stats: dict, metrics: dict) -> dict[str, np.ndarray]:
        """Validated full rows of every epoch variable (NaN where not given)."""
        unknown = set(stats) - set(LAYER_VARS)
        if unknown:
            raise WcvizError(f"unknown statistic(s) {sorted(unknown)}; known: {list(LAYER_VARS)}")
        rows = {}
        for name in LAYER_VARS:
            shape = self._arrays[name].shape[1:]
            value = stats.get(name)
            row = np.full(shape, np.nan) if value is None else np.asarray(value, dtype=np.float64)
            if row.shape != shape:
                raise WcvizError(f"statistic {name!r} has shape {row.shape}, expected {shape}")
            rows[name] = row
        values = {name: _metric_value(name, value) for name, value in metrics.items()}
        for name, value in values.items():
            rows[self._ensure_metric(name)] = value
        for name in self._metric_names():
            rows.setdefault(name, np.float64(np.nan))
        return rows

    def _metric_names(self) -> list[str]:
        skip = set(LAYER_VARS) | {"epoch", "step"}
        return [n for n in self._epoch_vars if n not in skip]

    def _ensure_metric(self, name: str) -> str:
        """The variable of metric ``name`` (the user's name), created on first use.

        A new array is built whole (every chunk written, NaN) in a temporary folder and renamed
        into place: a kill midway leaves no array with missing chunks, which check_store would
        call damage.
        """
        var = variable_for(name, self.metrics, self._arrays)
        if var in self._arrays:
            return var
        import zarr

        attrs = {METRIC_ATTR: name} if var != name else None
        tmp = self.path / f".{var}.{os.getpid()}.creating"
        shutil.rmtree(tmp, ignore_errors=True)
        staging = zarr.open_group(tmp, mode="w", zarr_format=3)
        _create(staging, var, ("epoch",), (self.capacity,), self.epoch_chunk, np.float64,
                np.nan, data=np.full(self.capacity, np.nan), attributes=attrs)
        os.replace(tmp / var, self.path / var)
        shutil.rmtree(tmp, ignore_errors=True)
        self._arrays[var] = zarr.open_array(self.path / var, mode="r+", zarr_format=3,
                                            config=_WRITE_CONFIG)
        self._epoch_vars.append(var)
        self.metrics[name] = var
        return var

    def _grow(self, rows: int) -> None:
        """Extend every epoch array to a whole number of blocks >= ``rows`` (NaN-filled)."""
        new = -(-rows // self.epoch_chunk) * self.epoch_chunk
        for name in self._epoch_vars:
            arr = self._arrays[name]
            if arr.shape[0] < new:
                arr.resize((new, *arr.shape[1:]))

    def _repair(self) -> None:
        """Finish an interrupted grow and blank the uncommitted row a kill may have left."""
        lengths = {self._arrays[n].shape[0] for n in self._epoch_vars}
        if len(lengths) > 1:
            self._grow(max(lengths))
        k = self.n_committed
        if k < self.capacity:  # data rows are written before the epoch: blank them all
            self._write_rows(k, {name: np.nan for name in self._epoch_vars})

    # ---- status

    def set_attrs(self, **attrs) -> None:
        """Update root attributes (JSON values); ``n_committed`` cannot be set this way."""
        attrs.pop("n_committed", None)
        self._group.update_attributes(_json_safe(attrs))

    def finish(self, status: str = "finished") -> None:
        """Mark the run ``finished`` or ``failed`` (readers see it in ``attrs['status']``)."""
        if status not in STATUSES:
            raise WcvizError(f"status must be one of {STATUSES}, got {status!r}")
        self.set_attrs(status=status, ended=_now())
        self.release()

    def release(self) -> None:
        """Let other processes write this run (done by :meth:`finish` and at process end)."""
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            _unlock_writer(lock)

    def __del__(self):
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    @property
    def attrs(self) -> dict:
        return dict(self._group.attrs)


def _metric_value(name: str, value) -> np.float64:
    return np.float64(metric_float(name, value))


#: Writer locks this process holds: (pid, run dir) -> open lock file. One entry per run: a
#: second RunStore/Recorder of the same process on the same run is refused like a second process.
_LOCKS: dict[tuple[int, str], object] = {}


def _lock_writer(run_dir: Path):
    """Hold ``run_dir/.writer.lock`` so that no second writer (process *or* object) can write.

    An exclusive ``flock`` (released by the OS when the process ends, killed or not), held by
    one writer object; a second one in this process (a re-run notebook cell) is refused too,
    since two writers overwrite each other's records. Returns the key to release.
    """
    key = (os.getpid(), str(Path(run_dir).resolve()))
    if key in _LOCKS:
        gc.collect()  # an unreachable writer (its name rebound) releases the run in __del__
    if key in _LOCKS:  # keyed by pid: a forked child does not inherit its parent's claim
        raise WcvizError(f"run {run_dir} is already open for writing in this process (another "
                         f"Recorder or RunStore); call finish() on that one first, or use it")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no protection
        return None
    handle = open(Path(run_dir) / ".writer.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise WcvizError(f"run {run_dir} is being written by another process; wait for it "
                         f"to end (or stop it) before resuming or replacing the run") from None
    _LOCKS[key] = handle
    return key


def _unlock_writer(key) -> None:
    handle = _LOCKS.pop(key, None)
    if handle is not None:
        handle.close()


# ---------------------------------------------------------------- building a new store


@dataclass
class _Spec:
    layers: list[str]
    kinds: list[str]
    numel: np.ndarray
    edges: np.ndarray
    thresholds: list
    quantiles: tuple
    std_init: np.ndarray

    @classmethod
    def build(cls, layers, kinds, numel, edges, thresholds, quantiles, std_init) -> "_Spec":
        layers, kinds = [str(x) for x in layers], [str(x) for x in kinds]
        n = len(layers)
        if n == 0 or len(set(layers)) != n:
            raise WcvizError("a run store needs at least one layer and distinct layer names")
        edges = np.asarray(edges, dtype=np.float64)
        numel = np.asarray(numel, dtype=np.int64)
        std_init = np.full(n, np.nan) if std_init is None else np.asarray(std_init, np.float64)
        if len(kinds) != n or numel.shape != (n,) or std_init.shape != (n,):
            raise WcvizError("layers, layer_kinds, layer_numel (and weight_std_init) must have "
                             "one entry per layer")
        if edges.ndim != 2 or edges.shape[0] != n or edges.shape[1] < 2 or \
                not np.all(np.diff(edges, axis=1) > 0):
            raise WcvizError(f"bin_edges must be increasing, shaped (layer, bins + 1); got "
                             f"shape {edges.shape}")
        parsed = [parse_threshold(t) for t in thresholds]
        if len({t.label for t in parsed}) != len(parsed):
            raise WcvizError(f"thresholds must be distinct, got {list(thresholds)}")
        return cls(layers, kinds, numel, edges, parsed, check_quantiles(quantiles), std_init)


def _root_attrs(attrs: dict | None, config_text: str, epoch_chunk: int) -> dict:
    import torch

    base = {"schema_version": SCHEMA_VERSION, "n_committed": 0, "status": "running",
            "created": _now(), "updated": _now(), "method": "none", "a": None, "b": None,
            "learnable": None, "model": None, "dataset": None, "seed": None,
            "torch_version": torch.__version__, "device": "cpu",
            "host": socket.gethostname(), "pid": os.getpid(), "epoch_chunk": epoch_chunk}
    extra = dict(attrs or {})
    for reserved in ("schema_version", "n_committed", "config"):
        extra.pop(reserved, None)
    base.update(extra)
    base["config"] = config_text
    return _json_safe(base)


#: Array settings of a writer: write every chunk, all-NaN ones too (see ``_create``).
_WRITE_CONFIG = {"write_empty_chunks": True}


def _create(group, name, dims, shape, epoch_chunk, dtype, fill, data, attributes=None):
    chunks = tuple(min(epoch_chunk, s) if d == "epoch" else max(s, 1)
                   for d, s in zip(dims, shape))
    if dims and dims[0] == "epoch":
        chunks = (epoch_chunk, *chunks[1:])
    from zarr.codecs import Crc32cCodec, ZstdCodec

    # crc32c after compression: a damaged chunk fails its checksum (check_store, zarr's reads)
    # rather than decoding to garbage; every chunk is written, all-NaN ones too, so a missing
    # chunk file is always damage (check_store).
    arr = group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
                             dimension_names=list(dims), attributes=attributes or {},
                             compressors=[ZstdCodec(), Crc32cCodec()], config=_WRITE_CONFIG)
    if data is not None:
        arr[...] = data
    return arr


def _build_store(path: Path, spec: _Spec, root_attrs: dict) -> None:
    """Write a complete zero-record store at ``path`` (a temporary location)."""
    import zarr

    group = zarr.open_group(path, mode="w", zarr_format=3, attributes=root_attrs)
    n, nb = len(spec.layers), spec.edges.shape[1] - 1
    chunk = root_attrs["epoch_chunk"]
    strings = lambda xs: np.array(xs, dtype=object)  # noqa: E731 - variable-length strings
    static = {
        "layer": (("layer",), str, "", strings(spec.layers)),
        "layer_kind": (("layer",), str, "", strings(spec.kinds)),
        "layer_numel": (("layer",), np.int64, 0, spec.numel),
        "weight_std_init": (("layer",), np.float64, np.nan, spec.std_init),
        "quantile": (("quantile",), np.float64, np.nan, np.array(spec.quantiles)),
        "threshold": (("threshold",), str, "", strings([t.label for t in spec.thresholds])),
        "threshold_kind": (("threshold",), str, "", strings([t.kind for t in spec.thresholds])),
        "threshold_value": (("threshold",), np.float64, np.nan,
                            np.array([t.value for t in spec.thresholds], dtype=np.float64)),
        "bin": (("bin",), np.int64, 0, np.arange(nb)),
        "bin_edges": (("layer", "bin_edge"), np.float64, np.nan, spec.edges),
    }
    for name, (dims, dtype, fill, data) in static.items():
        if data.size:
            _create(group, name, dims, data.shape, chunk, dtype, fill, data)
        else:  # zero thresholds: an empty coordinate
            _create(group, name, dims, data.shape, chunk, dtype, fill, None)
    sizes = {"layer": n, "quantile": len(spec.quantiles), "threshold": len(spec.thresholds),
             "bin": nb}
    cap = chunk
    _create(group, "epoch", ("epoch",), (cap,), chunk, np.float64, np.nan, None)
    _create(group, "step", ("epoch",), (cap,), chunk, np.float64, np.nan, None)
    coords = {"coordinates": " ".join(AUX_COORDS)}
    for name, dims in LAYER_VARS.items():
        shape = (cap, *(sizes[d] for d in dims))
        _create(group, name, ("epoch", *dims), shape, chunk, np.float64, np.nan, None, coords)
    for name in METRICS:
        _create(group, name, ("epoch",), (cap,), chunk, np.float64, np.nan, None, coords)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename a finished store into place; an old store (overwrite) is removed only after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- reading


def check_store(store, attrs: dict | None = None, confine_to=None) -> None:
    """Check a store's integrity from its files alone (no array is decoded).

    For every array: its ``zarr.json`` parses, epoch arrays hold ``n_committed`` rows, and
    every chunk of the committed records (and of static arrays) is present and, where the array
    has the ``crc32c`` codec (every store this wcviz creates), matches its checksum. Stores
    written before checksums existed are checked as far as their files allow (no chunk is
    required: they skipped writing all-NaN chunks).

    Args:
        store: the ``record.zarr`` path.
        attrs: its root attributes (read when not given).
        confine_to: a directory every file of the store must stay inside: symlinks anywhere in
            the store and files with more than one hard link are refused (what the dashboard
            serves must not be made to read a file outside its root).

    Raises:
        WcvizError: one line naming the array and the records that are damaged, and the fix.
    """
    store = Path(store)
    if confine_to is not None:
        check_confined(store, confine_to)
    attrs = read_root_attrs(store) if attrs is None else attrs
    n = int(attrs["n_committed"])
    for entry in sorted(store.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            _check_array(store, entry, n)


def _damaged(store: Path, what: str) -> WcvizError:
    return WcvizError(f"damaged run store {store}: {what}; restore the run from a copy, or "
                      f"re-record it (the other runs are not affected)")


def _check_array(store: Path, folder: Path, n: int) -> None:
    """One array of :func:`check_store`."""
    name = folder.name
    try:
        doc = json.loads((folder / "zarr.json").read_text())
        shape = [int(x) for x in doc["shape"]]
        chunks = [int(x) for x in doc["chunk_grid"]["configuration"]["chunk_shape"]]
        dims = list(doc.get("dimension_names") or [])
        codecs = [c.get("name") if isinstance(c, dict) else c for c in doc.get("codecs", [])]
        sep = ((doc.get("chunk_key_encoding") or {}).get("configuration") or {}).get(
            "separator", "/")
    except FileNotFoundError:
        if any(folder.iterdir()):
            raise _damaged(store, f"array {name!r} has lost its zarr.json") from None
        return  # an empty folder is no array
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise _damaged(store, f"array {name!r} has an unreadable zarr.json "
                              f"({type(err).__name__})") from None
    if doc.get("node_type") != "array" or len(chunks) != len(shape):
        return
    epoch = dims[:1] == ["epoch"]
    if epoch and shape[0] < n:
        raise _damaged(store, f"n_committed says {n} records but array {name!r} holds "
                              f"{shape[0]} rows")
    if 0 in shape:
        return
    counts = [-(-s // c) for s, c in zip(shape, chunks)]
    if epoch:
        counts[0] = -(-n // chunks[0])
    checked = "crc32c" in codecs
    for index in np.ndindex(*counts):
        key = sep.join(["c", *map(str, index)]) if index else "c"
        rows = (f"records {index[0] * chunks[0]}-{min(n, (index[0] + 1) * chunks[0]) - 1}"
                if epoch else "its values")
        path = folder / key
        if not path.is_file():
            if checked:
                raise _damaged(store, f"array {name!r}: {rows} are missing (chunk file {key} "
                                      f"is gone)")
            continue
        if checked and not _crc_ok(path.read_bytes()):
            raise _damaged(store, f"array {name!r}: {rows} fail their checksum (chunk file "
                                  f"{key} is corrupt)")


def _crc_ok(data: bytes) -> bool:
    """Whether a chunk ends with the crc32c of the rest (little-endian), as zarr writes it."""
    import google_crc32c

    return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")


def check_confined(store, root, deep: bool = True) -> None:
    """Refuse a store that could make a reader open a file outside ``root``.

    The store must resolve inside ``root``, and it, its ``zarr.json`` and (``deep``) every
    directory and file below it must be real: no symlink (which could point anywhere) and no
    file with a second hard link (a link to a file elsewhere looks like a plain file). What a
    server such as the dashboard opens is then exactly the store's own files.

    Raises:
        WcvizError: one line naming the offending path.
    """
    store, root = Path(store), Path(root).resolve()
    if store.is_symlink() or not store.resolve().is_relative_to(root):
        raise WcvizError(f"{store} is a symlink or resolves outside {root}; not read")
    paths = _store_entries(os.fspath(store)) if deep else [os.fspath(store / "zarr.json")]
    for path in paths:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue  # removed meanwhile (a writer's temporary file); nothing to read there
        if stat.S_ISLNK(info.st_mode):
            raise WcvizError(f"{path} is a symlink; no link inside a run store is read (it "
                             f"could lead outside {root}); replace it by the file itself")
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            raise WcvizError(f"{path} has {info.st_nlink} hard links; only a store's own files "
                             f"are read (copy the run without hard links)")


def _store_entries(folder: str) -> Iterator[str]:
    """Every path below ``folder`` (links not followed), as strings: a store has hundreds of
    files and the dashboard checks each store it reads, so no Path object per file (pathlib
    was about 2 ms of a run's 10 ms read on a 100-run page)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # gone meanwhile, or unreadable (as os.walk: nothing there is read)
        return
    for entry in entries:
        yield entry.path
        if entry.is_dir(follow_symlinks=False):
            yield from _store_entries(entry.path)


def open_run(path):
    """Open one run as a lazy :class:`xarray.Dataset` holding its committed records only.

    Args:
        path: a run directory or its ``record.zarr``.

    Returns:
        The dataset of the schema (``epoch`` sliced to the committed records, ``step`` as
        int64, string coordinates as Python str objects). ``attrs`` hold the store's attributes
        plus ``run_id`` (the run directory's name) and ``path`` (the run directory).

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
    extras = sorted(set(ds.data_vars) - set(LAYER_VARS) - set(METRICS))
    return _tidied(ds, [*LAYER_VARS, *METRICS, *extras], store)


def _check_epochs(store: Path, ds) -> None:
    """Every committed record has its epoch (a lost chunk of an old store reads as NaN)."""
    try:
        epochs = np.asarray(ds["epoch"].values, dtype=np.float64)
    except Exception as err:  # a codec error of a damaged chunk
        raise _damaged(store, f"array 'epoch' cannot be decoded ({type(err).__name__})") from None
    bad = np.flatnonzero(~np.isfinite(epochs))
    if bad.size:
        raise _damaged(store, f"record {int(bad[0])} has no epoch (its chunk of 'epoch' is "
                              f"missing or blank)")


def _tidied(ds, names: list[str], store: Path):
    """``ds`` with its data variables in ``names`` order (not the directory listing's), ``step``
    as int64, string coordinates as Python str objects, and ``run_id``/``path`` attributes.

    Built in one constructor call: adding variables or coordinates one at a time re-aligns
    the whole dataset each time, which was most of a cold ``open_run`` (about 60 ms a store).
    """
    import xarray as xr

    coords = {name: ds.coords[name].variable for name in ds.coords}
    coords["step"] = coords["step"].astype(np.int64)
    for name in ("layer", "layer_kind", "threshold", "threshold_kind"):
        if name in coords:
            coords[name] = coords[name].astype(object)
    out = xr.Dataset({name: ds[name].variable for name in names}, coords=coords, attrs=ds.attrs)
    out.attrs["run_id"] = store.parent.name
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
        variables[name] = xr.Variable(dims, np.asarray(data))
    coords = {k: v for k, v in variables.items() if k in coord_names or k in v.dims}
    data_vars = {k: v for k, v in variables.items() if k not in coords}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def open_runs(root) -> list:
    """Open every run under ``root`` (see :func:`list_runs`), skipping broken ones.

    Broken stores are reported in one warning each, naming the path and the problem.
    """
    runs, broken = list_runs(root)
    out = []
    for bad in broken:
        warnings.warn(f"skipping broken run {bad.path}: {bad.error}", stacklevel=2)
    for info in runs:
        try:
            out.append(open_run(info.path))
        except WcvizError as err:
            warnings.warn(f"skipping broken run {info.path}: {err}", stacklevel=2)
    return out


@dataclass
class RunInfo:
    """A run found by :func:`list_runs` (attributes only, no arrays read)."""

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


#: Folder levels below a runs root searched for runs (``runs/<sweep>/<config>/<seed>``).
MAX_DEPTH = 3


def list_runs(root, max_depth: int = MAX_DEPTH) -> tuple[list[RunInfo], list[BrokenRun]]:
    """Find runs under ``root`` fast, from their root attributes only.

    A run is a directory holding ``record.zarr`` (or only ``config.json``, then it is reported
    broken); subdirectories of a run are not searched. ``root`` may itself be a run.

    Returns:
        (runs sorted by path, broken runs).

    Raises:
        WcvizError: ``root`` is not a directory.
    """
    root = local_path(root)
    if not root.is_dir():
        raise WcvizError(f"runs root {root} is not a directory; pass the folder that holds "
                         f"run directories (e.g. ./runs)")
    runs, broken = [], []
    for run_dir in run_dirs(root, max_depth):
        try:
            attrs = read_root_attrs(run_dir / STORE_NAME)
        except WcvizError as err:
            broken.append(BrokenRun(run_dir, str(err)))
            continue
        runs.append(RunInfo(run_dir.name, run_dir, attrs, int(attrs["n_committed"]),
                            str(attrs.get("status"))))
    return runs, broken


def run_dirs(root, max_depth: int = MAX_DEPTH,
             skip: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """The run directories under ``root``, in path order: the one definition of run discovery.

    A run is a directory holding ``record.zarr`` or ``config.json``; a run's subdirectories
    are not searched, nor hidden ones; ``root`` may itself be a run.

    Args:
        root: a directory.
        max_depth: folder levels below ``root`` searched (:data:`MAX_DEPTH`).
        skip: called with each directory before it is looked into (``root`` included); when it
            returns True the directory is neither yielded nor searched (the dashboard uses this
            to report, not follow, links that lead out of its root).
    """
    root = Path(root)
    if skip is not None and skip(root):
        return
    if (root / STORE_NAME).exists() or (root / CONFIG_NAME).is_file():
        yield root
        return
    if max_depth <= 0:
        return
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from run_dirs(child, max_depth - 1, skip)


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
    except WcvizError:
        raise
    except Exception as err:  # noqa: BLE001 - zarr/json/KeyError of a damaged store: one line
        raise WcvizError(f"corrupt run store {store}: {type(err).__name__}: {err}") from None


async def _read_arrays(store: Path, names: list[str], layer: str | None,
                       layers: Sequence[str] | None) -> dict[str, np.ndarray]:
    """:func:`read_arrays` as one coroutine: open the group, then its arrays, then read them."""
    from zarr.api.asynchronous import open_group

    group = await open_group(store, mode="r", zarr_format=3)
    n = int(group.attrs.get("n_committed", 0))
    wanted = list(dict.fromkeys([*names, *(["layer"] if layer is not None and layers is None
                                             else [])]))
    arrays = dict(zip(wanted, await asyncio.gather(*(group.getitem(k) for k in wanted))))
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
        _check_chunks_present(store, arrays[name], key(name), n)
    values = await asyncio.gather(*(arrays[name].getitem(key(name)) for name in names))
    return {name: np.asarray(value) for name, value in zip(names, values)}


def _check_chunks_present(store: Path, array, selection, n: int) -> None:
    """An epoch array holds the ``n`` committed records, and every chunk file a read of
    ``selection`` needs is there, for an array with checksums (every store this wcviz creates
    writes every chunk: a missing one is damage that zarr would read as NaN). Its checksums
    zarr verifies as it decodes. One stat per chunk."""
    from zarr.codecs import Crc32cCodec

    meta = array.metadata
    dims = tuple(meta.dimension_names or ())
    if dims[:1] == ("epoch",) and meta.shape[0] < n:
        raise _damaged(store, f"n_committed says {n} records but array {array.basename!r} "
                              f"holds {meta.shape[0]} rows")
    if not any(isinstance(c, Crc32cCodec) for c in getattr(meta, "codecs", ())):
        return  # older stores skipped writing all-NaN chunks: absence is no damage there
    if selection is ...:
        selection = (slice(None),) * len(meta.shape)
    ranges = []
    for sel, size, chunk in zip(selection, meta.shape, array.chunks):
        if isinstance(sel, slice):
            stop = size if sel.stop is None else min(sel.stop, size)
            ranges.append(range(-(-stop // chunk)))
        else:
            ranges.append(range(sel // chunk, sel // chunk + 1))
    name = array.basename
    for coords in itertools.product(*ranges):
        key = meta.encode_chunk_key(coords)
        if not (store / name / key).is_file():
            raise _damaged(store, f"array {name!r}: chunk file {key} is gone (values it held "
                                  "would read as missing)")
