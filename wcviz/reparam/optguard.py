"""No silent wrong training: an optimizer that does not step what ``compand`` made is refused.

torch's parametrization keeps the layer's old ``weight`` Parameter object as the new stored v,
so an optimizer built *before* ``compand`` would go on stepping v: plain Adam without the
paper's modified step, weight decay on v instead of w, and learnable a, b never trained (they
are not in it). ``compand`` therefore gives v a Parameter of its own and *retires* the old
one (:func:`retire`); a global optimizer step pre-hook (:func:`install`) then checks, on each
optimizer's first step (and again after any later ``compand``, ``bake`` or ``copy.deepcopy`` of
a companded model), that it holds

* no retired weight (the optimizer was built before ``compand``), and
* the learnable a, b of every companded v it steps;

and raises a :class:`WcvizError` saying to build the optimizer after ``compand`` otherwise,
before anything is stepped. A torch optimizer (not :func:`wcviz.build_optimizer`'s) built after
``compand`` works, but gets one warning when it misses the paper's rules: an adaptive one
(Adam, ...) steps a companded v without the modified step, and ``weight_decay`` decays v
instead of w (fixed a, b) or decays the learnable a, b (the paper never decays them).

The companded v are found through the live Compander objects (:func:`adopt`), not remembered
by tensor identity, so a ``copy.deepcopy`` of a companded model (whose Companders register
themselves as they are rebuilt) and a v replaced by ``load_state_dict(assign=True)`` are
guarded too.

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

# Weights replaced by compand -> layer name; every Compander of a model (deepcopies included).
_RETIRED: WeakIdKeyDictionary = WeakIdKeyDictionary()
_COMPANDERS: "weakref.WeakSet" = weakref.WeakSet()
#: Bumped by every compand, bake and copy: optimizers checked before are checked again.
_generation = 0
_checked: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_hook = None

_FIX = "build the optimizer after wcviz.compand(model), e.g. wcviz.build_optimizer(model, ...)"


def retire(layer: str, old: Tensor) -> None:
    """Record that ``compand`` replaced ``old`` (no longer used by the model) on ``layer``."""
    global _generation
    install()
    _RETIRED[old] = layer
    _generation += 1


def adopt(compander) -> None:
    """Guard the v of ``compander`` (a :class:`~wcviz.reparam.compander.Compander`).

    No optimizer can hold that v yet (it is a new Parameter), so none is checked again.
    """
    install()
    _COMPANDERS.add(compander)


def forget(compander) -> None:
    """``bake`` made ``compander``'s v a plain weight again: no rule applies to it any more."""
    global _generation
    _COMPANDERS.discard(compander)
    _generation += 1


def _live() -> WeakIdKeyDictionary:
    """Every companded v now in use -> its Compander."""
    live = WeakIdKeyDictionary()
    for comp in list(_COMPANDERS):
        v = comp.stored()
        if v is not None:
            live[v] = comp
    return live


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
    """Raise a WcvizError if ``optimizer`` cannot train what ``compand`` made; warn once if a
    torch optimizer misses the paper's rules (see the module docstring)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    held = WeakIdKeyDictionary()
    for p in params:
        held[p] = True
    live = _live()
    known = getattr(optimizer, "_companders", None)  # set by wcviz.build_optimizer
    for p in params:
        if p in _RETIRED:
            raise WcvizError(f"this optimizer was built before wcviz.compand: it holds the old "
                             f"weight of layer {_RETIRED[p]!r}, which the companded model no "
                             f"longer uses; {_FIX}")
        comp = live.get(p)
        if comp is None:
            continue
        if known is not None and p not in known:
            raise WcvizError(f"this wcviz optimizer steps the companded weight of layer "
                             f"{comp.layer!r} as a plain weight (it was built before compand); "
                             f"{_FIX}")
        if any(s not in held for s in comp.scale_parameters()):
            raise WcvizError(f"the learnable a, b of layer {comp.layer!r} are not in this "
                             f"optimizer, so they would never train; {_FIX}")
    if known is None:
        _warn_missed_rules(optimizer, live)


def _warn_missed_rules(optimizer, live: WeakIdKeyDictionary) -> None:
    """One warning naming what a torch optimizer does against the paper's rules (if anything)."""
    scales = WeakIdKeyDictionary()
    for comp in live.values():
        for s in comp.scale_parameters():
            scales[s] = comp.layer
    missed = []
    for group in optimizer.param_groups:
        ps = group["params"]
        mine = [live[p] for p in ps if p in live]
        if mine and not isinstance(optimizer, torch.optim.SGD):
            missed.append(f"steps the companded weight of layer {mine[0].layer!r} without the "
                          f"paper's modified step")
        if not group.get("weight_decay"):
            continue
        fixed = [c for c in mine if c.learnable is None]
        if fixed:
            missed.append(f"decays the stored v of layer {fixed[0].layer!r} instead of "
                          f"w = Ψ(v) (weight_decay)")
        decayed = [scales[p] for p in ps if p in scales]
        if decayed:
            missed.append(f"decays the learnable a, b of layer {decayed[0]!r} (weight_decay), "
                          f"which the paper never decays")
    if missed:
        missed = list(dict.fromkeys(missed))  # one clause of each kind
        warnings.warn(f"{type(optimizer).__name__} {'; it '.join(missed)}; use "
                      f"wcviz.build_optimizer(model, ...) for the paper's rules", RuntimeWarning,
                      stacklevel=5)
