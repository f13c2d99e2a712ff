"""Which weights wcviz reparametrizes and records: the layer policy, in one place.

By default wcviz tracks the weight matrices of

* ``nn.Conv1d/2d/3d`` and ``nn.Linear`` (their ``weight``; this includes the ``out_proj`` of
  ``nn.MultiheadAttention``, a Linear),
* ``nn.MultiheadAttention``: the packed Q/K/V ``in_proj_weight`` as ONE tensor, or
  ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when the key/value sizes differ,
* Hugging Face's ``Conv1D`` (GPT-2's attention and MLP), recognised by its class name and its
  ``nf`` attribute, so transformers is never imported,

and never norm layers or biases (they are 1-D). Any other parameter with two or more
dimensions (``nn.Embedding``, ``nn.ConvTranspose2d``, a ViT's ``pos_embed``) is taken when an
``include=`` pattern names it. Nothing with two or more dimensions is left out silently:
:func:`left_out` lists what was not taken and why, and ``compand`` and ``Recorder`` warn with
the count and the first few names.

Names: a tracked tensor is named after its module when it is the module's ``weight`` (``"fc"``,
``"layer1.0.conv1"``, as before) and ``<module>.<parameter>`` otherwise
(``"encoder.layers.0.self_attn.in_proj_weight"``). ``include``/``exclude`` glob patterns match
either that name or the full parameter name (``"fc.weight"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterable, Sequence

from torch import Tensor, nn
from torch.nn.utils import parametrize

from wcviz.errors import WcvizError

#: Module types whose ``weight`` is tracked by default (not norm layers, not biases).
TRACKED_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
#: nn.MultiheadAttention's projection weights, packed or separate (the unused ones are None).
ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
#: How many left-out names a warning shows before "...".
SHOWN = 3
#: Reasons that are the user's own choice (include=/exclude=), so not warned about.
EXCLUDED, NOT_INCLUDED = "excluded by exclude=", "not matched by include="


@dataclass(frozen=True)
class Target:
    """One tracked weight tensor: ``getattr(module, attr)``, recorded as ``name``."""

    name: str  # the recorded layer name (see the module docstring)
    param_name: str  # the full parameter name, e.g. "fc.weight"
    module: nn.Module
    attr: str  # the parameter's attribute on ``module``
    kind: str  # "Conv2d", "Linear", "MultiheadAttention", "Conv1D", "Embedding", ...

    def tensor(self) -> Tensor:
        """The current weight (Ψ(v) when the tensor is reparametrized)."""
        return getattr(self.module, self.attr)

    def stored(self) -> Tensor:
        """The stored parameter (v when reparametrized): its shape and device, without
        computing Ψ(v)."""
        return stored_tensor(self.module, self.attr)


@dataclass(frozen=True)
class LeftOut:
    """A tensor with two or more dimensions that was not tracked, and why."""

    name: str  # the full parameter name
    shape: tuple[int, ...]
    reason: str  # "Embedding: not tracked by default", "excluded by include/exclude", ...

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def is_hf_conv1d(module: nn.Module) -> bool:
    """Whether ``module`` is Hugging Face's ``Conv1D`` (a Linear with a transposed weight)."""
    return _class(module).__name__ == "Conv1D" and hasattr(module, "nf") and \
        isinstance(getattr(module, "weight", None), Tensor)


def default_attrs(module: nn.Module) -> tuple[str, ...]:
    """The parameter names of ``module`` the default policy tracks (may be empty)."""
    if isinstance(module, TRACKED_TYPES) or is_hf_conv1d(module):
        return ("weight",)
    if isinstance(module, nn.MultiheadAttention):
        return tuple(a for a in ATTENTION_WEIGHTS if getattr(module, a, None) is not None)
    return ()


def _class(module: nn.Module) -> type:
    """The module's own class (not torch's generated ``Parametrized<Class>``)."""
    return parametrize.type_before_parametrizations(module)


def layer_kind(module: nn.Module) -> str:
    """A short kind label, e.g. ``"Conv2d"``, ``"Linear"``, ``"MultiheadAttention"``."""
    for kind in TRACKED_TYPES:
        if isinstance(module, kind):
            return kind.__name__
    return _class(module).__name__


def _own_tensors(module: nn.Module) -> list[str]:
    """Names of the tensors ``module`` itself holds as parameters, reparametrized ones too."""
    names = [n for n, p in module._parameters.items() if p is not None]
    if parametrize.is_parametrized(module):
        names += [n for n in module.parametrizations.keys() if n not in names]
    return names


def _candidates(model: nn.Module) -> list[Target]:
    """Every parameter with >= 2 dimensions, once per tensor, in model order."""
    out = []
    for mname, module in model.named_modules():
        if isinstance(module, parametrize.ParametrizationList):
            continue  # the raw v behind a parametrized weight: reported as that weight
        for attr in _own_tensors(module):
            tensor = stored_tensor(module, attr)  # not getattr: that would compute Ψ(v)
            if not isinstance(tensor, Tensor) or tensor.dim() < 2:
                continue
            full = f"{mname}.{attr}" if mname else attr
            name = mname if attr == "weight" else full
            out.append(Target(name, full, module, attr, layer_kind(module)))
    return out


