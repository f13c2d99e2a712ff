"""``Recorder``: exact per-layer weight statistics of any model into a run store.

Recording a training loop takes three lines::

    rec = wcviz.Recorder(model, "runs/my-run", config=cfg)   # records nothing yet
    rec.record(0)                                            # before training
    rec.record(epoch, {"train_loss": loss, "val_acc": acc})  # after each epoch

(``with wcviz.Recorder(...) as rec:`` also marks the run finished, or failed on an exception.)

Under ``torch.distributed`` only rank 0 records: on other ranks the Recorder touches no store
and ``record`` returns False at once, so the same three lines run on every rank. A model with
sharded parameters (DTensors: FSDP2 ``fully_shard``, ``distribute_tensor``) is recorded exactly
from its shards (:mod:`wcviz.record.sharded`): then every rank must create the Recorder and call
``record`` at the same epochs, since each computes its shards' part of every statistic; rank 0
alone writes.

For every tracked layer (the weights of :mod:`wcviz.reparam.layers`' policy: conv, linear,
attention projections, Hugging Face Conv1D, and any tensor named in ``layers=``;
reparametrized or not) a record holds the statistics of w = Ψ(v) (:mod:`wcviz.record.stats`), the
quantiles of the raw parameter v, and the layer's current a and b. All layers' statistics are computed on the model's device and moved
to the host in one transfer per record.
"""

from __future__ import annotations

import math
import os
import socket
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import zarr
from torch import Tensor, nn

from wcviz.errors import WcvizError
from wcviz.record.runfolder import FAILED, FINISHED, RUNNING
from wcviz.record import sharded as D
from wcviz.record import stats as S
from wcviz.record.gradients import ExtraStats
from wcviz.record.metrics import metric_float
from wcviz.record.config import config_changes
from wcviz.record.runfolder import CONFIG_NAME, STORE_NAME, url_scheme
from wcviz.record.schema import EPOCH_CHUNK, read_root_attrs
from wcviz.record.store import RunStore, epoch_float
from wcviz.reparam.compander import compand_info, compander_of, raw_weight
from wcviz.reparam.layers import (
    Target,
    left_out,
    select_named,
    tracked_weights,
    warn_left_out,
)


