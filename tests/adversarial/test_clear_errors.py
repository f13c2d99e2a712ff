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


def test_bf16_compand_message_blames_the_round_trip_not_the_bound():
    import torch

    layer = nn.Linear(16, 16)
    with torch.no_grad():
        layer.weight.mul_(8)  # |w| up to about 2: bf16 steps of 1/64 there
    layer = layer.to(torch.bfloat16)
    with pytest.raises(WcvizError) as info:
        wcviz.compand(layer, "arsinh", a=1.0, b=1.0)  # unbounded: no bound to blame
    message = str(info.value)
    assert "round-trip tolerance" in message and "bfloat16" in message
    assert "bound" not in message and "float32" in message


def test_a_recorder_dropped_without_finish_reads_as_interrupted(tmp_path, capsys):
    import gc

    rec = wcviz.Recorder(nn.Linear(4, 3), tmp_path / "run")
    rec.record(0)
    del rec
    gc.collect()
    assert main(["inspect", str(tmp_path / "run")]) == 0
    status = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("status")][0]
    assert "dropped without finish()" in status and "resume to continue" in status
    again = wcviz.Recorder(nn.Linear(4, 3), tmp_path / "run", resume=True)  # a writer again
    assert wcviz.open_run(tmp_path / "run").attrs.get("released") is None
    again.record(1)
    again.finish()
    assert wcviz.open_run(tmp_path / "run").attrs["status"] == "finished"


def test_a_script_ending_without_finish_exits_and_reads_as_interrupted(tmp_path, capsys):
    """The run is released at exit, before zarr's event loop stops: the process used to wait
    forever in its last garbage collection, writing the stamp through that loop."""
    code = textwrap.dedent(f"""
        import wcviz
        from torch import nn
        rec = wcviz.Recorder(nn.Linear(4, 3), {str(tmp_path / "run")!r})
        rec.record(0)
        print("recorded", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0 and done.stdout == "recorded\n", done.stderr
    assert wcviz.open_run(tmp_path / "run").attrs["released"]
    assert main(["inspect", str(tmp_path / "run")]) == 0
    status = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("status")][0]
    assert "interrupted" in status and "resume to continue" in status


def test_a_slurm_job_cancelled_while_pending_is_cancelled_not_failed(tmp_path):
    """A job that left the queue with no store: cancelled if it never started (no log file
    of submitit's), failed if it ran."""
    from wcviz.training.executors import SLURM_DIR, run_status

    runs = tmp_path / "runs"
    (runs / "never").mkdir(parents=True)
    assert run_status(runs / "never", "41_0", queue={}) == ("cancelled", None)
    assert run_status(runs / "never", "41_0", queue={"41_0": "PENDING"}) == ("pending", None)
    logs = runs / SLURM_DIR / "42_0"
    logs.mkdir(parents=True)
    (logs / "42_0_0_log.err").write_text("Traceback ...\n")
    assert run_status(runs / "never", "42_0", queue={}) == ("failed", None)


_SWEEP = ["sweep", "--preset", "digits-cnn", "--method", "baseline", "--seeds", "2",
          "--epochs", "2", "--device", "cpu", "--set", "batch_size=128"]


@pytest.mark.slow
def test_two_identical_sweeps_at_once_the_second_is_one_line(tmp_path, capsys):
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "wcviz", *_SWEEP, "--runs", str(tmp_path),
                              "--parallel", "2"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("*.log")) and first.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)  # the first sweep has started its runs
    assert main([*_SWEEP, "--runs", str(tmp_path), "--parallel", "2"]) == 2
    line = one_error_line(capsys)
    assert "the same sweep is already running" in line
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    logs = sorted(tmp_path.glob("*.log"))
    assert len(logs) == 2
    for log in logs:  # the first sweep's logs, not truncated by the second
        text = log.read_text()
        assert text.strip() and "error" not in text.lower(), text


# ---------------------------------------------------------------- 18. preconditions, progress

def test_a_sweep_without_its_data_is_one_line_before_any_run(tmp_path, capsys):
    import time

    start = time.perf_counter()
    rc = main(["sweep", "--preset", "cifar10-resnet18", "--method", "wc", "--grid",
               "a=0.5,1.0", "--seeds", "2", "--runs", str(tmp_path / "runs"), "--set",
               f"data_root={tmp_path / 'nodata'}", "--device", "cpu", "--parallel", "2"])
    line = one_error_line(capsys)
    assert rc == 2 and "cifar10 not found" in line and "no run was started" in line
    assert time.perf_counter() - start < 30
    assert not [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]


class _Terminal:
    """stderr as a terminal (progress is shown on terminals only)."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


@pytest.mark.parametrize("command", ["export", "figures"])
def test_export_and_figures_on_a_root_report_each_run_read(tmp_path, monkeypatch, command):
    for seed in range(3):
        rec = wcviz.Recorder(nn.Linear(4, 3), tmp_path / "runs" / f"r{seed}")
        rec.record(0, {"val_acc": 0.1})
        rec.finish()
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    out = ["--out", str(tmp_path / ("x.csv" if command == "export" else "figs"))]
    main([command, str(tmp_path / "runs"), *out])
    shown = [part.split(":")[0] for part in terminal.text.split("\r\033[K")
             if part.startswith("reading")]
    assert shown == ["reading run 1/3", "reading run 2/3", "reading run 3/3"]
    assert terminal.text.endswith("\r\033[K") or "\n" in terminal.text  # cleared
