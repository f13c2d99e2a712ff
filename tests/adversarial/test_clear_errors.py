"""Adversarial cases: mistakes and accidents answered by one line, no traceback (issue 19).

Each case is real: a real store, a real (fake-full) disk, real subprocesses of the CLI.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from torch import nn

import wcviz
from wcviz.cli import main
from wcviz.errors import WcvizError
from wcviz.record.metrics import metric
from _cli import TINY, one_error_line
from _full_disk import full_disk

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- 16. a full disk

@pytest.mark.parametrize("allow", [0, 2, 5, 9, 14])
def test_record_on_a_full_disk_is_one_line_keeps_records_and_goes_on(tmp_path, allow):
    """The disk fills ``allow`` file writes into a record (some of its chunks written, a grow
    half done with epoch_chunk=2); once space is freed, recording goes on."""
    rec = wcviz.Recorder(nn.Linear(4, 3), tmp_path / "run", epoch_chunk=2)
    with full_disk(tmp_path) as disk:
        for epoch in range(3):
            rec.record(epoch, {"loss": float(epoch), "extra": 1.0})
        disk.fill(allow)
        with pytest.raises(WcvizError) as info:
            for epoch in (3, 4):  # one of them meets the full disk
                rec.record(epoch, {"loss": float(epoch), "new": 2.0})
        message = str(info.value)
        assert "\n" not in message and "no space left on the device" in message
        assert "are kept" in message and disk.refused >= 1
        kept = wcviz.open_run(tmp_path / "run")  # committed records intact, readable
        assert kept.epoch.values.tolist() in ([0, 1, 2], [0, 1, 2, 3])
        disk.free()
        start = int(kept.epoch.values[-1]) + 1
        for epoch in range(start, 6):
            rec.record(epoch, {"loss": float(epoch), "new": 2.0})
        rec.finish()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 1, 2, 3, 4, 5]
    assert ds.attrs["status"] == "finished"
    assert metric(ds, "loss").values.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.isfinite(ds.weight_quantile.values).all()


_TRAIN_ON_FULL_DISK = """
    import sys
    sys.path.insert(0, "tests")
    from _full_disk import full_disk
    from wcviz.cli import main
    from wcviz.training import loop

    runs = sys.argv[1]
    real = loop._record
    with full_disk(runs) as disk:
        def record_then_fill(rec, epoch, metrics, step=None):
            real(rec, epoch, metrics, step)
            if epoch == 1.0:
                disk.fill()  # the disk is full from the end of epoch 1
        loop._record = record_then_fill
        sys.exit(main(["train", "--preset", "digits-cnn", "--epochs", "3", "--runs", runs,
                       "--device", "cpu", "--no-progress", "--set", "batch_size=128"]))
"""


@pytest.mark.slow
def test_train_on_a_full_disk_is_one_line_then_resumes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_TRAIN_ON_FULL_DISK),
                           str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert "no space left on the device" in lines[0] and "--resume" in lines[0]
    assert "2 record(s) up to epoch 1" in lines[0]
    run = tmp_path / "digits-cnn_baseline_s0"
    assert wcviz.open_run(run).epoch.values.tolist() == [0, 1]
    assert main(["train", "--preset", "digits-cnn", "--epochs", "3", "--runs", str(tmp_path),
                 "--resume", *TINY]) == 0
    ds = wcviz.open_run(run)
    assert ds.epoch.values.tolist() == [0, 1, 2, 3] and ds.attrs["status"] == "finished"


# ---------------------------------------------------------------- 17. one line, no traceback

@pytest.fixture
def rec(tmp_path):
    recorder = wcviz.Recorder(nn.Linear(4, 3), tmp_path / "run")
    recorder.record(0)
    yield recorder
    recorder.finish()


@pytest.mark.parametrize("call,match", [
    (lambda r: r.record(None), r"epoch must be a finite number .* got None"),
    (lambda r: r.record(1, step=float("nan")), r"step must be a whole number >= 0 .* got nan"),
    (lambda r: r.record(1, step=2.5), r"step must be a whole number"),
    (lambda r: r.record(1, step=-4), r"step must be a whole number"),
    (lambda r: r.record(1, {"m": "y" * 1_000_000}),
     r"metric 'm' must be a number, got 'yyy.*\.\.\. \(1,000,002 characters\)$"),
    (lambda r: r.record(1, {"z" * 2000: 1.0}), r"a metric name must be a text of 1 to 1000"),
])
def test_bad_record_arguments_are_one_short_line(rec, call, match):
    with pytest.raises(WcvizError, match=match) as info:
        call(rec)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    assert rec.n_records == 1  # nothing written
    rec.record(1, step=3)  # and the recorder goes on
    assert wcviz.open_run(rec.store.run_dir).step.values.tolist() == [-1, 3]


def test_a_300_character_metric_name_is_kept_under_a_short_variable(rec):
    name = "val/" + "x" * 296
    rec.record(1, {name: 0.5})
    ds = wcviz.open_run(rec.store.run_dir)
    assert metric(ds, name).values.tolist()[1] == 0.5
    assert max(len(v) for v in ds.data_vars) <= 120