class Recorder:
    """Records a model's weight statistics into ``run_dir/record.zarr``.

    Args:
        model: any ``nn.Module``; companded models (``wcviz.compand``) also get v, a, b.
        run_dir: the run directory (created); the store is ``run_dir/record.zarr``.
        config: the run's resolved config (JSON-able dict), stored with the run; on resume it
            must equal the stored one.
        layers: names to track: modules (their weights), recorded layer names or parameter
            names such as ``"enc.layers.0.self_attn.in_proj_weight"`` (default: the layer
            policy of :mod:`wcviz.reparam.layers`: conv, linear, attention projections, HF Conv1D;
            other tensors with >= 2 dimensions are warned about and listed in ``left_out``).
        quantiles: quantile probabilities (default :data:`wcviz.record.stats.QUANTILES`).
        resume: reopen an existing store and continue after its last committed record.
        overwrite: replace an existing store.
        attrs: store attributes (model, dataset, seed, ...).
        thresholds: near-zero thresholds "<kind>=<t>": abs (weight units), rel (× the layer's
            std when the store is created), std / med (× the std / median |w| of each record);
            the formulas are in :mod:`wcviz.record.measures`.
        bins: histogram bins per layer.
        hist_range_factor: histogram half-range as a multiple of max|w| at creation.
        epoch_chunk: records per chunk file along ``epoch`` (the store grows by this many).
        threads: CPU threads computing layers' statistics in parallel (default min(4, cores)).
        sync_timeout: seconds each rank waits for the others at a record of a sharded
            (DTensor) model before failing with the reason (every rank must call ``record``).
        gradients: also record ∂L/∂w (``grad_quantile``, ``grad_l2``) and ∂L/∂v
            (``grad_v_quantile``) of each layer (off by default; see
            :mod:`wcviz.record.gradients` for when a record sees which gradient).
        update_ratio: record ‖w_t − w_prev‖ / ‖w_prev‖ per layer (keeps a copy of the tracked
            weights on their device between records; ``False`` keeps none).
        grad_scaler: the ``torch.amp.GradScaler`` of an AMP loop, so that parametrized layers'
            ∂L/∂w is recorded unscaled.

    Raises:
        WcvizError: an existing store without ``resume``/``overwrite``, a resume with another
            config or other layers, unknown layer names, bad thresholds or quantiles.
    """

    def __init__(self, model: nn.Module, run_dir, config: dict | None = None, *,
                 layers: Sequence[str] | None = None, quantiles: Sequence[float] = S.QUANTILES,
                 resume: bool = False, overwrite: bool = False, attrs: dict | None = None,
                 thresholds: Sequence[str] = S.DEFAULT_THRESHOLDS, bins: int = S.DEFAULT_BINS,
                 hist_range_factor: float = S.HIST_RANGE_FACTOR, epoch_chunk: int = EPOCH_CHUNK,
                 threads: int | None = None, gradients: bool = False,
                 update_ratio: bool = True, grad_scaler=None,
                 sync_timeout: float = D.SYNC_TIMEOUT):
        if resume and overwrite:
            raise WcvizError("pass resume=True or overwrite=True, not both")
        if url_scheme(run_dir) is not None:
            raise WcvizError(f"Recorder writes a run store on local disk, not to the URL "
                             f"{str(run_dir)!r}; pass a local directory (copy it afterwards)")
        self.model = model
        #: the torch.distributed rank; only rank 0 records (the others touch no store)
        self.rank = _rank()
        self.store = None
        self.left_out = []
        # sharded (DTensor) parameters: every rank computes its shards' part of each statistic
        self._sync = D.RankSync(sync_timeout) if D.sharded_model(model) else None
        self._finished = self.rank != 0 and self._sync is None
        if self._finished:
            return
        self._layers = _select_layers(model, layers)
        #: tensors with >= 2 dimensions not recorded, and why (empty when ``layers`` is given)
        self.left_out = [] if layers is not None else left_out(model)
        if self.rank == 0:
            warn_left_out("wcviz.Recorder", self.left_out,
                          "rec.left_out lists them; layers=[...] records the tensors named")
        self._warned_nonfinite: set[str] = set()
        self._threads = max(1, int(threads if threads is not None else min(4, os.cpu_count() or 1)))
        self._extra = ExtraStats(self._layers, gradients, update_ratio, grad_scaler)
        if self._sync is not None:
            self._threads = 1  # collectives must run in the same order on every rank
            self._open_shared(lambda: self._open(run_dir, config, resume, quantiles, overwrite,
                                                 attrs, thresholds, bins, hist_range_factor,
                                                 epoch_chunk))
            return
        self.store = self._open(run_dir, config, resume, quantiles, overwrite, attrs, thresholds,
                                bins, hist_range_factor, epoch_chunk)
        self._load_plan()

    # ---- setup

    def _open(self, run_dir, config, resume, quantiles, overwrite, attrs,
              *create_args) -> RunStore | None:
        """Rank 0's store, reopened or created (None on other ranks, which take part in the
        initial statistics of a sharded model only)."""
        if resume:
            return self._reopen(run_dir, config, attrs) if self.rank == 0 else None
        return self._create(run_dir, config, quantiles, overwrite, attrs, *create_args)

    def _open_shared(self, open_store) -> None:
        """Sharded model: rank 0 opens the store and shares its plan (quantiles, bins, cutoffs,
        ranges, last epoch, the per-layer variables it holds), or its error, with every rank."""
        plan = error = None
        try:
            store = open_store()
            if self.rank == 0:
                self.store = store
                self._load_plan()
                plan = (store.quantiles, store.n_bins, self._cutoffs, self._ranges,
                        self._layout, store.last_epoch, store.layer_vars())
        except Exception as exc:  # shared, so that no rank waits for a plan that never comes
            error = exc
        shared, message = self._sync.share((plan, None if error is None else str(error)))
        if error is not None:
            raise error
        if message is not None:
            raise WcvizError(f"rank 0 could not open the run store: {message}")
        if self.rank != 0:
            quantiles, n_bins, self._cutoffs, self._ranges, self._layout, last, held = shared
            self.store = D.PeerStore(quantiles, n_bins, last, held)

    def _create(self, run_dir, config, quantiles, overwrite, attrs, thresholds, bins,
                factor, epoch_chunk) -> RunStore:
        if bins < 1:
            raise WcvizError(f"bins must be >= 1, got {bins}")
        with torch.no_grad():
            weights = [t.tensor().detach() for t in self._layers]
            if self._sync is not None:  # maybe FSDP2's unsharded storage: no numpy view
                scales = [D.initial_scale(w, True) for w in weights]
            else:
                scales = S.initial_scales(weights)  # (std, max|w|) per layer
            std0 = [std for std, _ in scales]
            edges = [S.histogram_edges(S.histogram_range(absmax, _bound(t), factor), bins)
                     for (_, absmax), t in zip(scales, self._layers)]
        if self.rank != 0:  # a sharded model's other ranks: their part of the scales is done
            return None
        return RunStore.create(
            run_dir, layers=[t.name for t in self._layers],
            layer_kinds=[t.kind for t in self._layers],
            layer_numel=[w.numel() for w in weights], bin_edges=np.stack(edges),
            thresholds=thresholds, quantiles=quantiles, config=config, overwrite=overwrite,
            attrs={**_model_attrs(self.model), **(attrs or {})}, weight_std_init=std0,
            epoch_chunk=epoch_chunk, optional=self._extra.names,
            originals=self._extra.originals)

    def _reopen(self, run_dir, config, attrs) -> RunStore:
        path = Path(run_dir) / STORE_NAME
        if not path.exists():
            raise WcvizError(f"cannot resume: no run store at {path}; drop resume=True to "
                             f"start a new run")
        changes = config_changes(config, read_root_attrs(path).get("config"))
        if config is not None and changes:
            raise WcvizError(f"cannot resume {run_dir}: the config differs from the stored "
                             f"one ({Path(run_dir) / CONFIG_NAME}) in {changes}; use the same "
                             f"config or a new run dir")
        store = RunStore.open(run_dir)
        problem = self._differs_from(store, attrs)
        if problem:
            store.release()  # now, not when the traceback holding ``store`` is dropped
            raise WcvizError(f"cannot resume {run_dir}: {problem}; use the same model or a new "
                             f"run dir")
        try:
            store.ensure_layer_vars(self._extra.names, self._extra.originals)
        except WcvizError:
            store.release()
            raise
        store.set_attrs(status=RUNNING, ended=None, pid=os.getpid(), host=socket.gethostname())
        return store

    def _differs_from(self, store: RunStore, attrs: dict | None) -> str | None:
        """How the model differs from the one ``store`` recorded (layers, sizes, method)."""
        names = [t.name for t in self._layers]
        if names != store.layers:
            return (f"the model's tracked layers differ from the stored ones ({len(names)} vs "
                    f"{len(store.layers)} layers)")
        group = zarr.open_group(store.path, mode="r", zarr_format=3)
        stored = [int(n) for n in group["layer_numel"][...]]
        for t, n in zip(self._layers, stored):
            if t.stored().numel() != n:
                return f"layer {t.name!r} has {t.stored().numel()} weights, the stored run {n}"
        method = {**_model_attrs(self.model), **(attrs or {})}["method"]
        if store.attrs.get("method", method) != method:
            return f"the model's method is {method!r}, the stored run's {store.attrs['method']!r}"
        return None

    def _load_plan(self) -> None:
        """Per-layer near-zero cutoffs and histogram ranges, from the store: fixed cutoffs
        (abs, rel) as numbers, record-scaled ones (std, med) as ``(kind, t)`` that
        :mod:`wcviz.record.stats` scales at each record."""
        group = zarr.open_group(self.store.path, mode="r", zarr_format=3)
        edges = np.asarray(group["bin_edges"][...])
        std0 = np.asarray(group["weight_std_init"][...])
        parsed = [S.parse_threshold(t) for t in self.store.thresholds]
        # Fixed cutoffs are numbers; record-scaled ones (std, med) are resolved per record.
        self._cutoffs = [[(t.kind, t.value) if t.kind in S.RECORD_SCALED else t.cutoff(std0=s)
                          for t in parsed] for s in std0]
        self._ranges = [float(e[-1]) for e in edges]
        self._layout = S.SummaryLayout(len(self.store.quantiles), len(parsed), self.store.n_bins)

    # ---- public API

    @property
    def n_records(self) -> int:
        """Records committed so far (including those of earlier processes on resume; 0 on
        ranks > 0, which record nothing)."""
        return 0 if self.store is None else self.store.n_committed

    @property
    def next_epoch(self) -> float:
        """The epoch to continue at: 0 for a new run, else last recorded epoch (floored) + 1."""
        last = self.last_epoch
        return 0 if last is None else math.floor(last) + 1

    @property
    def last_epoch(self) -> float | None:
        """The last committed epoch (None before the first record, and on ranks > 0 unless the
        model is sharded: then every rank knows it, and skips the same epochs)."""
        return None if self.store is None else self.store.last_epoch

    def record(self, epoch: float, metrics: dict | None = None, step: int | None = None) -> bool:
        """Record the model's current weights (and ``metrics``) as epoch ``epoch``.

        Args:
            epoch: 0 before training, the number of epochs trained after them; fractional
                for sub-epoch records (e.g. ``step / steps_per_epoch``).
            metrics: scalars such as train_loss, val_acc, lr, epoch_seconds (floats or 0-dim
                tensors); any name is kept, and ``open_run`` gives each metric outside
                the schema a variable of its own (:mod:`wcviz.record.metrics`).
            step: the optimizer step count (optional).

        Returns:
            True when recorded; False when ``epoch`` is not after the last recorded one (a
            resumed run replaying an epoch), which is skipped with a warning, and on
            torch.distributed ranks > 0 (at once, or after their part of a sharded model's
            statistics).

        Raises:
            WcvizError: a sharded model where some rank did not call ``record`` within
                ``sync_timeout`` seconds (every rank must).
        """
        if self.store is None:
            return False
        if self._finished:
            raise WcvizError("this Recorder is finished; create a new one (resume=True) "
                             "to record more")
        epoch = epoch_float(epoch)  # None, NaN, text: one line naming it
        if self._sync is not None:
            self._sync.barrier("Recorder.record")
        last = self.store.last_epoch
        if last is not None and float(epoch) <= last:
            warnings.warn(f"epoch {float(epoch):g} is already recorded (last recorded epoch "
                          f"{last:g}); skipped", RuntimeWarning, stacklevel=2)
            return False
        stats = self.compute()
        self.store.append(epoch, step, stats, _plain_metrics(metrics))
        return self.rank == 0

    def compute(self) -> dict[str, np.ndarray]:
        """The statistics of the current weights, shaped like the store's variables (a
        collective for a sharded model: every rank calls it)."""
        if self.store is None:
            raise WcvizError(f"this Recorder is on torch.distributed rank {self.rank}, which "
                             f"records nothing; compute statistics on rank 0")
        nq = len(self.store.quantiles)
        with self._workers() as run:
            compute_extra = partial(self._extra.compute, self.store.quantiles,
                                    self._extra_names(), run=run)
            return self._unpack(self._vectors(nq, run), nq, compute_extra)

    def _unpack(self, host: np.ndarray, nq: int, compute_extra) -> dict[str, np.ndarray]:
        """The store's variables from the per-layer rows (:meth:`_vectors`) and the optional
        statistics (``compute_extra(weight_l2=...)``)."""
        size = self._layout.size
        out = self._layout.unpack(host[:, :size])
        out["v_quantile"] = host[:, size:size + nq]
        out["a"], out["b"] = host[:, size + nq], host[:, size + nq + 1]
        flags = out.pop("nonfinite_flag")
        out["weight_nonfinite"] = np.zeros(len(self._layers))
        if flags.any():
            self._flag_nonfinite(out, np.flatnonzero(flags))
        out.update(compute_extra(weight_l2=out["weight_l2"]))
        return out

    def _extra_names(self) -> list[str]:
        """The optional variables to fill: those of this Recorder the store holds."""
        held = self.store.layer_vars()
        return [name for name in self._extra.names if name in held]

    def resume_update_ratio(self) -> None:
        """Declare that the model's weights are those of the last record (e.g. a run resumed
        from the checkpoint written with that record, or a replayed record skipped as already
        recorded): the next ``update_ratio`` is measured from them, as in a run that was never
        interrupted. Without it, the first record of a process stores NaN. A collective for a
        sharded model (every rank calls it)."""
        if self.store is None or self.store.last_epoch is None:
            return
        with torch.no_grad():
            self._extra.prime(self.store.last_row("weight_l2"))

    def hold_gradients(self) -> None:
        """Keep the current gradients for the next records, until :meth:`release_gradients`
        (for a loop that zeroes them before a record is due, such as the Hugging Face
        Trainer's; holds references only, no copies)."""
        if self.store is not None:
            self._extra.hold()

    def release_gradients(self) -> None:
        """Let records read the gradients present again (drops the held references)."""
        if self.store is not None:
            self._extra.release()

    def finish(self, status: str = FINISHED) -> None:
        """Mark the run ``finished`` (or ``failed``); further records are refused."""
        if not self._finished and self.store is not None:
            self.store.finish(status)
            self._finished = True
            self._extra.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self.finish(FINISHED if exc_type is None else FAILED)
        except WcvizError:
            # e.g. a full disk refuses the status too: the error that stopped the block is
            # the one to see (the run then reads as interrupted)
            if exc_type is None:
                raise
        return False

    # ---- internals

    @contextmanager
    def _workers(self):
        """``run(fn, jobs)``: ``[fn(job) for job in jobs]`` over (layer index, target) jobs.
        With several threads and every layer on the CPU (numpy and the compiled passes release
        the GIL), the layers of at least :data:`_POOL_MIN` weights go to this Recorder's
        threads while this one does the others; gradients are off either way."""
        # the stored tensor's device is Ψ(v)'s, without computing Ψ(v) for every layer again
        on_cpu = all(t.stored().device.type == "cpu" for t in self._layers)
        with torch.no_grad():
            if self._threads < 2 or not on_cpu or len(self._layers) < 2:
                yield lambda fn, jobs: [fn(job) for job in jobs]
                return
            with ThreadPoolExecutor(self._threads) as pool:
                yield partial(_spread, pool)

    def _vectors(self, nq: int, run) -> np.ndarray:
        """Per-layer summary rows on the host, (layer, summary | v quantiles | a | b).

        Small CPU layers (:func:`wcviz.record.stats.batchable`) are summarised together in a
        few vectorised passes; the others one by one with ``run`` (:meth:`_workers`), and all
        of those moved to the host in one transfer.
        """
        width = self._layout.size + nq + 2
        host = np.empty((len(self._layers), width))
        small = self._small_layers()
        done = self._batched_rows(small, nq, host) if small else set()
        jobs = [(i, t) for i, t in enumerate(self._layers) if i not in done]
        if jobs:
            vectors = run(lambda job: self._layer_vector(job[0], job[1], nq), jobs)
            host[[i for i, _ in jobs]] = _to_host(vectors)  # the one device -> host transfer
        return host

    def _small_layers(self) -> list[int]:
        """Layers whose stored tensor is small and on the CPU (candidates for batching); none
        for a sharded model, whose statistics are collectives per layer."""
        if self._sync is not None:
            return []
        out = []
        for i, target in enumerate(self._layers):
            stored = target.stored()
            if stored.device.type == "cpu" and 0 < stored.numel() <= S.BATCH_MAX_NUMEL:
                out.append(i)
        return out

    def _batched_rows(self, rows: list[int], nq: int, host: np.ndarray) -> set[int]:
        """Fill ``host`` rows of small layers whose w (and v) are :func:`S.batchable`; returns
        the rows filled."""
        size = self._layout.size
        weights = {i: self._layers[i].tensor().detach() for i in rows}
        rows = [i for i in rows if S.batchable(weights[i])]
        raws = {i: raw_weight(self._layers[i].module, self._layers[i].attr) for i in rows}
        rows = [i for i in rows if raws[i] is None or S.batchable(raws[i])]
        if not rows:
            return set()
        host[rows, :size] = S.weight_summaries(
            [weights[i] for i in rows], self.store.quantiles, [self._cutoffs[i] for i in rows],
            [self._ranges[i] for i in rows], self.store.n_bins)
        host[rows, size:] = math.nan
        with_v = [i for i in rows if raws[i] is not None]
        if with_v:
            host[with_v, size:size + nq] = S.segment_quantiles(
                [raws[i].detach() for i in with_v], self.store.quantiles)
            for i in with_v:
                a, b = _scales(self._layers[i], "cpu")
                host[i, size + nq], host[i, size + nq + 1] = float(a), float(b)
        return set(rows)

    def _layer_vector(self, i: int, target: Target, nq: int) -> Tensor:
        weight = target.tensor().detach()
        shared = self._sync is not None  # maybe FSDP2's unsharded storage: no numpy view
        summary = D.summary(weight, self.store.quantiles, self._cutoffs[i], self._ranges[i],
                            self.store.n_bins, shared)
        raw = raw_weight(target.module, target.attr)
        vq = (D.quantiles_of(raw.detach(), self.store.quantiles, shared) if raw is not None else
              torch.full((nq,), math.nan, dtype=torch.float64, device=summary.device))
        a, b = _scales(target, summary.device)
        return torch.cat([summary, vq.to(summary.device), a, b])

    def _flag_nonfinite(self, out: dict, rows: np.ndarray) -> None:
        """Count the non-finite weights of flagged layers, and warn once per layer."""
        names = []
        for i in rows:
            count, has_nan = D.nonfinite(self._layers[i].tensor().detach())
            out["weight_nonfinite"][i] = count
            if has_nan:
                out["weight_quantile"][i] = np.nan
            names.append(self._layers[i].name)
        new = [n for n in names if n not in self._warned_nonfinite]
        self._warned_nonfinite.update(new)
        if new and self.rank == 0:
            warnings.warn(f"non-finite weights (NaN or inf) in layer(s) {', '.join(new)}; "
                          f"recorded and counted in 'weight_nonfinite'", RuntimeWarning,
                          stacklevel=4)


