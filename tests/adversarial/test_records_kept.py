"""Adversarial cases: ordinary use that must neither refuse a run nor lose a record (issue 19).

Kills are real (``SIGKILL`` of a real process); stores and checkpoints are real files.
"""

import json
import os
import signal
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
from wcviz.record.schema import read_root_attrs
from _cli import TINY

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (one torch thread), as a user's script would."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=timeout)


# ---------------------------------------------------------------- 1. all-NaN blocks of a metric

def test_a_metric_missing_from_a_whole_block_is_kept_not_refused(tmp_path):
    """A metric given every 100th record: its second block (records 128-130) is all NaN."""
    rec = wcviz.Recorder(nn.Linear(4, 3), tmp_path / "run")
    for epoch in range(131):
        rec.record(epoch, {"rare": 1.0 if epoch % 100 == 5 else None, "loss": float(epoch)})
    rec.finish()
    ds = wcviz.open_run(tmp_path / "run")  # was: "array 'rare': records 128-130 are missing"
    rare = metric(ds, "rare").values
    assert np.flatnonzero(np.isfinite(rare)).tolist() == [5, 105]
    # written, NaN: the metric table's chunk of records 128-255, its first column block
    assert (tmp_path / "run" / "record.zarr" / "metric_values" / "c" / "1" / "0").is_file()


def _schema_1_store(run_dir):
    """A store in schema 1's layout (a variable per metric), as older wcviz wrote it."""
    from wcviz.record.store import RunStore

    return RunStore.create(run_dir, layers=["fc"], layer_kinds=["Linear"], layer_numel=[12],
                           bin_edges=[np.linspace(-1, 1, 82)], thresholds=["abs=0.01"],
                           schema_version=1)


def test_a_store_of_the_older_writer_without_its_nan_chunk_still_reads(tmp_path):
    """Stores written before the fix lack all-NaN chunks of metrics made on first use: they
    read (as NaN); the same absence in a store of this writer is damage."""
    rec = _schema_1_store(tmp_path / "run")
    for epoch in range(130):
        rec.append(epoch, None, {}, {"rare": 1.0 if epoch == 5 else None})
    rec.finish()
    store = tmp_path / "run" / "record.zarr"
    assert read_root_attrs(store)["schema_version"] == 1
    (store / "rare" / "c" / "1").unlink()
    with pytest.raises(WcvizError, match=r"array 'rare': records 128-129 are missing"):
        wcviz.open_run(tmp_path / "run")
    doc = json.loads((store / "zarr.json").read_text())
    del doc["attributes"]["complete_chunks"]  # as the older writer left it
    (store / "zarr.json").write_text(json.dumps(doc))
    rare = metric(wcviz.open_run(tmp_path / "run"), "rare").values
    assert rare[5] == 1.0 and np.isnan(np.delete(rare, 5)).all()
    (store / "val_acc" / "c" / "0").unlink()  # schema arrays were always written whole
    with pytest.raises(WcvizError, match=r"array 'val_acc': records 0-127 are missing"):
        wcviz.open_run(tmp_path / "run")


@pytest.mark.slow
def test_train_without_validation_then_inspect(tmp_path, capsys):
    """``--set val_fraction=0``: best_val_test_acc is NaN in every record."""
    assert main(["train", "--preset", "digits-cnn", "--epochs", "1", "--set", "val_fraction=0",
                 "--runs", str(tmp_path), *TINY]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "digits-cnn_baseline_s0")]) == 0
    assert "damaged" not in capsys.readouterr().err


# ---------------------------------------------------------------- 4. best.pt after a kill

_KILL_AT_SAVE = """
    import os, signal, sys
    from wcviz.training import checkpoint as ckpt, loop
    from wcviz.training.presets import resolve

    real, calls = ckpt.save, [0]

    def save(*args, **kwargs):  # SIGKILL right after checkpoint write number N
        real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

    ckpt.save = save
    loop.run(resolve("digits-cnn", "baseline", epochs=2, batch_size=128, device="cpu",
                     progress=False), sys.argv[1])
"""


def _kill_at_save(run_dir: Path, n: int) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(_KILL_AT_SAVE), str(run_dir),
                           str(n)], env=env, cwd=ROOT, timeout=300,
                          capture_output=True).returncode


@pytest.mark.slow
def test_best_checkpoint_is_the_best_epoch_after_a_kill_between_the_two_writes(tmp_path):
    """Writes: last(0), best(1), last(1), then epoch 2's two; killed after the first of these."""
    from wcviz.training import checkpoint as ckpt, loop
    from wcviz.training.presets import resolve

    run = tmp_path / "run"
    assert _kill_at_save(run, 4) == -signal.SIGKILL
    loop.run(resolve("digits-cnn", "baseline", epochs=2, batch_size=128, device="cpu",
                     progress=False), run, resume=True)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_epoch"] == 2  # epoch 2 is the best here: the case of the issue
    assert ckpt.load(run / "checkpoints" / "best.pt")["epoch"] == 2  # was 1


