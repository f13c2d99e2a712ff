"""``wcviz train``, ``wcviz sweep`` and ``wcviz demo``.

Each ``*_main(argv, prog) -> int`` is called by the ``wcviz`` dispatcher (which turns a
:class:`WcvizError` into one line and exit status 2). ``python -m training`` (what torchrun
starts) is ``wcviz train``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wcviz.errors import WcvizError

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
                        "milestones=30,60 --set amp=false (repeatable; see --list-presets)")
    p.add_argument("--runs", default="runs", help="runs root (default ./runs)")


def _overrides(args, extra: dict | None = None) -> dict:
    from training.presets import parse_overrides

    out = {}
    for name, value in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size),
                        ("device", args.device), ("data_root", args.data_root)):
        if value is not None:
            out[name] = value
    if args.download:
        out["download"] = True
    out.update(extra or {})
    out.update(parse_overrides(args.overrides))
    return out


def check_writable(root: Path) -> Path:
    """Create ``root`` if needed and prove it writable, or raise a one-line WcvizError."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".wcviz-write-test-"):
            pass
    except OSError as err:
        raise WcvizError(f"cannot write to runs folder {root} ({err.strerror or err}); "
                         "choose another with --runs") from None
    return root


def run_state(run_dir: Path, recipe: dict) -> str:
    """"new", "done" (finished, same config), "resume" (started, same config) or "conflict"."""
    config = run_dir / "config.json"
    if not (run_dir / "record.zarr").exists():
        return "new"
    try:
        stored = json.loads(config.read_text())
    except (OSError, ValueError):
        return "conflict"
    if stored != json.loads(json.dumps(recipe)):
        return "conflict"
    summary = run_dir / "summary.json"
    if summary.is_file() and json.loads(summary.read_text()).get("status") == "finished":
        return "done"
    return "resume"


# ----------------------------------------------------------------------------- train


