"""The local executor's GPU pinning, the Slurm options, `--status`, and launch-option errors
(no GPU and no Slurm needed; test_slurm.py runs the Slurm executor on a real cluster)."""

import argparse

import pytest

import wcviz
from wcviz.training import executors
from wcviz.training.cli import add_slurm_args, slurm_options
from wcviz.training.executors import GpuPool, parse_minutes, slurm_parameters, visible_gpus
from wcviz.cli import main
from wcviz.record.schema import read_root_attrs
from _cli import one_error_line
from _engines import framework

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SWEEP = ["sweep", "--preset", "digits-cnn", "--method", "wc", "--epochs", "1",
         "--set", "batch_size=128"]



def test_visible_gpus_reads_cuda_visible_devices_as_given():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3, 5"}) == ["3", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-1a2b,MIG-9"}) == ["GPU-1a2b", "MIG-9"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_gpu_pool_spreads_runs_and_refills_the_gpu_freed_first():
    pool = GpuPool(["3", "5", "7"])
    assert [pool.take() for _ in range(4)] == ["3", "5", "7", "3"]  # round-robin, then doubles
    pool.give_back("5")  # the run on GPU 5 ends first: the next run goes there, not to 5's turn
    assert pool.take() == "5"
    assert pool.take() == "5" and pool.take() == "7"  # now all at 2: round-robin again
    assert GpuPool([]).take() is None


def test_pinning_only_for_auto_or_plain_cuda():
    assert executors.pins("auto") and executors.pins("cuda")
    assert not executors.pins("cpu") and not executors.pins("cuda:1")


@pytest.mark.slow
def test_parallel_runs_each_receive_their_own_gpu(tmp_path, capsys, monkeypatch):
    """What each run's process received, as its store recorded it (CPU here: the pinned ids
    need not exist; torch then finds no GPU and the run trains on the CPU)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    argv = [*SWEEP, "--seeds", "2", "--runs", str(tmp_path)]
    assert main([*argv, "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "on GPU 3" in out and "on GPU 5" in out
    got = [read_root_attrs(tmp_path / f"digits-cnn_wc_a0.5_b0.3_s{s}" / "record.zarr")
           .get("cuda_visible_devices") for s in (0, 1)]
    assert sorted(got) == ["3", "5"]
    # --status reads the stores: both finished, a third seed still to run
    assert main([*argv[:-2], "--seeds", "3", "--runs", str(tmp_path), "--status"]) == 0
    out = capsys.readouterr().out
    assert "3 runs: 2 finished, 1 pending" in out
    assert "digits-cnn_wc_a0.5_b0.3_s2  pending" in out


def test_status_of_an_interrupted_and_a_failed_run(tmp_path):
    """States from the store: a run whose writer is gone is 'interrupted'; a job that left the
    queue without a store after it ran 'failed'; a queued job of a started run 'requeued'."""
    fx = wcviz.Recorder(_tiny(), tmp_path / "cut", config={})
    fx.record(0)
    fx.store.set_attrs(pid=2**22 + 12345)  # no such process: its writer is gone
    assert executors.run_status(tmp_path / "cut", None, None) == ("interrupted", 1)
    assert executors.run_status(tmp_path / "cut", "7_1", {"7_1": "PENDING"}) == ("requeued", 1)
    assert executors.run_status(tmp_path / "cut", "7_1", {"7_1": "RUNNING"}) == ("running", 1)
    logs = tmp_path / executors.SLURM_DIR / "8"  # it ran (submitit wrote its log)...
    logs.mkdir(parents=True)
    (logs / "8_0_log.out").write_text("")
    assert executors.run_status(tmp_path / "none", "8", {}) == ("failed", None)  # ...and died
    assert executors.run_status(tmp_path / "none", "8", {"8": "PENDING"}) == ("pending", None)
    assert executors.run_status(tmp_path / "none", "8", None) == ("pending", None)


def _tiny():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(3, 2))


def _slurm_args(*argv):
    p = argparse.ArgumentParser()
    add_slurm_args(p, "GPUs")
    return slurm_options(p.parse_args(list(argv)))


def test_slurm_options_become_submitit_parameters():
    valid = {"partition", "time", "cpus_per_task", "gpus_per_node", "mem", "account", "qos",
             "exclusive", "constraint", "additional_parameters"}
    args = _slurm_args("--partition", "gpu", "--gpus", "4", "--cpus", "8", "--mem-gb", "1.5",
                       "--time", "1-02:00", "--account", "lab", "--qos", "high",
                       "--slurm", "constraint=a100", "--slurm", "exclusive=true",
                       "--slurm", "reservation=paper", "--slurm=--mail-user=me@x.org")
    assert slurm_parameters(args, valid) == {
        "time": 1560, "partition": "gpu", "cpus_per_task": 8, "account": "lab", "qos": "high",
        "gpus_per_node": 4, "mem": "1536MB", "constraint": "a100", "exclusive": True,
        "additional_parameters": {"reservation": "paper", "mail-user": "me@x.org"}}


@pytest.mark.parametrize("text, minutes", [("90", 90), ("1:30:00", 90), ("0:00:30", 1),
                                           ("2-00:00", 2880), ("1-1", 1500)])
def test_parse_minutes(text, minutes):
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("argv, match", [
    (["--executor", "slurm", "--time", "soon"], "--time expects minutes"),
    (["--executor", "slurm", "--slurm", "constraint"], "--slurm expects KEY=VALUE"),
])
def test_sweep_bad_slurm_options(tmp_path, capsys, argv, match):
    assert main([*SWEEP, "--runs", str(tmp_path), *argv]) == 2
    assert match in one_error_line(capsys)


def test_slurm_executor_without_sbatch_says_so(tmp_path, capsys, monkeypatch):
    framework("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, srun, squeue here
    assert main([*SWEEP, "--runs", str(tmp_path / "runs"), "--executor", "slurm"]) == 2
    assert "needs Slurm's sbatch on the PATH" in one_error_line(capsys)
    assert not (tmp_path / "runs" / "digits-cnn_wc_a0.5_b0.3_s0").exists()


@pytest.mark.parametrize("argv, match", [
    (["--nnodes", "2"], "--nnodes > 1 needs --rdzv-endpoint"),
    (["--nproc-per-node", "0"], "must be >= 1"),
    (["--executor", "slurm", "--overwrite"], "--overwrite is not available"),
    (["--executor", "slurm", "--rdzv-endpoint", "h:1"], "drop it"),
])
def test_train_bad_launch_options(tmp_path, capsys, argv, match):
    assert main(["train", "--preset", "digits-cnn", "--runs", str(tmp_path), *argv]) == 2
    assert match in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []
