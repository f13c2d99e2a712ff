r"""Every GPU check of issue 15 in one run: the GPU goals, exactness and the CUDA code paths.

Each check calls the project's own benchmark and library code (``benchmarks/*.py``,
``wcviz.record.stats``, ``wcviz.Recorder``, ``wcviz.training.loop``, ``wcviz.training.loader``); nothing is
re-implemented here. In one process, on one GPU:

==============  ==========================================================  ==================
check           what it runs                                                goal
==============  ==========================================================  ==================
exactness       all conv/linear weights of a ResNet50 and a 2^25-element    bit-equal
                tensor full of ties: device quantiles vs ``numpy.quantile``
                (float64 copy), device histogram / near-zero fractions vs
                the CPU (numpy) path, and a ``Recorder`` record vs numpy
record_tb       one ``Recorder.record`` of all 54 ResNet50 layers vs        ≤ 0.1 × the time
                TensorBoard ``add_histogram`` (``record_overhead.py``)
inference       baked WC ResNet18 vs plain, bf16, channels_last, batch 128  1.00
                (``reparam_overhead.py``)
runs            a real ``wcviz.training.loop.run`` of baseline, WC and learnable  all finish; the
                WC (cifar10-resnet18 recipe on synthetic CIFAR, 2 epochs,   last record equals
                sub-epoch records), recording on CUDA                       numpy on the
                                                                            checkpoint
resume          the WC run stopped in its last epoch and resumed            same records
train_step      WC train step vs plain, ResNet18, batch 128, bf16,          compiled ≤ 1.02
                channels_last, eager and ``torch.compile``
throughput      one CIFAR ResNet18 epoch, fast path (``TensorLoader``,      ≥ 3 ×; record
                bf16, channels_last, compile) vs plain ``DataLoader`` fp32  ≤ 1 % of an epoch
                loop (``train_throughput.py``); then one record of that
                ResNet18 vs its epoch time
ddp             ``wcviz train --nproc 2`` on NCCL with SyncBatchNorm        finishes
                (only with 2 or more GPUs; else reported as skipped)
==============  ==========================================================  ==================

It writes ``OUT/gpu_check.md`` (device, versions, the goal table for the README, per-check
details) and ``OUT/gpu_check.json`` after every check, so a run stopped early still leaves
what it measured. Checks run in the order above and are skipped ("time budget") once
``--budget-s`` (default 450 s) would be exceeded; ``--only``/``--skip`` pick checks for a
second try. Exit status 1 when a check errs or fails, else 0. Designed to finish inside
8 minutes on one H200 (most of it ``torch.compile``).

Run on a GPU machine, from the repository root::

    python -m benchmarks.gpu_check --out gpu-report

A machine without zarr (the project's device machine has torch, torchvision, numpy, xarray
and tensorboard, but not zarr): download its wheels where pip can reach PyPI, into the
git-ignored ``.whl/`` (versions taken from the given interpreter's installed packages)::

    PYTHON=/path/to/venv/bin/python benchmarks/gpu_wheels.sh

carry ``.whl`` to the GPU machine with the working tree, and there run::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; \
        PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check --out "$OUT"

(streamlit is not needed: the dashboard is no part of these checks.) On the CPU, with tiny
sizes and the same code paths where they exist there (CUDA-only parts report
"skipped: no CUDA"); this is what ``tests/test_gpu_check.py`` runs::

    python -m benchmarks.gpu_check --dry-run --threads 1 --out /tmp/gpu-dry
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import wcviz
from benchmarks import record_overhead, reparam_overhead, train_throughput
from wcviz.training import checkpoint as ckpt
from wcviz.training import loop
from wcviz.training.models import build_model
from wcviz.training.presets import resolve
from wcviz.record import stats as S
from wcviz.reparam.layers import tracked_layers

REPORT_MD, REPORT_JSON = "gpu_check.md", "gpu_check.json"
#: The variants timed against plain (``reparam_overhead.VARIANTS`` keys).
STEP_VARIANTS = ("plain", "arctan")
RUN_METHODS = ("baseline", "wc", "wc-learnable")
#: Device vs CPU moments: a few float32 roundings (2^-24 ≈ 6e-8) of relative difference.
MOMENTS_RTOL = 1e-6
#: Store variables a resumed run must reproduce (timings such as epoch_seconds differ).
RESUME_VARS = ("weight_quantile", "weight_histogram", "near_zero_fraction", "weight_absmax",
               "v_quantile", "a", "b", "train_loss", "val_acc")


@dataclass(frozen=True)
class Sizes:
    """How big each check is: :data:`FULL` on a GPU, :data:`DRY` for the CPU dry run."""

    batch: int  # train-step and inference batch (the paper's: 128)
    steps: int  # timed steps per variant and round
    rounds: int  # interleaved rounds (median taken)
    warmup: int  # untimed steps first (compile, cuDNN autotuning)
    big_model: str  # "resnet50" (torchvision) or "small_cnn" (record_overhead's)
    record_epochs: int  # records per side in record_tb
    big_tensor: int  # elements of the tie-heavy exactness tensor (> 2^24 on the GPU)
    subset: int | None  # training images of the throughput epoch (None: the whole split)
    workers: int  # DataLoader workers of the plain loop
    run_preset: str
    run_overrides: dict = field(default_factory=dict)
    run_epochs: int = 2
    record_steps: int = 100  # sub-epoch records every N steps of the first epoch


FULL = Sizes(batch=128, steps=20, rounds=5, warmup=3, big_model="resnet50", record_epochs=5,
             big_tensor=1 << 25, subset=None, workers=min(8, os.cpu_count() or 1),
             run_preset="cifar10-resnet18", run_overrides={"dataset": "synthetic-cifar"})
DRY = Sizes(batch=4, steps=1, rounds=1, warmup=1, big_model="small_cnn", record_epochs=2,
            big_tensor=1 << 17, subset=32, workers=1, run_preset="digits-cnn",
            run_overrides={"batch_size": 128}, record_steps=4)


class Skip(Exception):
    """A check that cannot run here; its message says why."""


class _Interrupt(Exception):
    """Stands for a job stopped during an epoch (the resume check)."""


@dataclass
class Ctx:
    """What every check gets: where and how big, and what earlier checks left."""

    device: torch.device
    sizes: Sizes
    work: Path
    dry: bool
    runs: dict = field(default_factory=dict)  # method -> run dir (from the runs check)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


# ----------------------------------------------------------------------------- exactness


def _tied_tensor(n: int) -> torch.Tensor:
    """n normal values, 20 % exact zeros (pruned), rounded to bf16 (many ties): the hard case
    for a selection that must equal a full sort. Made on the CPU: the same in every mode."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, generator=g)
    x[torch.rand(n, generator=g) < 0.2] = 0.0
    return x.to(torch.bfloat16).float()


