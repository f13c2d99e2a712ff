"""``wcviz train``, ``wcviz sweep`` and ``wcviz demo``.

Each ``*_main(argv, prog) -> int`` is called by the ``wcviz`` dispatcher (which turns a
:class:`WcvizError` into one line and exit status 2). ``python -m wcviz.training`` (what torchrun
starts) is ``wcviz train``.

:mod:`wcviz.training.presets` and :mod:`wcviz.training.loop` import torch (about 5 s on a busy machine), so
they are imported inside the commands, after the arguments are parsed: ``--help`` answers at
once (the ``--set`` fields come from the light :mod:`wcviz.training.config`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from wcviz.training import demo, executors, sweep
from wcviz.training.config import FIELD_TYPES, parse_overrides, type_name
from wcviz.record.config import run_state
from wcviz.record.runfolder import CONFLICT, DONE, NEW, RESUME, check_writable
from wcviz.errors import WcvizError
from wcviz.extras import require

# ----------------------------------------------------------------------------- shared helpers


def _config_args(p: argparse.ArgumentParser, method: str) -> None:
    """Options that set RunConfig fields (shared by train and sweep)."""
    p.add_argument("--method", default=method,
                   help=f"paper row: baseline, wc, wc-learnable, pp, wn, arsinh, erf "
                        f"(default {method})")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--lr", type=float, help="override the initial learning rate")
    p.add_argument("--batch-size", type=int, help="global batch size (split over --nproc)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--data-root", help="folder holding the dataset folders (default ./data)")
    p.add_argument("--download", action="store_true", help="fetch CIFAR when missing (network)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override any config field, e.g. --set epochs=2 --set "
                        "milestones=30,60 --set amp=false (repeatable; fields below)")
    p.add_argument("--runs", default="runs", help="runs root (default ./runs)")


def _fields_epilog() -> str:
    return "fields for --set: " + ", ".join(f"{k} ({type_name(v)})" for k, v in FIELD_TYPES.items())


def _overrides(args, extra: dict | None = None) -> dict:
    out = {}
    for name, value in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                        ("device", args.device), ("data_root", args.data_root)):
        if value is not None:
            out[name] = value
    if args.download:
        out["download"] = True
    out.update(extra or {})
    sets = parse_overrides(args.overrides)
    # Options that default to "not given" (None) must not be contradicted by --set; --seed's
    # default 0 cannot tell, so --set seed=N still sets it.
    twice = [k for k in sets if k in out and k != "seed" and sets[k] != out[k]]
    if twice:  # neither silently wins
        raise WcvizError(f"{twice[0]} is given twice ({out[twice[0]]!r} by its option, "
                         f"{sets[twice[0]]!r} by --set); give it once")
    out.update(sets)
    return out


def check_run_id(run_id: str) -> str:
    """A run id is one plain folder name inside --runs (no path, no '..', not hidden)."""
    if (not run_id or run_id in (".", "..") or run_id.startswith(".") or "/" in run_id
            or "\\" in run_id or "\0" in run_id or os.path.isabs(run_id)):
        raise WcvizError(f"--run-id {run_id!r} must be a plain folder name (letters, digits, "
                         "-_.), not a path: the run goes inside --runs")
    return run_id


# ----------------------------------------------------------------------------- train


def _train_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train and record one run of a paper "
                                "preset. Example: wcviz train --preset cifar10-resnet18 "
                                "--method wc --seed 0", epilog=_fields_epilog())
    p.add_argument("--preset", help="experiment name (see --list-presets)")
    p.add_argument("--list-presets", action="store_true", help="print the preset table and exit")
    _config_args(p, "baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--a", type=float, help="compander a (WC: Table I's by default)")
    p.add_argument("--b", type=float, help="compander b")
    p.add_argument("--run-id", help="run folder name (default: <preset>_<method>[_a_b]_s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")
    p.add_argument("--nproc-per-node", "--nproc", dest="nproc", type=int, default=1,
                   help="DDP processes (GPUs) per node, through torchrun (or Slurm tasks)")
    p.add_argument("--nnodes", type=int, default=1,
                   help="nodes for DDP: with --executor slurm, or by hand with the same "
                        "command and --rdzv-endpoint on every node")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="torchrun's c10d rendezvous (one node's address; any free port) "
                        "instead of --standalone")
    p.add_argument("--rdzv-id", help="rendezvous id, the same on every node (default: run id)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_slurm_args(p, "GPUs per node (with --executor slurm)")
    return p


def _train_config(args):
    from wcviz.training.presets import check_config, resolve

    extra = {"seed": args.seed}
    if args.a is not None:
        extra["a"] = args.a
    if args.b is not None:
        extra["b"] = args.b
    if args.no_progress:
        extra["progress"] = False
    cfg = resolve(args.preset, args.method, **_overrides(args, extra))
    check_config(cfg)
    return cfg


def train_main(argv: list[str], prog: str = "wcviz train") -> int:
    """``wcviz train``: one run of a preset (single process, or DDP with --nproc)."""
    args = _train_parser(prog).parse_args(argv)
    from wcviz.training.presets import format_presets, run_name

    if args.list_presets:
        print(format_presets())
        return 0
    if not args.preset:
        raise WcvizError("--preset is required; see 'wcviz train --list-presets'")
    if args.resume and args.overwrite:
        raise WcvizError("--resume and --overwrite exclude each other; pick one")
    require("train", needed_by="training")
    _check_launch(args)
    cfg = _train_config(args)
    root = check_writable(Path(args.runs))
    run_dir = root / (check_run_id(args.run_id) if args.run_id is not None else run_name(cfg))
    launcher = "WORLD_SIZE" not in os.environ  # not (yet) one of torchrun's processes
    # DDP: rank 0 alone, before it creates the store. Several nodes by hand: each node's
    # launcher would race the others' rank 0, so only the rank-0 process checks.
    by_hand = launcher and args.nnodes > 1 and args.executor == "local"
    if int(os.environ.get("RANK", "0")) == 0 and not by_hand:
        _check_run_dir(run_dir, cfg, args.resume, args.overwrite)
    if args.executor == "slurm":
        return _submit_train(cfg, run_dir, args)
    if (args.nproc > 1 or args.nnodes > 1) and launcher:
        # The children must agree on the run folder; they skip the launch options.
        child = _strip_launch(argv) + ([] if args.run_id else ["--run-id", run_dir.name])
        return _torchrun(args, child, args.rdzv_id or run_dir.name)
    from wcviz.training.loop import run

    result = run(cfg, run_dir, resume=args.resume, overwrite=args.overwrite, keep_memory=True)
    if int(os.environ.get("RANK", "0")) == 0:
        print(_result_line(result))
    return 0


def _check_run_dir(run_dir: Path, cfg, resume: bool, overwrite: bool) -> None:
    """Refuse early (before any process starts) what would harm or confuse an existing run."""
    if overwrite:
        return  # whatever is there is replaced (damaged or not)
    state = run_state(run_dir, cfg.recipe())
    if state != NEW and not (resume or overwrite):
        raise WcvizError(f"run {run_dir} exists; pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --run-id")
    if resume and state == CONFLICT:
        raise WcvizError(f"run {run_dir} was recorded with a different config; resume with the "
                         "same preset and settings, or choose another --run-id")
    if resume and state == NEW:
        raise WcvizError(f"nothing to resume in {run_dir}; start the run without --resume")


def _check_launch(args) -> None:
    """The DDP launch options make sense together."""
    if args.nproc < 1 or args.nnodes < 1:
        raise WcvizError(f"--nproc-per-node and --nnodes must be >= 1, got {args.nproc}, "
                         f"{args.nnodes}")
    if args.executor == "slurm":
        if args.rdzv_endpoint:
            raise WcvizError("--rdzv-endpoint is for launching by hand; under --executor slurm "
                             "Slurm places the processes: drop it")
        if args.overwrite:
            raise WcvizError("--overwrite is not available with --executor slurm (a requeued "
                             "job must not replace its own run); remove the run folder first "
                             "or choose another --run-id")
    elif args.nnodes > 1 and not args.rdzv_endpoint:
        raise WcvizError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (run the same command "
                         "on every node) or --executor slurm")


#: ``wcviz train`` options that only the launching process reads, with their value count.
LAUNCH_OPTIONS = {"--nproc": 1, "--nproc-per-node": 1, "--nnodes": 1, "--rdzv-endpoint": 1,
                  "--rdzv-id": 1}


def _strip_launch(argv: list[str]) -> list[str]:
    """``argv`` without the launch options (the DDP processes must not launch again)."""
    out, skip = [], 0
    for a in argv:
        if skip:
            skip -= 1
        elif a in LAUNCH_OPTIONS:
            skip = LAUNCH_OPTIONS[a]
        elif not a.split("=", 1)[0] in LAUNCH_OPTIONS:
            out.append(a)
    return out


def _torchrun(args, argv: list[str], rdzv_id: str) -> int:
    """Run ``python -m wcviz.training ARGV`` as DDP processes through torchrun: ``--standalone`` on
    one node, or the c10d rendezvous at ``--rdzv-endpoint`` (every node runs this)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={args.nnodes}",
           f"--nproc-per-node={args.nproc}"]
    if args.rdzv_endpoint:
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}",
                f"--rdzv-id={rdzv_id}"]
    else:
        cmd.append("--standalone")
    return subprocess.call([*cmd, "-m", "wcviz.training", *argv])


