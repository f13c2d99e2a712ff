"""Integrity checks of a run store from its files alone: every committed chunk present and
matching its crc32c checksum, and no file of a store leading outside a served root."""

from __future__ import annotations

import itertools
import json
import math
import os
import stat
from pathlib import Path

import numpy as np

from wcviz.errors import WcvizError
from wcviz.record.schema import (
    COMPLETE_CHUNKS,
    MAX_CHUNK_ELEMENTS,
    MAX_EPOCH_CHUNK,
    MAX_SIZES,
    REQUIRED,
    epoch_chunk_of,
    expected_dims,
    read_root_attrs,
)


def check_store(store, attrs: dict | None = None, confine_to=None) -> None:
    """Check a store's integrity from its files alone (no array is decoded).

    For every array: its ``zarr.json`` parses, epoch arrays hold ``n_committed`` rows, and
    every chunk of the committed records (and of static arrays) is present and, where the array
    has the ``crc32c`` codec (every store this wcviz creates), matches its checksum. Stores
    written before checksums existed are checked as far as their files allow (no chunk is
    required: they skipped writing all-NaN chunks).

    Args:
        store: the ``record.zarr`` path.
        attrs: its root attributes (read when not given).
        confine_to: a directory every file of the store must stay inside: symlinks anywhere in
            the store and files with more than one hard link are refused (what the dashboard
            serves must not be made to read a file outside its root).

    Raises:
        WcvizError: one line naming the array and the records that are damaged, and the fix.
    """
    store = Path(store)
    if confine_to is not None:
        check_confined(store, confine_to)
    attrs = read_root_attrs(store) if attrs is None else attrs
    n = int(attrs["n_committed"])
    sizes: dict[str, tuple[int, str]] = {}  # dimension -> (size, the first array giving it)
    for entry in sorted(store.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            _check_array(store, entry, n, attrs, sizes)
    if "bin" in sizes and "bin_edge" in sizes and sizes["bin_edge"][0] != sizes["bin"][0] + 1:
        raise refused(store, f"array 'bin_edges' has {sizes['bin_edge'][0]} edges for "
                             f"{sizes['bin'][0]} bins")


def damaged(store: Path, what: str) -> WcvizError:
    return WcvizError(f"damaged run store {store}: {what}; restore the run from a copy, or "
                      f"re-record it (the other runs are not affected)")


def may_lack_chunks(name: str, dims, attrs: dict) -> bool:
    """Whether a missing chunk of array ``name`` may be all-NaN rather than damage.

    Writers before ``COMPLETE_CHUNKS`` (a root attribute) skipped all-NaN chunks of the metric
    arrays they created on first use (1-D ``epoch`` arrays outside the schema); zarr reads such
    a chunk as NaN, which is what was recorded. Every other chunk was always written."""
    return (not attrs.get(COMPLETE_CHUNKS) and list(dims) == ["epoch"]
            and name not in REQUIRED)


def refused(store: Path, what: str) -> WcvizError:
    """A store whose metadata disagree with the run-store schema (crafted, or not a wcviz
    store): refused before any chunk is decoded."""
    return WcvizError(f"refused run store {store}: {what}, which no wcviz store has; not read "
                      f"(a crafted or foreign store; re-record the run)")


def check_shape(store: Path, name: str, dims, shape, chunks, epoch_chunk: int) -> None:
    """Refuse an array whose dimensions, shape or chunk grid disagree with the schema, before
    anything is decoded: a crafted ``zarr.json`` can make a small, checksummed chunk claim
    hundreds of millions of elements (gigabytes once decoded).

    Checked: the dimension names the schema gives ``name``
    (:func:`wcviz.record.schema.expected_dims`), each size within
    :data:`~wcviz.record.schema.MAX_SIZES`, chunks of ``epoch_chunk`` rows (or a divisor of it) along epoch and of
    at most the whole size elsewhere, and at most
    :data:`~wcviz.record.schema.MAX_CHUNK_ELEMENTS` elements a chunk.

    Raises:
        WcvizError: one line naming the array and what it claims.
    """
    dims, shape, chunks = tuple(dims), tuple(shape), tuple(chunks)
    want = expected_dims(name)
    if len(dims) != len(shape) or len(chunks) != len(shape) or (want is not None and dims != want):
        raise refused(store, f"array {name!r} has dimensions {list(dims)} (shape "
                             f"{list(shape)}, chunks {list(chunks)})"
                             + (f"; the schema gives {list(want)}" if want is not None else ""))
    if not 1 <= epoch_chunk <= MAX_EPOCH_CHUNK:
        raise refused(store, f"epoch_chunk {epoch_chunk} is outside 1..{MAX_EPOCH_CHUNK}")
    for dim, size, chunk in zip(dims, shape, chunks):
        cap = MAX_SIZES.get(dim)
        if size < 0 or (cap is not None and size > cap):
            raise refused(store, f"array {name!r} claims {size:,} along {dim!r} (at most "
                                 f"{cap:,})")
        limit = epoch_chunk if dim == "epoch" else max(size, 1)
        # along epoch: epoch_chunk rows, or a divisor of it (wide records: fewer rows a chunk)
        if chunk < 1 or chunk > limit or (dim == "epoch" and epoch_chunk % chunk):
            raise refused(store, f"array {name!r} has chunks of {chunk:,} along {dim!r} "
                                 f"(its size is {size:,}, epoch_chunk {epoch_chunk})")
    if math.prod(chunks) > MAX_CHUNK_ELEMENTS:
        raise refused(store, f"array {name!r} claims {math.prod(chunks):,} elements a chunk "
                             f"(at most {MAX_CHUNK_ELEMENTS:,})")


def _check_array(store: Path, folder: Path, n: int, attrs: dict,
                 sizes: dict[str, tuple[int, str]]) -> None:
    """One array of :func:`check_store`; ``sizes`` collects each dimension's size, which
    every array must agree on (epoch aside: its arrays grow one after the other)."""
    name = folder.name
    try:
        doc = json.loads((folder / "zarr.json").read_text())
        shape = [int(x) for x in doc["shape"]]
        chunks = [int(x) for x in doc["chunk_grid"]["configuration"]["chunk_shape"]]
        dims = list(doc.get("dimension_names") or [])
        codecs = [c.get("name") if isinstance(c, dict) else c for c in doc.get("codecs", [])]
        sep = ((doc.get("chunk_key_encoding") or {}).get("configuration") or {}).get(
            "separator", "/")
    except FileNotFoundError:
        if any(folder.iterdir()):
            raise damaged(store, f"array {name!r} has lost its zarr.json") from None
        return  # an empty folder is no array
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise damaged(store, f"array {name!r} has an unreadable zarr.json "
                              f"({type(err).__name__})") from None
    if doc.get("node_type") != "array":
        return
    check_shape(store, name, dims, shape, chunks, epoch_chunk_of(attrs))
    for dim, size in zip(dims, shape):
        first = sizes.setdefault(dim, (size, name))
        if dim != "epoch" and first[0] != size:
            raise refused(store, f"array {name!r} has {size:,} along {dim!r} but array "
                                 f"{first[1]!r} has {first[0]:,}")
    epoch = dims[:1] == ["epoch"]
    if epoch and shape[0] < n:
        raise damaged(store, f"n_committed says {n} records but array {name!r} holds "
                              f"{shape[0]} rows")
    if 0 in shape:
        return
    counts = [-(-s // c) for s, c in zip(shape, chunks)]
    if epoch:
        counts[0] = -(-n // chunks[0])
    checked = "crc32c" in codecs
    for index in np.ndindex(*counts):
        key = sep.join(["c", *map(str, index)]) if index else "c"
        rows = (f"records {index[0] * chunks[0]}-{min(n, (index[0] + 1) * chunks[0]) - 1}"
                if epoch else "its values")
        path = folder / key
        if not path.is_file():
            if checked and not may_lack_chunks(name, dims, attrs):
                raise damaged(store, f"array {name!r}: {rows} are missing (chunk file {key} "
                                      f"is gone)")
            continue
        if checked and not _crc_ok(path.read_bytes()):
            raise damaged(store, f"array {name!r}: {rows} fail their checksum (chunk file "
                                  f"{key} is corrupt)")


def _crc_ok(data: bytes) -> bool:
    """Whether a chunk ends with the crc32c of the rest (little-endian), as zarr writes it."""
    import google_crc32c

    return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")


def check_confined(store, root, deep: bool = True,
                   entries: list[os.DirEntry] | None = None) -> None:
    """Refuse a store that could make a reader open a file outside ``root``.

    The store must resolve inside ``root``, and it, its ``zarr.json`` and (``deep``) every
    directory and file below it must be real: no symlink (which could point anywhere) and no
    file with a second hard link (a link to a file elsewhere looks like a plain file). What a
    server such as the dashboard opens is then exactly the store's own files.

    Args:
        entries: the store's :func:`store_entries`, listed just before by a caller that also
            took their :func:`tree_fingerprint` (one walk of the store instead of two); listed
            here when not given.

    Raises:
        WcvizError: one line naming the offending path.
    """
    store, root = Path(store), Path(root).resolve()
    if store.is_symlink() or not store.resolve().is_relative_to(root):
        raise WcvizError(f"{store} is a symlink or resolves outside {root}; not read")
    if not deep:
        return _check_entry(os.fspath(store / "zarr.json"), None, root)
    for entry in store_entries(store) if entries is None else entries:
        _check_entry(entry.path, entry, root)


def _check_entry(path: str, entry: os.DirEntry | None, root: Path) -> None:
    """One path of :func:`check_confined`: no symlink, no regular file with a second hard link.

    A directory as the store's listing saw it (its entry's type, which ``scandir`` gives
    without a ``stat``; ``scandir`` falls back to one where the file system gives no type) can
    be neither, so only files cost an ``lstat``: half the entries of a store are directories."""
    if entry is not None and entry.is_symlink():
        raise _linked(path, root)
    if entry is not None and entry.is_dir(follow_symlinks=False):
        return
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return  # removed meanwhile (a writer's temporary file); nothing to read there
    if stat.S_ISLNK(info.st_mode):
        raise _linked(path, root)
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        raise WcvizError(f"{path} has {info.st_nlink} hard links; only a store's own files "
                         f"are read (copy the run without hard links)")


def _linked(path: str, root: Path) -> WcvizError:
    return WcvizError(f"{path} is a symlink; no link inside a run store is read (it "
                      f"could lead outside {root}); replace it by the file itself")


def tree_fingerprint(folder, entries: list[os.DirEntry] | None = None) -> int:
    """A number that changes whenever a directory entry below ``folder`` is added, removed or
    replaced (each entry's path, inode number and type, read by ``scandir`` without a
    ``stat``): what a cache of :func:`check_confined`'s verdict must key on. A chunk swapped
    for a hard link to a file elsewhere gets that file's inode; one swapped for a symlink may
    get the inode number the chunk just freed (file systems reuse them), but not its type.

    ``entries``: ``folder``'s :func:`store_entries` if the caller has listed them already."""
    entries = store_entries(folder) if entries is None else entries
    return hash(tuple((entry.path, entry.inode(), entry.is_symlink(),
                       entry.is_dir(follow_symlinks=False)) for entry in entries))


def store_entries(folder) -> list[os.DirEntry]:
    """Every entry below ``folder``, depth first, links not followed (``scandir``'s entries:
    a store has hundreds of files and the dashboard checks each store it reads, so no Path
    object per file; pathlib was about 2 ms of a run's 10 ms read on a 100-run page)."""
    out: list[os.DirEntry] = []
    _collect(os.fspath(folder), out)
    return out


def _collect(folder: str, out: list[os.DirEntry]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # gone meanwhile, or unreadable (as os.walk: nothing there is read)
        return
    for entry in entries:
        out.append(entry)
        if entry.is_dir(follow_symlinks=False):
            _collect(entry.path, out)


def check_chunks_present(store: Path, array, selection, n: int) -> None:
    """An epoch array holds the ``n`` committed records, and every chunk file a read of
    ``selection`` needs is there, for an array with checksums (every store this wcviz creates
    writes every chunk: a missing one is damage that zarr would read as NaN). Its checksums
    zarr verifies as it decodes. One stat per chunk."""
    from zarr.codecs import Crc32cCodec

    meta = array.metadata
    dims = tuple(meta.dimension_names or ())
    if dims[:1] == ("epoch",) and meta.shape[0] < n:
        raise damaged(store, f"n_committed says {n} records but array {array.basename!r} "
                              f"holds {meta.shape[0]} rows")
    if not any(isinstance(c, Crc32cCodec) for c in getattr(meta, "codecs", ())):
        return  # older stores skipped writing all-NaN chunks: absence is no damage there
    if selection is ...:
        selection = (slice(None),) * len(meta.shape)
    ranges = []
    for sel, size, chunk in zip(selection, meta.shape, array.chunks):
        if isinstance(sel, slice):
            stop = size if sel.stop is None else min(sel.stop, size)
            ranges.append(range(-(-stop // chunk)))
        else:
            ranges.append(range(sel // chunk, sel // chunk + 1))
    name = array.basename
    for coords in itertools.product(*ranges):
        key = meta.encode_chunk_key(coords)
        if not (store / name / key).is_file() and not may_lack_chunks(
                name, dims, read_root_attrs(store)):
            raise damaged(store, f"array {name!r}: chunk file {key} is gone (values it held "
                                  "would read as missing)")