def _rank() -> int:
    """This process's torch.distributed rank (0 when not distributed)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _select_layers(model: nn.Module, names: Sequence[str] | None) -> list[Target]:
    if names is None:
        layers = tracked_weights(model)
        if not layers:
            raise WcvizError("the model has no Conv1d/2d/3d, Linear, attention or Conv1D weight "
                             "to record; pass layers=[...] naming modules that have a weight")
        return layers
    return select_named(model, names)


def _bound(target: Target) -> float | None:
    """|Ψ| bound of a tensor's fixed-scale compander (None: unbounded or learnable a)."""
    comp = compander_of(target.module, target.attr)
    if comp is None or comp.learnable is not None:
        return None
    return float(comp.method.bound(**comp.fixed))


def _scales(target: Target, device) -> tuple[Tensor, Tensor]:
    """The tensor's current a and b as 1-element float64 tensors on ``device`` (NaN if none)."""
    comp = compander_of(target.module, target.attr)
    params = comp.params() if comp is not None else {}
    out = []
    for key in ("a", "b"):
        value = D.plain(params.get(key, math.nan))
        if isinstance(value, Tensor):
            out.append(value.detach().reshape(1).to(device=device, dtype=torch.float64))
        else:
            out.append(torch.tensor([float(value)], dtype=torch.float64, device=device))
    return out[0], out[1]