def _submit_train(cfg, run_dir: Path, args) -> int:
    """``--executor slurm``: submit the run as one job of nnodes × nproc tasks and return."""
    slurm = _slurm_module()
    # A progress bar redrawn into a log file is noise; the log gets the result line.
    job_id = slurm.submit_train(dataclasses.replace(cfg, progress=False), run_dir,
                                slurm_options(args), args.nnodes, args.nproc)
    print(f"submitted Slurm job {job_id}: {run_dir} on {args.nnodes} node(s) x {args.nproc} "
          f"task(s); log {run_dir.parent / executors.SLURM_DIR / job_id}/")
    return 0


def _slurm_module():
    """:mod:`wcviz.training.slurm`, or one line saying how to install submitit."""
    require("slurm", needed_by="--executor slurm")
    from wcviz.training import slurm

    return slurm


def _result_line(result) -> str:
    return (f"{result.run_dir}: {result.status}, {result.epochs} epochs; best val acc "
            f"{result.best_val_acc:.4f} at epoch {result.best_epoch}; test acc "
            f"{result.best_val_test_acc:.4f} (best val), {result.test_acc_last:.4f} (last)")


# ----------------------------------------------------------------------------- Slurm options


def add_slurm_args(p: argparse.ArgumentParser, gpus_help: str) -> None:
    """The ``--executor`` choice and the Slurm job options (shared by train and sweep)."""
    p.add_argument("--executor", choices=executors.EXECUTORS, default="local",
                   help="local (default): this machine; slurm: submit Slurm jobs through "
                        "submitit and return")
    g = p.add_argument_group("Slurm (with --executor slurm)")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--gpus", type=int, default=0, help=gpus_help)
    g.add_argument("--cpus", type=int, default=None,
                   help="CPUs per task (also torch's thread count in the job)")
    g.add_argument("--mem-gb", type=float, help="memory per node, GB")
    g.add_argument("--time", dest="time_limit", default="60",
                   help="time limit per job: minutes, HH:MM:SS or D-HH:MM (default 60); a job "
                        "that reaches it is requeued and resumes")
    g.add_argument("--account", help="Slurm account to charge")
    g.add_argument("--qos", help="Slurm quality of service")
    g.add_argument("--slurm", dest="slurm_extra", action="append", default=[],
                   metavar="KEY=VALUE", help="any other sbatch option, e.g. --slurm "
                   "constraint=a100 --slurm exclude=node7 (repeatable)")


