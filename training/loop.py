"""The training loop, in named steps: build, train_one_epoch, evaluate, checkpoint, run.

``run(cfg, run_dir)`` trains one :class:`wcviz.training.presets.RunConfig` and records it through
:class:`wcviz.Recorder` into ``run_dir`` (``record.zarr``, ``config.json``, ``checkpoints/``):
epoch 0 is the network at init, before any step; then one record per epoch (and, with
``record_steps``, every N steps of the first epoch). The checkpoint best on validation is kept;
test accuracy of the best-validation epoch and of the last epoch are reported.

Exactness of ``--resume``: every epoch starts by reseeding torch, numpy and random from (seed,
epoch, rank), and the data order is a function of (seed, epoch), so a run resumed from the
checkpoint of epoch k repeats epochs k+1.. bit for bit on CPU. Checkpoints are written before the
epoch's record; a resume finding the record missing writes it from the checkpoint.

Speed on CUDA (the recipe is unchanged): bf16 autocast, channels_last, optional
``torch.compile``, and in-memory datasets served from GPU memory by
:class:`wcviz.training.loader.TensorLoader` with on-device crops and flips.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import wcviz
from wcviz.extras import require

# Before the import below: without tqdm, one clear line instead of a traceback.
require("tqdm", needed_by="wcviz.training.loop")

from tqdm.auto import tqdm

from wcviz.training import checkpoint as ckpt
from wcviz.training.allocator import keep_freed_memory
from wcviz.training import distributed as ddp
from wcviz.training.config import RunConfig
from wcviz.training.datasets import DATASETS, DataSplits, load_data
from wcviz.training.loader import TensorLoader, make_dataloader
from wcviz.training.models import MODELS, build_model
from wcviz.training.presets import METHODS, check_config
from wcviz.errors import WcvizError
from wcviz.record.atomic import fsync_dir, write_atomic
from wcviz.record.locks import lock_writer, unlock_writer
from wcviz.record.runfolder import CHECKPOINTS_NAME, FINISHED, STORE_NAME, SUMMARY_NAME
from wcviz.record.schema import read_root_attrs
from wcviz.record.store import DiskFull, disk_full
from wcviz.record.metrics import BEST_ACC, best_val_index
from wcviz.record.config import same_config
from wcviz.record.metrics import METRICS

#: Non-finite checks sync with the host; on CUDA only every this many steps (CPU: every step).
NONFINITE_CHECK_EVERY = 25


class NonFiniteLoss(WcvizError):
    """The loss became NaN or infinite: the run stops, marked failed."""


@dataclass
class Parts:
    """Everything ``build`` makes for one run."""

    cfg: RunConfig
    info: ddp.DistInfo
    device: torch.device
    data: DataSplits
    model: nn.Module  # what the steps call (DDP-wrapped and/or compiled)
    raw_model: nn.Module  # the plain (companded) module: recorded and checkpointed
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loaders: dict
    amp_dtype: torch.dtype | None


@dataclass
class RunResult:
    """What a finished (or stopped) run reports."""

    run_dir: Path
    status: str
    epochs: int
    best_epoch: int | None = None
    best_val_acc: float = math.nan
    best_val_test_acc: float = math.nan  # THE result (wcviz.report.analysis.BEST_ACC)
    test_acc_last: float = math.nan
    history: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "status": self.status, "epochs": self.epochs,
                "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc,
                BEST_ACC: self.best_val_test_acc, "test_acc_last": self.test_acc_last}


# ----------------------------------------------------------------------------- build


def select_device(cfg: RunConfig, info: ddp.DistInfo) -> torch.device:
    """``cfg.device`` ("auto", "cpu", "cuda", "cuda:1"); DDP processes take their local GPU."""
    name = cfg.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise WcvizError(f"device {cfg.device!r} asked for but CUDA is not available; "
                             "use --device cpu")
        if info.enabled:
            name = f"cuda:{_local_gpu(info)}"
    try:
        return torch.device(name)
    except RuntimeError:
        raise WcvizError(f"unknown device {cfg.device!r}; use auto, cpu or cuda[:N]") from None


def _local_gpu(info: ddp.DistInfo) -> int:
    """A DDP process's GPU: its local rank among the node's GPUs, or the only one it sees (a
    Slurm task bound to its own GPU)."""
    n = torch.cuda.device_count()
    if info.local_rank < n:
        return info.local_rank
    if n == 1:
        return 0
    raise WcvizError(f"DDP process {info.local_rank} on this node sees only {n} GPUs; start "
                     f"at most {n} processes per node (--nproc-per-node)")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and random."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The RNG seed of one epoch on one process (augmentation, dropout, workers)."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % 2**31


def apply_method(model: nn.Module, cfg: RunConfig) -> nn.Module:
    """Reparametrize ``model`` as ``cfg.method`` says (baseline: unchanged)."""
    spec = METHODS[cfg.method]
    if spec.compand is None:
        return model
    if spec.compand == "powerprop":
        options = {} if cfg.alpha is None else {"alpha": cfg.alpha}
        return wcviz.compand(model, "powerprop", **options)
    if spec.compand == "weightnorm":
        return wcviz.compand(model, "weightnorm")
    return wcviz.compand(model, spec.compand, a=cfg.a, b=cfg.b, learnable=spec.learnable)


def _loaders(cfg: RunConfig, data: DataSplits, info: ddp.DistInfo, device: torch.device) -> dict:
    if cfg.batch_size % info.world:
        raise WcvizError(f"batch_size {cfg.batch_size} does not split over {info.world} "
                         "processes; choose a multiple of --nproc")
    per_rank = cfg.batch_size // info.world
    use_tensor = cfg.loader == "tensor" or (cfg.loader == "auto" and data.arrays is not None)
    if use_tensor and data.arrays is None:
        raise WcvizError(f"loader 'tensor' needs an in-memory dataset; {data.name} is read "
                         "from files: use --set loader=dataloader")
    channels_last = cfg.channels_last and device.type == "cuda"
    out = {}
    for split in ("train", "val", "test"):
        train = split == "train"
        if use_tensor:
            out[split] = TensorLoader(data.arrays[split], data.augment, per_rank, train=train,
                                      device=device, seed=cfg.seed, info=info,
                                      channels_last=channels_last)
        else:
            out[split] = make_dataloader(getattr(data, split), per_rank, train=train,
                                         seed=cfg.seed, info=info, workers=cfg.workers,
                                         pin_memory=device.type == "cuda")
    return out


def build(cfg: RunConfig, info: ddp.DistInfo = ddp.DistInfo()) -> Parts:
    """Data, model (initialised from ``cfg.seed``, reparametrized), optimizer, schedule.

    Args:
        cfg: the run's config.
        info: DDP position; the model is wrapped in DistributedDataParallel when world > 1.

    Returns:
        The run's :class:`Parts`.
    """
    check_config(cfg)
    device = select_device(cfg, info)
    ddp.init(info, device)
    if cfg.download and not info.is_main:
        ddp.barrier(info, device)  # rank 0 downloads first; the others then read the files it wrote
    data = load_data(cfg.dataset, cfg.data_root, download=cfg.download and info.is_main,
                     val_fraction=cfg.val_fraction, split_seed=cfg.split_seed)
    if cfg.download and info.is_main:
        ddp.barrier(info, device)
    seed_everything(cfg.seed)  # the same init on every process, for every method
    model = build_model(cfg.model, num_classes=data.num_classes, dropout=cfg.dropout)
    raw = apply_method(model, cfg).to(device)
    if info.enabled and device.type == "cuda":
        # Batch statistics over the global batch, as in the single-process run (CUDA only:
        # SyncBatchNorm has no CPU kernel). Keeps the same parameters, before the optimizer.
        raw = nn.SyncBatchNorm.convert_sync_batchnorm(raw)
    if cfg.channels_last and device.type == "cuda":
        raw = raw.to(memory_format=torch.channels_last)
    momentum = {"momentum": cfg.momentum, "nesterov": cfg.nesterov} if cfg.optimizer == "sgd" \
        else {}
    optimizer = wcviz.build_optimizer(raw, cfg.optimizer, cfg.lr, cfg.weight_decay, **momentum)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), cfg.gamma)
    model = raw
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile and device.type == "cuda":
        model = torch.compile(model)
    amp = torch.bfloat16 if cfg.amp and device.type == "cuda" else None
    return Parts(cfg, info, device, data, model, raw, optimizer, scheduler,
                 _loaders(cfg, data, info, device), amp)


def _to_device(parts: Parts, x: torch.Tensor) -> torch.Tensor:
    """A batch on the run's device, channels_last when the model is (no-op if it already is)."""
    x = x.to(parts.device, non_blocking=True)
    if parts.device.type == "cuda" and parts.cfg.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _autocast(parts: Parts):
    if parts.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(parts.device.type, dtype=parts.amp_dtype)


