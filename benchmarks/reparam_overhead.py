"""Training-step and inference overhead of the compander and its variants on a CIFAR ResNet18.

Every variant (plain, each method, learnable arctan) gets its own copy of the same initial
network and the paper's optimizer (SGD, momentum 0.9, lr 0.1, weight decay 1e-4, through
``wcviz.build_optimizer``, so the decay rule's cost is included). The variants are timed in
interleaved rounds (plain, arctan, ..., plain, arctan, ...) so that drifting machine load hits
them alike; the median over rounds of the time per step is reported, with its ratio to plain,
and the spread of the paired ratios (each round's time over plain's in the same round: median
and quartiles). Then the baked arctan network's inference time is compared with the plain
network's.

On the CPU, freed memory is kept in the process as ``wcviz train`` keeps it
(:mod:`wcviz.training.allocator`; ``--system-malloc``: glibc's defaults, under which every step
faults its activations' pages in again: a seventh of a ResNet18 step, and much of its noise).

A control, ``plain (again)``, is timed beside them unless ``--no-control``: a second copy of
the plain network, the same work as plain. Its ratio to plain is this run's noise floor: a
variant's ratio means something only where it stands clear of the control's.

Goals (issue 2): CPU eager arctan ≤ 1.03, baked inference 1.00; CUDA compiled ≤ 1.02 (the
paper reports 7–14 % overhead).

    python benchmarks/reparam_overhead.py --device cpu --steps 2 --rounds 3
    python benchmarks/reparam_overhead.py --device cuda --compile
    # on a CPU shared with other jobs: one thread, CPU time of this process only
    python benchmarks/reparam_overhead.py --device cpu --threads 1 --clock cpu --steps 1

On CUDA the model runs channels_last under bf16 autocast; on the CPU in float32.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

import wcviz
from wcviz.training.allocator import keep_freed_memory
from wcviz.training.models import build_model
from wcviz.reparam.psi import POWERPROP_ALPHA

#: The control: a second plain network, timed like the others (module docstring).
CONTROL = "plain (again)"

#: name -> compand() arguments; None is the plain network. a, b: the paper's ResNet18/CIFAR-10.
VARIANTS: dict[str, dict | None] = {
    "plain": None,
    CONTROL: None,
    "arctan": dict(method="arctan", a=1.0, b=0.6),
    "arctan-fine": dict(method="arctan", a=1.0, b=0.6, learnable="fine"),
    "arsinh": dict(method="arsinh", a=1.0, b=0.6),
    "erf": dict(method="erf", a=1.0, b=0.6),
    "powerprop": dict(method="powerprop", alpha=POWERPROP_ALPHA),
    "weightnorm": dict(method="weightnorm"),
}


@dataclass
class Setup:
    """One timed configuration: device, dtype policy and the batch."""

    device: torch.device
    x: torch.Tensor
    y: torch.Tensor
    clock: object = time.perf_counter  # or time.process_time (CPU seconds of this process)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        # bf16 autocast on CUDA (the fast path there); the CPU runs plain float32.
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


def _prepare(model: nn.Module, setup: Setup) -> nn.Module:
    model = model.to(setup.device)
    return model.to(memory_format=torch.channels_last) if setup.cuda else model


def make_trainers(base: nn.Module, names: list[str], setup: Setup, compiled: bool):
    """name -> (model, step function) for each variant, all from copies of ``base``."""
    trainers = {}
    for name in names:
        model = copy.deepcopy(base)
        if VARIANTS[name] is not None:
            wcviz.compand(model, **VARIANTS[name])
        model = _prepare(model, setup).train()
        opt = wcviz.build_optimizer(model, "sgd", 0.1, 1e-4, momentum=0.9)
        run = torch.compile(model) if compiled else model
        trainers[name] = _step_fn(run, opt, setup)
    return trainers


def _step_fn(run: nn.Module, opt: torch.optim.Optimizer, setup: Setup):
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with setup.autocast():
            loss = loss_fn(run(setup.x), setup.y)
        loss.backward()
        opt.step()

    return step


def time_interleaved(fns: dict, steps: int, rounds: int, warmup: int, setup: Setup):
    """name -> median seconds per call, from ``rounds`` interleaved rounds of ``steps`` calls."""
    return {name: statistics.median(t)
            for name, t in round_times(fns, steps, rounds, warmup, setup).items()}


def round_times(fns: dict, steps: int, rounds: int, warmup: int, setup: Setup):
    """name -> seconds per call in each of ``rounds`` interleaved rounds of ``steps`` calls."""
    for fn in fns.values():  # warm-up: compilation, cuDNN autotuning, allocator
        for _ in range(warmup):
            fn()
    setup.sync()
    times = {name: [] for name in fns}
    for r in range(rounds):
        order = list(fns)
        order = order[r % len(order):] + order[:r % len(order)]  # rotate: no fixed position
        for name in order:
            setup.sync()
            start = setup.clock()
            for _ in range(steps):
                fns[name]()
            setup.sync()
            times[name].append((setup.clock() - start) / steps)
    return times


def inference_fns(base: nn.Module, setup: Setup, compiled: bool, control: bool = False):
    """Plain, companded (arctan) and baked-companded networks in eval mode, no grad (and
    with ``control``, a second plain network)."""
    plain = _prepare(copy.deepcopy(base), setup).eval()
    companded = _prepare(wcviz.compand(copy.deepcopy(base), **VARIANTS["arctan"]), setup).eval()
    models = [("plain", plain)]
    if control:
        models.append((CONTROL, _prepare(copy.deepcopy(base), setup).eval()))
    models += [("baked arctan", wcviz.bake(copy.deepcopy(companded))),
               ("companded arctan", companded)]
    fns = {}
    for name, model in models:
        run = torch.compile(model) if compiled else model

        def infer(run=run):
            with torch.inference_mode(), setup.autocast():
                run(setup.x)

        fns[name] = infer
    return fns


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: a figure measured under load is labelled so."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def paired_spread(times: list[float], base: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the per-round ratios ``times[r] / base[r]``."""
    ratios = [t / b for t, b in zip(times, base)]
    if len(ratios) < 2:
        return ratios[0], ratios[0], ratios[0]
    q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return med, q1, q3