def slurm_options(args: argparse.Namespace) -> executors.SlurmOptions:
    """The options of :func:`add_slurm_args` as the executors take them."""
    return executors.SlurmOptions(
        partition=args.partition, gpus=args.gpus, cpus=args.cpus, mem_gb=args.mem_gb,
        time_limit=args.time_limit, account=args.account, qos=args.qos,
        extra=tuple(args.slurm_extra))


# ----------------------------------------------------------------------------- sweep


def _sweep_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="The paper's a, b grid and seeds as "
                                "independent runs. Example: wcviz sweep --preset "
                                "cifar10-resnet18 --method wc --grid a=0.5:1.0:0.1 "
                                "b=0.5:1.0:0.1 --seeds 1", epilog=_fields_epilog())
    p.add_argument("--preset", required=True)
    _config_args(p, "wc")
    p.add_argument("--grid", nargs="+", default=[], metavar="NAME=SPEC",
                   help="a=0.5:1.0:0.1 (inclusive range) or lr=0.1,0.05 (list)")
    p.add_argument("--seeds", default="1", help="N (seeds 0..N-1) or a list 0,3,7")
    p.add_argument("--parallel", type=int, default=1,
                   help="local runs at a time (default 1), each on its own GPU when there are "
                        "GPUs (round-robin over CUDA_VISIBLE_DEVICES)")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    p.add_argument("--status", action="store_true",
                   help="show each planned run's state (from its store) and Slurm job, and exit")
    add_slurm_args(p, "GPUs per run (with --executor slurm)")
    return p


