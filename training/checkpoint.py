"""Full-state checkpoints: state_dicts and plain values only, loaded with ``weights_only=True``.

``last.pt`` holds everything ``--resume`` needs (model, optimizer, scheduler, epoch, RNG states,
the run's history); ``best.pt`` the model best on validation. Writes go to a temporary file
first and are renamed into place, so a killed process leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

LAST, BEST = "last.pt", "best.pt"


def save(state: dict, path: Path) -> None:
    """Write ``state`` atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(path: Path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save` (tensors and plain values only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


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
