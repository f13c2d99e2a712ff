"""The paper's experiments as presets: ONE table, the single source of truth (Sec. IV).

A preset is a model × dataset pair with its recipe (batch size, epochs, optimizer, lr schedule,
weight decay, dropout) and Table I's (a, b) for the weight compander. ``--method`` picks the
row of the paper's tables: ``baseline``, ``wc`` (Table I's a, b), ``wc-learnable`` (fine, init
a = 0.5, b = 1.0), ``pp`` (Powerpropagation), ``wn`` (weight normalization), ``arsinh``, ``erf``.

:func:`resolve` turns a preset, a method and overrides into a :class:`RunConfig`; every field
can be overridden (``--set epochs=2`` on the command line).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from typing import Any

from wcviz.errors import WcvizError

# ----------------------------------------------------------------------------- methods

#: method -> how the model is companded: (wcviz method or None, learnable, a/b taken from).
#: "table": the preset's Table I pair; "init": the paper's learnable init (a = 0.5, b = 1.0).
METHODS: dict[str, dict[str, Any]] = {
    "baseline": {"compand": None, "learnable": None, "ab": None},
    "wc": {"compand": "arctan", "learnable": None, "ab": "table"},
    "wc-learnable": {"compand": "arctan", "learnable": "fine", "ab": "init"},
    "pp": {"compand": "powerprop", "learnable": None, "ab": None},
    "wn": {"compand": "weightnorm", "learnable": None, "ab": None},
    # Table VII: the paper grid-searched a, b per net but does not report them; the preset's
    # Table I pair is the starting point (run `wcviz sweep` to search them).
    "arsinh": {"compand": "arsinh", "learnable": None, "ab": "table"},
    "erf": {"compand": "erf", "learnable": None, "ab": "table"},
}
LEARNABLE_INIT = (0.5, 1.0)  # Sec. IV-E: best init of fine learnable WC, from a, b ∈ {0.5, 1.0}
POWERPROP_ALPHA = 2.0  # not given in the paper; Powerpropagation's common choice

# ----------------------------------------------------------------------------- recipes

#: Named training recipes of Sec. IV (SGD, momentum 0.9, lr 0.1 everywhere).
RECIPES: dict[str, dict[str, Any]] = {
    # ResNet18/34/50 on CIFAR-10 (as in He et al.): ×0.1 at 90, 136; wd 1e-4.
    "cifar-resnet": {"epochs": 200, "batch_size": 128, "lr": 0.1, "milestones": (90, 136),
                     "gamma": 0.1, "weight_decay": 1e-4},
    # Every net on CIFAR-100, and VGG-BN on both (as in Zagoruyko & Komodakis): ×0.2 at 60,
    # 120, 160; wd 5e-4.
    "cifar-wrn": {"epochs": 200, "batch_size": 128, "lr": 0.1, "milestones": (60, 120, 160),
                  "gamma": 0.2, "weight_decay": 5e-4},
    # TinyImageNet: 300 epochs, ×0.1 at 75/150/225, wd 1e-4, batch 128.
    "tinyimagenet": {"epochs": 300, "batch_size": 128, "lr": 0.1, "milestones": (75, 150, 225),
                     "gamma": 0.1, "weight_decay": 1e-4},
    # ImageNet: as TinyImageNet with batch 256 (4 GPUs in the paper).
    "imagenet": {"epochs": 300, "batch_size": 256, "lr": 0.1, "milestones": (75, 150, 225),
                 "gamma": 0.1, "weight_decay": 1e-4},
    # The offline demo (not in the paper): SGD without decay on the 8×8 digits, so the
    # baseline's first-layer weights are free to grow and WC's bound aπ/2 shows. lr 0.02: at
    # 0.03 and above the learnable a of this BN-free net collapses to its floor (and at 0.1 the
    # baseline itself diverges), measured on seed 0; the same lr for all three methods.
    "digits": {"epochs": 20, "batch_size": 32, "lr": 0.02, "milestones": (), "gamma": 0.1,
               "weight_decay": 0.0},
}

# ----------------------------------------------------------------------------- THE table

_C10, _C100 = ("baseline", "wc", "wc-learnable", "pp", "wn", "arsinh", "erf"), \
    ("baseline", "wc", "pp", "wn", "arsinh", "erf")
_BW = ("baseline", "wc")

#: preset -> (model, dataset, recipe, dropout, Table I's (a, b) for WC, paper's methods, tables)
#: dropout None = the model has none. Tables: where the preset's results are in the paper.
PRESET_TABLE: dict[str, tuple] = {
    "cifar10-resnet18": ("resnet18", "cifar10", "cifar-resnet", None, (1.0, 0.6), _C10, "I,II,VI,VII"),
    "cifar10-resnet34": ("resnet34", "cifar10", "cifar-resnet", None, (0.8, 0.5), _C10, "I,II,VI,VII"),
    "cifar10-resnet50": ("resnet50", "cifar10", "cifar-resnet", None, (1.0, 0.6), _C10, "I,II,VI,VII"),
    "cifar100-resnet18": ("resnet18", "cifar100", "cifar-wrn", None, (0.6, 0.6), _C100, "I,III,VII"),
    "cifar100-resnet34": ("resnet34", "cifar100", "cifar-wrn", None, (0.7, 0.8), _C100, "I,III,VII"),
    "cifar100-resnet50": ("resnet50", "cifar100", "cifar-wrn", None, (1.0, 0.8), _C100, "I,III,VII"),
    "cifar10-vgg16_bn": ("vgg16_bn", "cifar10", "cifar-wrn", 0.5, (0.7, 0.7), _BW, "I,II"),
    "cifar100-vgg16_bn": ("vgg16_bn", "cifar100", "cifar-wrn", 0.5, (0.7, 1.0), _BW, "I,III"),
    "cifar10-vgg19_bn": ("vgg19_bn", "cifar10", "cifar-wrn", 0.5, (0.5, 0.7), _BW, "I,II"),
    "cifar100-vgg19_bn": ("vgg19_bn", "cifar100", "cifar-wrn", 0.5, (0.7, 0.8), _BW, "I,III"),
    "cifar100-wrn28_10": ("wrn28_10", "cifar100", "cifar-wrn", 0.3, (0.7, 0.7), _BW, "III"),
    "tinyimagenet-resnet50": ("resnet50_imagenet", "tinyimagenet", "tinyimagenet", None,
                              (0.7, 0.8), _BW, "IV"),
    "imagenet-resnet50": ("resnet50_imagenet", "imagenet", "imagenet", None, (0.6, 0.7), _BW, "V"),
    # Not in the paper: the offline demo on scikit-learn's digits. a = 0.5 caps |w| < 0.785.
    "digits-cnn": ("digits_cnn", "digits", "digits", None, (0.5, 0.5), ("baseline", "wc",
                                                                         "wc-learnable"), "demo"),
}


# ----------------------------------------------------------------------------- the config


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

    EXECUTION = ("device", "amp", "channels_last", "compile", "loader", "workers", "data_root",
                 "download", "progress")

    def recipe(self) -> dict[str, Any]:
        """The fields that define the experiment (stored in config.json, checked on resume)."""
        out = dataclasses.asdict(self)
        for name in self.EXECUTION:
            out.pop(name)
        out["milestones"] = list(out["milestones"])
        return out

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}


def _coerce(name: str, text: str) -> Any:
    """Parse a ``--set name=value`` string by the field's declared type."""
    kind = FIELD_TYPES[name]
    if text.lower() in ("none", "null") and "None" in kind:
        return None
    try:
        if kind.startswith("bool"):
            if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("tuple"):
            return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise WcvizError(f"bad value {text!r} for {name} (expects {kind})") from None
    return text


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


