"""``compand`` and ``bake``: the weight compander and its variants as torch parametrizations.

``compand(model)`` rewrites every weight of the layer policy (:mod:`wcviz.reparam.layers`: conv,
linear, attention projections, HF Conv1D; embeddings by ``include=``) as w = Ψ(v) through
:mod:`torch.nn.utils.parametrize`. The new parameter v is initialised as Ψ⁻¹(w), so the
companded network computes exactly the function it computed before. ``bake(model)`` writes
Ψ(v) back as plain weights.

Learnable scales (the paper's Sec. III-B):

* ``learnable="fine"``: one (a, b) pair per layer, parameters ``<layer>.parametrizations.weight.0.a``
  and ``...b``.
* ``learnable="coarse"``: one pair for the whole network, registered once, on the first
  companded layer (``<first layer>.parametrizations.weight.0.a`` / ``...b``); every other
  layer's parametrization refers to the same pair without registering it, so it appears once in
  ``named_parameters()``, ``state_dict()`` and the optimizer. (Not on the root module: adding a
  submodule to an ``nn.Sequential`` would make it a layer of the sequence.)

a and b stay positive: the parametrization uses ``max(stored value, min_scale)`` (default
1e-3) in its forward pass, and :func:`wcviz.build_optimizer` projects the stored values back
onto ``[min_scale, ∞)`` after every step, so plain SGD on a, b (as in the paper) never makes
them non-positive. The floor passes the gradient straight through (a plain ``clamp`` has zero
gradient at the bound, so a scale projected onto it would be stuck there for good).

The settings travel with the weights: each Compander's ``state_dict`` entry ``_extra_state``
holds its method and fixed a, b (or alpha), or its method and ``learnable`` kind (learnable a, b
are parameters, so their values are in the ``state_dict`` already). Loading into a model
companded with other settings raises one line naming both (like torch's own load errors, it
comes after the tensors met before it were copied: the model is not usable until a load
succeeds); a ``state_dict`` saved by a wcviz without this entry loads as it did then.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wcviz.reparam import optguard
from wcviz.errors import WcvizError
from wcviz.reparam.layers import (LeftOut, Target, left_out, stored_tensor, tied_names, tracked_weights,
                          warn_left_out)
from wcviz.reparam.psi import ALL_METHODS, POWERPROP_ALPHA, get_method

LEARNABLE = (None, "fine", "coarse")
#: Fraction of the bound that clipped initial weights are moved to (``clip=True`` only):
#: arctan's inverse is tan, which grows without limit at the bound, so clipping *at* the bound
#: would make v infinite.
CLIP_MARGIN = 0.999


class Compander(nn.Module):
    """The parametrization w = Ψ(v) of one layer's weight for a pointwise method.

    Args:
        method: a key of :data:`wcviz.reparam.psi.METHODS`.
        params: the method's parameters (``a``, ``b`` or ``alpha``); for learnable scales,
            the initial a and b.
        learnable: None, "fine" or "coarse". Learnable a, b are registered here as 0-dim
            parameters ``a`` and ``b``, unless ``owner`` is given.
        owner: for "coarse" layers after the first, the first layer's Compander, whose a, b
            this one reads at every call (kept as a plain attribute, so not registered twice).
        min_scale: floor of learnable a, b in the forward pass (gradient passes through).
        like: the layer's weight, whose dtype and device the learnable a, b take.
    """

    def __init__(self, method: str, params: dict, learnable: str | None = None,
                 owner: Compander | None = None, min_scale: float = 1e-3,
                 like: Tensor | None = None):
        super().__init__()
        self.method = get_method(method)
        self.fixed = {k: float(v) for k, v in params.items()}
        self.min_scale = float(min_scale)
        self.learnable = learnable
        #: the recorded layer name (for messages); set by ``compand``
        self.layer = ""
        #: True once ``bake`` removed this parametrization: v is a plain weight now
        self.baked = False
        # Plain attributes, not submodules. deepcopy maps them to the copies (its memo).
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_plist", None)  # the ParametrizationList holding v
        if learnable is not None and owner is None:
            kw = {} if like is None else {"dtype": like.dtype, "device": like.device}
            self.a = nn.Parameter(torch.tensor(self.fixed["a"], **kw))
            self.b = nn.Parameter(torch.tensor(self.fixed["b"], **kw))

    def _scale_pair(self):
        if self.learnable is None:
            return None
        # Looked up on every call, so parameters replaced by load_state_dict(assign=True) or
        # a dtype conversion are the ones used.
        holder = self if self._owner is None else self._owner
        return holder.a, holder.b

    def params(self) -> dict:
        """The method's current parameters (learnable a, b floored at ``min_scale``)."""
        pair = self._scale_pair()
        if pair is None:
            return self.fixed
        a, b = pair
        return {"a": _floor(a, self.min_scale), "b": _floor(b, self.min_scale)}

    def scale_parameters(self) -> list[nn.Parameter]:
        """The learnable a, b parameters this layer uses ([] when fixed)."""
        pair = self._scale_pair()
        return [] if pair is None else list(pair)

    def forward(self, v: Tensor) -> Tensor:
        w = self.method.psi(v, **self.params())
        if (self.learnable is None and isinstance(v, nn.Parameter) and torch.is_grad_enabled()
                and not torch.compiler.is_compiling()):
            # A training forward: keep Ψ(v) for the optimizer's weight decay (``psi_of``),
            # which would otherwise compute it again (the arctan is the costly part of it).
            wd = w.detach()
            object.__setattr__(self, "_last", (v, v._version, v.data_ptr(), wd, wd._version))
        return w

    def psi_of(self, v: Tensor) -> Tensor:
        """Ψ(v) without autograd: the last training forward's value (bitwise the same, and
        forgotten here) when v has not changed since, else computed now."""
        last = self.__dict__.pop("_last", None)
        if (last is not None and last[0] is v and last[1] == v._version
                and last[2] == v.data_ptr() and last[4] == last[3]._version):
            return last[3]
        with torch.no_grad():
            return self.method.psi(v, **self.params())

    def forget(self) -> None:
        """Drop the kept Ψ(v) of the last training forward (frees a copy of the weight)."""
        self.__dict__.pop("_last", None)

    def right_inverse(self, w: Tensor) -> Tensor:
        return self.method.inverse(w, **self.params())

    def grad(self, v: Tensor) -> Tensor:
        """Ψ′(v) at the current parameters (no autograd graph)."""
        with torch.no_grad():
            return self.method.grad(v, **{k: _detach(x) for k, x in self.params().items()})

    def scalar_params(self) -> dict[str, float]:
        """Current parameters as Python floats (for records and messages)."""
        return {k: float(_detach(x)) for k, x in self.params().items()}

    def extra_repr(self) -> str:
        shown = ", ".join(f"{k}={v:g}" for k, v in self.scalar_params().items())
        return f"method={self.method.name}, {shown}, learnable={self.learnable}"

    # ---- the model this parametrization belongs to (for the optimizer guard)

    def attach(self, plist: nn.Module, layer: str) -> None:
        """Called by ``compand`` once registered: ``plist.original`` is this layer's v."""
        object.__setattr__(self, "_plist", plist)
        self.layer = layer
        optguard.adopt(self)

    def stored(self) -> Tensor | None:
        """The v this parametrization maps to w (None once baked or never attached)."""
        plist = self._plist
        return None if plist is None or self.baked else getattr(plist, "original", None)

    def __getstate__(self):
        # The kept Ψ(v) is tied to this v's storage; copies and pickles compute it afresh.
        return {k: x for k, x in super().__getstate__().items() if k != "_last"}

    def __setstate__(self, state):
        # copy.deepcopy (and pickle) rebuild a Compander here: the copy's v is guarded too.
        super().__setstate__(state)
        if self._plist is not None and not self.baked:
            optguard.adopt(self)

    # ---- the settings travel with the weights (module docstring)

    def setting(self) -> dict:
        """What v needs to mean the same weights: method and fixed parameters, or learnable."""
        if self.learnable is not None:
            return {"method": self.method.name, "learnable": self.learnable}
        return {"method": self.method.name, **self.fixed}

    def get_extra_state(self) -> Tensor:
        # A uint8 tensor of JSON: exact, untouched by .half()/.to(), loadable with
        # weights_only=True and storable by safetensors (Hugging Face checkpoints).
        text = json.dumps(self.setting(), sort_keys=True)
        return torch.tensor(list(text.encode()), dtype=torch.uint8)

    def set_extra_state(self, state) -> None:
        """Nothing to set: ``_load_from_state_dict`` has checked the setting."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        key = prefix + nn.modules.module._EXTRA_STATE_KEY_SUFFIX
        if key in state_dict:
            self._check_setting(_decode_setting(state_dict[key], self.layer or prefix))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if key in missing_keys:  # saved before settings travelled: load as it did then
            missing_keys.remove(key)

    def _check_setting(self, saved: dict) -> None:
        mine = self.setting()
        if saved != mine:
            raise WcvizError(f"cannot load the state_dict of layer {self.layer!r}: it was saved "
                             f"companded with {_describe(saved)}, this model is companded with "
                             f"{_describe(mine)}; compand with the same settings before loading")


def _describe(setting: dict) -> str:
    """``"arctan a=0.5 b=0.3"``, ``"arctan learnable=fine"``, ``"powerprop alpha=2"``."""
    rest = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in sorted(setting.items()) if k != "method")
    return f"{setting.get('method')} {rest}".strip()


def _decode_setting(state, layer: str) -> dict:
    """The setting a ``state_dict`` carries (see :meth:`Compander.get_extra_state`)."""
    try:
        setting = json.loads(bytes(state.detach().cpu().tolist()).decode())
        if isinstance(setting, dict) and "method" in setting:
            return setting
    except (AttributeError, TypeError, ValueError):
        pass
    raise WcvizError(f"cannot load the state_dict of layer {layer!r}: its compander setting "
                     f"(_extra_state) is unreadable; save it again with model.state_dict()")


def _floor(x: Tensor, low: float) -> Tensor:
    """max(x, low) in value, with gradient 1 everywhere (straight through the floor)."""
    return x.detach().clamp(min=low) + (x - x.detach())  # the added term is exactly 0


def _detach(x):
    return x.detach() if isinstance(x, Tensor) else x


@dataclass
class CompandReport:
    """What ``compand`` did, kept on the model as ``model.wcviz_compand``."""

    method: str
    params: dict
    learnable: str | None
    layers: list[str]
    clipped: dict[str, float]  # layer -> fraction of its weights clipped at init
    left_out: list[LeftOut]  # tensors with >= 2 dims not companded, and why

    def as_dict(self) -> dict:
        return {"method": self.method, **self.params, "learnable": self.learnable,
                "layers": list(self.layers), "clipped": dict(self.clipped),
                "left_out": [x.name for x in self.left_out]}


def _check_args(method: str, params: dict, learnable) -> None:
    if method not in ALL_METHODS:
        raise WcvizError(f"unknown method {method!r}; choose one of: {', '.join(ALL_METHODS)}")
    if learnable not in LEARNABLE:
        raise WcvizError(f"learnable must be None, 'fine' or 'coarse', not {learnable!r}")
    if method in ("powerprop", "weightnorm") and learnable is not None:
        raise WcvizError(f"method {method!r} has no a, b to learn; use learnable=None")
    for name in ("a", "b"):
        if name in params and not (math.isfinite(params[name]) and params[name] > 0):
            raise WcvizError(f"{name} must be a positive number, got {params[name]!r}; "
                             f"the compander a·arctan(v/b) needs a > 0 and b > 0")
    if "alpha" in params and not params["alpha"] >= 1:
        raise WcvizError(f"powerprop needs alpha >= 1, got {params['alpha']!r}")


def _check_range(name: str, weight: Tensor, method: str, params: dict, clip: bool) -> None:
    """Fail unless v = Ψ⁻¹(w) of the initial weight (clipped first if ``clip``) is exact.

    Changes nothing, so a failure on a later layer leaves the model untouched.
    """
    meth = get_method(method)
    bound = meth.bound(**params)
    with torch.no_grad():
        absmax = float(weight.abs().max()) if weight.numel() else 0.0
        if absmax >= bound and not clip:
            raise WcvizError(
                f"layer {name!r}: initial weights reach |w| = {absmax:.4g}, outside the range "
                f"of {method} (|w| < {bound:.4g}); raise a, or pass clip=True to clip them")
        if clip and math.isfinite(bound):
            weight = weight.clamp(-CLIP_MARGIN * bound, CLIP_MARGIN * bound)
        error, tolerance = _round_trip_error(meth, weight, params), _tolerance(absmax)
        dtype = str(weight.dtype).removeprefix('torch.')
        if error <= tolerance:
            return
        low = weight.dtype in (torch.bfloat16, torch.float16)
        if low and math.isfinite(error):  # v is finite: the 16-bit dtype cannot hold it
            raise WcvizError(
                f"layer {name!r}: Ψ(Ψ⁻¹(w)) of {method} misses the initial weights by "
                f"{error:.3g} in {dtype}, more than the round-trip tolerance {tolerance:.3g} "
                f"(1e-3 × max(1, |w|max = {absmax:.4g})); compand the model in float32 "
                f"(model.float()) and train in bf16 with autocast")
        hint = ", or pass clip=True" if math.isfinite(bound) and not clip else ""
        raise WcvizError(
            f"layer {name!r}: initial weights reach |w| = {absmax:.4g}, too close to the "
            f"bound {bound:.4g} of {method} (or too large) for Ψ⁻¹(w) in {dtype}; raise "
            f"a{hint}")


def _tolerance(absmax: float) -> float:
    """How far Ψ(Ψ⁻¹(w)) may miss w at compand time (weight units)."""
    return 1e-3 * max(1.0, absmax)


def _round_trip_error(meth, weight: Tensor, params: dict) -> float:
    """max |Ψ(Ψ⁻¹(w)) − w| (weight units); inf when v = Ψ⁻¹(w) is not finite.

    Inside the range on paper is not enough in floating point: next to arctan's bound, w/a
    can round onto π/2 and tan wraps to a huge v of the wrong sign; sinh and erfinv overflow.
    """
    v = meth.inverse(weight, **params)
    if not torch.isfinite(v).all():
        return math.inf
    return float((meth.psi(v, **params) - weight).abs().max()) if weight.numel() else 0.0


def _clip_into_range(name: str, weight: Tensor, bound: float, method: str) -> float:
    """Move initial weights with |w| >= CLIP_MARGIN·bound onto that limit, in place.

    Returns the clipped fraction (0 when nothing was clipped); warns when it is not 0.
    """
    if not math.isfinite(bound):
        return 0.0
    limit = CLIP_MARGIN * bound
    with torch.no_grad():
        outside = weight.abs() >= limit
        fraction = float(outside.float().mean()) if weight.numel() else 0.0
        if not fraction:
            return 0.0
        weight.clamp_(-limit, limit)
    warnings.warn(f"layer {name!r}: clipped {fraction:.3%} of its initial weights to "
                  f"|w| <= {limit:.4g} to fit {method}'s range", stacklevel=3)
    return fraction


def _number(name: str, value, kind=float):
    """``kind(value)``, or a WcvizError naming the parameter (not a bare TypeError)."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise WcvizError(f"{name} must be a number, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        raise WcvizError(f"{name} must be a number, got {value!r}") from None


