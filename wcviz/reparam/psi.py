"""The functional core: Ψ, its inverse Ψ⁻¹ and its derivative Ψ′ for every companding method.

Every code path that needs the math (the parametrization, the decay rule, the modified Adam
step, the recorder) calls these functions, so there is one definition of each method.

Methods and their parameters (the paper's notation, arXiv 2306.16993 Sec. II-B/III):

=========== ============================ ==================== ==================
method      Ψ(v)                         parameters           sup |Ψ|
=========== ============================ ==================== ==================
arctan (WC) a·arctan(v/b)                a, b > 0             aπ/2
arsinh      a·arsinh(v/b)                a, b > 0             unbounded
erf         a·erf(v/b)                   a, b > 0             a
powerprop   v·|v|^(α−1)                  alpha ≥ 1            unbounded
=========== ============================ ==================== ==================

``a``/``b`` may be Python floats or tensors (learnable scales); all functions broadcast.
Weight normalization is not a pointwise map; it uses torch's own parametrization and has no
entry here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from wcviz.errors import WcvizError
from wcviz.reparam.bounds import SCALED_BOUNDS


def _number(x) -> bool:
    return isinstance(x, (int, float))


def _scaled(a, f: Tensor) -> Tensor:
    """a·f, skipping the multiplication by a Python 1 (exact: x·1 = x in IEEE arithmetic),
    which saves a pass over the weights in the forward and another in the backward."""
    if _number(a) and a == 1:
        return f
    return a * f


def _arctan(v: Tensor, a=1.0, b=1.0) -> Tensor:
    return _scaled(a, torch.atan(v / b))


def _arctan_inverse(w: Tensor, a=1.0, b=1.0) -> Tensor:
    return b * torch.tan(w / a)


def _arctan_grad(v: Tensor, a=1.0, b=1.0) -> Tensor:
    # d/dv a·atan(v/b) = a / (b·(1 + v²/b²)): largest at v = 0, which pushes weights off zero.
    # Written as a·b / (v² + b²): three passes over v instead of five (it runs every step).
    if _number(a) and _number(b) and not (torch.is_grad_enabled() and v.requires_grad):
        # In place, one new tensor instead of four: torch computes number / tensor as
        # tensor.reciprocal() * number, so this is bitwise the expression below.
        d = v.square().add_(b * b).reciprocal_()
        return d if a * b == 1 else d.mul_(a * b)
    return (a * b) / (v.square() + b * b)


def _arsinh(v: Tensor, a=1.0, b=1.0) -> Tensor:
    return _scaled(a, torch.asinh(v / b))


def _arsinh_inverse(w: Tensor, a=1.0, b=1.0) -> Tensor:
    return b * torch.sinh(w / a)


def _arsinh_grad(v: Tensor, a=1.0, b=1.0) -> Tensor:
    # a / (b·√(1 + v²/b²)) = a / √(v² + b²)
    return a * torch.rsqrt(v.square() + b * b)


def _erf(v: Tensor, a=1.0, b=1.0) -> Tensor:
    return _scaled(a, torch.erf(v / b))


def _erf_inverse(w: Tensor, a=1.0, b=1.0) -> Tensor:
    return b * torch.erfinv(w / a)


def _erf_grad(v: Tensor, a=1.0, b=1.0) -> Tensor:
    # a·2/(√π·b)·exp(−v²/b²), with the scalars folded so that v is passed over four times.
    return (a * (2 / math.sqrt(math.pi)) / b) * torch.exp(v.square() * (-1 / (b * b)))


#: Powerpropagation's exponent α when none is given: the paper does not state one; 2 is
#: Powerpropagation's common choice (Schwarz et al., 2021).
POWERPROP_ALPHA = 2.0


def _powerprop(v: Tensor, alpha=POWERPROP_ALPHA) -> Tensor:
    # sign(v)·|v|^α rather than v·|v|^(α−1): the latter's autograd gives 0·inf = NaN at v = 0
    # for 1 < α < 2; this form has the finite derivative α|v|^(α−1) for every α > 1.
    if alpha == 1:
        # Ψ is the identity; sign(v)·|v| would have autograd derivative 0 at v = 0, not 1.
        return v * 1.0
    return torch.sign(v) * v.abs() ** alpha


def _powerprop_inverse(w: Tensor, alpha=POWERPROP_ALPHA) -> Tensor:
    return torch.sign(w) * w.abs() ** (1.0 / alpha)


def _powerprop_grad(v: Tensor, alpha=POWERPROP_ALPHA) -> Tensor:
    return alpha * v.abs() ** (alpha - 1)  # torch defines 0**0 = 1, so α = 1 gives 1 at v = 0


@dataclass(frozen=True)
class Method:
    """One companding method: its map, inverse, derivative and the names of its parameters."""

    name: str
    psi: Callable[..., Tensor]
    inverse: Callable[..., Tensor]
    grad: Callable[..., Tensor]
    params: tuple[str, ...]  # keyword parameters psi/inverse/grad take
    bound: Callable[..., float]  # sup |Ψ| given the parameters (math.inf when unbounded)

    @property
    def scaled(self) -> bool:
        """True for the a·f(v/b) family, whose a and b may be learnable."""
        return self.params == ("a", "b")


METHODS: dict[str, Method] = {
    "arctan": Method("arctan", _arctan, _arctan_inverse, _arctan_grad, ("a", "b"),
                     SCALED_BOUNDS["arctan"]),
    "arsinh": Method("arsinh", _arsinh, _arsinh_inverse, _arsinh_grad, ("a", "b"),
                     SCALED_BOUNDS["arsinh"]),
    "erf": Method("erf", _erf, _erf_inverse, _erf_grad, ("a", "b"), SCALED_BOUNDS["erf"]),
    "powerprop": Method("powerprop", _powerprop, _powerprop_inverse, _powerprop_grad,
                        ("alpha",), lambda alpha=POWERPROP_ALPHA: math.inf),
}

#: Every method ``compand`` accepts: the pointwise maps above plus torch's weight norm.
ALL_METHODS: tuple[str, ...] = (*METHODS, "weightnorm")


def get_method(name: str) -> Method:
    """Return the pointwise method called ``name`` or raise a :class:`WcvizError`."""
    try:
        return METHODS[name]
    except KeyError:
        raise WcvizError(f"unknown method {name!r}; choose one of: {', '.join(ALL_METHODS)}") from None


def psi(method: str, v: Tensor, **params) -> Tensor:
    """Ψ(v) for ``method`` with its parameters (``a``, ``b`` or ``alpha``)."""
    return get_method(method).psi(v, **params)


def psi_inverse(method: str, w: Tensor, **params) -> Tensor:
    """Ψ⁻¹(w): the raw parameter v whose image is the weight w (inside Ψ's range)."""
    return get_method(method).inverse(w, **params)


def psi_grad(method: str, v: Tensor, **params) -> Tensor:
    """Ψ′(v), the factor that turns ∂L/∂w into ∂L/∂v."""
    return get_method(method).grad(v, **params)
