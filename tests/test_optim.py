"""build_optimizer: the paper's decay rules, the modified Adam step, torch equivalence, resume."""

import copy
import io
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

import wcviz
from wcviz.reparam.compander import compander_of, raw_weight
from wcviz.errors import WcvizError
from wcviz.reparam.optim import build_optimizer

LR, WD, EPS, BETAS = 0.05, 0.01, 1e-8, (0.9, 0.999)
A, B = 0.8, 0.6
COMPANDED = ["0", "4"]  # module names of the conv and the linear layer


def _net():
    # ReLU before BN: a conv bias right before BN has a gradient of rounding noise only,
    # which Adam's normalisation would turn into steps of random sign.
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.Flatten(),
                        nn.Linear(3 * 4 * 4, 4))
    return net.double()


def _batches(n=6):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 2, 6, 6, generator=g, dtype=torch.float64),
             torch.randn(8, 4, generator=g, dtype=torch.float64)) for _ in range(n)]


def _loss(out, y):
    return (out - y).square().mean()


def _compute(net, batch, extra=None):
    """Forward and backward on one batch; ``extra(net)`` adds a penalty to the loss."""
    x, y = batch
    loss = _loss(net(x), y)
    if extra is not None:
        loss = loss + extra(net)
    loss.backward()
    return loss


def _train(net, opt, batches, extra=None):
    for batch in batches:
        opt.zero_grad()
        _compute(net, batch, extra)
        opt.step()


def _params(net):
    return {n: p.detach().clone() for n, p in net.named_parameters()}


def _assert_same(a, b, exact=False):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=1e-10, atol=1e-12, msg=k)


# Hand-written arctan compander, independent of wcviz.reparam.psi.
def _psi(v, a=A, b=B):
    return a * torch.atan(v / b)


def _dpsi(v, a=A, b=B):
    return a / (b * (1 + (v / b) ** 2))


def _raw(net, name):
    return raw_weight(net.get_submodule(name))


# --- groups -----------------------------------------------------------------------------------

@pytest.mark.parametrize("setup", ["plain", "fixed", "fine", "coarse", "weightnorm", "include"])
def test_each_parameter_in_exactly_one_group(setup):
    net = _net()
    if setup in ("fixed", "fine", "coarse"):
        wcviz.compand(net, "arctan", A, B, learnable=None if setup == "fixed" else setup)
    elif setup == "weightnorm":
        wcviz.compand(net, "weightnorm")
    elif setup == "include":
        wcviz.compand(net, "erf", 1.0, 1.0, include="4")
    opt = build_optimizer(net, "adam", LR, WD)
    in_groups = [p for g in opt.param_groups for p in g["params"]]
    assert len(in_groups) == len({id(p) for p in in_groups})
    assert {id(p) for p in in_groups} == {id(p) for p in net.parameters()}
    tags = {g["wcviz_group"]: g for g in opt.param_groups}
    assert len(tags) == len(opt.param_groups)
    bn, lin = net[2], net[4]
    assert {id(p) for p in tags["norm_and_bias"]["params"]} == {
        id(bn.weight), id(bn.bias), id(net[0].bias), id(lin.bias)}
    if setup in ("fine", "coarse"):
        assert tags["companded"]["wcviz_decay_on"] == "v"
        assert tags["scales"]["weight_decay"] == 0.0
        assert len(tags["scales"]["params"]) == (2 if setup == "coarse" else 4)
    if setup == "fixed":
        assert tags["companded"]["wcviz_decay_on"] == "w" and "scales" not in tags
    if setup in ("plain", "weightnorm"):
        assert set(tags) == {"decay", "norm_and_bias"}  # weight-norm g, v: ordinary weights


@pytest.mark.parametrize("decay_norm_and_bias,expected", [(True, WD), (False, 0.0)])
def test_norm_and_bias_decay_option(decay_norm_and_bias, expected):
    opt = build_optimizer(_net(), "sgd", LR, WD, decay_norm_and_bias=decay_norm_and_bias)
    groups = {g["wcviz_group"]: g for g in opt.param_groups}
    assert groups["norm_and_bias"]["weight_decay"] == expected
    assert groups["decay"]["weight_decay"] == WD


# --- SGD ------------------------------------------------------------------------------------

