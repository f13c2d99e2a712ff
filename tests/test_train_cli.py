"""`wcviz train`, `wcviz sweep`, `wcviz demo` through the real dispatcher; every bad input."""

import json
import pytest

import wcviz
from wcviz.training.sweep import parse_grid
from wcviz.cli import main
from wcviz.record.schema import read_root_attrs
from wcviz.record.index import INDEX_NAME  # the runs index beside the runs
from _cli import TINY, one_error_line



pytestmark = pytest.mark.usefixtures("one_torch_thread")



def test_train_list_presets(capsys):
    assert main(["train", "--list-presets"]) == 0
    out = capsys.readouterr().out
    assert "cifar10-resnet18" in out and "imagenet-resnet50" in out and "1.0,0.6" in out


@pytest.mark.slow
def test_train_runs_and_names_the_run(tmp_path, capsys):
    rc = main(["train", "--preset", "digits-cnn", "--method", "wc", "--epochs", "1",
               "--runs", str(tmp_path), *TINY])
    assert rc == 0
    run = tmp_path / "digits-cnn_wc_a0.5_b0.3_s0"
    assert "test acc" in capsys.readouterr().out
    ds = wcviz.open_run(run)
    assert ds.epoch.values.tolist() == [0, 1] and ds.attrs["status"] == "finished"
    assert json.loads((run / "config.json").read_text())["epochs"] == 1


@pytest.mark.parametrize("argv,match", [
    (["--preset", "cifar10-resnet99"], "unknown preset 'cifar10-resnet99'"),
    (["--preset", "digits-cnn", "--method", "wcc"], "unknown method 'wcc'"),
    (["--preset", "digits-cnn", "--set", "model=lenet"], "unknown model 'lenet'"),
    (["--preset", "digits-cnn", "--set", "dataset=mnist"], "unknown dataset 'mnist'"),
    (["--preset", "digits-cnn", "--set", "epochs=many"], "bad value 'many' for epochs"),
    (["--preset", "digits-cnn", "--method", "wc", "--a", "-1"], "a must be a positive"),
    (["--preset", "cifar10-resnet18", "--set", "dropout=0.2"], "has no dropout option"),
    (["--preset", "digits-cnn", "--set", "model=resnet18"],
     "model 'resnet18' takes 3×32×32 images but dataset 'digits' has 1×8×8"),
    (["--preset", "digits-cnn", "--method", "pp"],
     "preset 'digits-cnn' runs the methods baseline, wc, wc-learnable, not 'pp'"),
    ([], "--preset is required"),
])
def test_train_bad_names(tmp_path, capsys, argv, match):
    rc = main(["train", *argv, "--runs", str(tmp_path), *TINY])
    line = one_error_line(capsys)
    assert rc == 2 and line.startswith("wcviz train: error:")
    if match:
        assert match in line
    assert not any(tmp_path.iterdir())  # refused before any run folder or store is made


def test_train_missing_dataset_names_the_folder(tmp_path, capsys):
    rc = main(["train", "--preset", "cifar10-resnet18", "--data-root", str(tmp_path / "data"),
               "--runs", str(tmp_path / "runs"), *TINY])
    assert rc == 2
    assert f"{tmp_path / 'data' / 'cifar-10-batches-py'}" in one_error_line(capsys)
    assert not any((tmp_path / "runs").iterdir())  # no half-made run


def test_train_unwritable_runs_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["train", "--preset", "digits-cnn", "--runs", str(blocker / "runs"), *TINY])
    assert rc == 2 and "cannot write to runs folder" in one_error_line(capsys)


def test_existing_run_and_resume_with_other_config_leave_it_untouched(tmp_path, capsys):
    args = ["train", "--preset", "digits-cnn", "--epochs", "1", "--runs", str(tmp_path), *TINY]
    assert main(args) == 0
    capsys.readouterr()
    store = tmp_path / "digits-cnn_baseline_s0" / "record.zarr"
    before = read_root_attrs(store)
    assert main(args) == 2 and "exists; pass --resume" in one_error_line(capsys)
    assert main([*args, "--resume", "--set", "lr=0.5"]) == 2
    assert "different config" in one_error_line(capsys)
    assert main([*args, "--resume", "--overwrite"]) == 2
    one_error_line(capsys)
    assert read_root_attrs(store) == before
    other = ["train", "--preset", "digits-cnn", "--seed", "4", "--runs", str(tmp_path), *TINY]
    assert main([*other, "--resume"]) == 2 and "nothing to resume" in one_error_line(capsys)


def test_nan_loss_exits_nonzero_with_one_line_and_a_failed_store(tmp_path, capsys):
    rc = main(["train", "--preset", "digits-cnn", "--epochs", "2", "--set", "lr=1e12",
               "--runs", str(tmp_path), *TINY])
    assert rc == 2 and "NaN/inf" in one_error_line(capsys)
    ds = wcviz.open_run(tmp_path / "digits-cnn_baseline_s0")
    assert ds.attrs["status"] == "failed" and ds.epoch.values.tolist() == [0]


