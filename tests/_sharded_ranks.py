"""Real torch.distributed (gloo) ranks recording sharded models (not a test itself).

    python tests/_sharded_ranks.py WORLD ROOT SCENARIO...

Each rank builds the same model, shards it (FSDP2 ``fully_shard`` or ``distribute_tensor``),
records it with ``wcviz.Recorder`` into ``ROOT/<scenario>`` twice (before and after one
optimizer step) and then, for the test's comparison only, gathers each tracked w and v on
rank 0 into ``ROOT/<scenario>.npz`` (keys ``<epoch>/<layer>/w`` and ``.../v``). Scenario
``missing``: rank 1 never calls ``record``; rank 0 writes the error it got to
``ROOT/missing.txt``; ``direct``, ``gradients``: see :func:`direct`, :func:`gradients`. Run as its own process so that ``mp.spawn`` re-imports this file as
``__main__``.
"""

import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import (DTensor, Partial, Replicate, Shard, distribute_tensor,
                                      init_device_mesh)

import wcviz
from wcviz.errors import WcvizError
from wcviz.record import sharded
from wcviz.record import stats as S
from wcviz.record.stats import QUANTILES as QS

MISSING_TIMEOUT = 3.0  # seconds rank 0 waits for the rank that never records


def _mlp() -> nn.Module:
    # 33 rows: uneven shards on 2 and 3 ranks; 2 rows on 3 ranks: one rank holds nothing
    return nn.Sequential(nn.Linear(5, 33), nn.ReLU(), nn.Linear(33, 7), nn.ReLU(),
                         nn.Linear(7, 2))


def _fsdp(model: nn.Module, mesh) -> nn.Module:
    scalars = {p for p in model.parameters() if p.dim() == 0}  # fully_shard refuses 0-dim a, b
    fully_shard(model, mesh=mesh, ignored_params=scalars or None)
    return model


def _dtensors(model: nn.Module, mesh) -> nn.Module:
    """Each Linear's weight a DTensor: Shard(0), Shard(1), Replicate in turn."""
    placements = [Shard(0), Shard(1), Replicate()]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        layer.weight = nn.Parameter(distribute_tensor(layer.weight.detach(), mesh,
                                                      [placements[i % 3]]))
        layer.bias = nn.Parameter(distribute_tensor(layer.bias.detach(), mesh, [Replicate()]))
    return model


def build(scenario: str, mesh) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    if scenario == "transformer":
        layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=33,
                                           batch_first=True)
        return _fsdp(layer, mesh), torch.randn(2, 4, 16)
    model = _mlp()
    if scenario == "dtensor":
        return _dtensors(model, mesh), x
    if scenario == "compand":
        wcviz.compand(model, "arctan", a=0.5, b=0.3)
    if scenario == "learnable":
        wcviz.compand(model, "arctan", a=0.5, b=0.3, learnable="fine")
    with torch.no_grad():
        model[0].weight[:3] = 0.0  # exact zeros: a bucket of equal values, near-zero counts
    return _fsdp(model, mesh), x


def _gather(rec: wcviz.Recorder, epoch: int, out: dict) -> None:
    """Full w and v of every tracked layer (collective; for the test's comparison only)."""
    for target in rec._layers:
        w = target.tensor().detach()
        full = w.full_tensor() if sharded.is_dtensor(w) else w
        # a copy first: .numpy() on FSDP2's unsharded storage would pin it (not resizable)
        out[f"{epoch}/{target.name}/w"] = full.clone().numpy()
        raw = wcviz.reparam.compander.raw_weight(target.module, target.attr)
        if raw is not None:
            out[f"{epoch}/{target.name}/v"] = raw.detach().full_tensor().clone().numpy()


def _step(model: nn.Module, x: torch.Tensor, opt, scenario: str) -> None:
    """One optimizer step (DTensor weights of mixed placements: a plain in-place update, as
    their forward needs DTensor inputs)."""
    if scenario == "dtensor":
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.9).add_(0.01)
        return
    model(x).square().mean().backward()
    opt.step()


def scenario_run(rank: int, world: int, root: str, scenario: str) -> None:
    mesh = init_device_mesh("cpu", (world,))
    model, x = build(scenario, mesh)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    gathered: dict = {}
    if scenario == "transformer":
        model(x)  # a forward alone leaves the root's parameters unsharded (plain tensors)
        assert not any(sharded.is_dtensor(p) for p in model.parameters())
    with wcviz.Recorder(model, os.path.join(root, scenario)) as rec:
        assert rec.record(0) is (rank == 0)
        _gather(rec, 0, gathered)
        _step(model, x, opt, scenario)
        assert rec.record(1, {"train_loss": 0.5}) is (rank == 0)
        assert rec.last_epoch == 1.0  # every rank knows it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "already recorded": the point here
            assert rec.record(1) is False  # skipped on every rank alike
        _gather(rec, 1, gathered)
    if rank == 0:
        np.savez(os.path.join(root, f"{scenario}.npz"), **gathered)


