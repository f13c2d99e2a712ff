"""``build_optimizer``: SGD, Adam and AdamW with the paper's rules for companded weights.

The rules (arXiv 2306.16993 Sec. III, and Powerpropagation's modified optimizer):

* **Fixed a, b** (and powerprop): weight decay acts on the weight w = Ψ(v), not on the stored
  v. For SGD, v's gradient gains λ·Ψ(v)·Ψ′(v), the gradient of the penalty λ/2·‖Ψ(v)‖².
* **Learnable a, b**: weight decay on v only (v's gradient gains λ·v); a and b are never decayed.
* **Adaptive optimizers** (Adam, AdamW) on a companded v take the *modified step*: the
  optimizer runs in w-space (its moments see ∂L/∂w) and the resulting step Δ is applied as
  v ← v + Ψ′(v)·Δ. Without this, Adam's normalisation would cancel the factor Ψ′(v) that the
  method is about. The decay follows the rules above in each optimizer's own way: Adam's L2
  penalty joins the gradient before it is turned into ∂/∂w (so its moments see
  ∂(L + λ/2·‖w‖²)/∂w, or ∂(L + λ/2·‖v‖²)/∂w for learnable a, b); AdamW's decoupled shrink
  is −lr·λ·w, mapped to v as −lr·λ·Ψ(v)·Ψ′(v) (fixed), or −lr·λ·v (learnable).
* Every other parameter is stepped by torch's own SGD/Adam/AdamW unchanged, so a
  network without companded layers trains exactly as with ``torch.optim``.
* Learnable a, b are projected back onto ``[min_scale, ∞)`` after every step (see
  :mod:`wcviz.reparam.compander`), so they stay positive whatever the learning rate.

∂L/∂w is recovered as ``v.grad / Ψ′(v)``: autograd through the parametrization produced
``v.grad = ∂L/∂w · Ψ′(v)``, so this needs no hook on the forward pass and works under
``torch.compile``. Where Ψ′(v) is zero or below the dtype's smallest normal number (powerprop
with α > 1 at v = 0 exactly; erf far in its tail) the quotient is meaningless and 0 is used:
the step there is multiplied by Ψ′(v) ≈ 0 anyway, so only Adam's moment estimates of that
entry see 0 instead of the true gradient.

Weight-normed layers (``method="weightnorm"``) have no Ψ: their g and v are ordinary weights.

After :func:`wcviz.bake`, an optimizer built before it steps the now plain weights as torch's
own optimizer does (weight decay ``weight_decay`` on the weight, no modified step), so training
can go on with it; its Adam moments were kept in w-space all along, so they still apply.
"""

from __future__ import annotations

import numbers
from types import MappingProxyType

import torch
from torch import Tensor, nn

from wcviz.reparam.compander import Compander, companded_tensors
from wcviz.errors import WcvizError

OPTIMIZERS = ("sgd", "adam", "adamw")

#: Module types whose parameters count as norm-layer parameters (never companded).
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)

# Names of the parameter groups, in the order build_optimizer creates them.
DECAY, NO_DECAY, COMPANDED, SCALES = "decay", "norm_and_bias", "companded", "scales"


