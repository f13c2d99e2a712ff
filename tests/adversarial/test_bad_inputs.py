"""Adversarial cases: bad command-line inputs give one line and exit 2, change nothing."""

import time

import pytest

from wcviz.cli import main
from _cli import TINY, one_error_line


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.mark.parametrize("argv,match", [
    (["--seeds", "0"], "--seeds expects a count N >= 1"),
    (["--seeds", "-2"], "--seeds expects a count N >= 1"),
    (["--seeds", ","], "--seeds needs at least one seed"),
    (["--seeds", "1,1"], "distinct"),
    (["--seeds", "1,-1"], ">= 0"),
    (["--seeds", "1000000000"], "--seeds gives 1,000,000,000 runs, more than 10,000"),
    (["--grid", "a=0.5:1.0:1e-9"], "--grid a gives 500,000,001 runs"),
    (["--grid", "a=0.5:1.0:0.0001", "b=0.5:1.0:0.01", "--seeds", "3"],
     "the grid times --seeds gives"),
    (["--set", "workers=-3", "--set", "loader=dataloader"], "workers must be >= 0"),
    (["--epochs", "2", "--set", "epochs=1"], "epochs is given twice"),
])
def test_sweep_bad_inputs_are_one_line_and_fast(tmp_path, capsys, argv, match):
    start = time.perf_counter()
    rc = main(["sweep", "--preset", "digits-cnn", "--method", "wc", "--runs", str(tmp_path),
               "--dry-run", *argv])
    assert rc == 2 and match in one_error_line(capsys)
    assert time.perf_counter() - start < 20  # refused up front, not after building the plan
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("run_id", ["../escaped", "/tmp/abs-escape", "a/b", "..", ".hidden", ""])
def test_train_run_id_cannot_leave_runs(tmp_path, capsys, run_id):
    runs = tmp_path / "runs"
    rc = main(["train", "--preset", "digits-cnn", "--epochs", "1", "--runs", str(runs),
               "--run-id", run_id, *TINY])
    assert rc == 2 and "must be a plain folder name" in one_error_line(capsys)
    assert not (tmp_path / "escaped").exists() and not list(runs.iterdir())


@pytest.mark.parametrize("argv,match", [
    (["--epochs", "-1", "--set", "epochs=1"], "epochs is given twice"),
    (["--lr", "0.1", "--set", "lr=0.2"], "lr is given twice"),
    (["--set", "workers=-3", "--set", "loader=dataloader"], "workers must be >= 0"),
    (["--epochs", "0"], "epochs and batch_size must be >= 1"),
])
def test_train_contradicting_or_bad_values(tmp_path, capsys, argv, match):
    rc = main(["train", "--preset", "digits-cnn", "--runs", str(tmp_path), *TINY, *argv])
    assert rc == 2 and match in one_error_line(capsys)


@pytest.mark.parametrize("argv,match", [(["--epochs", "0"], "--epochs must be >= 1"),
                                        (["--epochs", "-3"], "--epochs must be >= 1"),
                                        (["--threads", "0"], "--threads must be >= 1")])
def test_demo_bad_numbers(tmp_path, capsys, argv, match):
    rc = main(["demo", "--runs", str(tmp_path / "runs"), "--no-figures", *argv])
    assert rc == 2 and match in one_error_line(capsys)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_non_json_config_is_refused_not_stringified(tmp_path):
    import torch
    from torch import nn

    import wcviz

    with pytest.raises(wcviz.WcvizError, match="config is not JSON-serializable"):
        wcviz.Recorder(nn.Linear(2, 2), tmp_path / "run", config={"when": object()})
    assert not (tmp_path / "run" / "record.zarr").exists()
    torch.manual_seed(0)