# ----------------------------------------------------------------------------- steps


def train_one_epoch(parts: Parts, epoch: int, on_step=None, bar=None) -> dict:
    """Train for one epoch (``epoch`` counts from 1).

    Args:
        parts: from :func:`build`.
        epoch: the epoch being trained (1-based; seeds the data order and augmentation).
        on_step: called as ``on_step(step, n_steps, running_metrics)`` after each step.
        bar: a tqdm bar to advance (one tick per step) or None.

    Returns:
        ``train_loss``, ``train_acc``, ``images_per_s``, ``epoch_seconds`` (summed over ranks).

    Raises:
        NonFiniteLoss: when the loss is NaN or infinite.
    """
    cfg, dev, info = parts.cfg, parts.device, parts.info
    seed_everything(epoch_seed(cfg.seed, epoch, info.rank))
    loader = parts.loaders["train"]
    loader.set_epoch(epoch)
    parts.model.train()
    # Running sums stay on the device (loss·n, correct); the count is known on the host. The
    # host reads them only every `check_every` steps, so CUDA steps queue up without syncs.
    sums = torch.zeros(2, device=dev, dtype=torch.float64)
    bad = torch.zeros((), device=dev)
    count = 0
    check_every = 1 if dev.type == "cpu" else NONFINITE_CHECK_EVERY
    n_steps, start = len(loader), time.perf_counter()
    for step, (x, y) in enumerate(loader, 1):
        x, y = _to_device(parts, x), y.to(dev, non_blocking=True)
        with _autocast(parts):
            out = parts.model(x)
            loss = F.cross_entropy(out.float(), y)
        parts.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        parts.optimizer.step()
        with torch.no_grad():
            count += y.numel()
            sums[0] += loss.detach().double() * y.numel()
            sums[1] += (out.argmax(1) == y).sum()
            bad += (~torch.isfinite(loss.detach())).float()
        host_sync = step % check_every == 0 or step == n_steps  # the host reads device values
        if host_sync:
            _check_finite(bad, info, epoch, step)
        if on_step is not None:
            on_step(step, n_steps, sums, count)
        if bar is not None:
            bar.update(1)
            if host_sync and (step % 10 == 0 or step == n_steps):
                _postfix(bar, sums, count, start, epoch)
    parts.scheduler.step()
    total = ddp.all_sum(torch.cat([sums, sums.new_tensor([count])]), info)
    seconds = time.perf_counter() - start
    return {"train_loss": float(total[0] / total[2]), "train_acc": float(total[1] / total[2]),
            "images_per_s": float(total[2]) / seconds, "epoch_seconds": seconds}


