"""Run folders as the train, sweep and demo commands see them: writable root, state, result."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.metrics import BEST_ACC
from wcviz.store import read_root_attrs, same_config, store_path


def check_writable(root: Path) -> Path:
    """Create ``root`` if needed and prove it writable, or raise a one-line WcvizError."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".wcviz-write-test-"):
            pass
    except OSError as err:
        raise WcvizError(f"cannot write to runs folder {root} ({err.strerror or err}); "
                         "choose another with --runs") from None
    return root


def run_state(run_dir: Path, recipe: dict) -> str:
    """"new", "done" (finished, same config), "resume" (started, same config) or "conflict"."""
    if not (run_dir / "record.zarr").exists():
        return "new"
    if not same_config(stored_config(run_dir), recipe):
        return "conflict"
    if read_summary(run_dir).get("status") == "finished":
        return "done"
    return "resume"


def stored_config(run_dir: Path):
    """The run's recorded config: ``config.json``, else the copy in the store's attributes
    (a lost or garbled config.json is no reason to call the run another config's).

    Raises:
        WcvizError: neither copy can be read.
    """
    try:
        return json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError) as err:
        problem = f"config.json is unreadable ({type(err).__name__})"
    try:
        return json.loads(read_root_attrs(store_path(run_dir)).get("config") or "null")
    except (WcvizError, ValueError) as err:
        raise WcvizError(f"run {run_dir} is damaged: {problem} and its store too ({err}); "
                         "pass --overwrite to start it again, or choose another --run-id") from None


#: What the summaries of runs finished before the result's rename call :data:`BEST_ACC`.
OLD_BEST_ACC = "test_acc_best_val"


def read_summary(run_dir: Path) -> dict:
    """``summary.json`` of a finished run; {} when absent or unreadable (then not finished).
    A summary that names the result by its old name answers under :data:`BEST_ACC` too."""
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(summary, dict):
        return {}
    if BEST_ACC not in summary and OLD_BEST_ACC in summary:
        summary[BEST_ACC] = summary[OLD_BEST_ACC]
    return summary