def test_parse_grid():
    grid = parse_grid(["a=0.5:1.0:0.1", "b=0.5,0.7", "lr=0.1,0.05"])
    assert grid["a"] == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert grid["b"] == [0.5, 0.7] and grid["lr"] == [0.1, 0.05]


@pytest.mark.slow
def test_sweep_plans_runs_skips_finished_and_reads_as_a_table(tmp_path, capsys):
    def sweep(*more):
        return ["sweep", "--preset", "digits-cnn", "--method", "wc", "--grid", "a=0.5:0.6:0.1",
                "--epochs", "1", "--runs", str(tmp_path), "--device", "cpu",
                "--set", "batch_size=128", *more]

    argv = sweep("--seeds", "1")
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 runs (2 new)" in out
    assert "digits-cnn_wc_a0.5_b0.3_s0" in out and "digits-cnn_wc_a0.6_b0.3_s0" in out
    assert main(argv) == 0
    for a in ("0.5", "0.6"):
        ds = wcviz.open_run(tmp_path / f"digits-cnn_wc_a{a}_b0.3_s0")
        assert ds.attrs["status"] == "finished" and ds.attrs["a"] == float(a)
    capsys.readouterr()
    # a second seed in 2 processes at a time; the finished seed-0 runs are skipped
    assert main(sweep("--seeds", "2", "--parallel", "2")) == 0
    out = capsys.readouterr().out
    assert "4 runs (2 new, 2 done)" in out
    assert out.count("[sweep] start") == 2 and out.count("[sweep] done") == 2
    assert "digits-cnn_wc_a0.6_b0.3_s1  finished" in out
    assert wcviz.open_run(tmp_path / "digits-cnn_wc_a0.6_b0.3_s1").attrs["seed"] == 1


def test_sweep_bad_grid(tmp_path, capsys):
    assert main(["sweep", "--preset", "digits-cnn", "--grid", "a=1:0.5:0.1",
                 "--runs", str(tmp_path)]) == 2
    assert "stop >= start" in one_error_line(capsys)
    assert main(["sweep", "--preset", "digits-cnn", "--method", "baseline", "--grid",
                 "a=0.5,0.6", "--runs", str(tmp_path)]) == 2
    assert "has no a, b to sweep" in one_error_line(capsys)


@pytest.mark.slow
def test_demo_short(tmp_path, capsys):
    rc = main(["demo", "--epochs", "2", "--runs", str(tmp_path / "runs"),
               "--figures", str(tmp_path / "figures")])
    assert rc == 0
    out = capsys.readouterr().out
    for method in ("baseline", "wc", "wc-learnable"):
        assert f"digits-cnn_{method}" in out
    assert "max|w| conv1" in out and "wcviz dash" in out
    assert "FAILS" not in out and "HOLDS" not in out  # one seed decides no claim
    assert "(ii)  near-zero % |w| < 0.5·σ₀, all weights: " in out  # the tail-safe headline
    assert "INCONCLUSIVE (1 paired seed(s) < 3)" in out and "wcviz reproduce digits" in out
    assert "digits-cnn_wc_a0.5_b0.3_s0" in out  # a/b = 5/3 > 1
    # claims under the runs' display names, each value named (not an epoch arrow)
    assert "WC a=0.5, b=0.3 vs baseline (digits-cnn_wc_a0.5_b0.3_s0):" in out
    assert "test acc at best val (%): baseline " in out and ", companded " in out
    assert len([p for p in (tmp_path / "runs").iterdir() if p.name != INDEX_NAME]) == 3
    assert any(p.suffix == ".png" for p in (tmp_path / "figures").iterdir())
    report = (tmp_path / "figures" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Percentile bands</h2>" in report and "digits-cnn_wc_a0.5_b0.3_s0" in report


def test_sweep_resumes_an_unfinished_run(tmp_path, capsys, monkeypatch):
    from wcviz.training import loop

    argv = ["sweep", "--preset", "digits-cnn", "--method", "baseline", "--seeds", "1",
            "--epochs", "2", "--runs",
            str(tmp_path), "--device", "cpu", "--set", "batch_size=128"]
    real = loop.train_one_epoch

    def stop_in_epoch_2(parts, epoch, **kw):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(parts, epoch, **kw)

    monkeypatch.setattr(loop, "train_one_epoch", stop_in_epoch_2)
    assert main(argv) == 130  # the dispatcher's exit status for ^C
    monkeypatch.setattr(loop, "train_one_epoch", real)
    capsys.readouterr()
    assert main(argv) == 0
    assert "1 runs (1 resume)" in capsys.readouterr().out
    ds = wcviz.open_run(tmp_path / "digits-cnn_baseline_s0")
    assert ds.epoch.values.tolist() == [0, 1, 2] and ds.attrs["status"] == "finished"