def _big_model(ctx: Ctx) -> torch.nn.Module:
    torch.manual_seed(0)
    if ctx.sizes.big_model == "small_cnn":
        return record_overhead.small_cnn()
    import torchvision

    return torchvision.models.resnet50()


def _numpy_quantiles(w: torch.Tensor, quantiles) -> np.ndarray:
    """``numpy.quantile`` of a float64 copy: the exact order statistics, lerped in float64."""
    return np.quantile(w.detach().cpu().numpy().astype(np.float64).ravel(), quantiles)


def compare_summaries(name: str, w: torch.Tensor) -> dict:
    """One tensor: the torch path on its device vs numpy and vs the CPU (numpy) path."""
    host = w.detach().cpu()
    std, absmax = S.initial_scale(host)
    cutoffs = (1e-3, 1e-2, 0.1 * std)
    half = S.histogram_range(absmax)
    layout = S.SummaryLayout(len(S.QUANTILES), len(cutoffs), S.DEFAULT_BINS)
    dev = layout.unpack(S.weight_summary(w, S.QUANTILES, cutoffs, half, S.DEFAULT_BINS,
                                         backend="torch").cpu().numpy())
    cpu = layout.unpack(S.weight_summary(host, S.QUANTILES, cutoffs, half, S.DEFAULT_BINS,
                                         backend="numpy").numpy())
    rel = {m: float(abs(dev[m] - cpu[m]) / max(abs(cpu[m]), 1e-300)) for m in S.MOMENTS}
    return {"name": name, "numel": host.numel(),
            "quantiles_equal_numpy": bool(np.array_equal(dev["weight_quantile"],
                                                         _numpy_quantiles(host, S.QUANTILES))),
            "quantiles_equal_cpu": bool(np.array_equal(dev["weight_quantile"],
                                                       cpu["weight_quantile"])),
            "histogram_equal_cpu": bool(np.array_equal(dev["weight_histogram"],
                                                       cpu["weight_histogram"])),
            "fractions_equal_cpu": bool(np.array_equal(dev["near_zero_fraction"],
                                                       cpu["near_zero_fraction"])),
            "moments_rel_diff": rel}