def _check_finite(bad: torch.Tensor, info: ddp.DistInfo, epoch: int, step: int) -> None:
    # Every process takes part in the reduction, so all stop together (no DDP hang).
    if float(ddp.all_sum(bad, info)) > 0:
        raise NonFiniteLoss(f"the loss became NaN/inf in epoch {epoch} (by step {step}); the run "
                            "is marked failed and its store kept; lower --lr or check the data")


def _postfix(bar, sums: torch.Tensor, count: int, start: float, epoch: int) -> None:
    """This process's running loss, accuracy and images/s on the progress bar."""
    loss, correct = sums.tolist()
    bar.set_postfix(ep=epoch, loss=f"{loss / count:.3f}", acc=f"{correct / count:.3f}",
                    img_s=f"{count / max(time.perf_counter() - start, 1e-9):.0f}")


@torch.no_grad()
def evaluate(parts: Parts, split: str) -> tuple[float, float]:
    """Mean loss and accuracy of the current model on ``split`` ("val" or "test")."""
    model, dev = parts.raw_model, parts.device
    model.eval()
    sums = torch.zeros(3, device=dev, dtype=torch.float64)
    for x, y in parts.loaders[split]:
        x, y = _to_device(parts, x), y.to(dev, non_blocking=True)
        with _autocast(parts):
            out = model(x).float()
        sums += torch.stack([F.cross_entropy(out, y, reduction="sum").double(),
                             (out.argmax(1) == y).sum().double(),
                             torch.tensor(float(y.numel()), device=dev, dtype=torch.float64)])
    total = ddp.all_sum(sums, parts.info)
    if total[2] == 0:
        return math.nan, math.nan
    return float(total[0] / total[2]), float(total[1] / total[2])