def _full(x: torch.Tensor) -> np.ndarray:
    """A copy of the whole tensor (gathered when a DTensor; for the test's comparison only)."""
    return (x.full_tensor() if sharded.is_dtensor(x) else x).detach().clone().numpy()


def gradients(rank: int, world: int, root: str) -> None:
    """An FSDP2 MLP recorded with ``gradients=True`` after a backward (its gradients are
    DTensors, reduce-scattered over the ranks); ROOT/gradients.npz: each layer's full gradient
    (key ``<layer>/grad``)."""
    mesh = init_device_mesh("cpu", (world,))
    model, x = build("mlp", mesh)
    torch.manual_seed(rank)  # each rank its own batch: the recorded gradient is the reduced one
    x = torch.randn_like(x)
    out = {}
    with wcviz.Recorder(model, os.path.join(root, "gradients"), gradients=True) as rec:
        model(x).square().mean().backward()
        assert rec.record(0) is (rank == 0)
        for target in rec._layers:
            assert sharded.is_dtensor(target.stored().grad)
            out[f"{target.name}/grad"] = _full(target.stored().grad)
    if rank == 0:
        np.savez(os.path.join(root, "gradients.npz"), **out)


def direct(rank: int, world: int, root: str) -> None:
    """sharded_quantiles of float64 and bfloat16 tensors, a summary streamed in tiny chunks
    (ROOT/direct.npz: the full tensors, the results, the single-device summary) and a Partial
    placement refused (ROOT/partial.txt: the message)."""
    mesh = init_device_mesh("cpu", (world,))
    torch.manual_seed(1)
    out = {}
    for dtype in (torch.float64, torch.bfloat16):
        full = torch.randn(33, 5).to(dtype)
        full[0] = 0.0
        full[1, 0] = -0.0
        ours = sharded.sharded_quantiles(distribute_tensor(full, mesh, [Shard(0)]), QS)
        out[f"{dtype}/full"], out[f"{dtype}/ours"] = full.double().numpy(), ours.numpy()
    # chunks of 16 values: candidates past CHUNK are found again by rescans, not kept
    full = torch.randn(33, 5)
    full[:20] = 0.0  # most values in one bucket of equal values
    cutoffs = [1e-3, ("std", 0.5), ("med", 0.5), ("med", 2.0)]
    chunk, sharded.CHUNK = sharded.CHUNK, 16
    try:
        ours = sharded.sharded_summary(distribute_tensor(full, mesh, [Shard(0)]), QS, cutoffs,
                                       2.0, 10)
    finally:
        sharded.CHUNK = chunk
    out["small_chunks/full"], out["small_chunks/ours"] = full.numpy(), ours.numpy()
    out["small_chunks/ref"] = S.weight_summary(full, QS, cutoffs, 2.0, 10).numpy()
    pending = DTensor.from_local(torch.ones(3, 2), mesh, [Partial()])
    try:
        sharded.sharded_summary(pending, (0.5,), (), 1.0, 4)
        message = "no error"
    except WcvizError as exc:
        message = str(exc)
    if rank == 0:
        np.savez(os.path.join(root, "direct.npz"), **out)
        with open(os.path.join(root, "partial.txt"), "w") as f:
            f.write(message)


def missing_rank(rank: int, world: int, root: str) -> None:
    mesh = init_device_mesh("cpu", (world,))
    model, _ = build("mlp", mesh)
    rec = wcviz.Recorder(model, os.path.join(root, "missing"), sync_timeout=MISSING_TIMEOUT)
    if rank == 1:
        time.sleep(MISSING_TIMEOUT + 10)  # busy elsewhere: never calls record
        return
    start = time.monotonic()
    try:
        rec.record(0)
        message = "no error"
    except WcvizError as exc:
        message = str(exc)
    if rank == 0:
        with open(os.path.join(root, "missing.txt"), "w") as f:
            f.write(f"{time.monotonic() - start:.1f}\n{message}")


def _worker(rank: int, world: int, init_file: str, root: str, scenarios: list[str]) -> None:
    torch.set_num_threads(1)  # ranks share a few cores
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        for scenario in scenarios:
            if scenario == "missing":
                missing_rank(rank, world, root)
                return  # the group is unusable after a failed barrier
            if scenario == "direct":
                direct(rank, world, root)
            elif scenario == "gradients":
                gradients(rank, world, root)
            else:
                scenario_run(rank, world, root, scenario)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    world, root, scenarios = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    mp.spawn(_worker, args=(world, os.path.join(root, "init"), root, scenarios), nprocs=world,
             join=True)