def _matches(names: Iterable[str], patterns) -> bool:
    if patterns is None:
        return False
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(fnmatchcase(n, p) for n in names for p in patterns)


def _split(model: nn.Module, include, exclude) -> tuple[list[Target], list[LeftOut]]:
    """(tracked targets, left-out tensors) under the policy and the user's patterns."""
    taken, left = [], []
    seen: dict[int, str] = {}  # tensor id -> the name it is tracked under
    for t in _candidates(model):
        raw = t.stored()
        reason = (f"same tensor as {seen[id(raw)]}" if id(raw) in seen else
                  _reason(t, include, exclude))
        if reason is None:
            taken.append(t)
            seen[id(raw)] = t.param_name
        else:
            left.append(LeftOut(t.param_name, tuple(raw.shape), reason))
    return taken, left


def _reason(t: Target, include, exclude) -> str | None:
    """Why ``t`` is not tracked, or None when it is."""
    names = (t.name, t.param_name)
    if _matches(names, exclude):
        return EXCLUDED
    if include is not None:
        return None if _matches(names, include) else NOT_INCLUDED
    if t.attr in default_attrs(t.module):
        return None
    return f"{t.kind}: not tracked by default; name it in include="


def stored_tensor(module: nn.Module, attr: str) -> Tensor:
    """The stored parameter behind ``module.<attr>`` (v for a reparametrized one, the
    direction v of weight norm; same shape as the weight), for shapes, devices and tying
    checks without computing Ψ(v)."""
    if parametrize.is_parametrized(module, attr):
        plist = module.parametrizations[attr]
        return plist.original if hasattr(plist, "original") else plist.original1
    return module._parameters[attr]


def tracked_weights(model: nn.Module, include=None, exclude=None) -> list[Target]:
    """The weight tensors wcviz tracks in ``model``, in model order (see the module docstring).

    Args:
        model: any module.
        include: glob pattern(s) on layer or parameter names (``"layer1.*"``,
            ``"*.in_proj_weight"``, ``"transformer.wte"``): only matches are kept, and any
            tensor with >= 2 dimensions that matches is taken (``nn.Embedding`` too).
        exclude: glob pattern(s) whose matches are dropped (applied after ``include``).
    """
    return _split(model, include, exclude)[0]


def tracked_layers(model: nn.Module, include=None, exclude=None) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the tracked tensors that are a module's ``weight`` (conv, linear,
    HF Conv1D, included embeddings); see :func:`tracked_weights` for all of them."""
    return [(t.name, t.module) for t in tracked_weights(model, include, exclude)
            if t.attr == "weight"]


def left_out(model: nn.Module, include=None, exclude=None) -> list[LeftOut]:
    """Every parameter with >= 2 dimensions that :func:`tracked_weights` does not take, and why.

    A ``Recorder``'s warning shows the first few of these (all: ``rec.left_out``);
    ``compand``'s list (``model.wcviz_compand.left_out``) adds the tied weights it refused.
    """
    return _split(model, include, exclude)[1]


def warn_left_out(who: str, items: Sequence[LeftOut], hint: str) -> None:
    """One warning line naming how many tensors ``who`` left out and the first few (those the
    user's include=/exclude= dropped are not counted: that was asked for), then ``hint``: where
    the whole list is and how to take them (e.g. ``"rec.left_out lists them; ..."``)."""
    items = [x for x in items if x.reason not in (EXCLUDED, NOT_INCLUDED)]
    if not items:
        return
    shown = ", ".join(str(x) for x in items[:SHOWN]) + (", ..." if len(items) > SHOWN else "")
    warnings.warn(f"{who} left out {len(items)} weight tensor(s) with >= 2 dimensions: "
                  f"{shown}; {hint}", UserWarning, stacklevel=3)


def tied_names(model: nn.Module) -> dict[int, list[str]]:
    """Tensor id -> every parameter name it is reachable under (tied weights have several)."""
    out: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        out.setdefault(id(p), []).append(name)
    return out


def select_named(model: nn.Module, names: Sequence[str]) -> list[Target]:
    """Targets for explicit names: a module (its tracked weights, or any >= 2-D tensor of its
    own), a layer name as recorded, or a full parameter name.

    Raises:
        WcvizError: an unknown name, a module without a weight tensor, or repeated names.
    """
    if isinstance(names, str):
        names = [names]
    cands = _candidates(model)
    modules = dict(model.named_modules())
    out, missing, empty = [], [], []
    for name in names:
        direct = [t for t in cands if name in (t.name, t.param_name)]
        if direct:
            out += direct
        elif name in modules:
            own = [t for t in cands if t.module is modules[name]]
            preferred = [t for t in own if t.attr in default_attrs(t.module)]
            (out.extend(preferred or own) if own else empty.append(name))
        else:
            missing.append(name)
    if missing:
        raise WcvizError(f"unknown layer name(s) {missing}; see model.named_modules() or "
                         f"wcviz.reparam.layers.tracked_weights(model) for the names")
    if empty:
        raise WcvizError(f"module(s) {empty} have no weight tensor to record (>= 2 dimensions)")
    if len({t.param_name for t in out}) != len(out):
        raise WcvizError(f"layer names must be distinct, got {list(names)}")
    return out