def _eval_metrics(parts: Parts) -> dict:
    val_loss, val_acc = evaluate(parts, "val")
    test_loss, test_acc = evaluate(parts, "test")
    return {"val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc}


# ----------------------------------------------------------------------------- checkpoint


def checkpoint_state(parts: Parts, epoch: int, history: list) -> dict:
    """Everything needed to continue after ``epoch`` (state_dicts and plain values)."""
    return {"epoch": epoch, "model": parts.raw_model.state_dict(),
            "optimizer": parts.optimizer.state_dict(), "scheduler": parts.scheduler.state_dict(),
            "rng": ckpt.rng_state(), "history": history, "recipe": json.dumps(parts.cfg.recipe())}


def restore(parts: Parts, state: dict) -> None:
    """Load a :func:`checkpoint_state` into freshly built ``parts``."""
    if not same_config(state["recipe"], parts.cfg.recipe()):
        raise WcvizError("the checkpoint was written with a different config; resume with the "
                         "same preset and settings, or start a new run (--overwrite)")
    parts.raw_model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    ckpt.set_rng_state(state["rng"])


def save_checkpoint(parts: Parts, run_dir: Path, epoch: int, history: list, best: bool) -> None:
    """Write ``best.pt`` (model only) when ``best``, then ``last.pt`` (full state). Rank 0.

    ``best.pt`` first: a kill between the two leaves ``last.pt`` at the epoch before, which a
    resume trains again (and writes ``best.pt`` again); the other order could leave a
    ``last.pt`` past a ``best.pt`` that is no longer the best (:func:`repair_best` mends
    checkpoints left so by earlier versions).
    """
    if not parts.info.is_main:
        return
    folder = run_dir / CHECKPOINTS_NAME
    if best:
        _save_best(parts.raw_model.state_dict(), epoch, history[-1]["val_acc"], folder)
    ckpt.save(checkpoint_state(parts, epoch, history), folder / ckpt.LAST, keep_previous=True)


def _save_best(model_state: dict, epoch: int, val_acc: float, folder: Path) -> None:
    ckpt.save({"epoch": epoch, "model": model_state, "val_acc": val_acc}, folder / ckpt.BEST)


def repair_best(state: dict, run_dir: Path) -> None:
    """On resume: when the checkpoint's own epoch is the best so far and ``best.pt`` holds
    another epoch (a kill between ``last.pt`` and ``best.pt`` of an earlier version), rewrite
    ``best.pt`` from the checkpoint's model."""
    history = state["history"]
    i = _best_index(history)
    if i is None or history[i]["epoch"] != state["epoch"]:
        return
    path = run_dir / CHECKPOINTS_NAME / ckpt.BEST
    try:
        held = ckpt.load(path).get("epoch")
    except Exception:  # missing or torn: written anew below
        held = None
    if held != state["epoch"]:
        _save_best(state["model"], state["epoch"], history[i]["val_acc"], path.parent)


# ----------------------------------------------------------------------------- run


def _best_index(history: list) -> int | None:
    """Index of the best-validation epoch (:func:`wcviz.record.metrics.best_val_index`)."""
    return best_val_index([h["epoch"] for h in history], [h["val_acc"] for h in history],
                          [h["test_acc"] for h in history])


def summarize(run_dir: Path, history: list, status: str) -> RunResult:
    """Best-validation epoch, its test accuracy, and the last epoch's test accuracy."""
    res = RunResult(Path(run_dir), status, epochs=max((h["epoch"] for h in history), default=0),
                    history=history)
    i = _best_index(history)
    if i is not None:
        res.best_epoch = history[i]["epoch"]
        res.best_val_acc = history[i]["val_acc"]
        res.best_val_test_acc = history[i]["test_acc"]
        res.test_acc_last = history[-1]["test_acc"]
    return res


def _attrs(cfg: RunConfig, device: torch.device, info: ddp.DistInfo) -> dict:
    return {"model": cfg.model, "dataset": cfg.dataset, "seed": cfg.seed, "preset": cfg.preset,
            "run_method": cfg.method, "device": str(device), "world_size": info.world,
            "model_label": MODELS[cfg.model].display,
            "dataset_label": DATASETS[cfg.dataset].display, **_placement()}


def _placement() -> dict:
    """Where the run was started: the GPUs it was pinned to (``CUDA_VISIBLE_DEVICES``, as a
    sweep or Slurm set it) and its Slurm job (array tasks as ``<array>_<task>``)."""
    env, out = os.environ, {}
    if env.get("CUDA_VISIBLE_DEVICES"):
        out["cuda_visible_devices"] = env["CUDA_VISIBLE_DEVICES"]
    if env.get("SLURM_ARRAY_JOB_ID"):
        out["slurm_job_id"] = f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID')}"
    elif env.get("SLURM_JOB_ID"):
        out["slurm_job_id"] = env["SLURM_JOB_ID"]
    return out


def _record(rec, epoch: float, metrics: dict, step: int | None = None) -> None:
    if rec is None:
        return
    with warnings.catch_warnings():
        # A resume from the epoch-0 checkpoint replays the first epoch's step records that the
        # store already holds; the recorder skips them (they are identical: the run is exact).
        warnings.filterwarnings("ignore", "epoch .* is already recorded", RuntimeWarning)
        replay = rec.last_epoch == epoch  # the store's last record, replayed: its weights
        rec.record(epoch, metrics={k: metrics[k] for k in RECORDED if k in metrics}, step=step)
    if replay:
        rec.resume_update_ratio()  # the next update ratio as in a run never interrupted


#: Metrics the store records per epoch: the schema's, plus the test accuracy of the epoch best
#: on validation so far (its last value is the run's reported result).
RECORDED = (*METRICS, BEST_ACC)


def run(cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
        info: ddp.DistInfo | None = None, keep_memory: bool = False) -> RunResult:
    """Train and record one run.

    Args:
        cfg: the run's config.
        run_dir: ``<runs_root>/<run_id>``; created (or reopened with ``resume``).
        resume: continue from ``checkpoints/last.pt`` and the store's committed records.
        overwrite: replace an existing run in ``run_dir``.
        info: DDP position (default: from torchrun's environment).
        keep_memory: on the CPU, make this whole process keep the memory it frees, so that a
            step reuses the last step's blocks instead of faulting fresh pages in
            (:mod:`wcviz.training.allocator`; what the ``wcviz`` commands ask for).

    Returns:
        The :class:`RunResult` (also written to ``run_dir/summary.json``).

    Raises:
        WcvizError: bad config, missing data, a run already there (without resume/overwrite),
            resume with another config, or a non-finite loss (the run is then marked failed).
    """
    info = ddp.from_env() if info is None else info
    run_dir = Path(run_dir)
    try:
        parts = build(cfg, info)
        if keep_memory and parts.device.type == "cpu":
            keep_freed_memory()
        return _run(parts, run_dir, resume, overwrite)
    finally:
        ddp.shutdown(info)


def _open_recorder(parts: Parts, run_dir: Path, resume: bool, overwrite: bool,
                   state: dict | None):
    if not parts.info.is_main:
        return None
    if resume and not (run_dir / STORE_NAME).exists():
        raise WcvizError(f"nothing to resume in {run_dir}; start the run without --resume")
    if resume and state is None and read_root_attrs(run_dir / STORE_NAME)["n_committed"]:
        # records but no checkpoint: an --overwrite killed before its new store replaced the
        # old one (a fresh start would skip every epoch the old store holds)
        raise WcvizError(f"cannot resume {run_dir}: its store holds records but it has no "
                         f"checkpoint to continue from; start it again with --overwrite")
    if overwrite and (run_dir / STORE_NAME).exists():
        clear_old_run(run_dir)
    return wcviz.Recorder(parts.raw_model, run_dir, config=parts.cfg.recipe(), resume=resume,
                          overwrite=overwrite, attrs=_attrs(parts.cfg, parts.device, parts.info),
                          gradients=parts.cfg.record_gradients)


def clear_old_run(run_dir: Path) -> None:
    """``--overwrite``: remove the old run's summary, then its checkpoints, before the new store
    replaces the old one (under the run's writer lock: a run another process writes is refused).

    In this order a kill at any moment leaves no summary of the old run beside the new store
    (a sweep would call it done) and no checkpoint of it (``--resume`` would continue the old
    run into the new store): at worst the old store alone, which ``--resume`` refuses.
    """
    key = lock_writer(run_dir)
    try:
        (run_dir / SUMMARY_NAME).unlink(missing_ok=True)
        folder = run_dir / CHECKPOINTS_NAME
        if folder.exists():  # one rename: every checkpoint goes at once
            gone = run_dir / f".{CHECKPOINTS_NAME}.{os.getpid()}.replaced"
            os.replace(folder, gone)
            fsync_dir(run_dir)
            shutil.rmtree(gone, ignore_errors=True)
        fsync_dir(run_dir)
    finally:
        unlock_writer(key)


#: Result fields also written as store attributes at the end of a run.
SUMMARY_ATTRS = ("best_epoch", "best_val_acc", BEST_ACC, "test_acc_last")


def _run(parts: Parts, run_dir: Path, resume: bool, overwrite: bool) -> RunResult:
    # Read and restore the checkpoint before the store is opened: a checkpoint that cannot be
    # used is an error that leaves the run (and its status) as it was.
    state = _resume_state(parts, run_dir) if resume else None
    rec = _open_recorder(parts, run_dir, resume, overwrite, state)
    with _disk_full_line(run_dir, rec):
        result = _train(parts, rec, run_dir, state)
    # DDP: the other processes wait until rank 0 has written the run, so that every process
    # leaves the process group together and none exits while rank 0 still writes.
    ddp.barrier(parts.info, parts.device)
    return result


@contextlib.contextmanager
def _disk_full_line(run_dir: Path, rec):
    """A full disk (store, checkpoint or summary) ends the run with one line saying what was
    kept and how to go on, instead of a traceback from deep inside a write."""
    try:
        yield
    except (OSError, DiskFull) as err:
        if not (isinstance(err, DiskFull) or disk_full(err)):
            raise
        kept = "nothing recorded yet"
        if rec is not None and rec.n_records:
            kept = f"{rec.n_records} record(s) up to epoch {rec.last_epoch:g}"
        raise DiskFull(f"no space left on the device of {run_dir}: training stopped; kept: "
                       f"{kept}, and the last whole checkpoint; free space, then continue "
                       f"with --resume") from None


def _train(parts: Parts, rec, run_dir: Path, state: dict | None) -> RunResult:
    """The epochs of a run, its summary and its status (rank 0 writes)."""
    cfg = parts.cfg
    with rec if rec is not None else contextlib.nullcontext():
        history, start = _start(parts, rec, run_dir, state)
        bar = _progress(parts, start)
        try:
            for epoch in range(start, cfg.epochs + 1):
                history = _one_epoch(parts, rec, run_dir, epoch, history, bar)
        finally:
            if bar is not None:
                bar.close()
        result = summarize(run_dir, history, FINISHED)
        if rec is not None:
            summary = result.as_dict()
            rec.store.set_attrs(**{k: summary[k] for k in SUMMARY_ATTRS})
            rec.finish(FINISHED)
            write_atomic(run_dir / SUMMARY_NAME, json.dumps(summary, indent=1))
    return result


def _resume_state(parts: Parts, run_dir: Path) -> dict | None:
    """The checkpoint to resume from, restored into ``parts`` (None: none was written)."""
    state = ckpt.load_latest(run_dir / CHECKPOINTS_NAME)
    if not ddp.broadcast_flag(state is not None, parts.info, parts.device):
        return None  # rank 0 decides, as for every run folder question
    if state is None:
        raise WcvizError(f"rank {parts.info.rank} sees no checkpoint in {run_dir}/checkpoints; "
                         "resume where every rank reads the run folder")
    restore(parts, state)
    return state


def _start(parts: Parts, rec, run_dir: Path, state: dict | None) -> tuple[list, int]:
    """Fresh run: record epoch 0 (at init). Resume (``state`` restored already): record what
    the kill left out; returns (history, next epoch)."""
    if state is not None:
        history = state["history"]
        if parts.info.is_main:
            repair_best(state, run_dir)
        last_recorded = -1 if rec is None or rec.last_epoch is None else rec.last_epoch
        if rec is not None and last_recorded < state["epoch"]:  # killed between save and record
            _record(rec, float(state["epoch"]), history[-1],
                    step=state["epoch"] * len(parts.loaders["train"]))
        elif rec is not None and last_recorded == state["epoch"]:
            rec.resume_update_ratio()  # the checkpoint's weights are the last record's
        return history, state["epoch"] + 1
    metrics = {**_eval_metrics(parts), "lr": parts.optimizer.param_groups[0]["lr"]}
    history = [{"epoch": 0, **metrics}]
    save_checkpoint(parts, run_dir, 0, history, best=False)
    _record(rec, 0.0, metrics, step=0)
    return history, 1


def _progress(parts: Parts, start: int):
    if not (parts.cfg.progress and parts.info.is_main):
        return None
    steps = len(parts.loaders["train"])
    return tqdm(total=parts.cfg.epochs * steps, initial=(start - 1) * steps, unit="step",
                desc=f"{parts.cfg.preset}:{parts.cfg.method}", leave=False,
                dynamic_ncols=True)


def _one_epoch(parts: Parts, rec, run_dir: Path, epoch: int, history: list, bar) -> list:
    lr = parts.optimizer.param_groups[0]["lr"]  # the lr this epoch trains with
    on_step = _step_recorder(parts, rec, epoch, lr)
    train = train_one_epoch(parts, epoch, on_step=on_step, bar=bar)
    metrics = {**train, **_eval_metrics(parts), "lr": lr}
    history = history + [{"epoch": epoch, **{k: metrics[k] for k in RECORDED if k in metrics}}]
    best_i = _best_index(history)
    best = best_i == len(history) - 1
    metrics[BEST_ACC] = history[best_i]["test_acc"] if best_i is not None else math.nan
    history[-1][BEST_ACC] = metrics[BEST_ACC]
    save_checkpoint(parts, run_dir, epoch, history, best)  # before the record: see module doc
    _record(rec, float(epoch), metrics, step=epoch * len(parts.loaders["train"]))
    return history


def _step_recorder(parts: Parts, rec, epoch: int, lr: float):
    """Records every ``record_steps`` steps during the first epoch (none after, none on DDP
    ranks > 0)."""
    every = parts.cfg.record_steps
    if rec is None or every <= 0 or epoch != 1:
        return None

    def on_step(step: int, n_steps: int, sums: torch.Tensor, count: int) -> None:
        if step % every == 0 and step < n_steps:
            loss, correct = sums.tolist()
            _record(rec, (epoch - 1) + step / n_steps,
                    {"train_loss": loss / count, "train_acc": correct / count, "lr": lr},
                    step=step)

    return on_step
