"""A real recording process for the store's crash and concurrency tests (not a test itself).

    python tests/_record_writer.py RUN_DIR --epochs N [--resume] [--chunk C]
        [--die-at-resize K] [--die-at-write K] [--sleep S]
        [--wide-at E [--die-at-blank K | --die-at-names]]

Records a tiny plain model whose weights at epoch e are ``base · (1 + e)`` and whose metric
``train_loss`` is ``10·e``, so a test can check that every committed record is whole (all its
values belong to the same epoch). Prints ``ready`` once imports are done and ``committed K``
after each record. ``--die-at-resize K`` / ``--die-at-write K`` SIGKILL the process itself at
the K-th zarr array resize / array write (1-based), i.e. mid-grow or mid-record.
``--wide-at E`` logs :data:`WIDE` more metrics ``m/<i>`` = 1000·e + i from epoch E on, which
widens the metric table by two column blocks; ``--die-at-blank K`` / ``--die-at-names`` SIGKILL
it midway: at the K-th all-NaN chunk file of the new blocks, or after the resize, before the
names are written.

The tests also call :func:`run` in a forked child (a real process, killed for real, without
the cost of importing torch again).
"""

import argparse
import os
import signal
import sys
import time

import torch
import zarr
from torch import nn

import wcviz
from wcviz.record.schema import METRIC_BLOCK
from wcviz.record.store import _RowWriter

CONFIG = {"purpose": "kill-test", "lr": 0.1}
#: metrics logged from ``--wide-at``: two new column blocks of the metric table
WIDE = 2 * METRIC_BLOCK + 1


def wide_metrics(epoch: int) -> dict:
    return {f"m/{i}": 1000.0 * epoch + i for i in range(WIDE)}


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))


def die_after(cls, method: str, count: int, calls: dict | None = None) -> None:
    """Make the ``count``-th call of ``cls.method`` SIGKILL this process before it runs
    (the method may be a coroutine function: the kill happens when it is called). Hooks
    given the same ``calls`` dict count their calls together."""
    original = getattr(cls, method)
    calls = {"n": 0} if calls is None else calls

    def wrapper(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == count:
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)  # the signal is delivered before this returns
        return original(self, *args, **kwargs)

    setattr(cls, method, wrapper)


def run(run_dir, epochs=10, resume=False, chunk=4, die_at_resize=0, die_at_write=0,
        sleep=0.0, say=print, wide_at=0, die_at_blank=0, die_at_names=False) -> None:
    """Record ``epochs`` records (continuing a resumed run); ``say`` reports progress."""
    net = model()
    base = [m.weight.detach().clone() for m in (net[0], net[2])]
    say("ready")
    rec = wcviz.Recorder(net, run_dir, config=CONFIG, resume=resume, epoch_chunk=chunk,
                         attrs={"model": "tiny", "seed": 0})
    if die_at_resize:
        die_after(zarr.Array, "resize", die_at_resize)
    if die_at_write:  # an array write: through zarr, or the store's own chunk writer
        calls = {"n": 0}
        die_after(zarr.AsyncArray, "setitem", die_at_write, calls)
        die_after(_RowWriter, "write", die_at_write, calls)
    if die_at_blank:
        die_after(_RowWriter, "write_blank", die_at_blank)
    if die_at_names:  # the table's names are the one array attribute a record writes
        die_after(zarr.Array, "update_attributes", 1)
    for epoch in range(int(rec.next_epoch), epochs):
        with torch.no_grad():
            for module, w0 in zip((net[0], net[2]), base):
                module.weight.copy_(w0 * (1 + epoch))
        wide = wide_metrics(epoch) if wide_at and epoch >= wide_at else {}
        rec.record(epoch, {"train_loss": 10.0 * epoch, **wide}, step=epoch * 3)
        say(f"committed {rec.n_records}")
        time.sleep(sleep)
    rec.finish()
    say("done")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--die-at-resize", type=int, default=0)
    parser.add_argument("--die-at-write", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--wide-at", type=int, default=0)
    parser.add_argument("--die-at-blank", type=int, default=0)
    parser.add_argument("--die-at-names", action="store_true")
    args = parser.parse_args()
    run(args.run_dir, args.epochs, args.resume, args.chunk, args.die_at_resize,
        args.die_at_write, args.sleep, say=lambda text: print(text, flush=True),
        wide_at=args.wide_at, die_at_blank=args.die_at_blank, die_at_names=args.die_at_names)


if __name__ == "__main__":
    sys.exit(main())
