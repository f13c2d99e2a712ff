"""wcviz: weight-distribution analysis for PyTorch around the weight compander.

Public API (see README.md):

* :func:`compand` / :func:`bake`: reparametrize weights (conv, linear, attention, HF Conv1D;
  see :mod:`wcviz.layers`) as w = Ψ(v), and undo it.
* :func:`build_optimizer`: SGD/Adam/AdamW with the paper's decay and modified-step rules.
* :class:`Recorder`: exact per-layer weight statistics into a crash-safe Zarr run store.
* :func:`open_run` / :func:`open_runs`: read run stores as xarray Datasets.

Heavy parts (torch, zarr, matplotlib) are imported on first use, so ``import wcviz`` and
light modules such as the dashboard's data layer do not pay for what they do not use.
"""

from __future__ import annotations

from importlib import import_module

from wcviz.errors import WcvizError

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY = {
    "compand": "wcviz.compander",
    "bake": "wcviz.compander",
    "build_optimizer": "wcviz.optim",
    "Recorder": "wcviz.recorder",
    "open_run": "wcviz.store",
    "open_runs": "wcviz.store",
}

__all__ = ["WcvizError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wcviz' has no attribute {name!r}")