class _CompandedStep:
    """Mixin over a torch optimizer: the paper's rules for the ``companded`` group.

    ``companded`` groups carry ``weight_decay=0`` (torch applies no decay to them) and the
    paper's decay as ``wcviz_decay`` (λ) with ``wcviz_decay_on`` ("w" or "v").
    """

    adaptive = False  # True: the modified step (moments from ∂L/∂w, step × Ψ′(v))
    decoupled = False  # True: AdamW's decay, applied to the parameter rather than the gradient

    # Set by build_optimizer; empty for an instance made directly (then it is torch's optimizer).
    _companders: dict[Tensor, Compander] = MappingProxyType({})
    _min_scale: dict[Tensor, float] = MappingProxyType({})

    def _wcviz_setup(self, companders: dict[Tensor, Compander], min_scale: dict[Tensor, float]):
        self._companders = companders
        self._min_scale = min_scale

    def __getstate__(self):
        # torch's state keeps only defaults, state and groups; keep the mappings too (deepcopy).
        return {**super().__getstate__(), "_companders": self._companders,
                "_min_scale": self._min_scale}

    def step(self, closure=None):
        """One optimizer step (``closure`` as in torch: re-evaluates and returns the loss)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            saved = self._prepare()
        self._torch_step()
        with torch.no_grad():
            self._finish(saved)
        return loss

    def _torch_step(self) -> None:
        """torch's own step, without running the step hooks a second time.

        torch wraps each optimizer class's ``step`` in its hook runner (marked ``hooked``) once
        the class is instantiated; this class's ``step`` is wrapped already, so call the inner one.
        """
        base = super().step
        if getattr(base, "hooked", False):
            base.__wrapped__(self)
        else:
            base()

    def _companded(self):
        """(group, parameter, compander) for every companded v that has a gradient."""
        for group in self.param_groups:
            if group.get("wcviz_group") != COMPANDED:
                continue
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, self._companders[p]

    def _prepare(self) -> list:
        """Swap each companded v's gradient for the one torch's step should see.

        Returns what ``_finish`` needs, per parameter: its group, its original gradient, and
        for the modified step its value and Ψ′(v) before the step.
        """
        saved = []
        for group, p, comp in self._companded():
            decay = group["wcviz_decay"]
            if self.decoupled or not decay:
                comp.forget()  # no use for the forward's Ψ(v): free it before the step
            if comp.baked:
                self._plain_decay(saved, group, p, decay)
                continue
            if not (self.adaptive or decay):
                continue  # plain SGD on v, nothing to change
            dpsi = comp.grad(p)
            grad = p.grad
            if decay and not self.decoupled:
                # λ·∂(½‖w‖²)/∂v = λ·Ψ(v)·Ψ′(v) for fixed a, b; λ·v for learnable a, b.
                if group["wcviz_decay_on"] == "w":
                    grad = torch.addcmul(grad, comp.psi_of(p), dpsi, value=decay)
                else:
                    grad = torch.add(grad, p, alpha=decay)
            before = None
            if self.adaptive:
                grad = _safe_divide(grad, dpsi)  # ∂(L + penalty)/∂w
                before = p.detach().clone()
                p.zero_()  # torch's step on a zero parameter leaves exactly its step Δ there
            saved.append((group, p, p.grad, before, dpsi))
            p.grad = grad
        return saved

    def _plain_decay(self, saved: list, group: dict, p: Tensor, decay: float) -> None:
        """torch's own weight decay on a weight ``bake`` made plain (the group's torch
        ``weight_decay`` is 0): AdamW shrinks it now, as torch's does before its step; SGD and
        Adam add λ·w to the gradient, restored by ``_finish``."""
        if not decay:
            return
        if self.decoupled:
            p.mul_(1 - group["lr"] * decay)
            return
        saved.append((group, p, p.grad, None, None))
        p.grad = p.grad.add(p, alpha=decay)

    def _finish(self, saved: list) -> None:
        """Apply the modified step, restore the user's gradients, project a, b."""
        for group, p, grad, before, dpsi in saved:
            p.grad = grad
            if before is None:
                continue
            p.copy_(torch.addcmul(before, dpsi, p))  # p holds torch's step Δ (in w-space)
            if self.decoupled and group["wcviz_decay"]:
                self._decoupled_decay(group, p, before, dpsi)
        self._project_scales()

    def _project_scales(self) -> None:
        """a, b ← max(a, min_scale): one foreach call per floor value (one kernel on a GPU)."""
        by_floor: dict[float, list[Tensor]] = {}
        for p, floor in self._min_scale.items():
            by_floor.setdefault(floor, []).append(p)
        for floor, params in by_floor.items():
            torch._foreach_clamp_min_(params, floor)

    def _decoupled_decay(self, group: dict, p: Tensor, before: Tensor, dpsi: Tensor) -> None:
        """AdamW's decay, mapped to v: v −= lr·λ·Ψ(v)·Ψ′(v) (fixed) or lr·λ·v (learnable).

        Uses the values before the step, as torch's AdamW does (it decays first).
        """
        comp = self._companders[p]
        shrink = comp(before) * dpsi if group["wcviz_decay_on"] == "w" else before
        p.sub_(group["lr"] * group["wcviz_decay"] * shrink)


def _safe_divide(grad: Tensor, dpsi: Tensor) -> Tensor:
    """grad / Ψ′, with 0 where Ψ′ is zero or subnormal (see the module docstring)."""
    # The inf/NaN of grad / 0 are computed but never selected (no autograd runs through here).
    return torch.where(dpsi >= torch.finfo(dpsi.dtype).tiny, grad / dpsi, 0.0)


class SGD(_CompandedStep, torch.optim.SGD):
    """torch's SGD, plus the paper's decay rule on companded weights."""


class Adam(_CompandedStep, torch.optim.Adam):
    """torch's Adam (L2 decay), plus the modified step on companded weights."""

    adaptive = True


class AdamW(_CompandedStep, torch.optim.AdamW):
    """torch's AdamW (decoupled decay), plus the modified step on companded weights."""

    adaptive = True
    decoupled = True


