"""The run folder: every file name inside a run directory, the words for a run's state, and
run discovery under a runs root. The one place that spells the layout::

    <runs_root>/<run_id>/
        record.zarr/        the statistics (STORE_NAME; wcviz.record.store writes it)
        config.json         the resolved config (CONFIG_NAME)
        summary.json        the result of a finished run (SUMMARY_NAME)
        checkpoints/        state_dicts, loaded with weights_only=True (CHECKPOINTS_NAME)
        .writer.lock        held by the one writer (LOCK_NAME)

A run's *status* (the store attribute) is one of :data:`STATUSES`; the train, sweep and demo
commands see a run folder in one of the :data:`RUN_STATES`; ``wcviz sweep --status`` reports
one of the :data:`JOB_STATES`. No other module spells these words.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from wcviz.errors import WcvizError
from wcviz.record.metrics import BEST_ACC

STORE_NAME = "record.zarr"
CONFIG_NAME = "config.json"
SUMMARY_NAME = "summary.json"
CHECKPOINTS_NAME = "checkpoints"
LOCK_NAME = ".writer.lock"

#: A store's ``status`` attribute: being written, ended normally, or ended by an error.
RUNNING, FINISHED, FAILED = "running", "finished", "failed"
STATUSES = (RUNNING, FINISHED, FAILED)

#: What the train, sweep and demo commands find in a run folder (:func:`wcviz.record.config.run_state`):
#: nothing yet; finished with the same config; started with the same config; another config.
NEW, DONE, RESUME, CONFLICT = "new", "done", "resume", "conflict"
RUN_STATES = (NEW, DONE, RESUME, CONFLICT)

#: What ``wcviz sweep --status`` says of a planned run: a status above, or no store yet
#: (PENDING), started and queued again (REQUEUED), started and no longer run by anything
#: (INTERRUPTED: rerunning the sweep resumes it), its job left the queue without ever
#: starting (CANCELLED: e.g. ``scancel`` while pending; rerunning the sweep submits it).
PENDING, REQUEUED, INTERRUPTED, CANCELLED = "pending", "requeued", "interrupted", "cancelled"
JOB_STATES = (PENDING, *STATUSES, REQUEUED, INTERRUPTED, CANCELLED)


def url_scheme(path) -> str | None:
    """The scheme of a URL such as ``"s3://bucket/run"`` or ``"memory://x"``; None for a path."""
    if isinstance(path, str) and "://" in path:
        scheme = path.split("://", 1)[0]
        if scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
            return scheme.lower()
    return None


def local_path(path) -> Path:
    """``path`` as a local :class:`Path` for reading: a ``file://`` URL gives its path; any other
    URL is refused (run stores are read from local disk).

    Raises:
        WcvizError: a non-file URL.
    """
    scheme = url_scheme(path)
    if scheme == "file":
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(path).path))
    if scheme is not None:
        raise WcvizError(f"{path!r} is a {scheme}:// URL; wcviz reads run stores from local "
                         f"disk only: copy the run to a local folder (or mount it) and pass "
                         f"that path")
    return Path(path)


def store_path(path) -> Path:
    """The ``record.zarr`` of a run directory (or the path itself if it is one)."""
    path = local_path(path)
    return path if path.name == STORE_NAME or (path / "zarr.json").is_file() else path / STORE_NAME


def is_run_dir(path) -> bool:
    """Whether ``path`` is a run directory: it holds a store or a config (a run that never
    recorded is still a run, reported broken by :func:`wcviz.record.reader.list_runs`)."""
    path = Path(path)
    return (path / STORE_NAME).exists() or (path / CONFIG_NAME).is_file()


#: Folder levels below a runs root searched for runs (``runs/<sweep>/<config>/<seed>``).
MAX_DEPTH = 3

def run_dirs(root, max_depth: int = MAX_DEPTH,
             skip: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """The run directories under ``root``, in path order: the one definition of run discovery.

    A run is a directory holding ``record.zarr`` or ``config.json``; a run's subdirectories
    are not searched, nor hidden ones; ``root`` may itself be a run.

    Args:
        root: a directory.
        max_depth: folder levels below ``root`` searched (:data:`MAX_DEPTH`).
        skip: called with each directory before it is looked into (``root`` included); when it
            returns True the directory is neither yielded nor searched (the dashboard uses this
            to report, not follow, links that lead out of its root).
    """
    root = Path(root)
    if skip is not None and skip(root):
        return
    if is_run_dir(root):
        yield root
        return
    if max_depth <= 0:
        return
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from run_dirs(child, max_depth - 1, skip)




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


#: What the summaries of runs finished before the result's rename call :data:`BEST_ACC`.
OLD_BEST_ACC = "test_acc_best_val"


def read_summary(run_dir: Path) -> dict:
    """``summary.json`` of a finished run; {} when absent or unreadable (then not finished).
    A summary that names the result by its old name answers under :data:`BEST_ACC` too."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(summary, dict):
        return {}
    if BEST_ACC not in summary and OLD_BEST_ACC in summary:
        summary[BEST_ACC] = summary[OLD_BEST_ACC]
    return summary