@pytest.mark.slow
def test_resume_mends_a_stale_best_checkpoint_of_an_earlier_version(tmp_path):
    """A run killed so by an earlier version: ``last.pt`` at the best epoch 2, ``best.pt`` 1."""
    from wcviz.training import checkpoint as ckpt, loop
    from wcviz.training.presets import resolve

    run = tmp_path / "run"
    assert _kill_at_save(run, 5) == -signal.SIGKILL  # both of epoch 2 written, no record
    folder = run / "checkpoints"
    last = ckpt.load(folder / "last.pt")
    epoch1 = ckpt.load(folder / "last.prev.pt")
    ckpt.save({"epoch": 1, "model": epoch1["model"], "val_acc": epoch1["history"][1]["val_acc"]},
              folder / "best.pt")
    loop.run(resolve("digits-cnn", "baseline", epochs=2, batch_size=128, device="cpu",
                     progress=False), run, resume=True)
    best = ckpt.load(folder / "best.pt")
    assert json.loads((run / "summary.json").read_text())["best_epoch"] == 2
    assert best["epoch"] == 2
    assert all((best["model"][k] == last["model"][k]).all() for k in last["model"])


# ---------------------------------------------------------------- 2. a killed --overwrite

def _train_cmd(root: Path, epochs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wcviz", "train", "--preset", "digits-cnn", "--epochs",
            str(epochs), "--runs", str(root), *TINY, *extra]


@pytest.mark.slow
def test_a_killed_overwrite_leaves_nothing_of_the_old_run_to_resume(tmp_path):
    import time

    from wcviz.record.config import run_state
    from wcviz.record.runfolder import DONE
    from wcviz.training.presets import resolve

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = tmp_path / "digits-cnn_baseline_s0"
    subprocess.run(_train_cmd(tmp_path, 1), env=env, check=True, capture_output=True)
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    proc = subprocess.Popen(_train_cmd(tmp_path, 3, "--overwrite"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            attrs = read_root_attrs(run / "record.zarr")
            if attrs["status"] == "running":
                break  # the new store is in place: kill it before or after its epoch 0
        except Exception:  # the store is being swapped
            pass
        time.sleep(0.01)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    cfg = resolve("digits-cnn", "baseline", epochs=3, batch_size=128, device="cpu",
                  progress=False)
    assert not (run / "summary.json").exists()  # was the old run's, "finished"
    assert run_state(run, cfg.recipe()) != DONE  # a sweep would have skipped it
    assert main(["train", "--preset", "digits-cnn", "--epochs", "3", "--runs", str(tmp_path),
                 "--resume", *TINY]) == 0
    ds = wcviz.open_run(run)
    assert ds.epoch.values.tolist() == [0, 1, 2, 3]
    assert ds.attrs["status"] == "finished"


# ---------------------------------------------------------------- 3. HF: kill after a checkpoint

_HF_TRAIN = """
    import os, signal, sys
    import torch, transformers
    from wcviz.integrations.huggingface import WcvizCallback

    out, resume = sys.argv[1], sys.argv[2] == "resume"

    class KillAfterSave(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # the checkpoint is on disk
            if not resume and round(state.epoch) == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=40, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": x, "labels": x} for x in torch.randint(0, 40, (8, 12), generator=g)]
    args = transformers.TrainingArguments(
        f"{out}/hf", num_train_epochs=4, per_device_train_batch_size=4, logging_steps=1,
        save_strategy="epoch", report_to=[], use_cpu=True, disable_tqdm=True)
    callback = WcvizCallback(f"{out}/run", resume=resume)
    trainer = transformers.Trainer(model, args, train_dataset=data,
                                   callbacks=[callback, KillAfterSave()])
    with callback:
        trainer.train(resume_from_checkpoint=resume or None)
"""


@pytest.mark.slow
def test_hf_run_killed_after_its_checkpoint_resumes_with_every_epoch(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    script = textwrap.dedent(_HF_TRAIN)

    def train(phase):
        return subprocess.run([sys.executable, "-c", script, str(tmp_path), phase], env=env,
                              cwd=ROOT, timeout=300, capture_output=True, text=True)

    killed = train("first")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = train("resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "finished"
    assert ds.epoch.values.tolist() == [0, 1, 2, 3, 4]  # was [0, 1, 3, 4]
