"""The functional core: Ψ, Ψ⁻¹ and Ψ′ of every method, against autograd and known values."""

import math

import pytest
import torch

from wcviz.errors import WcvizError
from wcviz.reparam.psi import ALL_METHODS, METHODS, get_method, psi, psi_grad, psi_inverse

CASES = [
    ("arctan", {"a": 1.0, "b": 0.6}),
    ("arctan", {"a": 0.5, "b": 2.0}),
    ("arsinh", {"a": 0.7, "b": 0.8}),
    ("erf", {"a": 1.2, "b": 0.5}),
    ("powerprop", {"alpha": 1.0}),
    ("powerprop", {"alpha": 1.5}),
    ("powerprop", {"alpha": 2.0}),
    ("powerprop", {"alpha": 3.0}),
]


def _v():
    # float64 so that comparisons are about the formulas, not float32 rounding; includes 0.
    return torch.cat([torch.linspace(-1.5, 1.5, 31, dtype=torch.float64),
                      torch.tensor([0.0, 1e-3, -1e-3], dtype=torch.float64)])


@pytest.mark.parametrize("method,params", CASES)
def test_grad_matches_autograd(method, params):
    v = _v().requires_grad_(True)
    (g,) = torch.autograd.grad(psi(method, v, **params).sum(), v)
    torch.testing.assert_close(psi_grad(method, v.detach(), **params), g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method,params", CASES)
def test_inverse_round_trips(method, params):
    v = _v()
    torch.testing.assert_close(psi_inverse(method, psi(method, v, **params), **params), v,
                               rtol=1e-9, atol=1e-9)
    bound = get_method(method).bound(**params)
    w = torch.linspace(-0.95, 0.95, 21, dtype=torch.float64) * min(bound, 2.0)
    torch.testing.assert_close(psi(method, psi_inverse(method, w, **params), **params), w,
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method,params,v,value,grad", [
    # a·arctan(v/b): arctan(1) = π/4; Ψ′(0) = a/b.
    ("arctan", {"a": 2.0, "b": 0.5}, 0.5, math.pi / 2, 2.0 / (0.5 * 2)),
    ("arctan", {"a": 2.0, "b": 0.5}, 0.0, 0.0, 4.0),
    # a·arsinh(v/b) at v = b·sinh(1) is a; Ψ′ = a/(b·cosh(1)) there.
    ("arsinh", {"a": 0.7, "b": 0.8}, 0.8 * math.sinh(1), 0.7, 0.7 / (0.8 * math.cosh(1))),
    # a·erf(v/b): erf(1) = 0.8427007929497149; Ψ′(0) = 2a/(b√π).
    ("erf", {"a": 1.5, "b": 2.0}, 2.0, 1.5 * 0.8427007929497149,
     1.5 * 2 / (2.0 * math.sqrt(math.pi)) * math.exp(-1)),
    ("erf", {"a": 1.5, "b": 2.0}, 0.0, 0.0, 1.5 / math.sqrt(math.pi)),
    # v·|v|^(α−1): odd, (−3)·3 = −9 with Ψ′ = 2·3 = 6 for α = 2; 2³ = 8, Ψ′ = 12 for α = 3.
    ("powerprop", {"alpha": 2.0}, -3.0, -9.0, 6.0),
    ("powerprop", {"alpha": 3.0}, 2.0, 8.0, 12.0),
    ("powerprop", {"alpha": 1.0}, -0.25, -0.25, 1.0),
])
def test_known_values(method, params, v, value, grad):
    t = torch.tensor(v, dtype=torch.float64)
    assert psi(method, t, **params).item() == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert psi_grad(method, t, **params).item() == pytest.approx(grad, rel=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 1.25, 1.5, 2.0, 2.5, 3.0])
def test_powerprop_gradient_finite_at_zero(alpha):
    v = torch.tensor([0.0, 0.0], requires_grad=True)  # float32, as in a network
    (g,) = torch.autograd.grad(psi("powerprop", v, alpha=alpha).sum(), v)
    assert torch.isfinite(g).all()
    expected = 1.0 if alpha == 1.0 else 0.0  # α|v|^(α−1) at 0
    assert g.tolist() == [expected, expected]
    assert psi_grad("powerprop", v.detach(), alpha=alpha).tolist() == [expected, expected]


def test_tensor_scales_get_gradients():
    """Learnable a, b are 0-dim tensors; Ψ must be differentiable in them."""
    a = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.3, -2.0], dtype=torch.float64)
    ga, gb = torch.autograd.grad(psi("arctan", v, a=a, b=b).sum(), (a, b))
    assert ga.item() == pytest.approx(sum(math.atan(x) for x in (0.3, -2.0)))
    # d/db a·atan(v/b) = −a·v / (b² + v²)
    assert gb.item() == pytest.approx(sum(-0.5 * x / (1 + x * x) for x in (0.3, -2.0)))


def test_bounds():
    assert METHODS["arctan"].bound(a=0.8, b=0.1) == pytest.approx(0.4 * math.pi)
    assert METHODS["erf"].bound(a=0.8, b=0.1) == 0.8
    assert math.isinf(METHODS["arsinh"].bound(a=0.8, b=0.1))
    assert math.isinf(METHODS["powerprop"].bound(alpha=2.0))


def test_unknown_method_lists_the_choices():
    with pytest.raises(WcvizError, match="unknown method 'tanh'.*arctan.*weightnorm"):
        get_method("tanh")
    assert set(ALL_METHODS) == {"arctan", "arsinh", "erf", "powerprop", "weightnorm"}
