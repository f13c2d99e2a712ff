"""Run folders as the train, sweep and demo commands see them: writable root, state, result."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.store import same_config


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
    config = run_dir / "config.json"
    if not (run_dir / "record.zarr").exists():
        return "new"
    try:
        stored = config.read_text()
    except OSError:
        return "conflict"
    if not same_config(stored, recipe):
        return "conflict"
    summary = run_dir / "summary.json"
    if summary.is_file() and json.loads(summary.read_text()).get("status") == "finished":
        return "done"
    return "resume"


def read_summary(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
