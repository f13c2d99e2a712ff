"""One run's configuration, :class:`RunConfig`, and ``--set NAME=VALUE`` parsing by its field types.

Kept apart from :mod:`wcviz.training.presets` (whose tables check names against the model and dataset
registries, which import torch) so that ``wcviz train --help`` lists the fields at once.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from wcviz.errors import WcvizError


@dataclass
class RunConfig:
    """Everything one run needs. Recipe fields make up the recorded config; execution fields
    (device, speed options, paths) may change between a run and its resume."""

    preset: str
    model: str
    dataset: str
    method: str = "baseline"
    a: float | None = None  # compander scale (init value when learnable); None: method has none
    b: float | None = None
    alpha: float | None = None  # Powerpropagation exponent
    seed: int = 0  # init, data order, augmentation, dropout
    epochs: int = 200
    batch_size: int = 128  # global: split over DDP processes
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = ()  # epochs at which lr is multiplied by gamma
    gamma: float = 0.1
    dropout: float | None = None  # None: the model's own (or none)
    val_fraction: float = 0.1  # the paper's 9/1 train/validation split
    split_seed: int = 0  # the split is the same for every seed
    record_steps: int = 0  # also record every N steps during the first epoch (0: epochs only)
    # ---- execution (not part of the recipe)
    device: str = "auto"  # auto: cuda if available, else cpu
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA only
    compile: bool = False  # torch.compile the model (CUDA)
    loader: str = "auto"  # auto: tensor loader for in-memory data, else DataLoader
    workers: int = 2  # DataLoader worker processes
    data_root: str = "data"
    download: bool = False
    progress: bool = True  # tqdm bar
    record_gradients: bool = False  # also record ∂L/∂w, ∂L/∂v quantiles (wcviz.record.gradients)

    EXECUTION = ("device", "amp", "channels_last", "compile", "loader", "workers", "data_root",
                 "download", "progress", "record_gradients")

    def recipe(self) -> dict[str, Any]:
        """The fields that define the experiment (stored in config.json, checked on resume)."""
        out = dataclasses.asdict(self)
        for name in self.EXECUTION:
            out.pop(name)
        out["milestones"] = list(out["milestones"])
        return out


#: RunConfig field -> its type (resolved, not the annotation string): what ``--set`` parses to.
FIELD_TYPES: dict[str, Any] = typing.get_type_hints(RunConfig)

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def type_name(kind) -> str:
    """A field type as text: ``int``, ``float | None``, ``tuple[int, ...]``."""
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _parse(kind, text: str) -> Any:
    """``text`` as a value of type ``kind`` (bool, int, float, str, tuple[int, ...], X | None)."""
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        if text.lower() in ("none", "null"):
            return None
        (kind,) = [a for a in args if a is not type(None)]
        args = typing.get_args(kind)
    origin = typing.get_origin(kind)
    if origin is tuple:
        return tuple(args[0](x) for x in text.replace(" ", "").split(",") if x)
    if kind is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(text)
        return text.lower() in _TRUE
    return kind(text)


def _coerce(name: str, text: str) -> Any:
    """Parse a ``--set name=value`` string by the :class:`RunConfig` field's type."""
    kind = FIELD_TYPES[name]
    try:
        return _parse(kind, text)
    except ValueError:
        raise WcvizError(f"bad value {text!r} for {name} (expects {type_name(kind)})") from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["epochs=2", "lr=0.05"]`` -> ``{"epochs": 2, "lr": 0.05}`` (typed)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise WcvizError(f"--set expects NAME=VALUE, got {item!r}")
        if name not in FIELD_TYPES:
            raise WcvizError(f"unknown setting {name!r}; choose one of: {', '.join(FIELD_TYPES)}")
        out[name] = _coerce(name, value)
    return out
