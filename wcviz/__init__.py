"""wcviz: weight-distribution analysis for PyTorch around the weight compander.

Public API (the names below stay importable from ``wcviz`` itself):

* :func:`compand` / :func:`bake`: reparametrize weights (conv, linear, attention, HF Conv1D;
  see :mod:`wcviz.reparam.layers`) as w = Ψ(v), and undo it.
* :func:`build_optimizer`: SGD/Adam/AdamW with the paper's decay and modified-step rules.
* :class:`Recorder`: exact per-layer weight statistics into a crash-safe Zarr run store.
* :func:`open_run` / :func:`open_runs`: read run stores as xarray Datasets.

The library is built in layers, each a sub-package that imports only from the layers below it:

* :mod:`wcviz.reparam`: the mathematics (Ψ per method, compand/bake, optimizers);
* :mod:`wcviz.record`: measuring and storing (statistics, the run folder, the store, Recorder);
* :mod:`wcviz.report`: deciding and drawing (analysis, claims, seeds, plots, tables);
* :mod:`wcviz.integrations` and :mod:`wcviz.cli` on top; :mod:`wcviz.training` and
  :mod:`wcviz.app` (the repository's ``training/`` and ``app/`` folders) build on all of them.

:mod:`wcviz.errors` and :mod:`wcviz.extras` (the optional extras) sit below every layer.
``wcviz.plots`` and ``wcviz.analysis`` are shortcuts to :mod:`wcviz.report.plots` and
:mod:`wcviz.report.analysis`. Heavy parts (torch, zarr, matplotlib) are imported on first use,
so ``import wcviz`` costs next to nothing.
"""

from __future__ import annotations

from importlib import import_module

from wcviz.errors import WcvizError

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY = {
    "compand": "wcviz.reparam.compander",
    "bake": "wcviz.reparam.compander",
    "build_optimizer": "wcviz.reparam.optim",
    "Recorder": "wcviz.record.recorder",
    "open_run": "wcviz.record.reader",
    "open_runs": "wcviz.record.reader",
}

# attribute -> module it names: the layers, and the report modules users reach most.
_MODULES = {
    "reparam": "wcviz.reparam",
    "record": "wcviz.record",
    "report": "wcviz.report",
    "integrations": "wcviz.integrations",
    "plots": "wcviz.report.plots",
    "analysis": "wcviz.report.analysis",
    "claims": "wcviz.report.claims",
}

__all__ = ["WcvizError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _MODULES:
        return import_module(_MODULES[name])
    raise AttributeError(f"module 'wcviz' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY, *_MODULES})