def _train_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train and record one run of a paper "
                                "preset. Example: wcviz train --preset cifar10-resnet18 "
                                "--method wc --seed 0")
    p.add_argument("--preset", help="experiment name (see --list-presets)")
    p.add_argument("--list-presets", action="store_true", help="print the preset table and exit")
    _config_args(p, "baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--a", type=float, help="compander a (WC: Table I's by default)")
    p.add_argument("--b", type=float, help="compander b")
    p.add_argument("--run-id", help="run folder name (default: <preset>_<method>[_a_b]_s<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run")
    p.add_argument("--nproc", type=int, default=1,
                   help="processes (GPUs) for DDP through torchrun on this node")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _train_config(args):
    from training.presets import check_config, resolve

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
    from training.presets import format_presets, run_name

    args = _train_parser(prog).parse_args(argv)
    if args.list_presets:
        print(format_presets())
        return 0
    if not args.preset:
        raise WcvizError("--preset is required; see 'wcviz train --list-presets'")
    if args.resume and args.overwrite:
        raise WcvizError("--resume and --overwrite exclude each other; pick one")
    cfg = _train_config(args)
    root = check_writable(Path(args.runs))
    run_dir = root / (args.run_id or run_name(cfg))
    if int(os.environ.get("RANK", "0")) == 0:  # DDP: rank 0 alone, before it creates the store
        _check_run_dir(run_dir, cfg, args.resume, args.overwrite)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        # The children must agree on the run folder and must not redo the checks above.
        child = _strip_nproc(argv) + ([] if args.run_id else ["--run-id", run_dir.name])
        return _torchrun(args.nproc, child)
    from training.loop import run

    result = run(cfg, run_dir, resume=args.resume, overwrite=args.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        print(_result_line(result))
    return 0


def _check_run_dir(run_dir: Path, cfg, resume: bool, overwrite: bool) -> None:
    """Refuse early (before any process starts) what would harm or confuse an existing run."""
    state = run_state(run_dir, cfg.recipe())
    if state != "new" and not (resume or overwrite):
        raise WcvizError(f"run {run_dir} exists; pass --resume to continue it, --overwrite to "
                         "replace it, or choose another --run-id")
    if resume and state == "conflict":
        raise WcvizError(f"run {run_dir} was recorded with a different config; resume with the "
                         "same preset and settings, or choose another --run-id")
    if resume and state == "new":
        raise WcvizError(f"nothing to resume in {run_dir}; start the run without --resume")


def _strip_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def _torchrun(nproc: int, argv: list[str]) -> int:
    """Run ``python -m training ARGV`` in ``nproc`` DDP processes through torchrun."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", "-m", "training", *argv]
    return subprocess.call(cmd)


def _result_line(result) -> str:
    return (f"{result.run_dir}: {result.status}, {result.epochs} epochs; best val acc "
            f"{result.best_val_acc:.4f} at epoch {result.best_epoch}; test acc "
            f"{result.test_acc_best_val:.4f} (best val), {result.test_acc_last:.4f} (last)")


# ----------------------------------------------------------------------------- sweep


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["a=0.5:1.0:0.1", "b=0.5,0.7"]`` -> ``{"a": [0.5, ..., 1.0], "b": [0.5, 0.7]}``.

    ``start:stop:step`` includes ``stop``; values are rounded to 10 decimals (no 0.7000000001).
    """
    from training.presets import parse_overrides

    grid = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not spec:
            raise WcvizError(f"--grid expects NAME=START:STOP:STEP or NAME=V1,V2, got {item!r}")
        if ":" in spec:
            try:
                start, stop, step = (float(x) for x in spec.split(":"))
            except ValueError:
                raise WcvizError(f"bad range {spec!r} in --grid; use START:STOP:STEP") from None
            if step <= 0 or stop < start:
                raise WcvizError(f"bad range {spec!r} in --grid: need step > 0 and stop >= start")
            n = int(round((stop - start) / step)) + 1
            values = [round(start + i * step, 10) for i in range(n)]
            texts = [repr(v) for v in values]
        else:
            texts = [v for v in spec.split(",") if v]
        grid[name.replace("-", "_")] = [parse_overrides([f"{name}={t}"])[name.replace("-", "_")]
                                        for t in texts]
    return grid


def _sweep_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="The paper's a, b grid and seeds as "
                                "independent runs. Example: wcviz sweep --preset "
                                "cifar10-resnet18 --method wc --grid a=0.5:1.0:0.1 "
                                "b=0.5:1.0:0.1 --seeds 1")
    p.add_argument("--preset", required=True)
    _config_args(p, "wc")
    p.add_argument("--grid", nargs="+", default=[], metavar="NAME=SPEC",
                   help="a=0.5:1.0:0.1 (inclusive range) or lr=0.1,0.05 (list)")
    p.add_argument("--seeds", default="1", help="N (seeds 0..N-1) or a list 0,3,7")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--dry-run", action="store_true", help="print the plan only")
    return p


def _seeds(text: str) -> list[int]:
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s]
        return list(range(int(text)))
    except ValueError:
        raise WcvizError(f"--seeds expects N or a list like 0,1,4, got {text!r}") from None


