"""wcviz.record.runfolder.run_dirs: the one run discovery (list_runs and the dashboard walk it)."""

from __future__ import annotations

import os

import _fixture_runs as fx
from wcviz.record.reader import list_runs
from wcviz.record.runfolder import MAX_DEPTH, run_dirs


def test_finds_runs_down_to_max_depth_and_not_inside_runs(tmp_path):
    fx.baseline_run(tmp_path / "a")
    fx.baseline_run(tmp_path / "sweep" / "cfg" / "seed0")
    fx.baseline_run(tmp_path / "a" / "inner")  # inside a run: not searched
    fx.baseline_run(tmp_path / "too" / "deep" / "for" / "it")
    (tmp_path / ".hidden").mkdir()
    fx.baseline_run(tmp_path / ".hidden" / "r")
    found = [p.relative_to(tmp_path).as_posix() for p in run_dirs(tmp_path)]
    assert found == ["a", "sweep/cfg/seed0"]
    assert MAX_DEPTH == 3  # the documented default: runs/<sweep>/<config>/<seed>
    assert [p.relative_to(tmp_path).as_posix() for p in run_dirs(tmp_path, max_depth=4)] == \
        ["a", "sweep/cfg/seed0", "too/deep/for/it"]
    assert [r.path for r in list_runs(tmp_path)[0]] == list(run_dirs(tmp_path))
    assert list(run_dirs(tmp_path / "a")) == [tmp_path / "a"]  # the root may be a run


def test_skip_stops_at_a_directory(tmp_path):
    fx.baseline_run(tmp_path / "in" / "r")
    outside = tmp_path.parent / f"{tmp_path.name}_outside"
    fx.baseline_run(outside / "r")
    os.symlink(outside, tmp_path / "link")
    seen = []

    def leaves_root(path):
        out = not path.resolve().is_relative_to(tmp_path.resolve())
        if out:
            seen.append(path.name)
        return out

    assert [p.relative_to(tmp_path).as_posix() for p in run_dirs(tmp_path, skip=leaves_root)] == ["in/r"]
    assert seen == ["link"]


def test_a_summary_with_the_old_result_name_reads_under_the_new_one(tmp_path):
    """Runs finished before the metric rename keep their result in sweep tables and resumes."""
    import json

    from wcviz.record.runfolder import read_summary
    from wcviz.record.metrics import BEST_ACC

    (tmp_path / "summary.json").write_text(json.dumps({"status": "finished",
                                                       "test_acc_best_val": 0.91}))
    assert read_summary(tmp_path)[BEST_ACC] == 0.91
    (tmp_path / "summary.json").write_text(json.dumps({BEST_ACC: 0.8, "test_acc_best_val": 0.1}))
    assert read_summary(tmp_path)[BEST_ACC] == 0.8  # the new name wins where both are there
    (tmp_path / "summary.json").write_text("[1, 2]")
    assert read_summary(tmp_path) == {}
