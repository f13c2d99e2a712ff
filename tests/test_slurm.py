"""`wcviz sweep/train --executor slurm` on a real one-node Slurm cluster (tests/_slurm_cluster).

Skipped with the reason when Slurm's packages are missing here; with WCVIZ_REQUIRE_SLURM=1 (as
.ci/run sets, after installing them) a missing cluster fails instead.
"""

import subprocess
import time

import numpy as np
import pytest

import wcviz
import _slurm_cluster
from _engines import unavailable
from wcviz.training.executors import queue_states, read_job_record
from wcviz.cli import main
from wcviz.record.schema import read_root_attrs
from wcviz.record.index import INDEX_NAME  # the runs index beside the runs

pytestmark = pytest.mark.slow

SWEEP = ["sweep", "--preset", "digits-cnn", "--method", "wc", "--device", "cpu"]
#: Store variables compared between Slurm and local runs (timings excepted).
SKIP = {"epoch_seconds"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = _slurm_cluster.missing()
    if why is None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            why = "submitit is not installed (pip install 'wcviz[slurm]')"
    if why is not None:
        unavailable(why, "WCVIZ_REQUIRE_SLURM")
    c = _slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


def _wait_for_jobs(job_ids, cluster, timeout=600):
    """Until none of ``job_ids`` is in Slurm's queue any more."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        queue = queue_states()
        assert queue is not None, "squeue failed\n" + cluster.logs()
        if not set(job_ids) & set(queue):
            return
        time.sleep(0.5)
    raise AssertionError(f"jobs {job_ids} still queued after {timeout} s\n" + cluster.logs())


def _assert_same_records(a_dir, b_dir):
    a, b = wcviz.open_run(a_dir), wcviz.open_run(b_dir)
    assert a.epoch.values.tolist() == b.epoch.values.tolist()
    for name in a.data_vars:
        if name not in SKIP:  # same code, one thread each: bit-identical
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def _log(runs, job_id):
    return (runs / ".slurm" / job_id / f"{job_id}_0_log.out").read_text()


def test_sweep_on_slurm_equals_the_local_sweep(cluster, tmp_path, capsys, one_torch_thread):
    grid = ["--grid", "a=0.5,0.6", "--seeds", "1", "--epochs", "1"]
    slurm_runs = tmp_path / "slurm"
    assert main([*SWEEP, *grid, "--runs", str(slurm_runs), "--executor", "slurm",
                 "--cpus", "1", "--time", "10"]) == 0
    out = capsys.readouterr().out
    names = ["digits-cnn_wc_a0.5_b0.3_s0", "digits-cnn_wc_a0.6_b0.3_s0"]
    jobs = [read_job_record(slurm_runs, n)["job_id"] for n in names]
    array = jobs[0].split("_")[0]
    assert jobs == [f"{array}_0", f"{array}_1"]  # one job array, one task per run
    for name, job in zip(names, jobs):
        assert f"[slurm] {name}: job {job}" in out
    _wait_for_jobs(jobs, cluster)

    assert main([*SWEEP, *grid, "--runs", str(slurm_runs), "--status"]) == 0
    status = capsys.readouterr().out
    assert "2 runs: 2 finished" in status and all(j in status for j in jobs), status
    assert main([*SWEEP, *grid, "--runs", str(tmp_path / "local")]) == 0
    for name, job in zip(names, jobs):
        attrs = read_root_attrs(slurm_runs / name / "record.zarr")
        assert attrs["status"] == "finished", _log(slurm_runs, job)
        assert attrs["slurm_job_id"] == job
        _assert_same_records(slurm_runs / name, tmp_path / "local" / name)
    # A rerun finds nothing to do and submits nothing.
    assert main([*SWEEP, *grid, "--runs", str(slurm_runs), "--executor", "slurm"]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def _wait_for_records(store, n, job, runs, cluster, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if read_root_attrs(store)["n_committed"] >= n:
                return
        except wcviz.WcvizError:
            pass  # not created yet
        assert job in (queue_states() or {}), "the job ended early:\n" + _log(runs, job)
        time.sleep(0.1)
    raise AssertionError("no records in time\n" + cluster.logs())


def test_preempted_job_is_requeued_and_resumes_with_every_record_once(
        cluster, tmp_path, capsys, one_torch_thread):
    epochs = 20  # long enough for the signal to land mid-run (~0.3 s an epoch here)
    argv = [*SWEEP, "--seeds", "1", "--epochs", str(epochs), "--runs", str(tmp_path / "slurm")]
    assert main([*argv, "--executor", "slurm", "--cpus", "1", "--time", "10"]) == 0
    name = "digits-cnn_wc_a0.5_b0.3_s0"
    job = read_job_record(tmp_path / "slurm", name)["job_id"]
    store = tmp_path / "slurm" / name / "record.zarr"
    _wait_for_records(store, 3, job, tmp_path / "slurm", cluster)
    # What Slurm sends before preempting or at the time limit: submitit's hook requeues.
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    end = time.monotonic() + 120
    while (queue_states() or {}).get(job) != "PENDING":
        assert time.monotonic() < end, "not requeued:\n" + _log(tmp_path / "slurm", job)
        time.sleep(0.2)
    assert main([*argv, "--status"]) == 0
    assert "requeued" in capsys.readouterr().out
    # Rerunning the sweep now leaves the run to its queued job: one writer per run.
    assert main([*argv, "--executor", "slurm", "--cpus", "1", "--time", "10"]) == 0
    out = capsys.readouterr().out
    assert f"already queued as job {job}" in out and "submitted 1 job" not in out, out
    assert read_root_attrs(store)["n_committed"] < epochs + 1  # it was stopped mid-run
    # Slurm holds a requeued job for about two minutes (BeginTime); release it now.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    _wait_for_jobs([job], cluster)

    log = _log(tmp_path / "slurm", job)
    assert "Requeued job" in log and f"[slurm] job {job}: resuming" in log, log
    assert "Restarts=1" in subprocess.run(["scontrol", "show", "job", job],
                                          capture_output=True, text=True).stdout
    ds = wcviz.open_run(tmp_path / "slurm" / name)
    assert ds.attrs["status"] == "finished"
    assert ds.epoch.values.tolist() == list(range(epochs + 1)), log  # every record, once
    assert main([*argv[:-1], str(tmp_path / "local")]) == 0
    _assert_same_records(tmp_path / "slurm" / name, tmp_path / "local" / name)


def test_ddp_train_as_one_slurm_job_of_two_tasks(cluster, tmp_path, capsys, one_torch_thread):
    """`wcviz train --nnodes 1 --nproc-per-node 2 --executor slurm`: submitit sets up the
    process group per Slurm task; rank 0 alone writes."""
    common = ["train", "--preset", "digits-cnn", "--method", "wc", "--epochs", "1",
              "--device", "cpu", "--set", "batch_size=64"]
    assert main([*common, "--runs", str(tmp_path / "ddp"), "--executor", "slurm",
                 "--nnodes", "1", "--nproc-per-node", "2", "--cpus", "1"]) == 0
    name = "digits-cnn_wc_a0.5_b0.3_s0"
    job = read_job_record(tmp_path / "ddp", name)["job_id"]
    assert f"submitted Slurm job {job}" in capsys.readouterr().out
    _wait_for_jobs([job], cluster)
    log = _log(tmp_path / "ddp", job)
    ds = wcviz.open_run(tmp_path / "ddp" / name)
    assert ds.attrs["world_size"] == 2 and ds.attrs["status"] == "finished", log
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()
                  if p.name != INDEX_NAME) == [".slurm", name]
    assert main([*common, "--no-progress", "--runs", str(tmp_path / "single")]) == 0
    single = wcviz.open_run(tmp_path / "single" / name)
    np.testing.assert_allclose(ds.weight_quantile.values, single.weight_quantile.values,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ds.val_acc.values, single.val_acc.values, atol=1 / 144 + 1e-9)


def test_sbatch_refusal_is_one_line_and_submits_nothing(cluster, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main([*SWEEP, "--seeds", "1", "--epochs", "1", "--runs", str(runs),
                 "--executor", "slurm", "--partition", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sbatch refused the job" in err[0], err
    assert "invalid partition" in err[0].lower(), err
    assert not (runs / ".slurm" / "runs").exists() and queue_states() == {}
