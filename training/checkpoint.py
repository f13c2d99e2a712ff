"""Full-state checkpoints: state_dicts and plain values only, loaded with ``weights_only=True``.

``last.pt`` holds everything ``--resume`` needs (model, optimizer, scheduler, epoch, RNG states,
the run's history); ``best.pt`` the model best on validation. Writes are atomic and durable
(temporary file, fsync, rename: :func:`wcviz.record.atomic.write_atomic`), and the ``last.pt`` being
replaced is kept as ``last.prev.pt``: when ``last.pt`` cannot be read (a disk that lost its
tail, a copy cut short), :func:`load_latest` resumes from the one before.
"""

from __future__ import annotations

import io
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

from wcviz.errors import WcvizError
from wcviz.record.atomic import fsync_dir, write_atomic

LAST, BEST, PREVIOUS = "last.pt", "best.pt", "last.prev.pt"


def save(state: dict, path: Path, keep_previous: bool = False) -> None:
    """Write ``state`` atomically; with ``keep_previous`` the old file becomes ``last.prev.pt``.

    The new file is complete on disk before the old one moves, so at every moment one of the
    two names holds a whole checkpoint.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Serialized in memory first: a write that fails (a full disk) then raises the OSError of
    # the file write, not a torch RuntimeError ("unexpected pos ...") that names no cause.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    if keep_previous and path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        write_atomic(tmp, data)
        os.replace(path, path.with_name(PREVIOUS))
        os.replace(tmp, path)
        fsync_dir(path.parent)
    else:
        write_atomic(path, data)


def load(path: Path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save` (tensors and plain values only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def load_latest(folder: Path, map_location="cpu") -> dict | None:
    """The newest readable full checkpoint in ``folder``: ``last.pt``, else ``last.prev.pt``.

    Returns None when neither exists. An unreadable ``last.pt`` with a good previous one is
    reported on stderr (one line) and the previous one returned.

    Raises:
        WcvizError: checkpoints exist but none can be read.
    """
    errors = []
    for name in (LAST, PREVIOUS):
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            state = load(path, map_location)
            if not isinstance(state, dict) or "epoch" not in state:
                raise ValueError("not a wcviz checkpoint")
        except Exception as err:  # torch raises many types for a torn file
            errors.append(f"{name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            continue
        if errors:
            print(f"warning: {errors[0]}; resuming from {name} (epoch {state['epoch']})",
                  file=sys.stderr)
        return state
    if errors:
        raise WcvizError(f"cannot resume: no readable checkpoint in {folder} ({'; '.join(errors)});"
                         f" start the run again with --overwrite")
    return None


def rng_state() -> dict:
    """Every RNG the loop touches, as tensors and plain lists (weights_only-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
        "python": _python_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