def _method_params(method: str, a: float, b: float, options: dict) -> dict:
    if method == "powerprop":
        return {"alpha": _number("alpha", options.pop("alpha", POWERPROP_ALPHA))}
    if method == "weightnorm":
        return {"dim": _number("dim", options.pop("dim", 0), int)}
    return {"a": _number("a", a), "b": _number("b", b)}


def compand(model: nn.Module, method: str = "arctan", a: float = 1.0, b: float = 1.0,
            learnable: str | None = None, *, include=None, exclude=None, clip: bool = False,
            min_scale: float = 1e-3, **options) -> nn.Module:
    """Reparametrize, in place, every weight of the layer policy as w = Ψ(v).

    The policy (:mod:`wcviz.reparam.layers`): the ``weight`` of Conv1d/2d/3d, Linear and Hugging Face
    Conv1D, and nn.MultiheadAttention's packed ``in_proj_weight`` (one tensor, so one a, b
    with ``learnable="fine"``) or ``q/k/v_proj_weight``; ``include=`` adds any other tensor
    with >= 2 dimensions (e.g. an ``nn.Embedding``). A weight tied to another parameter (GPT-2's
    ``lm_head`` and ``wte``) is left out: companding one name would change the other. What is
    left out is warned about in one line and listed in ``model.wcviz_compand.left_out``
    (:func:`wcviz.reparam.layers.left_out` lists the same but for the tied weights).

    Args:
        model: the network; its current weights become Ψ(v) exactly (v = Ψ⁻¹(w)).
        method: "arctan" (the weight compander), "arsinh", "erf", "powerprop" (option
            ``alpha``, default :data:`wcviz.reparam.psi.POWERPROP_ALPHA`) or "weightnorm" (torch's
            weight_norm, option ``dim``).
        a, b: scales of the a·f(v/b) methods (> 0). For learnable scales, their initial values.
        learnable: None (fixed), "fine" (a, b per layer) or "coarse" (one a, b for the network).
        include, exclude: glob pattern(s) on layer or parameter names selecting the weights.
        clip: move initial weights outside Ψ's range inside it (reported) instead of failing.
        min_scale: floor of learnable a, b in the forward pass; build_optimizer projects
            the stored values onto it after each step.

    Returns:
        ``model`` itself, with ``model.wcviz_compand`` describing what was done.

    Raises:
        WcvizError: on a bad method or scale, or an initial weight outside Ψ's range.
    """
    params = _method_params(method, a, b, options) if method in ALL_METHODS else {}
    _check_args(method, params, learnable)
    if options:
        raise WcvizError(f"unknown option(s) for method {method!r}: {', '.join(options)}")
    if getattr(model, "wcviz_compand", None) is not None:
        raise WcvizError("model is already companded; call wcviz.bake(model) first")
    targets, skipped = _targets(model, include, exclude)
    for t in targets:  # every check before any change
        if parametrize.is_parametrized(t.module, t.attr):
            raise WcvizError(f"layer {t.name!r} already has a weight parametrization; "
                             "compand a plain model")
        if method != "weightnorm":
            _check_range(t.name, t.tensor(), method, params, clip)
    clipped = _register_all(targets, method, params, learnable, clip, min_scale)
    report = CompandReport(method, params, learnable, [t.name for t in targets], clipped,
                           skipped)
    object.__setattr__(model, "wcviz_compand", report)
    warn_left_out("wcviz.compand", skipped, "model.wcviz_compand.left_out lists them (with "
                  "tied weights, which wcviz.reparam.layers.left_out cannot know); include= selects "
                  "the weights to compand")
    return model


