"""Adversarial cases: damaged run files around a resume, and kills during atomic writes."""

import json
import os
import signal
import time

import numpy as np
import pytest

import wcviz
from wcviz.cli import main
from wcviz.record.atomic import write_atomic
from wcviz.record.schema import read_root_attrs
from _cli import TINY, one_error_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-epoch digits run (trained once for the module; tests work on copies)."""
    runs = tmp_path_factory.mktemp("trained")
    assert main(["train", "--preset", "digits-cnn", "--epochs", "2", "--runs", str(runs),
                 *TINY]) == 0
    return runs / "digits-cnn_baseline_s0"


@pytest.fixture
def run(trained, tmp_path):
    import shutil

    target = tmp_path / "runs" / trained.name
    shutil.copytree(trained, target)
    return target


def _resume(run) -> int:
    return main(["train", "--preset", "digits-cnn", "--epochs", "2", "--runs", str(run.parent),
                 "--resume", *TINY])


def _values(run):
    ds = wcviz.open_run(run)
    return ds.epoch.values.tolist(), np.asarray(ds.weight_quantile.values)


def test_truncated_last_checkpoint_resumes_from_the_previous_one(run, capsys):
    before = _values(run)
    last = run / "checkpoints" / "last.pt"
    assert (run / "checkpoints" / "last.prev.pt").is_file()
    last.write_bytes(last.read_bytes()[:1000])
    (run / "summary.json").unlink()  # as if killed before the end
    assert _resume(run) == 0
    err = capsys.readouterr().err
    assert "resuming from last.prev.pt (epoch 1)" in err and "Traceback" not in err
    after = _values(run)
    assert after[0] == before[0] == [0, 1, 2]
    np.testing.assert_array_equal(after[1], before[1])
    assert read_root_attrs(run / "record.zarr")["status"] == "finished"


def test_no_readable_checkpoint_is_one_line_and_keeps_the_status(run, capsys):
    for name in ("last.pt", "last.prev.pt"):
        path = run / "checkpoints" / name
        path.write_bytes(path.read_bytes()[:500])
    before = read_root_attrs(run / "record.zarr")
    (run / "summary.json").unlink()
    assert _resume(run) == 2
    assert "no readable checkpoint" in one_error_line(capsys)
    after = read_root_attrs(run / "record.zarr")
    assert after["status"] == before["status"] == "finished"
    assert after["n_committed"] == before["n_committed"]


@pytest.mark.parametrize("content", ["{garbage", "", "[1, 2]"])
def test_garbage_summary_is_no_traceback(run, capsys, content):
    (run / "summary.json").write_text(content)
    assert _resume(run) == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_lost_config_json_falls_back_to_the_store_copy(run, capsys, damage):
    config = run / "config.json"
    config.unlink() if damage == "missing" else config.write_text("{not json")
    (run / "summary.json").unlink()
    assert _resume(run) == 0
    capsys.readouterr()
    other = ["train", "--preset", "digits-cnn", "--epochs", "3", "--runs", str(run.parent),
             "--resume", *TINY]
    assert main(other) == 2 and "different config" in one_error_line(capsys)


def test_config_and_store_both_lost_is_named(run, capsys):
    (run / "config.json").unlink()
    (run / "record.zarr" / "zarr.json").write_text("{")
    assert _resume(run) == 2
    line = one_error_line(capsys)
    assert "is damaged: config.json is unreadable" in line and "--overwrite" in line


@pytest.mark.slow
def test_kills_during_atomic_writes_leave_a_whole_file(tmp_path):
    """20 real SIGKILLs of a process rewriting a file: it always holds one whole version."""
    target = tmp_path / "summary.json"
    write_atomic(target, json.dumps({"v": -1, "pad": "x" * 200_000}))
    rng = np.random.default_rng(0)
    for trial in range(20):
        pid = os.fork()
        if pid == 0:  # the writer: rewrites as fast as it can until killed
            i = 0
            while True:
                write_atomic(target, json.dumps({"v": i, "pad": "x" * 200_000}))
                i += 1
        time.sleep(float(rng.uniform(0.001, 0.05)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert json.loads(target.read_text())["pad"] == "x" * 200_000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "summary.json"]
    assert all(name.endswith(".tmp") for name in leftovers)  # at most a dead writer's temp


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "config.json"
    write_atomic(target, "old")

    def half(fh):
        fh.write(b"new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.json"]
