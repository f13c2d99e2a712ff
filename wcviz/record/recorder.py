"""``Recorder``: exact per-layer weight statistics of any model into a run store.

Recording a training loop takes three lines::

    rec = wcviz.Recorder(model, "runs/my-run", config=cfg)   # records nothing yet
    rec.record(0)                                            # before training
    rec.record(epoch, {"train_loss": loss, "val_acc": acc})  # after each epoch

(``with wcviz.Recorder(...) as rec:`` also marks the run finished, or failed on an exception.)

Under ``torch.distributed`` only rank 0 records: on other ranks the Recorder touches no store
and ``record`` returns False at once, so the same three lines run on every rank.

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
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import zarr
from torch import Tensor, nn

from wcviz.errors import WcvizError
from wcviz.record.runfolder import FAILED, FINISHED, RUNNING
from wcviz.record import stats as S
from wcviz.record.gradients import ExtraStats
from wcviz.record.metrics import metric_float
from wcviz.record.config import config_changes
from wcviz.record.runfolder import CONFIG_NAME, STORE_NAME, url_scheme
from wcviz.record.schema import EPOCH_CHUNK, read_root_attrs
from wcviz.record.store import RunStore
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
                 update_ratio: bool = True, grad_scaler=None):
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
        self._finished = self.rank != 0
        if self.rank != 0:
            return
        self._layers = _select_layers(model, layers)
        #: tensors with >= 2 dimensions not recorded, and why (empty when ``layers`` is given)
        self.left_out = [] if layers is not None else left_out(model)
        warn_left_out("wcviz.Recorder", self.left_out,
                      "rec.left_out lists them; layers=[...] records the tensors named")
        self._warned_nonfinite: set[str] = set()
        self._threads = max(1, int(threads if threads is not None else min(4, os.cpu_count() or 1)))
        self._extra = ExtraStats(self._layers, gradients, update_ratio, grad_scaler)
        self.store = (self._reopen(run_dir, config) if resume else
                      self._create(run_dir, config, quantiles, overwrite, attrs, thresholds,
                                   bins, hist_range_factor, epoch_chunk))
        self._load_plan()

    # ---- setup

    def _create(self, run_dir, config, quantiles, overwrite, attrs, thresholds, bins,
                factor, epoch_chunk) -> RunStore:
        if bins < 1:
            raise WcvizError(f"bins must be >= 1, got {bins}")
        with torch.no_grad():
            weights = [t.tensor().detach() for t in self._layers]
            scales = [S.initial_scale(w) for w in weights]  # (std, max|w|) per layer
            std0 = [std for std, _ in scales]
            edges = [S.histogram_edges(S.histogram_range(absmax, _bound(t), factor), bins)
                     for (_, absmax), t in zip(scales, self._layers)]
        return RunStore.create(
            run_dir, layers=[t.name for t in self._layers],
            layer_kinds=[t.kind for t in self._layers],
            layer_numel=[w.numel() for w in weights], bin_edges=np.stack(edges),
            thresholds=thresholds, quantiles=quantiles, config=config, overwrite=overwrite,
            attrs={**_model_attrs(self.model), **(attrs or {})}, weight_std_init=std0,
            epoch_chunk=epoch_chunk, optional=self._extra.names,
            originals=self._extra.originals)

    def _reopen(self, run_dir, config) -> RunStore:
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
        names = [t.name for t in self._layers]
        if names != store.layers:
            store.release()  # now, not when the traceback holding ``store`` is dropped
            raise WcvizError(f"cannot resume {run_dir}: the model's tracked layers differ from "
                             f"the stored ones ({len(names)} vs {len(store.layers)} layers)")
        try:
            store.ensure_layer_vars(self._extra.names, self._extra.originals)
        except WcvizError:
            store.release()
            raise
        store.set_attrs(status=RUNNING, ended=None, pid=os.getpid(), host=socket.gethostname())
        return store

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
        """The last committed epoch (None before the first record, and on ranks > 0)."""
        return None if self.store is None else self.store.last_epoch

    def record(self, epoch: float, metrics: dict | None = None, step: int | None = None) -> bool:
        """Record the model's current weights (and ``metrics``) as epoch ``epoch``.

        Args:
            epoch: 0 before training, the number of epochs trained after them; fractional
                for sub-epoch records (e.g. ``step / steps_per_epoch``).
            metrics: scalars such as train_loss, val_acc, lr, epoch_seconds (floats or 0-dim
                tensors); names outside the schema get their own variable.
            step: the optimizer step count (optional).

        Returns:
            True when recorded; False when ``epoch`` is not after the last recorded one (a
            resumed run replaying an epoch), which is skipped with a warning, and at once on
            torch.distributed ranks > 0.
        """
        if self.rank != 0:
            return False
        if self._finished:
            raise WcvizError("this Recorder is finished; create a new one (resume=True) "
                             "to record more")
        last = self.store.last_epoch
        if last is not None and float(epoch) <= last:
            warnings.warn(f"epoch {float(epoch):g} is already recorded (last recorded epoch "
                          f"{last:g}); skipped", RuntimeWarning, stacklevel=2)
            return False
        stats = self.compute()
        self.store.append(epoch, step, stats, _plain_metrics(metrics))
        return True

    def compute(self) -> dict[str, np.ndarray]:
        """The statistics of the current weights, shaped like the store's variables."""
        if self.store is None:
            raise WcvizError(f"this Recorder is on torch.distributed rank {self.rank}, which "
                             f"records nothing; compute statistics on rank 0")
        nq = len(self.store.quantiles)
        with torch.no_grad():
            vectors = self._vectors(nq)
            host = _to_host(vectors)  # the one device -> host transfer of the record
        size = self._layout.size
        out = self._layout.unpack(host[:, :size])
        out["v_quantile"] = host[:, size:size + nq]
        out["a"], out["b"] = host[:, size + nq], host[:, size + nq + 1]
        flags = out.pop("nonfinite_flag")
        out["weight_nonfinite"] = np.zeros(len(self._layers))
        if flags.any():
            self._flag_nonfinite(out, np.flatnonzero(flags))
        out.update(self._extra.compute(self.store.quantiles, self._extra_names(),
                                       weight_l2=out["weight_l2"]))
        return out

    def _extra_names(self) -> list[str]:
        """The optional variables to fill: those of this Recorder the store holds."""
        held = self.store.layer_vars()
        return [name for name in self._extra.names if name in held]

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
        self.finish(FINISHED if exc_type is None else FAILED)
        return False

    # ---- internals

    def _vectors(self, nq: int) -> list[Tensor]:
        """Per-layer summary vectors; CPU layers in a few threads (numpy releases the GIL)."""
        def one(job):
            i, target = job
            with torch.no_grad():  # grad mode is per thread
                return self._layer_vector(i, target, nq)

        jobs = list(enumerate(self._layers))
        # the stored tensor's device is Ψ(v)'s, without computing Ψ(v) for every layer again
        on_cpu = all(t.stored().device.type == "cpu" for t in self._layers)
        if self._threads > 1 and on_cpu and len(jobs) > 1:
            with ThreadPoolExecutor(self._threads) as pool:
                return list(pool.map(one, jobs))
        return [one(job) for job in jobs]

    def _layer_vector(self, i: int, target: Target, nq: int) -> Tensor:
        weight = target.tensor().detach()
        summary = S.weight_summary(weight, self.store.quantiles, self._cutoffs[i],
                                   self._ranges[i], self.store.n_bins)
        raw = raw_weight(target.module, target.attr)
        vq = (S.exact_quantiles(raw.detach(), self.store.quantiles) if raw is not None else
              torch.full((nq,), math.nan, dtype=torch.float64, device=summary.device))
        a, b = _scales(target, summary.device)
        return torch.cat([summary, vq.to(summary.device), a, b])

    def _flag_nonfinite(self, out: dict, rows: np.ndarray) -> None:
        """Count the non-finite weights of flagged layers, and warn once per layer."""
        names = []
        for i in rows:
            weight = self._layers[i].tensor().detach()
            out["weight_nonfinite"][i] = float((~torch.isfinite(weight)).sum())
            if torch.isnan(weight).any():
                out["weight_quantile"][i] = np.nan
            names.append(self._layers[i].name)
        new = [n for n in names if n not in self._warned_nonfinite]
        self._warned_nonfinite.update(new)
        if new:
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
        value = params.get(key, math.nan)
        if isinstance(value, Tensor):
            out.append(value.detach().reshape(1).to(device=device, dtype=torch.float64))
        else:
            out.append(torch.tensor([float(value)], dtype=torch.float64, device=device))
    return out[0], out[1]


def _to_host(vectors: list[Tensor]) -> np.ndarray:
    """Stack the per-layer vectors (one layout, so one length) and copy them to the host once."""
    device = vectors[0].device  # a model split over devices gathers on the first one
    return torch.stack([v.to(device) for v in vectors]).cpu().numpy()


def _plain_metrics(metrics: dict | None) -> dict[str, float]:
    return {str(name): metric_float(name, value) for name, value in (metrics or {}).items()}


def _model_attrs(model: nn.Module) -> dict:
    """method/a/b/learnable from ``compand_info`` and the device of the first parameter."""
    info = compand_info(model) or {}
    first = next(model.parameters(), None)
    attrs = {"method": info.get("method", "none"), "a": info.get("a"), "b": info.get("b"),
             "learnable": info.get("learnable"),
             "device": str(first.device) if first is not None else "cpu"}
    if info.get("alpha") is not None:
        attrs["alpha"] = info["alpha"]
    return attrs
