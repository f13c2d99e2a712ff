"""Which layers wcviz reparametrizes and records: conv and linear weights, by name pattern."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable

from torch import nn

#: Module types whose ``weight`` is companded and recorded (not norm layers, not biases).
TRACKED_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _matches(name: str, patterns: Iterable[str] | str | None) -> bool:
    if patterns is None:
        return False
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(fnmatchcase(name, p) for p in patterns)


def tracked_layers(model: nn.Module, include=None, exclude=None) -> list[tuple[str, nn.Module]]:
    """Conv1d/2d/3d and Linear modules of ``model`` in model order, as ``(name, module)``.

    Args:
        model: any module.
        include: glob pattern(s) on module names (``"layer1.*"``); only matches are kept.
        exclude: glob pattern(s) whose matches are dropped (applied after ``include``).
    """
    layers = []
    for name, module in model.named_modules():
        if not isinstance(module, TRACKED_TYPES):
            continue
        if include is not None and not _matches(name, include):
            continue
        if _matches(name, exclude):
            continue
        layers.append((name, module))
    return layers


def layer_kind(module: nn.Module) -> str:
    """A short kind label, e.g. ``"Conv2d"`` or ``"Linear"``."""
    for kind in TRACKED_TYPES:
        if isinstance(module, kind):
            return kind.__name__
    return type(module).__name__
