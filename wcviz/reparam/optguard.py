"""No silent wrong training: an optimizer that does not step what ``compand`` made is refused.

torch's parametrization keeps the layer's old ``weight`` Parameter object as the new stored v,
so an optimizer built *before* ``compand`` would go on stepping v: plain Adam without the
paper's modified step, weight decay on v instead of w, and learnable a, b never trained (they
are not in it). ``compand`` therefore gives v a Parameter of its own and *retires* the old
one (:func:`watch`); a global optimizer step pre-hook (:func:`install`) then checks, on each
optimizer's first step (and again after any later ``compand``), that it holds

* no retired weight (the optimizer was built before ``compand``), and
* the learnable a, b of every companded v it steps;

and raises a :class:`WcvizError` saying to build the optimizer after ``compand`` otherwise,
before anything is stepped. A torch adaptive optimizer (Adam, ...) stepping a companded v,
built after ``compand``, works but without the paper's modified step: it gets one warning.

Cost: one dictionary lookup per step once an optimizer has been checked.
"""

from __future__ import annotations

import warnings
import weakref

import torch
from torch import Tensor
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.weak import WeakIdKeyDictionary

from wcviz.errors import WcvizError

# Weights replaced by compand -> layer name; companded v -> (layer name, its Compander).
_RETIRED: WeakIdKeyDictionary = WeakIdKeyDictionary()
_LIVE: WeakIdKeyDictionary = WeakIdKeyDictionary()
#: Bumped by every compand: optimizers checked before it are checked again at their next step.
_generation = 0
_checked: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_hook = None

_FIX = "build the optimizer after wcviz.compand(model), e.g. wcviz.build_optimizer(model, ...)"


def watch(layer: str, old: Tensor, new: Tensor | None, compander=None) -> None:
    """Record that ``compand`` replaced ``old`` (no longer used by the model) by ``new`` (v)."""
    global _generation
    install()
    if old is not new:
        _RETIRED[old] = layer
    if new is not None and compander is not None:
        _LIVE[new] = (layer, compander)
    _generation += 1


def forget(param: Tensor) -> None:
    """``bake`` made ``param`` (a v) a plain weight again: no rule applies to it any more."""
    global _generation
    _LIVE.pop(param, None)
    _generation += 1


def install() -> None:
    """Register the global optimizer step pre-hook (once per process)."""
    global _hook
    if _hook is None:
        _hook = register_optimizer_step_pre_hook(_check_step)


def _check_step(optimizer, args, kwargs) -> None:
    key = (_generation, len(optimizer.param_groups))
    if _checked.get(optimizer) == key:
        return
    check_optimizer(optimizer)
    _checked[optimizer] = key


def check_optimizer(optimizer) -> None:
    """Raise a WcvizError if ``optimizer`` cannot train what ``compand`` made (see module doc)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    held = WeakIdKeyDictionary()
    for p in params:
        held[p] = True
    adaptive_warned = False
    for p in params:
        if p in _RETIRED:
            raise WcvizError(f"this optimizer was built before wcviz.compand: it holds the old "
                             f"weight of layer {_RETIRED[p]!r}, which the companded model no "
                             f"longer uses; {_FIX}")
        if p not in _LIVE:
            continue
        layer, comp = _LIVE[p]
        known = getattr(optimizer, "_companders", None)
        if known is not None and p not in known:
            raise WcvizError(f"this wcviz optimizer steps the companded weight of layer "
                             f"{layer!r} as a plain weight (it was built before compand); {_FIX}")
        missing = [s for s in comp.scale_parameters() if s not in held]
        if missing:
            raise WcvizError(f"the learnable a, b of layer {layer!r} are not in this optimizer, "
                             f"so they would never train; {_FIX}")
        if known is None and not adaptive_warned and not isinstance(optimizer, torch.optim.SGD):
            adaptive_warned = True
            warnings.warn(f"{type(optimizer).__name__} steps the companded weight of layer "
                          f"{layer!r} without the paper's modified step; use "
                          f"wcviz.build_optimizer(model, ...) for it", RuntimeWarning,
                          stacklevel=4)
