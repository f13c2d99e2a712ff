"""``wcviz import tensorboard LOGDIR --runs ROOT``: event files written by
``torch.utils.tensorboard.SummaryWriter`` become run stores; their quantiles are checked against
the weights that were logged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wcviz
from _cli import one_error_line
from _engines import framework
from wcviz.cli import main
from wcviz.record.metrics import metric
from wcviz.record.stats import QUANTILES

STEPS = (0, 5, 10, 15)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Two TensorBoard runs (one nested); returns the log dir and the weights logged per
    (run, tag, step)."""
    framework("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path_factory.mktemp("tb")
    weights = {}
    gen = torch.Generator().manual_seed(0)
    for run, tags in (("exp_a", ("conv1.weight", "fc.weight")), ("group/exp_b", ("fc.weight",))):
        with SummaryWriter(str(logdir / run)) as writer:
            for i, step in enumerate(STEPS):
                for k, tag in enumerate(tags):
                    w = torch.randn(2000, generator=gen) * (0.05 * (k + 1)) * (1 + i) + 0.01 * i
                    weights[run, tag, step] = w.numpy().astype(float)
                    writer.add_histogram(tag, w, step)
                writer.add_scalar("loss/train", 1.0 / (i + 1), step)
                writer.add_scalar("epoch", float(i), step)
    return logdir, weights


@pytest.fixture(scope="module")
def imported(logged, tmp_path_factory):
    logdir, weights = logged
    root = tmp_path_factory.mktemp("runs")
    assert main(["import", "tensorboard", str(logdir), "--runs", str(root)]) == 0
    return root, weights


def test_every_run_folder_becomes_a_store(imported):
    root, _ = imported
    a, b = wcviz.open_run(root / "exp_a"), wcviz.open_run(root / "group" / "exp_b")
    assert a.attrs["approximate"] == "tensorboard buckets"
    assert [str(x) for x in a["layer"].values] == ["conv1.weight", "fc.weight"]
    assert [str(x) for x in b["layer"].values] == ["fc.weight"]
    assert a["epoch"].values.tolist() == [0.0, 1.0, 2.0, 3.0]  # from the "epoch" scalar
    assert a["step"].values.tolist() == list(STEPS)
    np.testing.assert_allclose(metric(a, "loss/train").values, [1, 1 / 2, 1 / 3, 1 / 4], rtol=1e-6)
    assert a["layer_numel"].values.tolist() == [2000, 2000]


def test_quantiles_are_interpolated_within_the_buckets(imported):
    root, weights = imported
    ds = wcviz.open_run(root / "exp_a").load()
    for j, tag in enumerate(("conv1.weight", "fc.weight")):
        for i, step in enumerate(STEPS):
            w = weights["exp_a", tag, step]
            got = ds["weight_quantile"].values[i, j]
            true = np.quantile(w, QUANTILES)
            assert got[0] == pytest.approx(w.min(), rel=1e-6)
            assert got[-1] == pytest.approx(w.max(), rel=1e-6)
            # TensorBoard's buckets are ~10 % wide (1.1× apart): an interpolated quantile sits
            # within its bucket of the true one
            assert np.all(np.abs(got - true) <= 0.1 * np.abs(true) + 0.02 * w.std()), (got, true)
            # mean and std are exact (TensorBoard's sum and sum of squares)
            assert ds["weight_mean"].values[i, j] == pytest.approx(w.mean(), abs=1e-6)
            assert ds["weight_std"].values[i, j] == pytest.approx(w.std(), rel=1e-4)
            # near zero: |w| < 0.5·std(w) of the record
            k = [str(t) for t in ds["threshold"].values].index("std=0.5")
            frac = np.mean(np.abs(w) < 0.5 * w.std())
            assert ds["near_zero_fraction"].values[i, j, k] == pytest.approx(frac, abs=0.02)
            hist = ds["weight_histogram"].values[i, j]
            assert hist.sum() == pytest.approx(len(w))
            edges = ds["bin_edges"].values[j]
            true_hist, _ = np.histogram(w, bins=edges)
            assert np.abs(hist - true_hist).sum() <= 0.25 * len(w)  # mass moved ≤ a bucket's width


def test_imported_runs_feed_the_dashboard_frames(imported):
    from wcviz.report import frames

    root, _ = imported
    wide = frames.all_quantiles(wcviz.open_run(root / "exp_a"), "exp_a")
    assert len(wide) == 2 * len(STEPS) and wide["p50"].notna().all()
    assert wide["bound"].isna().all()  # an imported run claims no bound


def test_a_second_import_keeps_the_stores(logged, imported, capsys):
    logdir, _ = logged
    root, _ = imported
    stamp = (root / "exp_a" / "record.zarr" / "zarr.json").stat().st_mtime_ns
    assert main(["import", "tensorboard", str(logdir), "--runs", str(root)]) == 0
    assert capsys.readouterr().err.count("a run store is already there") == 2
    assert (root / "exp_a" / "record.zarr" / "zarr.json").stat().st_mtime_ns == stamp


def test_import_bad_input(tmp_path, capsys):
    framework("tensorboard")
    assert main(["import", "tensorboard", str(tmp_path / "missing"), "--runs", str(tmp_path)]) == 2
    assert "is not a folder" in one_error_line(capsys)
    assert main(["import", "tensorboard", str(tmp_path), "--runs", str(tmp_path / "r")]) == 2
    assert "no TensorBoard event files" in one_error_line(capsys)