def _check_name(kind: str, name: str, choices) -> None:
    if name not in choices:
        raise WcvizError(f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}")


def resolve(preset: str, method: str = "baseline", **overrides) -> RunConfig:
    """The :class:`RunConfig` of a preset row, with overrides applied.

    Args:
        preset: a key of :data:`PRESET_TABLE`.
        method: a key of :data:`METHODS`.
        **overrides: any :class:`RunConfig` field.

    Returns:
        The resolved config.

    Raises:
        WcvizError: unknown preset, method or field, or a value of the wrong kind.
    """
    _check_name("preset", preset, PRESET_TABLE)
    _check_name("method", method, METHODS)
    model, dataset, recipe, dropout, ab, _, _ = PRESET_TABLE[preset]
    spec = METHODS[method]
    a, b = {"table": ab, "init": LEARNABLE_INIT, None: (None, None)}[spec["ab"]]
    base = dict(preset=preset, model=model, dataset=dataset, method=method, a=a, b=b,
                alpha=POWERPROP_ALPHA if method == "pp" else None, dropout=dropout,
                **RECIPES[recipe])
    unknown = [k for k in overrides if k not in FIELD_TYPES]
    if unknown:
        raise WcvizError(f"unknown setting(s) {', '.join(unknown)}; choose from: "
                         f"{', '.join(FIELD_TYPES)}")
    base.update(overrides)
    base["milestones"] = tuple(base["milestones"])
    return RunConfig(**base)