def test_sgd_fixed_decay_acts_on_w_one_step():
    net = wcviz.compand(_net(), "arctan", A, B)
    opt = build_optimizer(net, "sgd", LR, WD, momentum=0.0)
    _compute(net, _batches(1)[0])
    before = {n: _raw(net, n).detach().clone() for n in COMPANDED}
    grads = {n: _raw(net, n).grad.clone() for n in COMPANDED}
    opt.step()
    for n in COMPANDED:
        v0 = before[n]
        expected = v0 - LR * (grads[n] + WD * _psi(v0) * _dpsi(v0))
        torch.testing.assert_close(_raw(net, n).detach(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["arctan", "powerprop"])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_fixed_decay_equals_l2_penalty_on_w(method, momentum, nesterov):
    """The rule equals plain SGD with the penalty λ/2·‖Ψ(v)‖² in the loss, momentum included."""
    net = wcviz.compand(_net(), method, A, B)
    ref = copy.deepcopy(net)
    opt = build_optimizer(net, "sgd", LR, WD, momentum=momentum, nesterov=nesterov)
    v_ref = [_raw(ref, n) for n in COMPANDED]
    others = [p for p in ref.parameters() if all(p is not v for v in v_ref)]
    ref_opt = torch.optim.SGD([{"params": others, "weight_decay": WD},
                               {"params": v_ref, "weight_decay": 0.0}],
                              lr=LR, momentum=momentum, nesterov=nesterov)

    def penalty(model):
        return WD / 2 * sum(model.get_submodule(n).weight.square().sum() for n in COMPANDED)

    batches = _batches(4)
    _train(net, opt, batches)
    _train(ref, ref_opt, batches, extra=penalty)
    _assert_same(_params(net), _params(ref))


@pytest.mark.parametrize("learnable", ["fine", "coarse"])
def test_sgd_learnable_decays_v_and_never_a_b(learnable):
    net = wcviz.compand(_net(), "arctan", A, B, learnable=learnable)
    ref = copy.deepcopy(net)
    opt = build_optimizer(net, "sgd", LR, WD, momentum=0.9, nesterov=True)
    scales = {id(p) for n in COMPANDED for p in compander_of(ref.get_submodule(n))
              .scale_parameters()}
    ref_opt = torch.optim.SGD(
        [{"params": [p for p in ref.parameters() if id(p) not in scales], "weight_decay": WD},
         {"params": [p for p in ref.parameters() if id(p) in scales], "weight_decay": 0.0}],
        lr=LR, momentum=0.9, nesterov=True)
    batches = _batches(4)
    _train(net, opt, batches)
    _train(ref, ref_opt, batches)
    _assert_same(_params(net), _params(ref))
    moved = compander_of(net[0]).scale_parameters()[0]
    assert moved.item() != A  # a did train


def test_sgd_learnable_one_step_by_hand():
    net = wcviz.compand(_net(), "arctan", A, B, learnable="fine")
    opt = build_optimizer(net, "sgd", LR, WD, momentum=0.0)
    _compute(net, _batches(1)[0])
    v, (a, b) = _raw(net, "4"), compander_of(net[4]).scale_parameters()
    v0, gv, ga, gb = v.detach().clone(), v.grad.clone(), a.grad.clone(), b.grad.clone()
    opt.step()
    torch.testing.assert_close(v.detach(), v0 - LR * (gv + WD * v0), rtol=1e-12, atol=1e-14)
    assert a.item() == pytest.approx(A - LR * ga.item(), rel=1e-12)
    assert b.item() == pytest.approx(B - LR * gb.item(), rel=1e-12)


# --- Adam / AdamW -----------------------------------------------------------------------------

def _weight_grads(net, batch):
    """∂L/∂w of every companded layer, from a baked copy (no Ψ′ involved)."""
    baked = wcviz.bake(copy.deepcopy(net))
    _compute(baked, batch)
    return {n: baked.get_submodule(n).weight.grad for n in COMPANDED}


@pytest.mark.parametrize("name", ["adam", "adamw"])
@pytest.mark.parametrize("learnable", [None, "fine"])
@pytest.mark.parametrize("wd", [0.0, WD])
def test_modified_adam_first_step_by_hand(name, learnable, wd):
    net = wcviz.compand(_net(), "arctan", A, B, learnable=learnable)
    batch = _batches(1)[0]
    g_w = _weight_grads(net, batch)
    opt = build_optimizer(net, name, LR, wd, betas=BETAS, eps=EPS)
    _compute(net, batch)
    v0 = {n: _raw(net, n).detach().clone() for n in COMPANDED}
    opt.step()
    for n in COMPANDED:
        v, g, d = v0[n], g_w[n], _dpsi(v0[n])
        if name == "adam":  # L2 penalty's gradient, taken w.r.t. w, joins ∂L/∂w
            g = g + wd * (v / d if learnable else _psi(v))
        step = -LR * g / (g.abs() + EPS)  # Adam's first step: m̂ = g, √v̂ = |g|
        if name == "adamw" and not learnable:
            step = step - LR * wd * _psi(v)  # decoupled decay of w
        expected = v + d * step
        if name == "adamw" and learnable:
            expected = expected - LR * wd * v  # decoupled decay of v
        torch.testing.assert_close(_raw(net, n).detach(), expected, rtol=1e-9, atol=1e-12)
    if learnable:  # a, b: plain Adam, never decayed: first step is −lr·sign(g)
        a = compander_of(net[4]).scale_parameters()[0]
        assert a.item() == pytest.approx(A - LR * math.copysign(1, a.grad.item()), rel=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_modified_adam_matches_a_reference_over_several_steps(name):
    """Reference: Adam written out in w-space on the baked network, step mapped by Ψ′(v)."""
    net = wcviz.compand(_net(), "arctan", A, B)
    opt = build_optimizer(net, name, LR, WD, betas=BETAS, eps=EPS)
    plain = wcviz.bake(copy.deepcopy(net))
    v = {n: _raw(net, n).detach().clone() for n in COMPANDED}
    others = [p for n, p in plain.named_parameters()
              if n not in {f"{m}.weight" for m in COMPANDED}]
    torch_cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    ref_opt = torch_cls(others, lr=LR, weight_decay=WD, betas=BETAS, eps=EPS)
    m = {n: torch.zeros_like(v[n]) for n in v}
    s = {n: torch.zeros_like(v[n]) for n in v}
    batches = _batches(3)
    _train(net, opt, batches)
    for t, (x, y) in enumerate(batches, start=1):
        ref_opt.zero_grad()
        w = {f"{n}.weight": _psi(v[n]).requires_grad_(True) for n in COMPANDED}
        _loss(functional_call(plain, w, (x,)), y).backward()
        ref_opt.step()
        for n in COMPANDED:
            weight = w[f"{n}.weight"]
            g = weight.grad + (WD * weight.detach() if name == "adam" else 0)
            m[n] = BETAS[0] * m[n] + (1 - BETAS[0]) * g
            s[n] = BETAS[1] * s[n] + (1 - BETAS[1]) * g * g
            m_hat, s_hat = m[n] / (1 - BETAS[0] ** t), s[n] / (1 - BETAS[1] ** t)
            step = -LR * m_hat / (s_hat.sqrt() + EPS)
            if name == "adamw":
                step = step - LR * WD * weight.detach()
            v[n] = v[n] + _dpsi(v[n]) * step
    for n in COMPANDED:
        torch.testing.assert_close(_raw(net, n).detach(), v[n], rtol=1e-9, atol=1e-12)
    got = dict(net.named_parameters())
    for n, p in plain.named_parameters():  # biases and BN: torch's own Adam/AdamW
        if n not in {f"{c}.weight" for c in COMPANDED}:
            torch.testing.assert_close(got[n], p, rtol=1e-9, atol=1e-12)


def test_modified_adam_on_powerprop_zero_weights_stays_finite():
    net = _net()
    with torch.no_grad():
        net[4].weight[0, :5] = 0.0  # Ψ′(0) = 0 for α = 2: ∂L/∂w is not recoverable there
    wcviz.compand(net, "powerprop", alpha=2.0)
    opt = build_optimizer(net, "adam", LR, WD)
    _train(net, opt, _batches(2))
    v = _raw(net, "4")
    assert torch.isfinite(v).all()
    assert v[0, :5].tolist() == [0.0] * 5  # the step there is multiplied by Ψ′(0) = 0
    assert not torch.equal(v[0, 5:], torch.zeros_like(v[0, 5:]))
    assert all(torch.isfinite(t).all() for st in opt.state.values() for t in st.values())


@pytest.mark.parametrize("name,kwargs", [
    ("sgd", dict(momentum=0.9)), ("sgd", dict(momentum=0.9, nesterov=True)),
    ("sgd", dict(momentum=0.0)), ("adam", {}), ("adamw", {}), ("adam", dict(amsgrad=True))])
def test_plain_network_equals_torch(name, kwargs):
    net = _net()
    ref = copy.deepcopy(net)
    opt = build_optimizer(net, name, LR, WD, **kwargs)
    if name == "sgd":
        ref_opt = torch.optim.SGD(ref.parameters(), lr=LR, weight_decay=WD, **kwargs)
    else:
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        ref_opt = cls(ref.parameters(), lr=LR, weight_decay=WD, **kwargs)
    batches = _batches(4)
    _train(net, opt, batches)
    _train(ref, ref_opt, batches)
    _assert_same(_params(net), _params(ref), exact=True)


# --- resume, projection, bookkeeping ----------------------------------------------------------

@pytest.mark.parametrize("name,learnable", [("adam", "fine"), ("sgd", "coarse"),
                                            ("adamw", None)])
def test_state_dict_round_trip_resumes_identically(name, learnable):
    def fresh():
        return wcviz.compand(_net(), "arctan", A, B, learnable=learnable)

    batches = _batches(4)
    net = fresh()
    opt = build_optimizer(net, name, LR, WD, nesterov=(name == "sgd"))
    _train(net, opt, batches[:2])
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buf)
    _train(net, opt, batches[2:])

    buf.seek(0)
    ckpt = torch.load(buf)
    resumed = fresh()  # different initial weights, all overwritten by the checkpoint
    resumed.load_state_dict(ckpt["model"], strict=True)
    opt2 = build_optimizer(resumed, name, LR, WD, nesterov=(name == "sgd"))
    opt2.load_state_dict(ckpt["opt"])
    _train(resumed, opt2, batches[2:])
    _assert_same(_params(resumed), _params(net), exact=True)


def test_learnable_scales_are_projected_to_min_scale():
    net = wcviz.compand(_net(), "arctan", A, B, learnable="fine")
    opt = build_optimizer(net, "sgd", 1.0, momentum=0.0)
    _compute(net, _batches(1)[0])
    a, b = compander_of(net[0]).scale_parameters()
    a.grad.fill_(1e3)  # a step of −1000
    opt.step()
    assert a.item() == compander_of(net[0]).min_scale
    assert all(p.item() >= 1e-3 for n in COMPANDED
               for p in compander_of(net.get_submodule(n)).scale_parameters())


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_step_leaves_gradients_alone_and_runs_hooks_once(name):
    net = wcviz.compand(_net(), "arctan", A, B)
    torch.optim.Adam(nn.Linear(1, 1).parameters())  # torch wraps Adam.step with its hooks
    opt = build_optimizer(net, name, LR, WD)
    calls = []
    opt.register_step_pre_hook(lambda *args: calls.append("pre"))
    opt.register_step_post_hook(lambda *args: calls.append("post"))
    batch = _batches(1)[0]

    def closure():
        opt.zero_grad()
        return _compute(net, batch)

    expected = _loss(net(batch[0]), batch[1]).item()  # train mode: batch statistics
    loss = opt.step(closure)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    opt.step()
    assert all(torch.equal(p.grad, grads[n]) for n, p in net.named_parameters())
    assert calls == ["pre", "post", "pre", "post"]


@pytest.mark.parametrize("args,kwargs,message", [
    (("rmsprop", 0.1), {}, "unknown optimizer 'rmsprop'"),
    (("sgd", 0.0), {}, "lr must be a positive number"),
    (("adam", 0.1, -1e-4), {}, "weight_decay must be >= 0"),
    (("sgd", 0.1), dict(momentum=0.0, nesterov=True), "nesterov=True needs momentum"),
    (("adam", 0.1), dict(betas=(1.5, 0.999)), "bad optimizer option"),
])
def test_bad_arguments_are_clear_errors(args, kwargs, message):
    with pytest.raises(WcvizError, match=message):
        build_optimizer(_net(), *args, **kwargs)