_CLASSES = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0, *,
                    momentum: float = 0.9, nesterov: bool = False,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                    decay_norm_and_bias: bool = True, **torch_kwargs) -> torch.optim.Optimizer:
    """An optimizer for ``model`` that follows the paper's rules for companded weights.

    Parameters are split into groups (each parameter in exactly one), each tagged with
    ``group["wcviz_group"]``: ``"decay"`` (plain conv/linear weights and any other plain
    parameter, weight-norm g and v included), ``"norm_and_bias"`` (norm-layer parameters and
    biases), ``"companded"`` (the stored v of companded layers) and ``"scales"`` (learnable a,
    b: never decayed, plain torch step, projected to ``>= min_scale``). Empty groups are left out.

    Args:
        model: the network, companded by :func:`wcviz.compand` or not.
        name: "sgd", "adam" or "adamw".
        lr: learning rate.
        weight_decay: λ. On companded v it follows the paper's rules (see module docstring).
        momentum, nesterov: SGD only. The default momentum 0.9 is the paper's.
        betas, eps: Adam/AdamW only; torch's defaults.
        decay_norm_and_bias: also decay norm-layer parameters and biases. Default True: it is
            what the paper's recipe (torch SGD over ``model.parameters()``) does, so baselines
            built here equal plain ``torch.optim``; pass False for the common modern practice.
        **torch_kwargs: passed to the torch optimizer (e.g. ``amsgrad``, ``foreach``,
            ``dampening``).

    Returns:
        A ``torch.optim.Optimizer`` subclass (:class:`SGD`, :class:`Adam`, :class:`AdamW`);
        its ``state_dict()`` loads into one built the same way on a fresh model to resume.

    Raises:
        WcvizError: for an unknown name or a bad hyper-parameter.
    """
    if name not in _CLASSES:
        raise WcvizError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    _check_hyper(lr, weight_decay, momentum, nesterov, name, torch_kwargs)
    groups, companders, min_scale = _param_groups(model, weight_decay, decay_norm_and_bias)
    if name == "sgd":
        hyper = dict(momentum=momentum, nesterov=nesterov)
    else:
        hyper = dict(betas=tuple(betas), eps=eps)
    try:
        opt = _CLASSES[name](groups, lr=lr, **hyper, **torch_kwargs)
    except (ValueError, TypeError) as err:
        raise WcvizError(f"bad optimizer option for {name!r}: {err}") from None
    opt._wcviz_setup(companders, min_scale)
    return opt


def _check_hyper(lr, weight_decay, momentum, nesterov, name, torch_kwargs) -> None:
    for key, value in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)):
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, Tensor)):
            raise WcvizError(f"{key} must be a number, got {value!r}")
    if not lr > 0:
        raise WcvizError(f"lr must be a positive number, got {lr!r}")
    if not weight_decay >= 0:
        raise WcvizError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if name == "sgd" and nesterov and (momentum <= 0 or torch_kwargs.get("dampening", 0)):
        raise WcvizError("nesterov=True needs momentum > 0 and dampening 0")


def _param_groups(model: nn.Module, weight_decay: float, decay_norm_and_bias: bool):
    """The four parameter groups, the compander of each companded v, and a, b's floors."""
    companders, min_scale = {}, {}
    norm_params = set()
    for raw, comp in companded_tensors(model):
        companders[raw] = comp
        for s in comp.scale_parameters():
            min_scale[s] = comp.min_scale
    for module in model.modules():
        if isinstance(module, NORM_TYPES):
            norm_params.update(module.parameters(recurse=False))
    buckets = {DECAY: [], NO_DECAY: [], COMPANDED: [], SCALES: []}
    for pname, p in model.named_parameters():  # each parameter once, shared ones too
        if p in companders:
            buckets[COMPANDED].append(p)
        elif p in min_scale:
            buckets[SCALES].append(p)
        elif p in norm_params or pname.rsplit(".", 1)[-1] == "bias":
            buckets[NO_DECAY].append(p)
        else:
            buckets[DECAY].append(p)
    learnable = bool(min_scale)
    settings = {
        DECAY: dict(weight_decay=weight_decay),
        NO_DECAY: dict(weight_decay=weight_decay if decay_norm_and_bias else 0.0),
        COMPANDED: dict(weight_decay=0.0, wcviz_decay=weight_decay,
                        wcviz_decay_on="v" if learnable else "w"),
        SCALES: dict(weight_decay=0.0),
    }
    groups = [dict(params=ps, wcviz_group=key, **settings[key])
              for key, ps in buckets.items() if ps]
    return groups, companders, min_scale