def check_config(cfg: RunConfig) -> None:
    """Validate names and values early, with one clear line per mistake."""
    from training.datasets import DATASETS
    from training.models import MODELS

    _check_name("model", cfg.model, MODELS)
    _check_name("dataset", cfg.dataset, DATASETS)
    _check_name("method", cfg.method, METHODS)
    _check_name("optimizer", cfg.optimizer, ("sgd", "adam", "adamw"))
    _check_name("loader", cfg.loader, ("auto", "tensor", "dataloader"))
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise WcvizError(f"epochs and batch_size must be >= 1, got {cfg.epochs}, {cfg.batch_size}")
    if not cfg.lr > 0:
        raise WcvizError(f"lr must be > 0, got {cfg.lr}")
    if cfg.workers < 0:
        raise WcvizError(f"workers must be >= 0 (0: load in the main process), got {cfg.workers}")
    if METHODS[cfg.method]["ab"] is not None:
        for name in ("a", "b"):
            value = getattr(cfg, name)
            if value is None or not value > 0:
                raise WcvizError(f"{name} must be a positive number for method {cfg.method!r}, "
                                 f"got {value!r}; e.g. --{name} 0.7")


def run_name(cfg: RunConfig) -> str:
    """A readable run id: ``<preset>_<method>[_a<a>_b<b>]_s<seed>``, e.g.
    ``cifar10-resnet18_wc_a1.0_b0.6_s0``; sweeps read back as a table from these names."""
    parts = [cfg.preset, cfg.method]
    if METHODS[cfg.method]["ab"] is not None:
        parts += [f"a{_num(cfg.a)}", f"b{_num(cfg.b)}"]
    parts.append(f"s{cfg.seed}")
    return "_".join(parts)


def _num(x: float) -> str:
    """1.0 -> "1.0", 0.6 -> "0.6", 0.55 -> "0.55" (one decimal at least, no float noise)."""
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"


def preset_rows() -> list[dict[str, Any]]:
    """One dict per preset (for ``--list-presets`` and tests)."""
    rows = []
    for name, (model, dataset, recipe, dropout, ab, methods, tables) in PRESET_TABLE.items():
        r = RECIPES[recipe]
        rows.append(dict(preset=name, model=model, dataset=dataset, methods=methods,
                         a=ab[0], b=ab[1], dropout=dropout, tables=tables, **r))
    return rows


def format_presets() -> str:
    """The preset table as aligned text."""
    head = ("preset", "model", "dataset", "ep", "bs", "lr", "sched", "wd", "drop", "WC a,b",
            "methods (paper tables)")
    lines = [head]
    for r in preset_rows():
        sched = "×{:g}@{}".format(r["gamma"], "/".join(map(str, r["milestones"]))) \
            if r["milestones"] else "const"
        lines.append((r["preset"], r["model"], r["dataset"], str(r["epochs"]),
                      str(r["batch_size"]), f"{r['lr']:g}", sched, f"{r['weight_decay']:g}",
                      "-" if r["dropout"] is None else f"{r['dropout']:g}",
                      f"{_num(r['a'])},{_num(r['b'])}", f"{' '.join(r['methods'])} ({r['tables']})"))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]
    text.append("")
    text.append("All: SGD momentum 0.9, 9/1 train/val split. --method picks the row; "
                f"wc-learnable starts at a={LEARNABLE_INIT[0]}, b={LEARNABLE_INIT[1]} (fine); "
                f"pp uses alpha={POWERPROP_ALPHA:g}; arsinh/erf start from the WC pair "
                "(the paper does not report theirs).")
    return "\n".join(text)
