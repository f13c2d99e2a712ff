"""benchmarks/gpu_check.py: its CPU dry run (every check, tiny sizes, a real subprocess), its
time budget, and the verdicts of its goal table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_check
from wcviz.record.index import INDEX_NAME  # the runs index beside the runs

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path, *args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--threads", "1",
                           "--out", str(tmp_path / "report"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _results(tmp_path):
    report = tmp_path / "report"
    return json.loads((report / "gpu_check.json").read_text()), \
        (report / "gpu_check.md").read_text()


@pytest.mark.slow
def test_dry_run_runs_every_check_on_the_cpu(tmp_path):
    proc = _run(tmp_path, "--dry-run", "--work", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results, md = _results(tmp_path)
    checks = results["checks"]
    assert list(checks) == list(gpu_check.CHECKS)
    assert results["meta"]["dry_run"] and results["meta"]["gpu"] is None
    # CUDA-only parts say why they did not run
    assert checks["ddp"]["status"] == "skipped" and "no CUDA" in checks["ddp"]["reason"]
    assert "no CUDA" in checks["train_step"]["compiled"]["skipped"]
    assert checks["train_step"]["eager"]["ratio"]["plain"] == 1.0
    assert set(checks["inference"]["ratio"]) == {"plain", "baked arctan", "companded arctan"}
    # the device (torch) statistics path, run here on CPU tensors, equals numpy bit for bit
    exact = checks["exactness"]
    assert exact["status"] == "ok" and exact["tensors"] == 5  # 4 layers + the tied tensor
    assert exact["quantiles_equal_numpy"] and exact["histogram_equal_cpu"]
    assert exact["recorder"]["quantiles_equal_numpy"] and exact["recorder"]["layers"] == 4
    # real runs of the three methods, with sub-epoch records, and an exact resume (CPU)
    runs = checks["runs"]["runs"]
    assert set(runs) == {"baseline", "wc", "wc-learnable"}
    for row in runs.values():
        assert row["run_status"] == "finished" and row["last_record_exact"]
        assert row["epochs"][0] == 0 and row["epochs"][-2:] == [1, 2] and row["records"] == 5
    assert {p.name for p in (tmp_path / "work" / "runs").iterdir()} - {INDEX_NAME} == \
        {"baseline", "wc", "wc-learnable", "wc-resumed"}
    resume = checks["resume"]
    assert resume["status_after_stop"] == "failed" and resume["status_resumed"] == "finished"
    assert resume["identical"] and resume["weights_max_abs_diff"] == 0
    tput = checks["throughput"]
    assert tput["plain"]["images"] == tput["fast"]["images"] == 32 and tput["record_s"] > 0
    # TensorBoard is a benchmark extra: measured when installed, else skipped with the fix
    assert checks["record_tb"]["status"] == "ok" or \
        "pip install" in checks["record_tb"]["reason"]
    assert "Dry run" in md and "n/a (dry run)" in md and "not measured" in md
    for row in gpu_check.goal_rows(results):
        assert f"| {row[0]} |" in md


def test_checks_past_the_time_budget_are_skipped_and_reported(tmp_path):
    proc = _run(tmp_path, "--dry-run", "--only", "runs", "ddp", "--budget-s", "0", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, md = _results(tmp_path)
    assert list(results["checks"]) == ["runs", "ddp"]
    for check in results["checks"].values():
        assert check["status"] == "skipped" and check["reason"].startswith("time budget")
    assert "| runs | skipped |" in md


def test_a_file_as_out_is_one_line_and_status_2(tmp_path):
    (tmp_path / "report").write_text("not a folder")
    proc = _run(tmp_path, "--dry-run", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("is a file; give a folder")
    assert "Traceback" not in proc.stderr


def _results_with(**checks):
    return {"meta": {"dry_run": False}, "checks": checks}


def test_goal_verdicts_at_and_past_each_threshold():
    def verdicts(step, baked, tb, per_epoch, speedup, exact):
        res = _results_with(
            train_step={"compiled": {"ratio": {"arctan": step}}},
            inference={"ratio": {"baked arctan": baked}},
            record_tb={"ratio": tb},
            throughput={"record_per_epoch": per_epoch, "speedup": speedup},
            exactness={"status": "ok", "quantiles_equal_numpy": exact,
                       "histogram_equal_cpu": exact, "recorder": {"quantiles_equal_numpy": exact}})
        return [row[3] for row in gpu_check.goal_rows(res)]

    assert verdicts(1.02, 1.02, 0.1, 0.01, 3.0, True) == ["yes"] * 7
    assert verdicts(1.021, 1.021, 0.101, 0.0101, 2.99, False) == ["no"] * 7


def test_goals_of_checks_not_run_say_not_measured():
    rows = gpu_check.goal_rows(_results_with(ddp={"status": "skipped"}))
    assert all(row[2] == "not measured" and row[3] == "-" for row in rows)