def _targets(model: nn.Module, include, exclude) -> tuple[list[Target], list[LeftOut]]:
    """The weights to compand and those left out; tied weights are moved to the latter."""
    targets = tracked_weights(model, include=include, exclude=exclude)
    skipped = left_out(model, include=include, exclude=exclude)
    names = tied_names(model)
    kept = []
    for t in targets:
        others = [n for n in names.get(id(t.module._parameters.get(t.attr)), [])
                  if n != t.param_name]
        if others:
            skipped.append(LeftOut(t.param_name, tuple(t.tensor().shape),
                                   f"tied to {others[0]}; companding it would change both"))
        else:
            kept.append(t)
    if not kept and len(targets):  # matched, but every match is tied: say so, not "no match"
        tied = skipped[-len(targets):]
        raise WcvizError(f"no weight to compand: every weight matched is tied to another "
                         f"parameter ({', '.join(str(x) for x in tied[:3])}); name untied "
                         f"weights in include=")
    if not kept:
        raise WcvizError("no weight to compand matched (conv, linear, attention, HF Conv1D by "
                         "default); check include/exclude")
    return kept, skipped


def _register_all(targets: list[Target], method: str, params: dict, learnable, clip: bool,
                  min_scale: float) -> dict[str, float]:
    """Register Ψ on every target; returns the fraction clipped per layer (clip=True only)."""
    owner = None  # the first layer's Compander, holding a coarse a, b
    clipped = {}
    for t in targets:
        old = t.module._parameters[t.attr]
        if method == "weightnorm":
            torch.nn.utils.parametrizations.weight_norm(t.module, t.attr, dim=params["dim"])
            optguard.retire(t.name, old)  # g and v are new Parameters: old is unused now
            continue
        bound = get_method(method).bound(**params)
        fraction = _clip_into_range(t.name, t.tensor().data, bound, method) if clip else 0.0
        if fraction:
            clipped[t.name] = fraction
        comp = Compander(method, params, learnable, owner, min_scale, like=t.tensor())
        parametrize.register_parametrization(t.module, t.attr, comp)
        _own_parameter(t.module, t.attr, t.name, old, comp)
        if learnable == "coarse" and owner is None:
            owner = comp
    return clipped


