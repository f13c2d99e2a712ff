"""The training loop end to end on the built-in digits: store, checkpoints, resume, failures."""

import json

import numpy as np
import pytest
import torch

import wcviz
from wcviz.training import checkpoint as ckpt
from wcviz.training import loop
from wcviz.training.datasets import load_data
from wcviz.training.distributed import DistInfo
from wcviz.training.loader import TensorLoader, make_dataloader
from wcviz.training.presets import resolve
from wcviz.errors import WcvizError
from wcviz.record.schema import read_root_attrs

# Batch 128 on the 1,294 training digits: 11 steps an epoch, about a second on one core.
FAST = dict(batch_size=128, device="cpu", progress=False)
WEIGHT_VARS = ("weight_quantile", "weight_absmax", "weight_std", "near_zero_fraction",
               "weight_histogram", "v_quantile", "a", "b",
               "update_ratio")  # a resumed run measures it from the last record's weights


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_two_epoch_run_records_a_store_that_opens(tmp_path):
    cfg = resolve("digits-cnn", "wc", epochs=2, record_steps=4, **FAST)
    result = loop.run(cfg, tmp_path / "run")
    ds = wcviz.open_run(tmp_path / "run")
    # epoch 0 before any step, steps 4 and 8 of the first epoch, then one record per epoch
    assert ds.epoch.values.tolist() == pytest.approx([0, 4 / 11, 8 / 11, 1, 2])
    assert ds.step.values.tolist() == [0, 4, 8, 11, 22]
    assert ds.attrs["status"] == "finished"
    assert ds.attrs["method"] == "arctan" and ds.attrs["a"] == 0.5
    assert ds.attrs["model"] == "digits_cnn" and ds.attrs["dataset"] == "digits"
    assert np.isfinite(ds.val_acc.sel(epoch=[0.0, 1.0, 2.0]).values).all()
    assert ds.val_acc.sel(epoch=2.0) > 0.5  # it learns the digits
    # WC bounds every weight by a·π/2 at every record
    assert float(ds.weight_absmax.max()) < 0.5 * np.pi / 2
    # best-on-validation bookkeeping: reported in the result, the summary and the store
    best = int(np.nanargmax(ds.val_acc.sel(epoch=[1.0, 2.0]).values)) + 1
    assert result.best_epoch == best
    assert result.best_val_test_acc == pytest.approx(float(ds.test_acc.sel(epoch=float(best))))
    assert result.test_acc_last == pytest.approx(float(ds.test_acc.sel(epoch=2.0)))
    assert float(ds.best_val_test_acc.sel(epoch=2.0)) == pytest.approx(result.best_val_test_acc)
    assert ds.attrs["test_acc_last"] == pytest.approx(result.test_acc_last)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_epoch"] == best and summary["status"] == "finished"
    # checkpoints: state_dicts only, loadable with weights_only=True
    last = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert last["epoch"] == 2 and set(last) >= {"model", "optimizer", "scheduler", "rng"}
    best_ck = ckpt.load(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best_ck["epoch"] == best


def _weights(run_dir):
    ds = wcviz.open_run(run_dir)
    return {v: ds[v].values for v in WEIGHT_VARS}, ds


def test_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    cfg = resolve("digits-cnn", "wc-learnable", epochs=3, **FAST)
    loop.run(cfg, tmp_path / "whole")

    real = loop.train_one_epoch

    def interrupted(parts, epoch, **kw):
        if epoch == 3:
            raise KeyboardInterrupt  # as if the job were stopped during epoch 3
        return real(parts, epoch, **kw)

    monkeypatch.setattr(loop, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.run(cfg, tmp_path / "split")
    assert read_root_attrs(tmp_path / "split" / "record.zarr")["status"] == "failed"
    monkeypatch.setattr(loop, "train_one_epoch", real)
    loop.run(cfg, tmp_path / "split", resume=True)

    whole, ds_whole = _weights(tmp_path / "whole")
    split, ds_split = _weights(tmp_path / "split")
    assert ds_split.epoch.values.tolist() == [0, 1, 2, 3]
    assert ds_split.attrs["status"] == "finished"
    for name in WEIGHT_VARS:  # bit-identical statistics, learnable a and b included
        np.testing.assert_array_equal(split[name], whole[name], err_msg=name)
    for name in ("train_loss", "val_acc", "test_acc"):
        np.testing.assert_array_equal(ds_split[name].values, ds_whole[name].values)
    a = ckpt.load(tmp_path / "whole" / "checkpoints" / "last.pt")["model"]
    b = ckpt.load(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_writes_a_record_lost_between_checkpoint_and_store(tmp_path, monkeypatch):
    """A kill after the epoch's checkpoint but before its record: resume records it."""
    cfg = resolve("digits-cnn", "baseline", epochs=2, **FAST)
    real = loop._record

    def lose_epoch_1(rec, epoch, metrics, step=None):
        if epoch == 1.0:
            raise KeyboardInterrupt
        return real(rec, epoch, metrics, step)

    monkeypatch.setattr(loop, "_record", lose_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        loop.run(cfg, tmp_path / "run")
    monkeypatch.setattr(loop, "_record", real)
    loop.run(cfg, tmp_path / "run", resume=True)
    loop.run(cfg, tmp_path / "ref")
    got, ref = _weights(tmp_path / "run")[1], _weights(tmp_path / "ref")[1]
    assert got.epoch.values.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(got.weight_quantile.values, ref.weight_quantile.values)


def test_nonfinite_loss_fails_the_run_and_keeps_the_store(tmp_path):
    cfg = resolve("digits-cnn", "baseline", epochs=2, lr=1e12, **FAST)
    with pytest.raises(loop.NonFiniteLoss, match="NaN/inf in epoch 1"):
        loop.run(cfg, tmp_path / "run")
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "failed"
    assert ds.epoch.values.tolist() == [0]  # the init record, intact
    assert np.isfinite(ds.weight_quantile.values).all()


def test_existing_run_is_refused_and_untouched(tmp_path):
    cfg = resolve("digits-cnn", "baseline", epochs=1, **FAST)
    loop.run(cfg, tmp_path / "run")
    before = (tmp_path / "run" / "record.zarr" / "zarr.json").read_bytes()
    with pytest.raises(WcvizError):
        loop.run(cfg, tmp_path / "run")
    with pytest.raises(WcvizError, match="config"):
        loop.run(resolve("digits-cnn", "baseline", epochs=2, **FAST), tmp_path / "run",
                 resume=True)
    assert (tmp_path / "run" / "record.zarr" / "zarr.json").read_bytes() == before


def test_tensor_loader_matches_the_dataloader_order_and_recipe():
    data = load_data("synthetic-cifar")
    data.arrays["train"].images = data.arrays["train"].images[:96]
    data.arrays["train"].labels = data.arrays["train"].labels[:96]
    fast = TensorLoader(data.arrays["train"], data.augment, 32, train=True,
                        device=torch.device("cpu"), seed=3)
    plain = make_dataloader(data.train.__class__(data.arrays["train"], data.augment, True), 32,
                            train=True, seed=3, info=DistInfo(), workers=0, pin_memory=False)
    fast.set_epoch(5)
    plain.set_epoch(5)
    fast_labels = torch.cat([y for _, y in fast])
    plain_batches = list(plain)
    assert torch.equal(fast_labels, torch.cat([y for _, y in plain_batches]))
    # same normalisation: eval batches are identical; train batches have the same statistics
    ev = TensorLoader(data.arrays["val"], data.augment, 64, train=False, device=torch.device("cpu"))
    x_fast = next(iter(ev))[0]
    x_plain = torch.stack([data.val[i][0] for i in range(len(x_fast))])
    torch.testing.assert_close(x_fast, x_plain)
    xb = torch.cat([x for x, _ in fast])
    assert xb.shape == (96, 3, 32, 32)
    # zero padding maps to the normalised value of black, as torchvision's padding does
    black = ((0 - torch.tensor(data.augment.mean)) / torch.tensor(data.augment.std))
    assert torch.isclose(xb[:, :, 0, :], black.view(1, 3, 1)).any()


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    """A real `wcviz train` process killed (SIGKILL) mid-run, then resumed."""
    import os
    import subprocess
    import sys
    import time

    root = tmp_path / "killed"
    run_dir = root / "digits-cnn_wc_a0.5_b0.3_s0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wcviz", "train", "--preset", "digits-cnn", "--method", "wc",
         "--epochs", "4", "--runs", str(root), "--device", "cpu", "--no-progress",
         "--set", "batch_size=128"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if read_root_attrs(run_dir / "record.zarr").get("n_committed", 0) >= 2:
                break  # epochs 0 and 1 are in: kill it somewhere in epoch 2
        except Exception:  # the store is not there yet
            pass
        time.sleep(0.02)
    proc.kill()
    assert proc.wait() == -9, "the run ended before it could be killed"
    cfg = resolve("digits-cnn", "wc", epochs=4, **FAST)
    loop.run(cfg, run_dir, resume=True)
    loop.run(cfg, tmp_path / "whole")
    got, ds = _weights(run_dir)
    want, _ = _weights(tmp_path / "whole")
    assert ds.epoch.values.tolist() == [0, 1, 2, 3, 4] and ds.attrs["status"] == "finished"
    for name in WEIGHT_VARS:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
