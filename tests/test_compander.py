"""compand / bake: function preserved, gradients, coarse/fine scales, bad inputs, torch features."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

import wcviz
from wcviz.reparam.compander import compand_info, compander_of, layer_weights, raw_weight
from wcviz.errors import WcvizError
from wcviz.reparam.optim import build_optimizer

POINTWISE = [("arctan", {}), ("arsinh", {}), ("erf", {}), ("powerprop", {"alpha": 2.0}),
             ("powerprop", {"alpha": 1.5})]
SCALED = ["arctan", "arsinh", "erf"]


class TinyNet(nn.Module):
    """Every tracked layer type once, with a norm layer and biases."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv3 = nn.Conv3d(4, 2, 1, bias=False)
        self.fc = nn.Linear(2 * 4 * 4, 5)

    def forward(self, x):  # x: (N, 2, 16)
        h = torch.relu(self.conv1(x)).view(-1, 3, 4, 4)
        h = torch.relu(self.bn(self.conv2(h)))  # (N, 4, 4, 4)
        h = self.conv3(h.unsqueeze(2))  # (N, 2, 1, 4, 4)
        return self.fc(h.flatten(1))


LAYERS = ["conv1", "conv2", "conv3", "fc"]


def _x(n=6, dtype=torch.float32):
    return torch.randn(n, 2, 16, dtype=dtype)


def _pairs(method, options):
    """(method, options, learnable) for every supported combination."""
    learnables = [None, "fine", "coarse"] if method in SCALED else [None]
    return [(method, options, lrn) for lrn in learnables]


ALL = [c for m, o in POINTWISE for c in _pairs(m, o)] + [("weightnorm", {}, None)]


def _companded(method, options, learnable, a=1.0, b=0.6):
    net = TinyNet()
    ref = copy.deepcopy(net)
    wcviz.compand(net, method, a=a, b=b, learnable=learnable, **options)
    return net, ref


@pytest.mark.parametrize("method,options,learnable", ALL)
def test_function_preserved_at_registration(method, options, learnable):
    net, ref = _companded(method, options, learnable)
    x = _x()
    for mode in ("train", "eval"):
        getattr(net, mode)(), getattr(ref, mode)()
        torch.testing.assert_close(net(x), ref(x), rtol=1e-5, atol=1e-6)
    for name in LAYERS:
        layer = getattr(net, name)
        assert raw_weight(layer) is not None
        torch.testing.assert_close(layer.weight, getattr(ref, name).weight, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method,options,learnable", [c for c in ALL if c[0] != "weightnorm"])
def test_raw_gradient_is_weight_gradient_times_psi_prime(method, options, learnable):
    net, _ = _companded(method, options, learnable)
    baked = wcviz.bake(copy.deepcopy(net))
    x = _x()
    net(x).square().mean().backward()
    baked(x).square().mean().backward()
    for name in LAYERS:
        layer = getattr(net, name)
        v = raw_weight(layer)
        expected = getattr(baked, name).weight.grad * compander_of(layer).grad(v)
        torch.testing.assert_close(v.grad, expected, rtol=1e-4, atol=1e-7)


def test_fine_has_one_pair_per_layer():
    net, _ = _companded("arctan", {}, "fine", a=0.5, b=1.0)
    names = [n for n, _ in net.named_parameters() if n.endswith((".a", ".b"))]
    assert names == [f"{layer}.parametrizations.weight.0.{s}" for layer in LAYERS
                     for s in ("a", "b")]
    assert all(p.item() in (0.5, 1.0) for n, p in net.named_parameters() if n in names)


def test_coarse_pair_is_counted_once():
    net, _ = _companded("arctan", {}, "coarse", a=0.5, b=1.0)
    params = dict(net.named_parameters())
    assert [n for n in params if n.endswith((".a", ".b"))] == [
        "conv1.parametrizations.weight.0.a", "conv1.parametrizations.weight.0.b"]
    assert [k for k in net.state_dict() if k.endswith((".a", ".b"))] == [
        "conv1.parametrizations.weight.0.a", "conv1.parametrizations.weight.0.b"]
    opt = build_optimizer(net, "sgd", 0.1)
    in_opt = [p for g in opt.param_groups for p in g["params"]]
    assert len(in_opt) == len(set(map(id, in_opt))) == len(list(net.parameters()))
    # Every layer uses that one pair, so a's gradient sums over all layers.
    a = params["conv1.parametrizations.weight.0.a"]
    assert all(compander_of(getattr(net, n)).scale_parameters()[0] is a for n in LAYERS)
    baked = wcviz.bake(copy.deepcopy(net))
    x = _x()
    net(x).sum().backward()
    baked(x).sum().backward()
    # Ψ = a·atan(v/b) is linear in a, so ∂L/∂a = Σ over all layers of Σ ∂L/∂w · w/a.
    expected = sum((getattr(baked, n).weight.grad * getattr(baked, n).weight).sum()
                   for n in LAYERS) / a.detach()
    torch.testing.assert_close(a.grad, expected, rtol=1e-4, atol=1e-6)


def _train(net, steps=3, lr=0.05):
    opt = build_optimizer(net, "sgd", lr, 1e-4)
    for _ in range(steps):
        opt.zero_grad()
        net(_x()).square().mean().backward()
        opt.step()


@pytest.mark.parametrize("method,options,learnable",
                         [("arctan", {}, None), ("erf", {}, "fine"), ("arctan", {}, "coarse"),
                          ("powerprop", {"alpha": 2.0}, None), ("weightnorm", {}, None)])
def test_bake_keeps_outputs_and_loads_strictly_into_a_fresh_model(method, options, learnable):
    net, _ = _companded(method, options, learnable)
    _train(net)  # v, a, b have moved away from their initial values
    net.eval()
    x = _x()
    before = net(x)
    wcviz.bake(net)
    assert compand_info(net) is None
    assert not any(raw_weight(getattr(net, n)) is not None for n in LAYERS)
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)
    fresh = TinyNet().eval()
    fresh.load_state_dict(net.state_dict(), strict=True)
    torch.testing.assert_close(fresh(x), before, rtol=0, atol=0)
    clone = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(clone(x), before, rtol=0, atol=0)
    wcviz.compand(net, "arctan")  # a baked model is plain again