def _own_parameter(module: nn.Module, attr: str, name: str, old: Tensor, comp: Compander) -> None:
    """Give v a Parameter of its own, so an optimizer built before ``compand`` (holding the
    old weight, which torch would keep as v) is detected at its first step (:mod:`optguard`)."""
    plist = module.parametrizations[attr]
    with torch.no_grad():
        new = nn.Parameter(plist.original.detach().clone(), requires_grad=old.requires_grad)
    plist.original = new
    optguard.retire(name, old)
    comp.attach(plist, name)


def bake(model: nn.Module) -> nn.Module:
    """Remove every reparametrization in place, leaving plain weights w = Ψ(v).

    Outputs are unchanged, and the ``state_dict`` loads with ``strict=True`` into a
    never-companded model of the same architecture. An optimizer from
    :func:`wcviz.build_optimizer` built before steps the plain weights as torch's own does
    (:mod:`wcviz.reparam.optim`). Returns ``model``.
    """
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for attr in module.parametrizations.keys():
                comp = compander_of(module, attr)
                if comp is not None:  # torch keeps v as the plain weight: a plain one now
                    comp.baked = True
                    optguard.forget(comp)
            _own_class(module)
            for attr in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
            _drop_weight_norm_hook(module)
    if "wcviz_compand" in model.__dict__:
        del model.__dict__["wcviz_compand"]
    return model