def sweep_main(argv: list[str], prog: str = "wcviz sweep") -> int:
    """``wcviz sweep``: expand a grid × seeds into runs; skip finished ones, resume the rest."""
    args = _sweep_parser(prog).parse_args(argv)
    if args.parallel < 1:
        raise WcvizError(f"--parallel must be >= 1, got {args.parallel}")
    check_writable(Path(args.runs))
    spec = sweep.SweepSpec(preset=args.preset, method=args.method, runs=Path(args.runs),
                           grid=sweep.parse_grid(args.grid),
                           seeds=tuple(sweep.parse_seeds(args.seeds)), base=_overrides(args))
    plan = sweep.sweep_plan(spec)
    if args.status:
        print(executors.format_status(executors.status_rows(plan, spec.runs)))
        return 0
    sweep.print_plan(plan)
    if args.dry_run:
        return 0
    require("train", needed_by="training")
    todo = [p for p in plan if p.state in (NEW, RESUME)]
    conflicts = [p for p in plan if p.state == CONFLICT]
    for p in conflicts:
        print(f"skipping {p.run_id}: recorded with a different config (remove it or use "
              "another --runs)", file=sys.stderr)
    if args.executor == "slurm":
        return _submit_sweep(todo, spec, slurm_options(args)) or int(bool(conflicts))
    lock = executors.sweep_lock(plan, spec.runs) if todo else None
    try:
        if lock is not None:  # what another sweep did before the lock was ours is seen now
            plan = sweep.sweep_plan(spec)
            todo = [p for p in plan if p.state in (NEW, RESUME)]
        executors.preflight(todo)
        failed = executors.run_local(todo, spec, args.parallel)
    finally:
        if lock is not None:
            lock.close()
    sweep.print_table(plan)
    return 1 if failed or conflicts else 0