def test_saving_a_companded_model_says_to_save_its_state_dict():
    net, _ = _companded("arctan", {}, "fine")
    with pytest.raises(RuntimeError, match="state_dict"):
        torch.save(net, io.BytesIO())
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)  # the way that works
    buf.seek(0)
    other, _ = _companded("arctan", {}, "fine")
    other.load_state_dict(torch.load(buf), strict=True)


@pytest.mark.parametrize("kwargs,message", [
    ({"a": 0.0}, "a must be a positive number"),
    ({"a": -1.0}, "a must be a positive number"),
    ({"b": 0.0}, "b must be a positive number"),
    ({"b": float("nan")}, "b must be a positive number"),
    ({"method": "tanh"}, "unknown method 'tanh'"),
    ({"learnable": "medium"}, "learnable must be"),
    ({"method": "powerprop", "learnable": "fine"}, "has no a, b to learn"),
    ({"method": "powerprop", "alpha": 0.5}, "alpha >= 1"),
    ({"method": "arctan", "alpha": 2.0}, "unknown option"),
    ({"include": "nothing*"}, "no weight to compand matched"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    net = TinyNet()
    with pytest.raises(WcvizError, match=message):
        wcviz.compand(net, **kwargs)
    assert compand_info(net) is None and raw_weight(net.conv1) is None


def test_companding_twice_is_an_error():
    net, _ = _companded("arctan", {}, None)
    with pytest.raises(WcvizError, match="already companded.*bake"):
        wcviz.compand(net, "erf")


@pytest.mark.parametrize("method,a,bound", [("arctan", 0.5, "0.7854"), ("erf", 0.5, "0.5")])
def test_weight_outside_range_names_layer_max_and_bound(method, a, bound):
    net = TinyNet()
    with torch.no_grad():
        net.conv2.weight[0, 0, 0, 0] = -0.9
    with pytest.raises(WcvizError) as err:
        wcviz.compand(net, method, a=a, b=1.0)
    text = str(err.value)
    assert "'conv2'" in text and "0.9" in text and bound in text and "clip=True" in text
    # Nothing was changed, not even the layer before the bad one.
    assert raw_weight(net.conv1) is None and compand_info(net) is None


def _below(bound: float) -> float:
    """The largest float32 strictly below ``bound``."""
    w = torch.tensor(bound, dtype=torch.float32)
    while float(w) >= bound:
        w = torch.nextafter(w, torch.tensor(0.0))
    return float(w)


@pytest.mark.parametrize("method,a,w", [
    ("arctan", 0.7, _below(0.7 * torch.pi / 2)),  # w/a rounds onto π/2: tan wraps negative
    ("arsinh", 1.0, 100.0),  # sinh(100) overflows float32
])
def test_weight_whose_inverse_is_not_exact_in_float32(method, a, w):
    net = TinyNet()
    with torch.no_grad():
        net.fc.weight[0, 0] = w
    with pytest.raises(WcvizError, match="'fc'.*for Ψ⁻¹\\(w\\) in float32; raise a"):
        wcviz.compand(net, method, a=a)
    assert raw_weight(net.conv1) is None
    if method == "arctan":  # clipping moves it to 0.999 of the bound, where tan is exact
        with pytest.warns(UserWarning, match="'fc': clipped"):
            wcviz.compand(net, method, a=a, clip=True)
        assert torch.isfinite(raw_weight(net.fc)).all() and raw_weight(net.fc)[0, 0] > 0


def test_clip_reports_the_clipped_fraction():
    net = TinyNet()
    with torch.no_grad():
        net.conv2.weight.view(-1)[:9] = 2.0  # 9 of 4·3·3·3 = 108 weights outside π/2
    with pytest.warns(UserWarning, match=r"'conv2': clipped 8\.333%"):
        wcviz.compand(net, "arctan", a=1.0, clip=True)
    assert compand_info(net)["clipped"] == {"conv2": pytest.approx(9 / 108)}
    assert torch.isfinite(raw_weight(net.conv2)).all()
    assert net.conv2.weight.abs().max() < torch.pi / 2


def test_in_range_weights_are_never_clipped_silently():
    net = TinyNet()
    with torch.no_grad():
        net.fc.weight[0, 0] = 0.9995 * 0.5  # inside erf's range, above the clip limit
    wcviz.compand(net, "erf", a=0.5)
    assert net.fc.weight[0, 0].item() == pytest.approx(0.9995 * 0.5, rel=1e-5)
    assert compand_info(net)["clipped"] == {}


@pytest.mark.parametrize("include,exclude,expected", [
    ("conv*", None, ["conv1", "conv2", "conv3"]),
    (None, "fc", ["conv1", "conv2", "conv3"]),
    (["conv1", "fc"], None, ["conv1", "fc"]),
    ("conv*", ["conv2", "conv3"], ["conv1"]),
])
def test_include_and_exclude_patterns(include, exclude, expected):
    net = TinyNet()
    wcviz.compand(net, "arctan", include=include, exclude=exclude)
    assert [n for n in LAYERS if raw_weight(getattr(net, n)) is not None] == expected
    assert compand_info(net)["layers"] == expected
    assert compander_of(net.bn) is None


def test_compand_info_and_layer_weights():
    net, _ = _companded("arctan", {}, "fine", a=0.5, b=1.0)
    info = compand_info(net)
    assert (info["method"], info["a"], info["b"], info["learnable"]) == ("arctan", 0.5, 1.0, "fine")
    lw = layer_weights(net.fc)
    assert (lw.method, lw.a, lw.b) == ("arctan", 0.5, 1.0)
    torch.testing.assert_close(lw.weight, 0.5 * torch.atan(lw.raw / 1.0))
    plain = layer_weights(TinyNet().fc)
    assert (plain.method, plain.raw, plain.a) == (None, None, None)


def test_deepcopy_keeps_the_coarse_pair_shared_and_separate_from_the_original():
    net, _ = _companded("arctan", {}, "coarse")
    twin = copy.deepcopy(net)
    x = _x()
    torch.testing.assert_close(twin(x), net(x), rtol=0, atol=0)
    pairs = {id(compander_of(getattr(twin, n)).scale_parameters()[0]) for n in LAYERS}
    assert len(pairs) == 1
    assert compander_of(net.fc).scale_parameters()[0] is not \
        compander_of(twin.fc).scale_parameters()[0]
    assert compand_info(twin) == compand_info(net)


@pytest.mark.parametrize("learnable", [None, "coarse"])
def test_to_float64(learnable):
    net, ref = _companded("arctan", {}, learnable)
    net.eval().to(torch.float64)
    ref.eval().to(torch.float64)
    x = _x(dtype=torch.float64)
    out = net(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref(x), rtol=1e-5, atol=1e-6)
    scales = compander_of(net.fc).scale_parameters()
    assert all(s.dtype == torch.float64 for s in scales)
    if learnable == "coarse":  # the shared pair was converted once, in place
        assert compander_of(net.conv2).scale_parameters()[0] is scales[0]


def test_float64_model_gets_float64_scales_and_exact_preservation():
    net = TinyNet().double().eval()
    ref = copy.deepcopy(net)
    wcviz.compand(net, "arctan", a=0.7, b=0.9, learnable="fine")
    assert compander_of(net.fc).scale_parameters()[0].dtype == torch.float64
    x = _x(dtype=torch.float64)
    torch.testing.assert_close(net(x), ref(x), rtol=1e-12, atol=1e-13)


def test_scale_floor_passes_gradient_and_keeps_scales_positive():
    net, _ = _companded("arctan", {}, "fine", a=0.5, b=1.0)
    comp = compander_of(net.fc)
    a, b = comp.scale_parameters()
    with torch.no_grad():
        a.fill_(-1.0)  # as a foreign optimizer might leave it
    assert comp.params()["a"].item() == pytest.approx(comp.min_scale)
    net(_x()).sum().backward()
    assert a.grad is not None and a.grad.item() != 0  # not stuck at the floor


def test_eval_and_train_modes_follow_the_baseline():
    net, ref = _companded("arctan", {}, "fine")
    x = _x()
    for mode in ("train", "eval", "train"):
        getattr(net, mode)(), getattr(ref, mode)()
        assert net.bn.training == ref.bn.training
        torch.testing.assert_close(net(x), ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compile_matches_eager_outputs_and_gradients():
    """One tiny conv net through inductor (slow on CPU: keep it the only compile test)."""
    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3)
            self.fc = nn.Linear(3 * 4 * 4, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    eager = wcviz.compand(Small(), "arctan", a=1.0, b=0.6, learnable="fine")
    compiled_net = copy.deepcopy(eager)
    compiled = torch.compile(compiled_net)
    x = torch.randn(3, 2, 6, 6)
    out_e, out_c = eager(x), compiled(x)
    torch.testing.assert_close(out_c, out_e, rtol=1e-5, atol=1e-6)
    out_e.square().sum().backward()
    out_c.square().sum().backward()
    for (name, p), q in zip(eager.named_parameters(), compiled_net.parameters()):
        assert q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("learnable", ["fine", "coarse"])
def test_scales_replaced_by_assigning_load_are_used(learnable):
    net, _ = _companded("arctan", {}, learnable, a=0.5, b=1.0)
    state = {k: (v + 0.25 if k.endswith(".a") else v.clone())
             for k, v in net.state_dict().items()}
    net.load_state_dict(state, assign=True)  # new Parameter objects, not copies into the old
    for name in LAYERS:
        assert compander_of(getattr(net, name)).scalar_params()["a"] == 0.75
    opt = build_optimizer(net, "sgd", 0.1)
    a_params = [p for n, p in net.named_parameters() if n.endswith(".a")]
    assert all(any(p is q for g in opt.param_groups for q in g["params"]) for p in a_params)


def test_optimizer_reuses_the_forwards_psi_and_recomputes_it_once_v_changed():
    torch.manual_seed(0)
    model = wcviz.compand(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3)), "arctan", b=0.6)
    comp, v = compander_of(model[0]), raw_weight(model[0])
    w = model[0].weight  # a training forward of the parametrization
    kept = comp.psi_of(v)
    assert kept.data_ptr() == w.data_ptr()  # the forward's Ψ(v), not computed again
    assert "_last" not in comp.__dict__  # handed over once: the copy of the weight is freed
    w = model[0].weight
    with torch.no_grad():
        v.add_(0.25)  # v changed in place: the kept Ψ(v) is stale
    again = comp.psi_of(v)
    assert again.data_ptr() != w.data_ptr()
    assert torch.equal(again, torch.atan((v / 0.6).detach()))
    model[0].weight  # copies and pickles never carry the kept value
    assert "_last" not in copy.deepcopy(comp).__dict__


def test_sgd_steps_with_the_kept_psi_are_bitwise_those_computed_afresh():
    torch.manual_seed(0)
    x, y = torch.randn(8, 6), torch.randn(8, 3)
    models = [wcviz.compand(nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)),
                            "arctan", a=1.0, b=0.6)]
    models.append(copy.deepcopy(models[0]))
    opts = [build_optimizer(m, "sgd", 0.1, 1e-2, momentum=0.9) for m in models]
    for _ in range(3):
        for m, opt in zip(models, opts):
            opt.zero_grad()
            nn.functional.mse_loss(m(x), y).backward()
        for layer in (models[1][0], models[1][2]):
            compander_of(layer).forget()  # the second model computes Ψ(v) afresh
        for opt in opts:
            opt.step()
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)
