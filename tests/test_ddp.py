"""DDP with two CPU processes on gloo: `wcviz train --nproc 2` (torchrun underneath), on one
node alone (--standalone) and through the c10d rendezvous that several nodes use."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import wcviz
from wcviz.training import checkpoint as ckpt
from wcviz.cli import main
from _cli import free_port
from wcviz.record.index import INDEX_NAME  # the runs index beside the runs

pytestmark = pytest.mark.slow  # two torchrun processes



@pytest.mark.slow
@pytest.mark.parametrize("launch", ["standalone", "c10d"])
def test_two_process_ddp_run_equals_the_single_process_run(tmp_path, launch):
    """Same samples per global step (DistributedSampler shards of one permutation); the digits
    CNN has no batch norm and no dropout, so the two runs agree up to reduction order.
    c10d: what every node of a multi-node run is given (here one node, an explicit endpoint)."""
    common = ["train", "--preset", "digits-cnn", "--method", "wc", "--epochs", "1",
              "--device", "cpu", "--no-progress", "--set", "batch_size=64"]
    # A process that aborts in native code prints its Python stacks (PYTHONFAULTHANDLER).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    nodes = ["--nnodes", "1", "--rdzv-endpoint", f"localhost:{free_port()}"] \
        if launch == "c10d" else []
    proc = subprocess.run([sys.executable, "-m", "wcviz", *common, "--runs",
                           str(tmp_path / "ddp"), "--nproc-per-node", "2", *nodes],
                          capture_output=True, text=True, timeout=600, env=env)
    err = proc.stderr
    assert proc.returncode == 0, err if len(err) <= 8000 else f"{err[:4000]}\n[...]\n{err[-4000:]}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*common, "--runs", str(tmp_path / "single")]) == 0
    finally:
        torch.set_num_threads(threads)
    run = "digits-cnn_wc_a0.5_b0.3_s0"
    ddp, single = wcviz.open_run(tmp_path / "ddp" / run), wcviz.open_run(tmp_path / "single" / run)
    assert ddp.attrs["world_size"] == 2 and single.attrs["world_size"] == 1
    assert ddp.attrs["status"] == "finished" and ddp.epoch.values.tolist() == [0, 1]
    # rank 0 alone wrote: one store, one set of checkpoints, nothing else in the runs root
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir() if p.name != INDEX_NAME) == [run]
    assert sorted(p.name for p in (tmp_path / "ddp" / run / "checkpoints").iterdir()) == \
        ["best.pt", "last.prev.pt", "last.pt"]  # rank 0 alone wrote them
    a = ckpt.load(tmp_path / "ddp" / run / "checkpoints" / "last.pt")["model"]
    b = ckpt.load(tmp_path / "single" / run / "checkpoints" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    np.testing.assert_allclose(ddp.weight_quantile.values, single.weight_quantile.values,
                               rtol=1e-4, atol=1e-5)
    # evaluation is sharded and summed over both processes: the same accuracy
    np.testing.assert_allclose(ddp.val_acc.values, single.val_acc.values, atol=1 / 144 + 1e-9)
    np.testing.assert_allclose(ddp.train_loss.values[1:], single.train_loss.values[1:],
                               rtol=1e-4)


def test_training_processes_do_not_import_pandas_or_pyarrow(tmp_path):
    """A whole training run (what each DDP process does: torchrun runs ``python -m wcviz.training``)
    stays free of pandas, xarray and pyarrow: pandas 3 loads pyarrow, whose native threads a
    training process has no use for and must not carry into its exit."""
    code = ("import sys, training.__main__; from wcviz.training.cli import train_main; "
            "train_main(['--preset', 'digits-cnn', '--epochs', '1', '--device', 'cpu', "
            f"'--no-progress', '--runs', {str(tmp_path)!r}]); "
            "print([m for m in ('pandas', 'xarray', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "digits-cnn_baseline_s0" / "summary.json").is_file()  # a whole run
