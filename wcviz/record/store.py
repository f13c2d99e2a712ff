"""The run store's writer: one Zarr v3 directory per run, created whole, appended crash-safely.

A run folder (:mod:`wcviz.record.runfolder`) holds the store, ``record.zarr``, written here.
``xarray.open_zarr(".../record.zarr")`` opens the raw store with nothing else;
:func:`wcviz.record.reader.open_run` is the same, sliced to the committed records.

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

A kill during the (rare, once per block) grow can leave arrays of two lengths; ``open_run``
reads such a store anyway and :meth:`RunStore.open` (resume) finishes the grow.

One writer: a writer holds an exclusive lock on ``<run_dir>/.writer.lock`` (released by
:meth:`RunStore.finish` or when the process ends, even by a kill), so a second writer resuming
or replacing the same run, in another process or in the same one (a second ``Recorder`` of a
re-run notebook cell), gets a :class:`WcvizError` instead of interleaving records.
Readers take no lock.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import json
import math
import os
import shutil
import socket
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from wcviz.errors import WcvizError
from wcviz.record.atomic import write_atomic
from wcviz.record.config import config_json, json_safe
from wcviz.record.index import REFRESH_EVERY, refresh_entry
from wcviz.record.locks import lock_writer, unlock_writer
from wcviz.record.measures import QUANTILES, check_quantiles, parse_threshold
from wcviz.record.metrics import (
    METRIC_ATTR,
    METRICS,
    TABLE,
    TABLE_DIM,
    TABLE_NAMES,
    check_name,
    metric_float,
    short_repr,
    user_name,
    variable_for,
)
from wcviz.record.runfolder import FINISHED, RUNNING, CONFIG_NAME, STATUSES, STORE_NAME, store_path
from wcviz.record.schema import (
    AUX_COORDS,
    EPOCH_CHUNK,
    LAYER_VARS,
    COMPLETE_CHUNKS,
    MAX_SIZES,
    METRIC_BLOCK,
    OPTIONAL_LAYER_VARS,
    READ_VERSIONS,
    SCHEMA_VERSION,
    read_root_attrs,
)


class DiskFull(WcvizError):
    """No space left on the device a run is written to (what was kept is in the message)."""


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` is the file system's "no space left" (or "quota exceeded")."""
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