def _own_class(module: nn.Module) -> None:
    """Give a parametrized module a class of its own before its parametrization is removed.

    torch keeps the ``weight`` property on a generated ``Parametrized<Layer>`` class, which a
    ``copy.deepcopy`` of the model shares, and removal deletes the property from that class:
    baking a copy would break the original (``'ParametrizedConv2d' object has no attribute
    'weight'``).
    """
    cls = module.__class__
    module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))


def _drop_weight_norm_hook(module: nn.Module) -> None:
    """Remove the load-state-dict hook torch's ``weight_norm`` leaves behind.

    It converts old ``weight_g``/``weight_v`` checkpoints, is a local function (so a baked
    model would not pickle) and has no use once the weight is plain.
    """
    hooks = module._load_state_dict_pre_hooks
    for key, hook in list(hooks.items()):
        if getattr(getattr(hook, "hook", hook), "__name__", "") == "_weight_norm_compat_hook":
            del hooks[key]


def compander_of(module: nn.Module, attr: str = "weight") -> Compander | None:
    """The :class:`Compander` on ``module.<attr>``, or None (plain or weight-normed tensor)."""
    if not parametrize.is_parametrized(module, attr):
        return None
    for p in module.parametrizations[attr]:
        if isinstance(p, Compander):
            return p
    return None