#: Layers below this many weights are done in the recording thread itself: a thread pool's
#: hand-off (tens of µs per job) would cost more than their statistics.
_POOL_MIN = 1 << 14


def _spread(pool: ThreadPoolExecutor, fn, jobs: list) -> list:
    """``[fn(job) for job in jobs]``: the big layers' jobs in ``pool``, the others here."""
    def quiet(job):
        with torch.no_grad():  # grad mode is per thread
            return fn(job)

    sizes = [job[1].stored().numel() for job in jobs]
    # biggest first: the last job to start is then a small one, and the threads end together
    # (ResNet50's biggest layers are its last; in layer order one thread did them alone)
    big = sorted((k for k, size in enumerate(sizes) if size >= _POOL_MIN), key=lambda k: -sizes[k])
    futures = {k: pool.submit(quiet, jobs[k]) for k in big}
    out = [None if k in futures else fn(job) for k, job in enumerate(jobs)]
    for k, future in futures.items():
        out[k] = future.result()
    return out


def _to_host(vectors: list[Tensor]) -> np.ndarray:
    """Stack the per-layer vectors (one layout, so one length) and copy them to the host once."""
    device = vectors[0].device  # a model split over devices gathers on the first one
    return torch.stack([v.to(device) for v in vectors]).cpu().numpy()


def _plain_metrics(metrics: dict | None) -> dict[str, float]:
    return {str(name): metric_float(name, value) for name, value in (metrics or {}).items()}


def _model_attrs(model: nn.Module) -> dict:
    """method/a/b/learnable from ``compand_info`` (of the model a wrapper such as
    ``nn.DataParallel`` or DDP holds) and the device of the first parameter."""
    info = compand_info(_unwrapped(model)) or {}
    first = next(model.parameters(), None)
    attrs = {"method": info.get("method", "none"), "a": info.get("a"), "b": info.get("b"),
             "learnable": info.get("learnable"),
             "device": str(first.device) if first is not None else "cpu"}
    if info.get("alpha") is not None:
        attrs["alpha"] = info["alpha"]
    return attrs


def _unwrapped(model: nn.Module) -> nn.Module:
    """The module a wrapper holds as ``.module`` (DataParallel, DDP, FSDP, accelerate) or
    ``._orig_mod`` (torch.compile), through any nesting; ``model`` itself when not wrapped."""
    while getattr(model, "wcviz_compand", None) is None:
        inner = getattr(model, "module", None)
        inner = inner if isinstance(inner, nn.Module) else getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            break
        model = inner
    return model