def recorder_vs_numpy(model: torch.nn.Module, run_dir: Path) -> dict:
    """One ``Recorder`` record of ``model`` (on its device) against numpy, layer by layer."""
    with wcviz.Recorder(model, run_dir, config={"check": "gpu_check exactness"}) as rec:
        rec.record(0)
    ds = wcviz.open_run(run_dir)
    modules = dict(model.named_modules())
    quantiles = ds["quantile"].values
    unequal = [name for name in ds.layer.values
               if not np.array_equal(ds.weight_quantile.sel(layer=name).isel(epoch=0).values,
                                     _numpy_quantiles(modules[name].weight, quantiles))]
    return {"layers": int(ds.sizes["layer"]), "unequal_layers": unequal[:5],
            "quantiles_equal_numpy": not unequal}


def check_exactness(ctx: Ctx) -> dict:
    """Device statistics vs numpy and vs the CPU path, on a real network and a tie-heavy tensor."""
    model = _big_model(ctx).to(ctx.device).eval()
    tensors = [(name, m.weight.detach()) for name, m in tracked_layers(model)]
    tensors.append((f"tied_{ctx.sizes.big_tensor}", _tied_tensor(ctx.sizes.big_tensor)
                    .to(ctx.device)))
    rows = [compare_summaries(name, w) for name, w in tensors]
    flags = ("quantiles_equal_numpy", "quantiles_equal_cpu", "histogram_equal_cpu",
             "fractions_equal_cpu")
    out = {"model": ctx.sizes.big_model, "device": str(ctx.device), "tensors": len(rows),
           "weights": sum(r["numel"] for r in rows),
           **{f: all(r[f] for r in rows) for f in flags},
           "moments_max_rel_diff": {m: max(r["moments_rel_diff"][m] for r in rows)
                                    for m in S.MOMENTS},
           "mismatches": [r for r in rows if not all(r[f] for f in flags)][:5],
           "recorder": recorder_vs_numpy(model, ctx.work / "exactness")}
    # Moments are sums in another order (the CPU path squares in float32): equal to
    # float32 rounding, not bit for bit.
    out["passed"] = all(out[f] for f in flags) and out["recorder"]["quantiles_equal_numpy"] \
        and max(out["moments_max_rel_diff"].values()) < MOMENTS_RTOL
    return out


# ----------------------------------------------------------------------------- timings