#: Root attribute: when the last writer let go of a run it left ``running`` (see
#: :meth:`RunStore.release`); None or absent while a writer holds it.
RELEASED = "released"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        #: per epoch array, its chunk writers, one per chunk across the other dimensions
        #: (None: written through zarr, e.g. older layouts)
        self._writers = {n: _RowWriter.all_of(self.path / n, self._arrays[n])
                         for n in self._epoch_vars}
        attrs = dict(group.attrs)
        self.n_committed = int(attrs["n_committed"])
        self.layers = [str(s) for s in self._arrays["layer"][:]]
        self.quantiles = tuple(float(q) for q in self._arrays["quantile"][:])
        self.thresholds = [str(s) for s in self._arrays["threshold"][:]]
        self.n_bins = int(self._arrays["bin"].shape[0])
        #: the parametrization originals' names (coordinate ``original``; empty without one)
        self.originals = ([str(s) for s in self._arrays["original"][:]]
                          if "original" in self._arrays else [])
        self.epoch_chunk = int(attrs.get("epoch_chunk") or EPOCH_CHUNK)
        self.last_epoch = (float(self._arrays["epoch"][self.n_committed - 1])
                           if self.n_committed else None)
        #: user metric name -> variable (see wcviz.record.metrics); with a metric table
        #: (schema 2) only the schema's METRICS, the others being its columns
        self.metrics = {user_name(n, self._arrays[n].attrs): n for n in self._metric_names()}
        #: user metric name -> column of the metric table, in column order (schema 2)
        self.columns = ({name: i for i, name in enumerate(self._arrays[TABLE].attrs[TABLE_NAMES])}
                        if TABLE in self._arrays else None)

    # ---- creation

    @classmethod
    def create(cls, run_dir, *, layers: Sequence[str], layer_kinds: Sequence[str],
               layer_numel: Sequence[int], bin_edges, thresholds: Sequence[str],
               quantiles: Sequence[float] = QUANTILES, attrs: dict | None = None,
               config: dict | None = None, overwrite: bool = False,
               weight_std_init: Sequence[float] | None = None,
               epoch_chunk: int = EPOCH_CHUNK, optional: Sequence[str] = (),
               originals: Sequence[str] = (),
               schema_version: int = SCHEMA_VERSION) -> "RunStore":
        """Create a new run store with zero records (atomically).

        Args:
            run_dir: the run directory (created if missing); the store is ``run_dir/record.zarr``.
            layers, layer_kinds, layer_numel: per tracked layer, in model order.
            bin_edges: array (layer, bins + 1) of increasing histogram edges.
            thresholds: near-zero labels "<kind>=<t>" (kinds abs, rel, std, med: wcviz.record.measures).
            quantiles: the quantile probabilities.
            attrs: store attributes (model, dataset, seed, method, a, b, learnable, ...).
            config: the run's resolved config (stored as JSON and as ``config.json``).
            overwrite: replace an existing store (otherwise an existing store is an error).
            weight_std_init: per-layer std at epoch 0 (what "rel" thresholds multiply).
            epoch_chunk: rows per chunk along ``epoch`` (and the growth block).
            optional: names of :data:`OPTIONAL_LAYER_VARS` the store holds too.
            originals: the ``original`` coordinate (needed by ``original_quantile``).
            schema_version: the layout to write: the current one, or 1 (a variable per metric,
                for a wcviz that reads only that version).

        Raises:
            WcvizError: bad arguments, or an existing store without ``overwrite``.
        """
        run_dir = Path(run_dir)
        target = run_dir / STORE_NAME
        if target.exists() and not overwrite:
            raise WcvizError(f"a run store already exists at {target}; pass resume=True to "
                             f"continue it, overwrite=True to replace it, or use a new run dir")
        spec = _Spec.build(layers, layer_kinds, layer_numel, bin_edges, thresholds, quantiles,
                           weight_std_init, optional, originals)
        if int(epoch_chunk) < 1:
            raise WcvizError(f"epoch_chunk must be >= 1, got {epoch_chunk}")
        if schema_version not in READ_VERSIONS:
            raise WcvizError(f"schema_version must be one of {READ_VERSIONS}, got "
                             f"{schema_version!r}")
        text = config_json(config)
        root_attrs = _root_attrs(attrs, text, int(epoch_chunk), schema_version)
        tmp = run_dir / f".{STORE_NAME}.{os.getpid()}.creating"
        lock = None
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = lock_writer(run_dir)
            shutil.rmtree(tmp, ignore_errors=True)
            _build_store(tmp, spec, root_attrs)
            # the old run's config.json goes before its store: a kill in between leaves one
            # store whose own copy of its config (an attribute) is what readers then use
            (run_dir / CONFIG_NAME).unlink(missing_ok=True)
            _swap_into_place(tmp, target)
            write_atomic(run_dir / CONFIG_NAME, json.dumps(json.loads(text), indent=2) + "\n")
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            unlock_writer(lock)
            raise WcvizError(f"cannot create the run store in {run_dir}: {err.strerror or err}; "
                             f"pass a writable directory path") from None
        store = cls.open(run_dir, repair=False, lock=lock)
        store._claimed = True  # a new run dropped before its first record is still released
        refresh_entry(run_dir)  # the runs index of the parent folder lists the new run
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
        lock = lock if lock is not None else lock_writer(path.parent)
        try:
            group = zarr.open_group(path, mode="r+", zarr_format=3)
            store = cls(path.parent, group)
        except Exception as err:  # zarr/json errors of a damaged store
            unlock_writer(lock)
            if isinstance(err, WcvizError):
                raise
            raise WcvizError(f"corrupt run store {path}: {type(err).__name__}: {err}") from None
        store._lock = lock
        _HELD.add(store)  # released at exit if its writer has not (_release_held)
        # 'released' is cleared by the first write (:meth:`_write_attrs`), not here: a resume
        # refused after the open leaves the store byte for byte as it found it
        store._claimed = False
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
        epoch, step = epoch_float(epoch), step_number(step)
        k = self.n_committed
        try:
            if getattr(self, "_unclean", False):  # an append that failed midway: mend it
                self._reload()
                k = self.n_committed
            if self.last_epoch is not None and epoch <= self.last_epoch:
                raise WcvizError(f"epoch {epoch:g} is not after the last recorded epoch "
                                 f"{self.last_epoch:g}; records must have increasing epochs")
            rows = self._rows(stats, metrics or {})
            if k >= self.capacity:
                self._grow(k + 1)
            self._write_rows(k, rows)  # data first, coordinates last, then the commit
            self._write_rows(k, {"epoch": np.float64(epoch), "step": np.float64(step)})
            self._write_attrs({"n_committed": k + 1, "updated": _now()})  # the commit
        except OSError as err:
            if not disk_full(err):
                raise
            self._unclean = True
            raise DiskFull(f"no space left on the device of {self.run_dir}: record {k} (epoch "
                           f"{epoch:g}) was not written; the {k} record(s) before it are kept "
                           f"whole; free space, then record again (the run goes on from "
                           f"there)") from None
        self.n_committed, self.last_epoch = k + 1, epoch
        if self.n_committed % REFRESH_EVERY == 0:
            refresh_entry(self.run_dir)
        return k

    def _reload(self) -> None:
        """Reread the store from disk (what a failed write left may differ from memory), then
        finish a half-done grow and blank the uncommitted row."""
        import zarr

        lock = getattr(self, "_lock", None)
        RunStore.__init__(self, self.run_dir,
                          zarr.open_group(self.path, mode="r+", zarr_format=3))
        self._lock = lock
        self._repair()
        self._unclean = False

    def last_row(self, name: str) -> np.ndarray:
        """Variable ``name`` of the last committed record, as stored (float64)."""
        if self.n_committed == 0:
            raise WcvizError(f"{self.run_dir} holds no record yet")
        return np.asarray(self._arrays[name][self.n_committed - 1], dtype=np.float64)

    def layer_vars(self) -> dict[str, tuple[str, ...]]:
        """The per-layer variables this store holds (required and optional) and their dims."""
        return {**LAYER_VARS, **{n: d for n, d in OPTIONAL_LAYER_VARS.items()
                                 if n in self._arrays}}

    def ensure_layer_vars(self, names: Sequence[str], originals: Sequence[str] = ()) -> None:
        """Add optional per-layer variables this store lacks (a resumed older run), NaN for the
        records before; each is built whole in a temporary folder and renamed into place.

        Raises:
            WcvizError: ``originals`` differ from the store's ``original`` coordinate.
        """
        names = _check_optional(names, originals)
        if "original_quantile" in names and "original" in self._arrays and \
                list(originals) != self.originals:
            raise WcvizError(f"the model's parametrization originals {list(originals)} differ "
                             f"from the stored ones {self.originals}; use a new run dir")
        names = [n for n in names if n not in self._arrays]
        if "original_quantile" in names:
            self._add_array("original", ("original",), np.array(list(originals), dtype=object),
                            str, "")
            self.originals = list(originals)
        sizes = {"layer": len(self.layers), "quantile": len(self.quantiles),
                 "original": len(self.originals)}
        for name in names:
            shape = (self.capacity, *(sizes[d] for d in OPTIONAL_LAYER_VARS[name]))
            self._add_array(name, ("epoch", *OPTIONAL_LAYER_VARS[name]), np.full(shape, np.nan),
                            np.float64, np.nan, {"coordinates": " ".join(AUX_COORDS)})
            self._epoch_vars.append(name)

    def _add_array(self, name, dims, data, dtype, fill, attributes=None) -> None:
        """Create one whole array (every chunk written) in a temporary folder and rename it
        into the store: a kill midway leaves no array with missing chunks, which check_store
        would call damage."""
        import zarr

        tmp = self.path / f".{name}.{os.getpid()}.creating"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            staging = zarr.open_group(tmp, mode="w", zarr_format=3)
            _create(staging, name, dims, data.shape, self.epoch_chunk, dtype, fill, data=data,
                    attributes=attributes)
            os.replace(tmp / name, self.path / name)
        finally:  # also after a failed write (a full disk): no half-built folder is left
            shutil.rmtree(tmp, ignore_errors=True)
        # zarr.open_array ignores a ``config`` argument: the array's own with_config applies it
        # (an all-NaN row must still write its chunk)
        self._arrays[name] = zarr.open_array(self.path / name, mode="r+",
                                             zarr_format=3).with_config(_WRITE_CONFIG)
        if dims[0] == "epoch":
            self._writers[name] = _RowWriter.all_of(self.path / name, self._arrays[name])

    def _write_rows(self, k: int, rows: dict[str, np.ndarray]) -> None:
        """Write row ``k`` of several arrays (each chunk write is atomic).

        Arrays of this wcviz's layout go through their :class:`_RowWriter` (the chunk kept in
        memory, encoded and written whole: no read and no zarr round trip per array, which
        was 3 ms an array, 6 s a record with 2,000 metrics); others through zarr, concurrently.
        """
        from zarr.core.sync import sync

        rest, mine = {}, []
        for name, row in rows.items():
            writers = self._writers.get(name)
            if writers is None:
                rest[name] = row
            else:
                mine += [(writer, row) for writer in writers]
        _write_all(k, mine)  # every chunk replaced atomically; all written on return
        if not rest:
            return

        async def write_all():
            await asyncio.gather(*(self._arrays[name].async_array.setitem(k, row)
                                   for name, row in rest.items()))

        sync(write_all())

    def _rows(self, stats: dict, metrics: dict) -> dict[str, np.ndarray]:
        """Validated full rows of every epoch variable (NaN where not given)."""
        known = self.layer_vars()
        unknown = set(stats) - set(known)
        if unknown:
            raise WcvizError(f"unknown statistic(s) {sorted(unknown)}; known: {list(known)}")
        rows = {}
        for name in known:
            shape = self._arrays[name].shape[1:]
            value = stats.get(name)
            row = np.full(shape, np.nan) if value is None else np.asarray(value, dtype=np.float64)
            if row.shape != shape:
                raise WcvizError(f"statistic {name!r} has shape {row.shape}, expected {shape}")
            rows[name] = row
        values = {name: _metric_value(name, value) for name, value in metrics.items()}
        if self.columns is None:  # schema 1: a variable per metric
            for name, value in values.items():
                rows[self._ensure_metric(name)] = value
        else:
            table = {n: v for n, v in values.items() if n not in self.metrics}
            rows.update((self.metrics[n], v) for n, v in values.items() if n in self.metrics)
            self._add_columns([n for n in table if n not in self.columns])
            row = np.full(self._arrays[TABLE].shape[1], np.nan)
            row[[self.columns[n] for n in table]] = list(table.values())
            rows[TABLE] = row
        for name in self._metric_names():
            rows.setdefault(name, np.float64(np.nan))
        return rows

    def _metric_names(self) -> list[str]:
        """The variables of single metrics (the schema's, and schema 1's of other metrics)."""
        skip = set(LAYER_VARS) | set(OPTIONAL_LAYER_VARS) | {"epoch", "step", TABLE}
        return [n for n in self._epoch_vars if n not in skip]

    def _add_columns(self, names: list[str]) -> None:
        """Name the next free columns of the metric table ``names`` (new metrics, all checked
        first), widening it by whole blocks of :data:`METRIC_BLOCK` columns when full.

        The names are written last, in one attribute update: a kill before leaves free
        columns, all NaN, which no reader shows."""
        if not names:
            return
        for name in names:
            check_name(name)
        every = [*self.columns, *names]
        cap = MAX_SIZES[TABLE_DIM]
        if len(every) > cap:
            raise WcvizError(f"a run records at most {cap:,} metrics besides the schema's; "
                             f"this record would make {len(every):,}; log fewer names (one "
                             f"per quantity, not per value)")
        table = self._arrays[TABLE]
        if len(every) > table.shape[1]:
            self._widen(-(-len(every) // METRIC_BLOCK) * METRIC_BLOCK)
        table.update_attributes({TABLE_NAMES: every})
        self.columns = {name: i for i, name in enumerate(every)}

    def _widen(self, width: int) -> None:
        """Give the metric table ``width`` columns: the new blocks' chunk files (all NaN) of
        every allocated record are written before the resize makes them part of the array,
        so no chunk is ever missing (:func:`wcviz.record.integrity.check_store`)."""
        table = self._arrays[TABLE]
        writers = self._writers[TABLE]
        first = table.shape[1] // table.chunks[1]
        for col in range(first, width // table.chunks[1]):
            writers.append(_RowWriter(self.path / TABLE, table, writers[0].zstd, col))
            writers[-1].write_blank(-(-table.shape[0] // table.chunks[0]))
        table.resize((table.shape[0], width))

    def _ensure_metric(self, name: str) -> str:
        """The variable of metric ``name`` (the user's name), created on first use (whole, NaN,
        by :meth:`_add_array`)."""
        var = variable_for(name, self.metrics, self._arrays)
        if var in self._arrays:
            return var
        attrs = {METRIC_ATTR: name} if var != name else None
        self._add_array(var, ("epoch",), np.full(self.capacity, np.nan), np.float64, np.nan,
                        attrs)
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
        """Update root attributes (JSON values); ``n_committed`` cannot be set this way.

        Raises:
            DiskFull: no space left to write them (the attributes stay as they were).
        """
        attrs.pop("n_committed", None)
        try:
            self._write_attrs(json_safe(attrs))
        except OSError as err:
            if not disk_full(err):
                raise
            raise DiskFull(f"no space left on the device of {self.run_dir}: the run's "
                           f"attributes ({', '.join(attrs)}) were not written; its "
                           f"{self.n_committed} record(s) are kept whole") from None
        refresh_entry(self.run_dir)  # a status change: the runs index follows at once

    def finish(self, status: str = FINISHED) -> None:
        """Mark the run ``finished`` or ``failed`` (readers see it in ``attrs['status']``)."""
        if status not in STATUSES:
            raise WcvizError(f"status must be one of {STATUSES}, got {status!r}")
        try:
            self.set_attrs(status=status, ended=_now())
        finally:
            self.release()

    def _write_attrs(self, attrs: dict) -> None:
        """Update root attributes; this writer's first successful write also clears
        ``released`` (the run is held again): the open itself writes nothing."""
        claim = {} if getattr(self, "_claimed", False) or not self.attrs.get(RELEASED) else {
            RELEASED: None}
        self._group.update_attributes({**attrs, **claim})
        self._claimed = True

    def release(self) -> None:
        """Let other processes write this run (done by :meth:`finish` and at process end).

        A writer let go while the run is still ``running`` (a Recorder dropped without
        ``finish()``, or a failed finish) notes the time in the attribute ``released``:
        readers then call the run interrupted, as after a killed writer; resuming clears it.
        A writer let go before it wrote a record or an attribute (a resume refused after the
        open) changes nothing.
        """
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is None:
            return
        _HELD.discard(self)
        try:
            if getattr(self, "_claimed", True):
                _stamp_released(self.path)
        except Exception:  # a full disk, or interpreter shutdown: readers fall back on the pid
            pass
        unlock_writer(lock)

    def __del__(self):
        try:
            self.release()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    @property
    def attrs(self) -> dict:
        return dict(self._group.attrs)


def _stamp_released(store: Path) -> None:
    """Note the time in the root attribute ``released`` of a store still ``running``.

    Written straight into the root ``zarr.json`` (atomically), not through zarr: a release
    happens at exit too, when zarr's event loop and its file threads have stopped and a
    write through them fails or waits forever."""
    meta = store / "zarr.json"
    doc = json.loads(meta.read_text())
    if doc["attributes"].get("status") != RUNNING:
        return
    doc["attributes"][RELEASED] = _now()
    write_atomic(meta, json.dumps(doc, indent=2, ensure_ascii=False))


#: The stores this process holds a writer's lock on (released by :func:`_release_held` at exit).
_HELD: "weakref.WeakSet[RunStore]" = weakref.WeakSet()


def _release_held() -> None:
    """Release the stores whose writers have not: a script that ends without ``finish()``
    leaves its run marked ``released`` (interrupted) at once, rather than whenever (and
    whether) the interpreter's last garbage collection reaches the store."""
    for store in list(_HELD):
        store.release()


atexit.register(_release_held)
# a forked child (a data-loader worker) holds copies, not the runs: it releases none at its exit
os.register_at_fork(after_in_child=_HELD.clear)


def epoch_float(epoch) -> float:
    """A record's epoch as a float: a finite real number (one line naming it otherwise)."""
    try:
        value = float(epoch)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(epoch, (str, bytes, bool)) or not math.isfinite(value):
        raise WcvizError(f"epoch must be a finite number (0 before training, epochs trained "
                         f"after), got {short_repr(epoch)}")
    return value


def step_number(step) -> int:
    """A record's optimizer step count as an int, -1 for None (unknown).

    Raises:
        WcvizError: not a whole number >= 0 (NaN, inf, 2.5, -3, text).
    """
    if step is None:
        return -1
    try:
        value = float(step)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(step, (str, bytes, bool)) or not math.isfinite(value) or value < 0 \
            or value != int(value):
        raise WcvizError(f"step must be a whole number >= 0 (the optimizer step count) or "
                         f"None, got {short_repr(step)}")
    return int(value)


def _metric_value(name: str, value) -> np.float64:
    return np.float64(metric_float(name, value))


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
    optional: list
    originals: list

    @classmethod
    def build(cls, layers, kinds, numel, edges, thresholds, quantiles, std_init,
              optional=(), originals=()) -> "_Spec":
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
        optional = _check_optional(optional, originals)
        return cls(layers, kinds, numel, edges, parsed, check_quantiles(quantiles), std_init,
                   optional, [str(o) for o in originals])


def _check_optional(names: Sequence[str], originals: Sequence[str]) -> list[str]:
    """``names`` checked against :data:`OPTIONAL_LAYER_VARS` (in schema order)."""
    unknown = sorted(set(names) - set(OPTIONAL_LAYER_VARS))
    if unknown:
        raise WcvizError(f"unknown optional variable(s) {unknown}; known: "
                         f"{list(OPTIONAL_LAYER_VARS)}")
    if "original_quantile" in names and (not originals or len(set(originals)) != len(originals)):
        raise WcvizError("original_quantile needs distinct, non-empty originals names")
    return [n for n in OPTIONAL_LAYER_VARS if n in names]


def _root_attrs(attrs: dict | None, config_text: str, epoch_chunk: int,
                schema_version: int = SCHEMA_VERSION) -> dict:
    import torch

    base = {"schema_version": schema_version, "n_committed": 0, "status": RUNNING,
            "created": _now(), "updated": _now(), "method": "none", "a": None, "b": None,
            "learnable": None, "model": None, "dataset": None, "seed": None,
            "torch_version": torch.__version__, "device": "cpu",
            "host": socket.gethostname(), "pid": os.getpid(), "epoch_chunk": epoch_chunk,
            COMPLETE_CHUNKS: True}
    extra = dict(attrs or {})
    for reserved in ("schema_version", "n_committed", "config", COMPLETE_CHUNKS):
        extra.pop(reserved, None)
    base.update(extra)
    base["config"] = config_text
    return json_safe(base)


#: Array settings of a writer: write every chunk, all-NaN ones too (see ``_create``).
_WRITE_CONFIG = {"write_empty_chunks": True}


#: Largest uncompressed chunk of an epoch array, in bytes: a record rewrites its chunk whole,
#: so a wide row (10,000 layers × 81 bins is 6.5 MB) gets fewer records per chunk.
CHUNK_BYTES = 1 << 20


def epoch_rows(epoch_chunk: int, row_bytes: int) -> int:
    """Records per chunk of an epoch array: the largest divisor of ``epoch_chunk`` whose chunk
    stays within :data:`CHUNK_BYTES` (at least 1), so chunks tile the growth blocks."""
    fits = [d for d in range(1, epoch_chunk + 1)
            if epoch_chunk % d == 0 and d * row_bytes <= CHUNK_BYTES]
    return max(fits, default=1)


def _create(group, name, dims, shape, epoch_chunk, dtype, fill, data, attributes=None):
    chunks = tuple(min(epoch_chunk, s) if d == "epoch" else max(s, 1)
                   for d, s in zip(dims, shape))
    if dims and dims[0] == "epoch":
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
        chunks = (epoch_rows(epoch_chunk, row_bytes), *chunks[1:])
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
    if "original_quantile" in spec.optional:
        static["original"] = (("original",), str, "", strings(spec.originals))
    for name, (dims, dtype, fill, data) in static.items():
        if data.size:
            _create(group, name, dims, data.shape, chunk, dtype, fill, data)
        else:  # zero thresholds: an empty coordinate
            _create(group, name, dims, data.shape, chunk, dtype, fill, None)
    sizes = {"layer": n, "quantile": len(spec.quantiles), "threshold": len(spec.thresholds),
             "bin": nb, "original": len(spec.originals)}
    cap = chunk
    _create(group, "epoch", ("epoch",), (cap,), chunk, np.float64, np.nan, None)
    _create(group, "step", ("epoch",), (cap,), chunk, np.float64, np.nan, None)
    coords = {"coordinates": " ".join(AUX_COORDS)}
    optional = {name: OPTIONAL_LAYER_VARS[name] for name in spec.optional}
    for name, dims in {**LAYER_VARS, **optional}.items():
        shape = (cap, *(sizes[d] for d in dims))
        _create(group, name, ("epoch", *dims), shape, chunk, np.float64, np.nan, None, coords)
    for name in METRICS:
        _create(group, name, ("epoch",), (cap,), chunk, np.float64, np.nan, None, coords)
    if root_attrs["schema_version"] >= 2:  # one column block, no metric named yet
        _create(group, TABLE, ("epoch", TABLE_DIM), (cap, METRIC_BLOCK), chunk, np.float64,
                np.nan, np.full((cap, METRIC_BLOCK), np.nan), {TABLE_NAMES: []})


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





class _RowWriter:
    """Writes records of one float64 epoch array straight to its chunk files.

    The chunk holding the current record is kept in memory (read once, or all fill values
    when its file does not exist yet); a record updates its row there and the whole chunk is
    encoded exactly as zarr would (little-endian bytes, zstd, crc32c) and written by
    rename, as zarr's local store writes it. Only arrays of exactly that layout are taken
    (:meth:`all_of`): one chunk across every dimension but ``epoch``, or (the metric table)
    blocks of columns, one writer each; the rest go through zarr.
    """

    def __init__(self, folder: Path, array, zstd, col: int | None = None):
        self.folder = folder
        self.array = array
        self.rows = int(array.chunks[0])
        self.zstd = zstd
        #: the block of columns written (the metric table), None: the whole row
        self.col = col
        self._index = -1  # the chunk held in ``_block``
        self._block = None
        self._on_disk = False  # whether that chunk's file exists

    @classmethod
    def all_of(cls, folder: Path, array) -> "list[_RowWriter] | None":
        """The writers of ``array``'s rows (one per chunk across the other dimensions), or
        None when its layout is not one handled here."""
        from zarr.codecs import BytesCodec, Crc32cCodec, ZstdCodec

        meta = array.metadata
        codecs = list(getattr(meta, "codecs", ()))
        if (array.dtype != np.float64 or len(codecs) != 3
                or not isinstance(codecs[0], BytesCodec) or codecs[0].endian is None
                or codecs[0].endian.value != "little"
                or not isinstance(codecs[1], ZstdCodec) or not isinstance(codecs[2], Crc32cCodec)
                or getattr(meta.chunk_key_encoding, "separator", "/") != "/"):
            return None
        from numcodecs import Zstd

        zstd = Zstd(level=codecs[1].level, checksum=codecs[1].checksum)
        grows = tuple(meta.dimension_names or ())[1:] == (TABLE_DIM,)  # by column blocks
        if not grows and tuple(array.chunks[1:]) == tuple(array.shape[1:]):
            return [cls(folder, array, zstd)]
        if grows and array.shape[1] % array.chunks[1] == 0:
            return [cls(folder, array, zstd, col)
                    for col in range(array.shape[1] // array.chunks[1])]
        return None

    def write(self, k: int, row) -> None:
        """Write ``row`` (the array's whole row, or a scalar for all of it) as record ``k``
        (its chunk file replaced whole, atomically)."""
        job = self._encode(k, row)
        if job is not None:
            _replace_file(*job)
            self._on_disk = True

    def write_blank(self, chunks: int) -> None:
        """Write this writer's first ``chunks`` chunk files all fill values (a new block of
        columns), before the array's shape includes them."""
        data = self._encoded(np.full((self.rows, *self.array.chunks[1:]), self.array.fill_value,
                                     dtype=np.float64))
        for index in range(chunks):
            _replace_file(self._chunk_path(index), data)

    def _chunk_path(self, index: int) -> Path:
        coords = (index, *[0] * (self.array.ndim - 1)) if self.col is None else (index, self.col)
        return self.folder / self.array.metadata.encode_chunk_key(coords)

    def _columns(self, row: np.ndarray) -> np.ndarray:
        if self.col is None or row.ndim == 0:
            return row
        width = self.array.chunks[1]
        return row[self.col * width:(self.col + 1) * width]

    def _encode(self, k: int, row) -> tuple[Path, bytes] | None:
        """Put ``row`` in record ``k``'s chunk; returns (its file, the bytes it must hold),
        or None when the file already holds them."""
        index = k // self.rows
        if index != self._index:
            self._path = self._chunk_path(index)
            self._block = self._load(index, self._path)
            self._index = index
            self._on_disk = self._path.exists()
        at = k - index * self.rows
        row = self._columns(np.asarray(row, dtype=np.float64))
        if self._on_disk and np.isnan(row).all() and np.isnan(self._block[at]).all():
            return None  # the file already holds exactly this (a metric not given, v of a plain layer)
        self._block[at] = row
        return self._path, self._encoded(self._block)

    def _encoded(self, block: np.ndarray) -> bytes:
        """A chunk's file bytes, as zarr encodes them (little-endian, zstd, crc32c)."""
        import google_crc32c

        data = self.zstd.encode(np.ascontiguousarray(block, dtype="<f8").tobytes())
        return data + google_crc32c.value(data).to_bytes(4, "little")

    def _load(self, index: int, path: Path) -> np.ndarray:
        """Chunk ``index`` as an array: fill values when its file does not exist, else read."""
        shape = (self.rows, *self.array.chunks[1:])
        if not path.exists():
            return np.full(shape, self.array.fill_value, dtype=np.float64)
        start = index * self.rows
        cols = () if self.col is None else (
            slice(self.col * shape[1], (self.col + 1) * shape[1]),)
        return np.array(self.array[(slice(start, start + self.rows), *cols)], dtype=np.float64)


def _replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` by a file holding ``data``, atomically (write aside, then rename)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        _write_new(tmp, data)
    except FileNotFoundError:  # the first chunk of a block: its folder is new
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(tmp, data)
    os.replace(tmp, path)


def _write_new(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


#: Arrays written per record above which their chunk files are written by a few threads: the
#: file system's create and rename calls release the GIL and, on a disk, wait on its journal.
PARALLEL_FILES = 64
_POOL: list = []  # [pid, ThreadPoolExecutor], made on first use


def _write_all(k: int, jobs: list) -> None:
    """``writer.write(k, row)`` for each (writer, row) job (one thread per writer at a time);
    every write done or failed on return, the first error raised."""
    if len(jobs) < PARALLEL_FILES:
        for writer, row in jobs:
            writer.write(k, row)
        return
    if not _POOL or _POOL[0] != os.getpid():  # a forked child cannot use its parent's threads
        from concurrent.futures import ThreadPoolExecutor

        _POOL[:] = [os.getpid(), ThreadPoolExecutor(8, thread_name_prefix="wcviz-chunks")]
    futures = [_POOL[1].submit(writer.write, k, row) for writer, row in jobs]
    errors = [f.exception() for f in futures]  # waits for every write, failed or not
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
