"""Sweeps: a grid of config values × seeds as independent, resumable runs (the paper's
Table I search). Run folders are named ``<preset>_<method>[_a<a>_b<b>][_<field><value>]_s<seed>``
so a sweep reads back as a table; finished runs are skipped, unfinished ones resumed.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

from training.config import parse_overrides
from training.rundirs import read_summary, run_state
from wcviz.errors import WcvizError
from wcviz.metrics import BEST_ACC


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["a=0.5:1.0:0.1", "b=0.5,0.7"]`` -> ``{"a": [0.5, ..., 1.0], "b": [0.5, 0.7]}``.

    ``start:stop:step`` includes ``stop``; values are rounded to 10 decimals (no 0.7000000001).
    """
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


def parse_seeds(text: str) -> list[int]:
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s]
        return list(range(int(text)))
    except ValueError:
        raise WcvizError(f"--seeds expects N or a list like 0,1,4, got {text!r}") from None


def sweep_plan(args, base: dict) -> list[dict]:
    """One entry per run: its config, run id, run dir and state.

    Args:
        args: the parsed ``wcviz sweep`` options (preset, method, grid, seeds, runs).
        base: config overrides shared by every run (from --epochs, --set, ...).
    """
    from training.presets import METHODS, check_config, resolve, run_name

    grid = parse_grid(args.grid)
    seeds = parse_seeds(args.seeds)
    if {"a", "b"} & set(grid) and getattr(METHODS.get(args.method), "ab", None) is None:
        raise WcvizError(f"method {args.method!r} has no a, b to sweep; use --method wc (or "
                         "wc-learnable, arsinh, erf)")
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


def print_plan(plan: list[dict]) -> None:
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


def run_all(todo: list[dict], args) -> int:
    """Run the plan ``args.parallel`` at a time; returns the number of failed runs."""
    if args.parallel == 1:
        return _run_in_process(todo)
    env = dict(os.environ)  # share the cores among the runs instead of oversubscribing them
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.parallel)))
    running, failed, queue = [], 0, list(todo)
    while queue or running:
        while queue and len(running) < args.parallel:
            p = queue.pop(0)
            log = open(Path(args.runs) / f"{p['run_id']}.log", "w")
            print(f"[sweep] start {p['run_id']} ({p['state']})", flush=True)
            running.append((p, subprocess.Popen(_run_command(p, args), env=env, stdout=log,
                                                stderr=subprocess.STDOUT), log))
        time.sleep(0.2)
        for item in list(running):
            p, proc, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            failed += proc.returncode != 0
            print(f"[sweep] {'done' if proc.returncode == 0 else 'FAILED'} {p['run_id']}"
                  + (f" (exit {proc.returncode}; log {log.name})" if proc.returncode else ""),
                  flush=True)
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


def print_table(plan: list[dict]) -> None:
    width = max(len(p["run_id"]) for p in plan)
    print(f"\n{'run':<{width}}  status    best-val  test@best  test@last")
    for p in plan:
        s = read_summary(p["run_dir"])
        print(f"{p['run_id']:<{width}}  {s.get('status', '-'):<8}  "
              f"{pct(s.get('best_val_acc'))}  {pct(s.get(BEST_ACC))}   "
              f"{pct(s.get('test_acc_last'))}")


def pct(x) -> str:
    """A fraction as a fixed-width percentage, or a dash when missing."""
    return "   -    " if x is None else f"{100 * x:7.2f}%"