def check_record_tb(ctx: Ctx) -> dict:
    """One record of every layer vs TensorBoard histograms of the same layers."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise Skip("tensorboard not installed (pip install 'wcviz[bench]')") from None
    model = record_overhead.small_cnn() if ctx.sizes.big_model == "small_cnn" else None
    big = record_overhead.record_vs_tensorboard(ctx.device, ctx.sizes.record_epochs,
                                                ctx.work / "record_tb", model=model)
    (store, _), (events, _) = big["store"], big["events"]
    return {"model": ctx.sizes.big_model, "layers": big["layers"], "weights": big["weights"],
            "records": ctx.sizes.record_epochs, "create_s": big["create"],
            "record_s": big["ours"], "statistics_s": big["stats"], "tensorboard_s": big["tb"],
            "ratio": big["ours"] / big["tb"], "store_bytes": store, "event_bytes": events,
            "bytes_ratio": store / events}


def _resnet18_setup(ctx: Ctx):
    torch.manual_seed(0)
    return build_model("resnet18"), reparam_overhead.make_setup(ctx.device, ctx.sizes.batch)


def _ratios(medians: dict) -> dict:
    return {"ms": {k: v * 1e3 for k, v in medians.items()},
            "ratio": {k: v / medians["plain"] for k, v in medians.items()}}


def check_train_step(ctx: Ctx) -> dict:
    """WC vs plain train step, eager and (CUDA) compiled, bf16 autocast + channels_last."""
    s = ctx.sizes
    base, setup = _resnet18_setup(ctx)
    out = {"model": "resnet18", "batch": s.batch, "steps": s.steps, "rounds": s.rounds,
           "amp": "bf16" if ctx.cuda else "fp32"}
    for compiled in (False, True):
        label = "compiled" if compiled else "eager"
        if compiled and not ctx.cuda:
            out[label] = {"skipped": "no CUDA (torch.compile is timed on CUDA only)"}
            continue
        start = time.perf_counter()
        trainers = reparam_overhead.make_trainers(base, list(STEP_VARIANTS), setup, compiled)
        medians = reparam_overhead.time_interleaved(trainers, s.steps, s.rounds, s.warmup, setup)
        out[label] = {**_ratios(medians), "seconds": time.perf_counter() - start}
        del trainers
    return out


def check_inference(ctx: Ctx) -> dict:
    """Baked (and still companded) WC ResNet18 inference vs plain, eager."""
    s = ctx.sizes
    base, setup = _resnet18_setup(ctx)
    fns = reparam_overhead.inference_fns(base, setup, compiled=False)
    medians = reparam_overhead.time_interleaved(fns, s.steps * 2, s.rounds, s.warmup, setup)
    return {"model": "resnet18", "batch": s.batch, **_ratios(medians)}


def _record_seconds(model: torch.nn.Module, ctx: Ctx) -> tuple[float, float]:
    """(creation, median of 3 records) seconds of a Recorder on ``model`` where it lives."""
    start = time.perf_counter()
    rec = wcviz.Recorder(model, ctx.work / "throughput_record")
    created = time.perf_counter() - start
    times = [record_overhead.timed(lambda e=e: rec.record(e), ctx.device) for e in range(3)]
    rec.finish()
    return created, statistics.median(times)


def check_throughput(ctx: Ctx) -> dict:
    """Fast path vs plain DataLoader fp32 loop, one epoch; then a record vs that epoch."""
    s = ctx.sizes
    argv = ["--device", str(ctx.device), "--method", "wc", "--workers", str(s.workers),
            "--warmup", str(s.warmup)]
    argv += ["--compile"] if ctx.cuda else []
    argv += ["--subset", str(s.subset)] if s.subset else []
    args = train_throughput.parse_args(argv)
    plain = train_throughput.measure(args, fast=False)
    plain.parts = None  # free its model and loaders before the fast path
    fast = train_throughput.measure(args, fast=True)
    created, record = _record_seconds(fast.parts.raw_model, ctx)
    return {"method": "wc", "workers": s.workers, "compiled": ctx.cuda,
            "plain": {"images": plain.images, "seconds": plain.seconds,
                      "images_per_s": plain.images_per_s},
            "fast": {"images": fast.images, "seconds": fast.seconds,
                     "images_per_s": fast.images_per_s},
            "speedup": fast.images_per_s / plain.images_per_s,
            "record_create_s": created, "record_s": record,
            "record_per_epoch": record / fast.seconds}


# ----------------------------------------------------------------------------- CUDA runs


def _run_config(ctx: Ctx, method: str):
    s = ctx.sizes
    return resolve(s.run_preset, method, epochs=s.run_epochs, record_steps=s.record_steps,
                   device=str(ctx.device), progress=False, **s.run_overrides)


def last_record_exact(cfg, run_dir: Path) -> bool:
    """The store's last weight quantiles equal numpy's on the last checkpoint's weights, with
    w = Ψ(v) recomputed on the run's device (the library's own resume path rebuilds them)."""
    parts = loop.build(cfg)
    loop.restore(parts, ckpt.load(run_dir / "checkpoints" / ckpt.LAST))
    ds = wcviz.open_run(run_dir)
    modules = dict(parts.raw_model.named_modules())
    with torch.no_grad():
        return all(np.array_equal(ds.weight_quantile.sel(layer=name).isel(epoch=-1).values,
                                  _numpy_quantiles(modules[name].weight, ds["quantile"].values))
                   for name in ds.layer.values)


def _verify_run(cfg, run_dir: Path, seconds: float) -> dict:
    ds = wcviz.open_run(run_dir)
    epochs = [round(float(e), 4) for e in ds.epoch.values]
    loss = float(ds.train_loss.values[-1])
    exact = last_record_exact(cfg, run_dir)
    return {"run_status": ds.attrs["status"], "device": ds.attrs.get("device"),
            "records": len(epochs),
            "epochs": epochs, "train_loss": loss, "last_record_exact": exact, "seconds": seconds,
            "passed": ds.attrs["status"] == "finished" and epochs[-1] == cfg.epochs
            and math.isfinite(loss) and exact}


def check_runs(ctx: Ctx) -> dict:
    """A short real run of each method through wcviz.training.loop, recording on the device."""
    rows = {}
    for method in RUN_METHODS:
        cfg = _run_config(ctx, method)
        run_dir = ctx.work / "runs" / method
        start = time.perf_counter()
        loop.run(cfg, run_dir)
        rows[method] = _verify_run(cfg, run_dir, time.perf_counter() - start)
        ctx.runs[method] = run_dir
    cfg = _run_config(ctx, "wc")
    return {"preset": cfg.preset, "dataset": cfg.dataset, "epochs": cfg.epochs,
            "record_steps": cfg.record_steps, "batch_size": cfg.batch_size, "runs": rows,
            "passed": all(r["passed"] for r in rows.values())}


@contextlib.contextmanager
def _interrupted_in(epoch: int):
    """``wcviz.training.loop`` stops at the start of ``epoch``, as a killed job would."""
    real = loop.train_one_epoch

    def train(parts, e, **kw):
        if e == epoch:
            raise _Interrupt(f"stopped in epoch {e}")
        return real(parts, e, **kw)

    loop.train_one_epoch = train
    try:
        yield
    finally:
        loop.train_one_epoch = real


def _max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    return float(np.max(np.where(both_nan, 0.0, np.abs(a - b)), initial=0.0))


def check_resume(ctx: Ctx) -> dict:
    """The WC run stopped in its last epoch, resumed, against the uninterrupted WC run."""
    whole = ctx.runs.get("wc")
    if whole is None:
        raise Skip("needs the uninterrupted WC run of the 'runs' check")
    cfg, split = _run_config(ctx, "wc"), ctx.work / "runs" / "wc-resumed"
    with _interrupted_in(cfg.epochs), contextlib.suppress(_Interrupt):
        loop.run(cfg, split)
    stopped = wcviz.open_run(split).attrs["status"]
    loop.run(cfg, split, resume=True)
    a, b = wcviz.open_run(whole), wcviz.open_run(split)
    diffs = {v: _max_diff(a[v].values, b[v].values) for v in RESUME_VARS}
    sa, sb = (ckpt.load(d / "checkpoints" / ckpt.LAST)["model"] for d in (whole, split))
    weights = max(_max_diff(sa[k], sb[k]) for k in sa)
    same_epochs = a.epoch.values.tolist() == b.epoch.values.tolist()
    identical = same_epochs and weights == 0 and not any(diffs.values())
    out = {"status_after_stop": stopped, "status_resumed": b.attrs["status"],
           "same_epochs": same_epochs,
           "identical": identical, "max_abs_diff": diffs, "weights_max_abs_diff": weights}
    # Bit-identical on the CPU (the loop's promise); on CUDA cuDNN's autotuned kernels and
    # atomics make runs differ by rounding, so there the diffs are reported, not required.
    out["passed"] = stopped == "failed" and b.attrs["status"] == "finished" and same_epochs \
        and (identical or ctx.cuda)
    return out


def check_ddp(ctx: Ctx) -> dict:
    """``wcviz train --nproc 2`` (torchrun, NCCL, SyncBatchNorm) when two GPUs are present."""
    if not ctx.cuda:
        raise Skip("no CUDA (NCCL needs 2 GPUs; the CPU gloo path is tests/test_ddp.py)")
    n = torch.cuda.device_count()
    if n < 2:
        raise Skip(f"{n} GPU here: the 2-process NCCL run needs 2 GPUs")
    s, root = ctx.sizes, ctx.work / "ddp"
    sets = [a for k, v in s.run_overrides.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "wcviz", "train", "--preset", s.run_preset, "--method", "wc",
           "--epochs", "1", "--device", "cuda", "--no-progress", "--runs", str(root),
           "--nproc", "2", *sets]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = {"command": " ".join(cmd), "returncode": proc.returncode,
           "seconds": time.perf_counter() - start, "passed": False}
    if proc.returncode:
        return {**out, "stderr_tail": proc.stderr[-2000:]}
    ds = wcviz.open_run(next(root.iterdir()))
    return {**out, "world_size": ds.attrs.get("world_size"), "run_status": ds.attrs["status"],
            "passed": ds.attrs.get("world_size") == 2 and ds.attrs["status"] == "finished"}


#: name -> (check, estimated seconds on one H200 for FULL sizes; used for the time budget).
CHECKS = {
    "exactness": (check_exactness, 30),
    "record_tb": (check_record_tb, 30),
    "inference": (check_inference, 20),
    "runs": (check_runs, 90),
    "resume": (check_resume, 45),
    "train_step": (check_train_step, 180),
    "throughput": (check_throughput, 110),
    "ddp": (check_ddp, 90),
}


# ----------------------------------------------------------------------------- running


def run_one(name: str, ctx: Ctx) -> dict:
    """One check as a result: status ok / failed (ran, condition false) / skipped / error."""
    fn = CHECKS[name][0]
    start = time.perf_counter()
    print(f"[gpu_check] {name} ...", flush=True)
    try:
        data = fn(ctx)
        status = "failed" if data.get("passed") is False else "ok"
        result = {**data, "status": status}
    except Skip as why:
        result = {"status": "skipped", "reason": str(why)}
    except Exception as err:  # report it and go on with the next check
        result = {"status": "error", "reason": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()[-3000:]}
    result["seconds"] = round(time.perf_counter() - start, 2)
    print(f"[gpu_check] {name}: {result['status']} in {result['seconds']:.1f} s"
          + (f" ({result['reason']})" if "reason" in result else ""), flush=True)
    return result


def run_checks(ctx: Ctx, names: list[str], budget_s: float, out: Path) -> dict:
    """Run ``names`` in order within ``budget_s``, writing the report after each."""
    results = {"meta": describe(ctx), "checks": {}}
    start = time.perf_counter()
    for name in names:
        spent = time.perf_counter() - start
        estimate = 0 if ctx.dry else CHECKS[name][1]
        if spent + estimate > budget_s:
            results["checks"][name] = {"status": "skipped", "seconds": 0.0, "reason":
                                       f"time budget: {spent:.0f} s spent, about {estimate} s "
                                       f"needed, --budget-s {budget_s:.0f}"}
        else:
            results["checks"][name] = run_one(name, ctx)
        results["meta"]["seconds"] = round(time.perf_counter() - start, 1)
        write_outputs(results, out)
    return results


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def describe(ctx: Ctx) -> dict:
    """Machine, versions and sizes: what every result is read against."""
    gpu = None
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        gpu = {"name": props.name, "capability": f"{props.major}.{props.minor}",
               "memory_gib": round(props.total_memory / 2**30, 1),
               "count": torch.cuda.device_count(), "cuda": torch.version.cuda,
               "cudnn": torch.backends.cudnn.version(),
               "cudnn_benchmark": torch.backends.cudnn.benchmark}
    return {"dry_run": ctx.dry, "device": str(ctx.device), "gpu": gpu,
            "cpu": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch threads",
            "python": platform.python_version(), "torch": torch.__version__,
            "versions": {n: _version(n) for n in ("numpy", "zarr", "xarray", "torchvision",
                                                  "tensorboard")},
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "sizes": dataclasses.asdict(ctx.sizes)}


# ----------------------------------------------------------------------------- report


def _get(results: dict, *keys):
    """results["checks"][k0][k1]... or None when any step is missing (check not run)."""
    node = results["checks"]
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _row(measure: str, goal: str, value, shown: str, met, dry: bool, timing: bool = True):
    if value is None:
        return [measure, goal, "not measured", "-"]
    verdict = "n/a (dry run)" if dry and timing else ("yes" if met else "no")
    return [measure, goal, shown, verdict]


def goal_rows(results: dict) -> list[list[str]]:
    """The issue's goal table, filled from the results (met: yes / no / not measured)."""
    dry = results["meta"]["dry_run"]
    g = lambda *k: _get(results, *k)  # noqa: E731
    step, baked = g("train_step", "compiled", "ratio", "arctan"), g("inference", "ratio")
    baked = None if baked is None else baked["baked arctan"]
    tb, rec_exact = g("record_tb", "ratio"), g("exactness", "recorder", "quantiles_equal_numpy")
    per_epoch, speedup = g("throughput", "record_per_epoch"), g("throughput", "speedup")
    q_exact = None if g("exactness", "status") not in ("ok", "failed") else \
        bool(g("exactness", "quantiles_equal_numpy") and rec_exact)
    h_exact = g("exactness", "histogram_equal_cpu")
    return [
        _row("WC train step / plain, CIFAR ResNet18 bs 128, compiled, bf16", "≤ 1.02", step,
             f"{step:.3f}" if step else "", step is not None and step <= 1.02, dry),
        _row("baked inference / plain", "1.00 (± 0.02 timing noise)", baked,
             f"{baked:.3f}" if baked else "", baked is not None and 0.98 <= baked <= 1.02, dry),
        _row("one record of all ResNet50 layers / TensorBoard add_histogram",
             "≤ 0.1 × time, exact", tb,
             f"{tb:.3f} ×, exact: {'yes' if rec_exact else 'no'}" if tb else "",
             tb is not None and tb <= 0.1 and bool(rec_exact), dry),
        _row("recorder time / epoch time, CIFAR ResNet18", "≤ 1 %", per_epoch,
             f"{100 * per_epoch:.3f} %" if per_epoch else "",
             per_epoch is not None and per_epoch <= 0.01, dry),
        _row("CIFAR ResNet18 epoch, fast path vs plain DataLoader fp32 loop", "≥ 3 ×", speedup,
             f"{speedup:.2f} ×" if speedup else "", speedup is not None and speedup >= 3, dry),
        _row("device quantiles == numpy on the same weights", "bit-equal", q_exact,
             "yes" if q_exact else "no", q_exact, dry, timing=False),
        _row("device histogram == CPU histogram", "bit-equal", h_exact,
             "yes" if h_exact else "no", h_exact, dry, timing=False),
    ]


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def render_markdown(results: dict) -> str:
    meta = results["meta"]
    gpu = meta["gpu"]
    where = (f"{gpu['name']} (compute {gpu['capability']}, {gpu['memory_gib']} GiB, "
             f"{gpu['count']} GPU(s)), CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']}" if gpu
             else f"no GPU ({meta['device']})")
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines = ["# wcviz GPU check (issue 15)", ""]
    if meta["dry_run"]:
        lines += ["**Dry run: tiny sizes, not a measurement of the GPU goals.**", ""]
    lines += [f"{where}; torch {meta['torch']}, Python {meta['python']}, {versions}; "
              f"{meta['cpu']}; {meta['date']}; {meta.get('seconds', 0):.0f} s in all.", "",
              "## Goals", ""]
    lines += _table(["measure", "goal", "measured", "met"], goal_rows(results))
    lines += ["", "## Checks", ""]
    lines += _table(["check", "status", "seconds", "note"],
                    [[name, r["status"], f"{r['seconds']:.1f}", _note(r)]
                     for name, r in results["checks"].items()])
    lines += ["", "## Details", ""]
    for name, r in results["checks"].items():
        body = {k: v for k, v in r.items() if k not in ("status", "seconds")}
        lines += [f"### {name}", "", "```json", json.dumps(body, indent=1, default=str), "```",
                  ""]
    return "\n".join(lines)


