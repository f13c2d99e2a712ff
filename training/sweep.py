"""Sweeps: a grid of config values × seeds as independent, resumable runs (the paper's
Table I search). Run folders are named ``<preset>_<method>[_a<a>_b<b>][_<field><value>]_s<seed>``
so a sweep reads back as a table; finished runs are skipped, unfinished ones resumed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from wcviz.training.config import parse_overrides
from wcviz.record.config import run_state
from wcviz.record.runfolder import CONFLICT, DONE, NEW, RESUME, read_summary
from wcviz.training.config import RunConfig
from wcviz.errors import WcvizError
from wcviz.record.metrics import BEST_ACC


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
            _check_count(f"--grid {name}", n)
            values = [round(start + i * step, 10) for i in range(n)]
            texts = [repr(v) for v in values]
        else:
            texts = [v for v in spec.split(",") if v]
        grid[name.replace("-", "_")] = [parse_overrides([f"{name}={t}"])[name.replace("-", "_")]
                                        for t in texts]
    return grid


#: Most runs one sweep may plan: far above any real sweep, low enough that a typo (a step of
#: 1e-9, a billion seeds) is refused at once instead of exhausting time and memory.
MAX_RUNS = 10_000


def _check_count(what: str, n: int) -> None:
    if n > MAX_RUNS:
        raise WcvizError(f"{what} gives {n:,} runs, more than {MAX_RUNS:,}; use a coarser step "
                         "or fewer values")


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> ``[0, 1, 2]``; ``"0,3,7"`` -> ``[0, 3, 7]`` (at least one seed, none negative)."""
    try:
        listed = "," in text
        numbers = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        numbers, listed = [], False
    if not listed:
        if len(numbers) != 1 or numbers[0] < 1:
            raise WcvizError(f"--seeds expects a count N >= 1 or a list like 0,1,4, "
                             f"not --seeds {text}")
        _check_count("--seeds", numbers[0])
    seeds = numbers if listed else list(range(numbers[0]))
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise WcvizError(f"--seeds needs at least one seed, distinct and >= 0, got {text!r}")
    return seeds


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep asks for: a preset and method, a grid of config values, seeds, and the
    overrides every run shares. ``wcviz sweep`` builds it from its options."""

    preset: str
    method: str
    runs: Path  # the runs root; each run gets a folder in it
    grid: dict[str, list] = field(default_factory=dict)  # field -> values (parse_grid)
    seeds: tuple[int, ...] = (0,)
    base: dict = field(default_factory=dict)  # overrides of every run (--epochs, --set, ...)


@dataclass
class PlannedRun:
    """One run of a sweep: its name and folder, its full config, and what is there already
    (a :data:`~wcviz.record.runfolder.RUN_STATES` word)."""

    run_id: str
    run_dir: Path
    cfg: RunConfig
    seed: int
    sets: list[str]  # the --set overrides that rebuild cfg in a subprocess
    state: str


def sweep_plan(spec: SweepSpec) -> list[PlannedRun]:
    """One planned run per grid point and seed, in grid order (seeds innermost).

    Raises:
        WcvizError: a grid the method cannot take, too many runs, or two runs of one name.
    """
    from wcviz.training.presets import METHODS, check_config, resolve, run_name

    grid, seeds, base = spec.grid, list(spec.seeds), spec.base
    if {"a", "b"} & set(grid) and getattr(METHODS.get(spec.method), "ab", None) is None:
        raise WcvizError(f"method {spec.method!r} has no a, b to sweep; use --method wc (or "
                         "wc-learnable, arsinh, erf)")
    names = list(grid)
    _check_count("the grid times --seeds", math.prod(len(v) for v in grid.values()) * len(seeds))
    plan, root = [], Path(spec.runs)
    for values in itertools.product(*(grid[n] for n in names)):
        for seed in seeds:
            point = dict(zip(names, values))
            cfg = resolve(spec.preset, spec.method, **{**base, **point, "seed": seed,
                                                        "progress": False})
            check_config(cfg)
            extra = "".join(f"_{n}{v}" for n, v in point.items() if n not in ("a", "b", "seed"))
            stem, seed_part = run_name(cfg).rsplit("_s", 1)
            name = f"{stem}{extra}_s{seed_part}"  # the seed stays last
            sets = [f"{k}={_fmt(v)}" for k, v in {**base, **point}.items()]
            plan.append(PlannedRun(name, root / name, cfg, seed, sets,
                                   run_state(root / name, cfg.recipe())))
    names = [p.run_id for p in plan]
    if len(set(names)) != len(names):
        raise WcvizError("the grid gives several runs the same name; sweep fields that "
                         "differ between runs")
    return plan


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def print_plan(plan: list[PlannedRun]) -> None:
    width = max(len(p.run_id) for p in plan)
    counts = {s: sum(p.state == s for p in plan) for s in (NEW, RESUME, DONE, CONFLICT)}
    print(f"sweep plan: {len(plan)} runs ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
    for p in plan:
        print(f"  {p.run_id:<{width}}  {p.state}")


def print_table(plan: list[PlannedRun]) -> None:
    width = max(len(p.run_id) for p in plan)
    print(f"\n{'run':<{width}}  status    best-val  test@best  test@last")
    for p in plan:
        s = read_summary(p.run_dir)
        print(f"{p.run_id:<{width}}  {s.get('status', '-'):<8}  "
              f"{pct(s.get('best_val_acc'))}  {pct(s.get(BEST_ACC))}   "
              f"{pct(s.get('test_acc_last'))}")


def pct(x) -> str:
    """A fraction as a fixed-width percentage, or a dash when missing."""
    return "   -    " if x is None else f"{100 * x:7.2f}%"
