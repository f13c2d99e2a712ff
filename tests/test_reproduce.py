"""``wcviz reproduce``: a real (shortened) study end to end, resume, public figures, bad input."""

import pytest

import wcviz
from wcviz.training import reproduce
from wcviz.cli import main
from wcviz.errors import WcvizError


def test_parse_seeds():
    assert reproduce.parse_seeds(None, 5) == [0, 1, 2, 3, 4]
    assert reproduce.parse_seeds("3", 5) == [0, 1, 2]
    assert reproduce.parse_seeds("0,4,7", 5) == [0, 4, 7]
    for bad in ("x", "0,0", "0", "-1,2"):
        with pytest.raises(WcvizError, match="--seeds"):
            reproduce.parse_seeds(bad, 5)
    # A copy of sweep's parser without its cap: a mistyped count planned that many runs.
    with pytest.raises(WcvizError, match="more than 10,000"):
        reproduce.parse_seeds("20000", 5)


def test_every_study_plans_valid_configs(tmp_path):
    for study in reproduce.STUDIES.values():
        keys = {a.key for a in study.arms}
        assert set(study.quick_arms) <= keys and all(b in keys and w in keys for b, w in study.compare)
        planned = reproduce.plan(study, tmp_path, [0, 1], None, False, "data")
        assert len(planned) == 2 * len(study.arms) and {p.state for p in planned} == {"new"}
        quick = reproduce.plan(study, tmp_path, [0], None, True, "data")
        assert {p.cfg.epochs for p in quick} == {study.quick_epochs}


def test_mnist1d_study_cites_the_published_numbers():
    study = reproduce.STUDIES["mnist1d"]
    published = {p.arm: p.percent for p in study.public}
    assert published == {"cnn-baseline": 94.0, "mlp-baseline": 68.0}
    assert all("arXiv:2011.14439" in p.source for p in study.public)
    wc = next(a for a in study.arms if a.key == "cnn-wc")
    cfg = reproduce.plan(study, reproduce.Path("x"), [0], None, False, "data")
    assert any(p.arm is wc and (p.cfg.a, p.cfg.b) == (1.0, 0.6) for p in cfg)


@pytest.mark.slow
def test_reproduce_digits_runs_resumes_and_reports(tmp_path, capsys):
    argv = ["reproduce", "digits", "--quick", "--epochs", "1", "--seeds", "3",
            "--runs", str(tmp_path), "--no-figures"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    root = tmp_path / "reproduce-digits-quick"
    runs = sorted(p.name for p in root.iterdir() if (p / "record.zarr").exists())
    assert len(runs) == 9 and "digits-cnn_wc_a0.5_b0.3_s2" in runs
    assert "Claims over seeds" in out and "wc vs baseline" in out
    verdicts = {"HOLDS", "FAILS", "INCONCLUSIVE", "IMPROVES", "KEEPS", "WORSE"}
    for verdict_line in [ln for ln in out.splitlines() if ln.startswith("wc")]:
        assert len(verdicts & set(verdict_line.split())) == 1
    assert "Holm–Bonferroni" in out and "correlated" in out  # the family, shared baselines
    assert (root / "results" / "claims.md").read_text().count("paired seeds: 0, 1, 2") == 2
    assert "+" in (root / "results" / "table.md").read_text()
    report = (root / "results" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Claims over seeds</h2>" in report and "digits-cnn_wc_a0.5_b0.3_s2" in report
    stamp = (root / runs[0] / "summary.json").stat().st_mtime_ns
    assert main(argv) == 0  # again: nothing retrained
    assert "9 finished run(s) kept" in capsys.readouterr().out
    assert (root / runs[0] / "summary.json").stat().st_mtime_ns == stamp
    assert wcviz.open_run(root / runs[0]).attrs["status"] == "finished"
    other = ["reproduce", "digits", "--quick", "--epochs", "2", "--seeds", "3",
             "--runs", str(tmp_path), "--no-figures"]
    assert main(other) == 2  # other epochs: a different config, never overwritten silently
    assert "holds a run with another config" in capsys.readouterr().err


def test_reproduce_bad_input(tmp_path, capsys):
    assert main(["reproduce", "cifar", "--runs", str(tmp_path)]) == 2
    assert "unknown study 'cifar'; choose one of: mnist1d, digits" in capsys.readouterr().err
    assert main(["reproduce", "digits", "--epochs", "0", "--runs", str(tmp_path)]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
    assert main(["reproduce", "--list"]) == 0
    assert "cnn-wc-learnable" in capsys.readouterr().out
    # No name said "unknown study None"; --threads 0 ran the whole study on one thread.
    assert main(["reproduce", "--runs", str(tmp_path)]) == 2
    assert "name a study: wcviz reproduce NAME (mnist1d, digits)" in capsys.readouterr().err
    assert main(["reproduce", "digits", "--threads", "0", "--runs", str(tmp_path)]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
    assert main(["reproduce", "digits", "--seeds", "0", "--runs", str(tmp_path)]) == 2
    assert "--seeds 0" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_public_table_sets_our_mean_and_ci_beside_the_published(tmp_path):
    import math

    import numpy as np
    from scipy import stats

    import _fixture_runs as fx
    from wcviz.report import analysis

    paths = fx.seed_group(tmp_path, "baseline")
    study = reproduce.Study("t", "test", (reproduce.Arm("base", "digits-cnn", "baseline"),), (),
                            3, ("base",), 1, public=(reproduce.Public("base", 80.0, "ref net", "src X"),))
    text = reproduce.public_table(study, {"base": paths})
    acc = np.array([analysis.run_row(analysis.as_dataset(p))["best_val_test_acc"] for p in paths])
    half = stats.t.ppf(0.975, 2) * acc.std(ddof=1) / math.sqrt(3)
    assert f"[{acc.mean() - half:.2f}, {acc.mean() + half:.2f}]" in text
    assert f"{acc.mean() - 80.0:+.2f} pp" in text and "≈ 80 %" in text and "source: src X" in text
