"""A runs root's summary index: one small JSON file that lists its runs' root attributes.

Listing a root of 1,000 runs opens 1,000 ``zarr.json`` files; the index holds what a listing
needs (each run's root attributes: status, ``n_committed``, model, seed, ...) in one file,
``<root>/.wcviz-runs.json``, keyed by the run's path relative to the root (POSIX form).

The index is a cache, never the truth:

* every entry carries the **stamp** of the store's ``zarr.json`` (inode, size, modification
  time in ns). A reader stats each store's ``zarr.json`` (one ``stat``, no read) and uses the
  entry only when the stamp is the same; otherwise (a commit, a status change, a replaced
  store) it reads the store and refreshes the entry. An entry therefore never wins over a
  store that changed since, and a missing, unreadable or foreign index is rebuilt.
* writers (:class:`wcviz.record.store.RunStore`) refresh their own entry at the start, every
  :data:`REFRESH_EVERY` commits and at the finish, so a listing mostly finds fresh entries;
  between those refreshes a running run's entry is stale and is read from its store.
* the file is replaced atomically (:func:`wcviz.record.atomic.write_atomic`) under an
  exclusive ``flock`` on the root folder itself (no lock file), so concurrent writers of one
  root never lose each other's entries. A root that cannot be written (read-only) is listed the same,
  from the stores.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.record.atomic import write_atomic
from wcviz.record.runfolder import STORE_NAME
from wcviz.record.schema import read_root_attrs

#: The index file inside a runs root (hidden: run discovery skips dot names).
INDEX_NAME = ".wcviz-runs.json"
#: Format of the index file; another value is ignored (rebuilt).
INDEX_VERSION = 1
#: Commits between a writer's refreshes of its own entry (plus one at start and finish).
REFRESH_EVERY = 16


def stamp(store: Path) -> list[int] | None:
    """(inode, size, mtime in ns) of a store's ``zarr.json``, None when it cannot be stat'ed.

    Every write of the root attributes (a commit, a status) replaces the file (a new inode)
    and changes its time, so an equal stamp means the attributes are the ones indexed."""
    try:
        info = os.stat(os.path.join(store, "zarr.json"))
    except OSError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def read_fresh(store: Path) -> tuple[dict, list[int] | None]:
    """A store's root attributes and the stamp they were read at (stat, read, stat: a
    write in between gives no stamp, so the entry is not cached)."""
    before = stamp(store)
    attrs = read_root_attrs(store)
    return attrs, (before if before == stamp(store) else None)


class RunsIndex:
    """The index of one runs root, as a listing uses it.

    ``attrs(run_dir)`` gives a run's root attributes (from the index when its stamp is still
    the store's, else from the store); :meth:`save` writes back what changed, best effort.
    """

    def __init__(self, root):
        self.root = Path(root)
        self.entries = _load(self.root / INDEX_NAME)
        self._seen: set[str] = set()
        self._changed = False

    def key(self, run_dir) -> str:
        """The run's path relative to the root, POSIX form ("." for the root itself)."""
        rel = os.path.relpath(os.path.abspath(run_dir), os.path.abspath(self.root))
        return Path(rel).as_posix()

    def attrs(self, run_dir) -> dict:
        """The run's root attributes; fresh from the store when the entry is missing or stale.

        Raises:
            WcvizError: the store cannot be read (as :func:`read_root_attrs`).
        """
        key = self.key(run_dir)
        self._seen.add(key)
        store = Path(run_dir) / STORE_NAME
        entry = self.entries.get(key)
        now = stamp(store)
        if entry is not None and now is not None and entry.get("stamp") == now:
            return entry["attrs"]
        if entry is not None:
            del self.entries[key]
            self._changed = True
        attrs, at = read_fresh(store)
        if at is not None:
            self.entries[key] = {"stamp": at, "attrs": attrs}
            self._changed = True
        return attrs

    def save(self) -> None:
        """Write the index back when entries changed or runs disappeared (best effort: a
        read-only root stays unindexed). Entries of runs this listing did not see are
        dropped; others' concurrent updates are merged under the lock."""
        gone = set(self.entries) - self._seen
        if not self._changed and not gone:
            return
        try:
            with _locked(self.root):
                current = _load(self.root / INDEX_NAME)
                for key in gone:
                    current.pop(key, None)
                for key in self._seen:
                    if key in self.entries:
                        current[key] = self.entries[key]
                    else:
                        current.pop(key, None)
                _write(self.root / INDEX_NAME, current)
        except OSError:
            pass


def refresh_entry(run_dir) -> None:
    """Refresh one run's entry in the index of its parent folder (what writers call).

    Best effort: an unwritable root or an unreadable store leaves the index as it is (a
    listing then reads the store itself)."""
    run_dir = Path(run_dir)
    root = run_dir.parent
    try:
        attrs, at = read_fresh(run_dir / STORE_NAME)
        if at is None:
            return
        with _locked(root):
            entries = _load(root / INDEX_NAME)
            entries[run_dir.name] = {"stamp": at, "attrs": attrs}
            _write(root / INDEX_NAME, entries)
    except (OSError, WcvizError):
        pass


def _load(path: Path) -> dict:
    """The entries of an index file; empty when missing, unreadable or of another format."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != INDEX_VERSION:
        return {}
    runs = doc.get("runs")
    if not isinstance(runs, dict):
        return {}
    return {k: v for k, v in runs.items()
            if isinstance(v, dict) and isinstance(v.get("attrs"), dict)
            and isinstance(v.get("stamp"), list)}


def _write(path: Path, entries: dict) -> None:
    text = json.dumps({"version": INDEX_VERSION, "runs": entries}, separators=(",", ":"))
    write_atomic(path, text)


@contextmanager
def _locked(root: Path):
    """An exclusive flock on the root folder (released on exit or process end): the index
    file itself is replaced by rename, so it cannot carry the lock."""
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