def _submit_sweep(todo: list[sweep.PlannedRun], spec: sweep.SweepSpec,
                  options: executors.SlurmOptions) -> int:
    """``--executor slurm``: submit the runs to do, print their job ids and return."""
    if not todo:
        print("nothing to submit: every run is finished")
        return 0
    submitted = _slurm_module().submit_sweep(todo, spec, options)
    for run_id, job_id in submitted:
        print(f"[slurm] {run_id}: job {job_id}")
    if submitted:
        print(f"submitted {len(submitted)} job(s); logs under "
              f"{spec.runs / executors.SLURM_DIR}/<job id>/; watch with the same "
              "command and --status, or wcviz dash " + str(spec.runs))
    return 0


# ----------------------------------------------------------------------------- demo


def _demo_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train baseline, WC and learnable-WC "
                                "CNNs on scikit-learn's handwritten digits (offline, CPU, a few "
                                "minutes), record them, write the paper-style figures.")
    p.add_argument("--runs", default="runs", help="runs root (default ./runs)")
    p.add_argument("--figures", default="figures", help="figure folder (default ./figures)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the digits-cnn preset's)")
    p.add_argument("--seed", type=int, default=0)
    # The demo's nets are tiny (batch 32 of 8×8 images): a second intra-op thread gains
    # little and, on a busy machine, its spinning slows every op down.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--overwrite", action="store_true", help="retrain runs that exist")
    p.add_argument("--no-figures", action="store_true", help="skip writing figures")
    return p


def use_run_options(epochs: int | None, threads: int) -> None:
    """``--epochs`` (None: the preset's) and ``--threads`` as demo and reproduce take them;
    torch then computes on that many threads."""
    import torch

    if epochs is not None and epochs < 1:
        raise WcvizError(f"--epochs must be >= 1, got {epochs}")
    if threads < 1:
        raise WcvizError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def demo_main(argv: list[str], prog: str = "wcviz demo") -> int:
    """``wcviz demo``: the embedded default; prints a results table and where to look."""
    args = _demo_parser(prog).parse_args(argv)
    require("train", "figures", "stats", needed_by="the demo")  # it trains, draws, compares
    from wcviz.training.loop import run
    from wcviz.training.presets import resolve, run_name

    use_run_options(args.epochs, args.threads)
    root = check_writable(Path(args.runs))
    start, run_dirs = time.perf_counter(), []
    for method in demo.DEMO_METHODS:
        extra = {"epochs": args.epochs} if args.epochs is not None else {}
        cfg = resolve(demo.DEMO_PRESET, method, seed=args.seed, device="cpu", **extra)
        run_dir = root / run_name(cfg)
        state = NEW if args.overwrite else run_state(run_dir, cfg.recipe())
        if state == CONFLICT:
            raise WcvizError(f"{run_dir} holds a run with another config; pass --overwrite to "
                             "retrain it or choose another --runs")
        print(f"[demo] {method:<13} -> {run_dir} ({'kept' if state == DONE else 'training'})",
              flush=True)
        if state != DONE:
            run(cfg, run_dir, resume=state == RESUME, overwrite=args.overwrite, keep_memory=True)
        run_dirs.append(run_dir)
    print(f"\n[demo] trained in {time.perf_counter() - start:.0f} s\n")
    print(demo.demo_table(run_dirs))
    print("\nThe paper's claims (WC: a=0.5, b=0.3, so Ψ'(0) = a/b = 5/3 > 1 as in Table I):")
    print(demo.claim_lines(run_dirs))
    figures = [] if args.no_figures else demo.write_figures(run_dirs, Path(args.figures))
    if figures:  # the HTML report beside the figures: the views of `wcviz dash`, in one file
        figures += [f for f in [demo.write_report(run_dirs, Path(args.figures) / "report.html",
                                                  "wcviz demo")] if f]
    print(f"\nLook at the runs:  wcviz dash {args.runs}")
    print(f"                   wcviz inspect {run_dirs[1]}")
    if figures:
        print("Figures:\n" + "\n".join(f"  {f}" for f in figures))
    return 0
