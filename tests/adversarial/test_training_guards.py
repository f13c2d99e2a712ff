"""Adversarial cases: silent wrong training and bad library arguments (issue 10)."""

import warnings

import pytest
import torch
from torch import nn

import wcviz
from wcviz.reparam.compander import compander_of
from wcviz.errors import WcvizError


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def _step(model, opt):
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize("make", [
    lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),
    lambda m: torch.optim.SGD(m.parameters(), lr=1e-2),
    lambda m: wcviz.build_optimizer(m, "adam", 1e-2),
    lambda m: wcviz.build_optimizer(m, "sgd", 1e-2),
])
@pytest.mark.parametrize("method,learnable", [("arctan", None), ("arctan", "fine"),
                                              ("weightnorm", None)])
def test_optimizer_built_before_compand_is_refused_at_first_step(make, method, learnable):
    model = _net()
    opt = make(model)
    wcviz.compand(model, method, 2.0, 1.0, learnable=learnable)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(WcvizError, match="built before wcviz.compand.*build the optimizer "
                                         "after wcviz.compand"):
        _step(model, opt)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))  # nothing stepped


def test_optimizer_stepped_then_model_companded_is_refused():
    model = _net()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    _step(model, opt)  # a baseline step: fine
    wcviz.compand(model)
    with pytest.raises(WcvizError, match="built before wcviz.compand"):
        _step(model, opt)


def test_optimizer_without_learnable_scales_is_refused():
    model = wcviz.compand(_net(), "arctan", 2.0, 1.0, learnable="coarse")
    scales = {id(p) for p in compander_of(model[0]).scale_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if id(p) not in scales], lr=1e-2)
    with pytest.raises(WcvizError, match="learnable a, b of layer '0' are not in this optimizer"):
        _step(model, opt)


def test_optimizers_built_after_compand_train_and_torch_adam_is_warned():
    model = wcviz.compand(_net(), "arctan", 2.0, 1.0, learnable="fine")
    a = compander_of(model[0]).scale_parameters()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            _step(model, wcviz.build_optimizer(model, "adam", 1e-2))
            _step(model, torch.optim.SGD(model.parameters(), lr=1e-2))  # the paper's recipe
    assert a.item() != 2.0  # a trained
    with pytest.warns(RuntimeWarning, match="without the paper's modified step"):
        _step(model, torch.optim.Adam(model.parameters(), lr=1e-2))


@pytest.mark.parametrize("kwargs,name", [({"a": "x"}, "a"), ({"b": None}, "b"),
                                         ({"a": [1.0]}, "a")])
def test_compand_non_number_scale_names_the_parameter(kwargs, name):
    with pytest.raises(WcvizError, match=f"^{name} must be a number"):
        wcviz.compand(_net(), **kwargs)


@pytest.mark.parametrize("kwargs,name", [({"lr": "x"}, "lr"), ({"lr": 0.1, "weight_decay": "1"},
                                                               "weight_decay"),
                                         ({"lr": None}, "lr")])
def test_build_optimizer_non_number_names_the_parameter(kwargs, name):
    with pytest.raises(WcvizError, match=f"^{name} must be a number"):
        wcviz.build_optimizer(_net(), "sgd", **kwargs)


def test_a_baked_model_trains_with_any_optimizer():
    model = wcviz.bake(wcviz.compand(_net(), "arctan", 2.0, 1.0, learnable="fine"))
    before = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no guard warning, no guard error: a plain model now
        _step(model, torch.optim.Adam(model.parameters(), lr=1e-2))
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))  # all stepped
