"""Training-step and inference overhead of the compander and its variants on a CIFAR ResNet18.

Every variant (plain, each method, learnable arctan) gets its own copy of the same initial
network and the paper's optimizer (SGD, momentum 0.9, lr 0.1, weight decay 1e-4, through
``wcviz.build_optimizer``, so the decay rule's cost is included). The variants are timed in
interleaved rounds (plain, arctan, ..., plain, arctan, ...) so that drifting machine load hits
them alike; the median over rounds of the time per step is reported, with its ratio to plain.
Then the baked arctan network's inference time is compared with the plain network's.

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
from wcviz.training.models import build_model
from wcviz.reparam.psi import POWERPROP_ALPHA

#: name -> compand() arguments; None is the plain network. a, b: the paper's ResNet18/CIFAR-10.
VARIANTS: dict[str, dict | None] = {
    "plain": None,
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
    return {name: statistics.median(t) for name, t in times.items()}


def inference_fns(base: nn.Module, setup: Setup, compiled: bool):
    """Plain, companded (arctan) and baked-companded networks in eval mode, no grad."""
    plain = _prepare(copy.deepcopy(base), setup).eval()
    companded = _prepare(wcviz.compand(copy.deepcopy(base), **VARIANTS["arctan"]), setup).eval()
    baked = wcviz.bake(copy.deepcopy(companded))
    fns = {}
    for name, model in (("plain", plain), ("baked arctan", baked),
                        ("companded arctan", companded)):
        run = torch.compile(model) if compiled else model

        def infer(run=run):
            with torch.inference_mode(), setup.autocast():
                run(setup.x)

        fns[name] = infer
    return fns


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: a figure measured under load is labelled so."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(title: str, medians: dict[str, float]) -> None:
    base = medians["plain"]
    print(f"\n{title}")
    print(f"  {'variant':<18} {'ms/step':>10} {'ratio':>7}")
    for name, t in medians.items():
        print(f"  {name:<18} {t * 1e3:>10.2f} {t / base:>7.3f}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    p.add_argument("--batch", type=int, default=128, help="batch size (the paper's: 128)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--model", default="resnet18")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: this process's CPU time, steadier on a shared CPU-only machine "
                        "(use with --threads 1, where no thread waits on another)")
    args = p.parse_args(argv)
    if "plain" not in args.variants:
        args.variants.insert(0, "plain")
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
    setup = make_setup(device, args.batch, clock)
    base = build_model(args.model)
    print(f"{args.model}, batch {args.batch}, {device} ({torch.get_num_threads()} threads), "
          f"torch {torch.__version__}; {args.rounds} rounds × {args.steps} steps, median "
          f"{args.clock} time; load average {load_average()}")
    modes = [False, True] if args.compile else [False]
    for compiled in modes:
        label = "compiled" if compiled else "eager"
        trainers = make_trainers(base, args.variants, setup, compiled)
        report(f"training step ({label})",
               time_interleaved(trainers, args.steps, args.rounds, args.warmup, setup))
        del trainers
        report(f"inference ({label})",
               time_interleaved(inference_fns(base, setup, compiled), args.steps * 2,
                                args.rounds, args.warmup, setup))
    print(f"\nload average after: {load_average()} (above 1 on a CPU run: measured under load)")


if __name__ == "__main__":
    main()