def _note(result: dict) -> str:
    if "reason" in result:
        return result["reason"].replace("|", "/").splitlines()[0][:200]
    return {True: "passed", False: "FAILED"}.get(result.get("passed"), "")


def write_outputs(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_JSON).write_text(json.dumps(results, indent=1, default=str))
    (out / REPORT_MD).write_text(render_markdown(results))


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path,
                   help=f"folder for {REPORT_MD} and {REPORT_JSON} (created)")
    p.add_argument("--dry-run", action="store_true",
                   help="tiny sizes (runs on the CPU in about a minute)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:N]")
    p.add_argument("--only", nargs="+", choices=list(CHECKS), help="run only these checks")
    p.add_argument("--skip", nargs="+", choices=list(CHECKS), default=[],
                   help="leave these checks out")
    p.add_argument("--budget-s", type=float, default=450.0,
                   help="skip checks that would end after this many seconds (default 450)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--work", type=Path,
                   help="keep runs and stores here (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out} is a file; give a folder")
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        p.error(f"--work {args.work} is not empty; give a new folder (runs are created there)")
    return args


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"gpu_check: --device {name} but CUDA is not available; use --device "
                         "cpu (with --dry-run)")
    return torch.device(name)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the benchmarks do: the same for every check
    names = [n for n in (args.only or CHECKS) if n not in args.skip]
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = args.work or Path(tmp)
        ctx = Ctx(device, DRY if args.dry_run else FULL, work, args.dry_run)
        results = run_checks(ctx, names, args.budget_s, args.out)
    bad = [n for n, r in results["checks"].items() if r["status"] in ("error", "failed")]
    print(f"[gpu_check] wrote {args.out / REPORT_MD} and {args.out / REPORT_JSON}"
          + (f"; not passed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