def sweep_plan(args) -> list[dict]:
    """One entry per run: its config, run id, run dir and state."""
    from training.presets import check_config, resolve, run_name

    from training.presets import METHODS

    grid = parse_grid(args.grid)
    seeds = _seeds(args.seeds)
    if {"a", "b"} & set(grid) and METHODS.get(args.method, {}).get("ab") is None:
        raise WcvizError(f"method {args.method!r} has no a, b to sweep; use --method wc (or "
                         "wc-learnable, arsinh, erf)")
    base = _overrides(args)
    names = list(grid)
    plan, root = [], Path(args.runs)
    for values in itertools.product(*(grid[n] for n in names)):
        for seed in seeds:
            point = dict(zip(names, values))
            cfg = resolve(args.preset, args.method, **{**base, **point, "seed": seed,
                                                        "progress": False})
            check_config(cfg)
            extra = "".join(f"_{n}{v}" for n, v in point.items() if n not in ("a", "b", "seed"))
            stem, seed_part = run_name(cfg).rsplit("_s", 1)
            name = f"{stem}{extra}_s{seed_part}"  # the seed stays last
            sets = [f"{k}={_fmt(v)}" for k, v in {**base, **point}.items()]
            plan.append(dict(run_id=name, run_dir=root / name, cfg=cfg, seed=seed, sets=sets,
                             state=run_state(root / name, cfg.recipe())))
    names = [p["run_id"] for p in plan]
    if len(set(names)) != len(names):
        raise WcvizError("the grid gives several runs the same name; sweep fields that "
                         "differ between runs")
    return plan


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _print_plan(plan: list[dict]) -> None:
    width = max(len(p["run_id"]) for p in plan)
    counts = {s: sum(p["state"] == s for p in plan) for s in ("new", "resume", "done", "conflict")}
    print(f"sweep plan: {len(plan)} runs ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
    for p in plan:
        print(f"  {p['run_id']:<{width}}  {p['state']}")


def _run_command(p: dict, args) -> list[str]:
    cmd = [sys.executable, "-m", "training", "--preset", args.preset, "--method", args.method,
           "--seed", str(p["seed"]), "--runs", str(args.runs), "--run-id", p["run_id"],
           "--no-progress"]
    for s in p["sets"]:
        cmd += ["--set", s]
    if p["state"] == "resume":
        cmd.append("--resume")
    return cmd


def sweep_main(argv: list[str], prog: str = "wcviz sweep") -> int:
    """``wcviz sweep``: expand a grid × seeds into runs; skip finished ones, resume the rest."""
    args = _sweep_parser(prog).parse_args(argv)
    if args.parallel < 1:
        raise WcvizError(f"--parallel must be >= 1, got {args.parallel}")
    check_writable(Path(args.runs))
    plan = sweep_plan(args)
    _print_plan(plan)
    if args.dry_run:
        return 0
    todo = [p for p in plan if p["state"] in ("new", "resume")]
    for p in plan:
        if p["state"] == "conflict":
            print(f"skipping {p['run_id']}: recorded with a different config (remove it or use "
                  "another --runs)", file=sys.stderr)
    failed = _run_all(todo, args)
    _print_sweep_table(plan)
    return 1 if failed or any(p["state"] == "conflict" for p in plan) else 0


def _run_all(todo: list[dict], args) -> int:
    """Run the plan ``args.parallel`` at a time; returns the number of failed runs."""
    if args.parallel == 1:
        return _run_in_process(todo)
    env = dict(os.environ)
    if args.parallel > 1:  # share the cores instead of oversubscribing them
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.parallel)))
    running, failed, queue = [], 0, list(todo)
    while queue or running:
        while queue and len(running) < args.parallel:
            p = queue.pop(0)
            log = None if args.parallel == 1 else open(Path(args.runs) / f"{p['run_id']}.log", "w")
            print(f"[sweep] start {p['run_id']} ({p['state']})", flush=True)
            running.append((p, subprocess.Popen(_run_command(p, args), env=env, stdout=log,
                                                stderr=subprocess.STDOUT if log else None), log))
        time.sleep(0.2)
        for item in list(running):
            p, proc, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            if log:
                log.close()
            failed += proc.returncode != 0
            print(f"[sweep] {'done' if proc.returncode == 0 else 'FAILED'} {p['run_id']}"
                  + (f" (exit {proc.returncode}; log {log.name})" if proc.returncode and log
                     else ""), flush=True)
    return failed


def _run_in_process(todo: list[dict]) -> int:
    """One run after another in this process; a failed run (e.g. NaN loss) does not stop
    the sweep."""
    from training.loop import run

    failed = 0
    for p in todo:
        print(f"[sweep] start {p['run_id']} ({p['state']})", flush=True)
        try:
            run(p["cfg"], p["run_dir"], resume=p["state"] == "resume")
        except WcvizError as err:
            failed += 1
            print(f"[sweep] FAILED {p['run_id']}: {err}", file=sys.stderr, flush=True)
            continue
        print(f"[sweep] done {p['run_id']}", flush=True)
    return failed


def _print_sweep_table(plan: list[dict]) -> None:
    width = max(len(p["run_id"]) for p in plan)
    print(f"\n{'run':<{width}}  status    best-val  test@best  test@last")
    for p in plan:
        s = _read_summary(p["run_dir"])
        print(f"{p['run_id']:<{width}}  {s.get('status', '-'):<8}  "
              f"{_pct(s.get('best_val_acc'))}  {_pct(s.get('test_acc_best_val'))}   "
              f"{_pct(s.get('test_acc_last'))}")