def report(title: str, times: dict[str, list[float]]) -> None:
    """Each variant's median time per step, its ratio to plain's, and the paired ratios'
    median [quartiles]."""
    base = statistics.median(times["plain"])
    print(f"\n{title}")
    print(f"  {'variant':<18} {'ms/step':>10} {'ratio':>7}   paired ratio, median [quartiles]")
    for name, t in times.items():
        med, q1, q3 = paired_spread(t, times["plain"])
        print(f"  {name:<18} {statistics.median(t) * 1e3:>10.2f} "
              f"{statistics.median(t) / base:>7.3f}   {med:.3f} [{q1:.3f}, {q3:.3f}]")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    p.add_argument("--batch", type=int, default=128, help="batch size (the paper's: 128)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    p.add_argument("--variants", nargs="+", default=[v for v in VARIANTS if v != CONTROL],
                   choices=list(VARIANTS))
    p.add_argument("--no-control", dest="control", action="store_false",
                   help=f"do not time the control {CONTROL!r} (a second plain network)")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: this process's CPU time, steadier on a shared CPU-only machine "
                        "(use with --threads 1, where no thread waits on another)")
    p.add_argument("--system-malloc", action="store_true",
                   help="keep glibc's malloc defaults (freed blocks go back to the kernel)")
    args = p.parse_args(argv)
    if "plain" not in args.variants:
        args.variants.insert(0, "plain")
    if args.control and CONTROL not in args.variants:
        args.variants.insert(args.variants.index("plain") + 1, CONTROL)
    return args


def make_setup(device: torch.device, batch: int, clock=time.perf_counter) -> Setup:
    """A random CIFAR-shaped batch of ``batch`` images (channels_last on CUDA, where cuDNN
    autotuning is switched on) and labels on ``device``."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    x = torch.randn(batch, 3, 32, 32, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return Setup(device, x, torch.randint(0, 10, (batch,), device=device), clock)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    kept = device.type == "cpu" and not args.system_malloc and keep_freed_memory()
    setup = make_setup(device, args.batch, clock)
    base = build_model(args.model)
    print(f"{args.model}, batch {args.batch}, {device} ({torch.get_num_threads()} threads), "
          f"torch {torch.__version__}; {args.rounds} rounds × {args.steps} steps, median "
          f"{args.clock} time; load average {load_average()}; freed memory "
          f"{'kept (wcviz.training.allocator)' if kept else 'as the C library does'}")
    modes = [False, True] if args.compile else [False]
    for compiled in modes:
        label = "compiled" if compiled else "eager"
        trainers = make_trainers(base, args.variants, setup, compiled)
        report(f"training step ({label})",
               round_times(trainers, args.steps, args.rounds, args.warmup, setup))
        del trainers
        report(f"inference ({label})",
               round_times(inference_fns(base, setup, compiled, CONTROL in args.variants),
                           args.steps * 2, args.rounds, args.warmup, setup))
    print(f"\nload average after: {load_average()} (above 1 on a CPU run: measured under load)")


if __name__ == "__main__":
    main()