def raw_weight(module: nn.Module, attr: str = "weight") -> Tensor | None:
    """The stored parameter behind ``module.<attr>``: v for a compander, the direction v of
    weight norm (``original1``), None for a plain tensor."""
    return stored_tensor(module, attr) if parametrize.is_parametrized(module, attr) else None


def companded_tensors(model: nn.Module) -> list[tuple[Tensor, Compander]]:
    """``(v, its Compander)`` for every companded tensor of ``model`` (any attribute name)."""
    out = []
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for attr in module.parametrizations.keys():
                comp = compander_of(module, attr)
                if comp is not None:
                    out.append((raw_weight(module, attr), comp))
    return out


@dataclass
class LayerWeights:
    """A tracked layer's current state, as recorded: w = Ψ(v), v, a and b (detached)."""

    weight: Tensor
    raw: Tensor | None  # v, None for a plain layer
    method: str | None  # "arctan", ..., "weightnorm", or None for a plain layer
    a: float | None
    b: float | None


def layer_weights(module: nn.Module, attr: str = "weight") -> LayerWeights:
    """Snapshot of one tracked tensor for recording (no copies beyond computing Ψ(v))."""
    with torch.no_grad():
        weight = getattr(module, attr).detach()
        raw = raw_weight(module, attr)
        comp = compander_of(module, attr)
        method = comp.method.name if comp else ("weightnorm" if raw is not None else None)
        scal = comp.scalar_params() if comp else {}
        return LayerWeights(weight, None if raw is None else raw.detach(), method,
                            scal.get("a"), scal.get("b"))


def compand_info(model: nn.Module) -> dict | None:
    """What ``compand`` did to ``model`` (method, parameters, learnable, layers), or None."""
    report = getattr(model, "wcviz_compand", None)
    return None if report is None else report.as_dict()