def _read_summary(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def _pct(x) -> str:
    return "   -    " if x is None else f"{100 * x:7.2f}%"


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


DEMO_PRESET = "digits-cnn"
DEMO_METHODS = ("baseline", "wc", "wc-learnable")


def demo_main(argv: list[str], prog: str = "wcviz demo") -> int:
    """``wcviz demo``: the embedded default; prints a results table and where to look."""
    import torch

    from training.loop import run
    from training.presets import resolve, run_name

    args = _demo_parser(prog).parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    root = check_writable(Path(args.runs))
    start, run_dirs = time.perf_counter(), []
    for method in DEMO_METHODS:
        extra = {"epochs": args.epochs} if args.epochs else {}
        cfg = resolve(DEMO_PRESET, method, seed=args.seed, device="cpu", **extra)
        run_dir = root / run_name(cfg)
        state = "new" if args.overwrite else run_state(run_dir, cfg.recipe())
        if state == "conflict":
            raise WcvizError(f"{run_dir} holds a run with another config; pass --overwrite to "
                             "retrain it or choose another --runs")
        print(f"[demo] {method:<13} -> {run_dir} ({'kept' if state == 'done' else 'training'})",
              flush=True)
        if state != "done":
            run(cfg, run_dir, resume=state == "resume", overwrite=args.overwrite)
        run_dirs.append(run_dir)
    print(f"\n[demo] trained in {time.perf_counter() - start:.0f} s\n")
    print(demo_table(run_dirs))
    figures = [] if args.no_figures else _demo_figures(run_dirs, Path(args.figures))
    print(f"\nLook at the runs:  wcviz dash {args.runs}")
    print(f"                   wcviz inspect {run_dirs[1]}")
    if figures:
        print("Figures:\n" + "\n".join(f"  {f}" for f in figures))
    return 0


def _demo_figures(run_dirs: list[Path], out: Path) -> list:
    from wcviz import plots

    return plots.write_paper_figures([str(d) for d in run_dirs], str(out))


def first_layer_stats(run_dir: Path) -> dict:
    """From the store: the first layer's max |w| at epoch 0 and last, near-zero fractions."""
    import wcviz

    ds = wcviz.open_run(run_dir)
    layer = ds.layer.values[0]
    absmax = ds.weight_absmax.sel(layer=layer).values
    nz = ds.near_zero_fraction.sel(layer=layer)
    label = _near_zero_label(ds)
    return {"layer": str(layer), "absmax0": float(absmax[0]), "absmax": float(absmax[-1]),
            "near_zero0": float(nz.sel(threshold=label).values[0]),
            "near_zero": float(nz.sel(threshold=label).values[-1]), "threshold": label,
            "a": float(ds.a.sel(layer=layer).values[-1]), "method": ds.attrs.get("method")}


def _near_zero_label(ds) -> str:
    labels = [str(t) for t in ds.threshold.values]
    for preferred in ("rel=0.1", "abs=0.01"):
        if preferred in labels:
            return preferred
    return labels[0]


def demo_table(run_dirs: list[Path]) -> str:
    """The demo's results table: accuracy, first-layer max |w| and near-zero fraction."""
    import math

    rows = []
    for d in run_dirs:
        s, f = _read_summary(d), first_layer_stats(d)
        bound = "-" if math.isnan(f["a"]) else f"{f['a'] * math.pi / 2:.3f}"
        rows.append((Path(d).name, _pct(s.get("test_acc_best_val")).strip(),
                     f"{f['absmax0']:.3f} -> {f['absmax']:.3f}", bound,
                     f"{f['near_zero0']:.3f} -> {f['near_zero']:.3f}"))
    label = first_layer_stats(run_dirs[0])["threshold"]
    head = ("run", "test acc", f"max|w| {first_layer_stats(run_dirs[0])['layer']} (ep 0 -> last)",
            "a·π/2", f"near-zero |w|<{label} (ep 0 -> last)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
