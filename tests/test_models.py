"""The model zoo: every registered model builds, runs, trains, compands and bakes."""

import copy
import math

import pytest
import torch
from torch import nn

import wcviz
from wcviz.training.datasets import DATASETS
from wcviz.training.models import MODELS, build_model, count_parameters
from wcviz.errors import WcvizError

# Standard CIFAR parameter counts (10 classes), as given in the issue / the reference models.
EXPECTED_COUNTS = {
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "resnet50": 23_520_842,
    "wrn28_10": 36_479_194,
    "mnist1d_cnn": 5_210,  # MNIST-1D's ConvBase
    "mnist1d_mlp": 15_210,  # MNIST-1D's MLPBase
}

# Small inputs keep the big models cheap: the CIFAR ResNets/WRN pool adaptively, so 8×8 runs
# the same layers; VGG needs 32×32 (five max-pools down to 1×1 before its 512-wide FC).
SMALL_INPUT = {"resnet18": 8, "resnet34": 8, "resnet50": 8, "wrn28_10": 8,
               "resnet50_imagenet": 32}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Batch-2 tensors gain nothing from intra-op threads, and on a shared 2-core machine the
    spinning second thread slows every op down several times; restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _input(name, batch=2):
    c, h, w = MODELS[name].input_shape
    side = SMALL_INPUT.get(name)
    h, w = (side, side) if side else (h, w)
    return torch.randn(batch, c, h, w)


def test_registry_has_the_interface_names():
    for name in ("resnet18", "resnet34", "resnet50", "vgg16_bn", "vgg19_bn", "wrn28_10",
                 "resnet50_imagenet", "digits_cnn"):
        assert name in MODELS
    # every model's input shape is that of some dataset: each model can be trained
    shapes = {d.input_shape for d in DATASETS.values()}
    assert all(spec.input_shape in shapes for spec in MODELS.values())


def test_dropout_default_comes_from_the_registry_and_can_be_overridden():
    drops = lambda m: {x.p for x in m.modules() if isinstance(x, nn.Dropout)}  # noqa: E731
    assert drops(build_model("digits_cnn")) == {MODELS["digits_cnn"].dropout}
    assert drops(build_model("digits_cnn", dropout=0.25)) == {0.25}
    with pytest.raises(WcvizError, match="model 'resnet18' has no dropout option"):
        build_model("resnet18", dropout=0.1)
    assert build_model("digits_mlp")(torch.randn(2, 1, 8, 8)).shape == (2, MODELS["digits_mlp"].num_classes)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_trains_compands_and_bakes(name):
    """Built once (the big ones are slow to build): count, forward, backward, compand, bake."""
    torch.manual_seed(1)
    model = build_model(name, num_classes=10)
    if name in EXPECTED_COUNTS:
        assert count_parameters(model) == EXPECTED_COUNTS[name]
    plain = copy.deepcopy(model)  # an architecture twin that is never companded
    x = _input(name)
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        before = model(x)
        wcviz.compand(model, "arctan", a=1.0, b=0.8)
        companded = model(x)
        wcviz.bake(model)
        baked = model(x)
    assert torch.allclose(companded, before, rtol=1e-4, atol=1e-5)
    assert torch.allclose(baked, before, rtol=1e-4, atol=1e-5)
    plain.load_state_dict(model.state_dict(), strict=True)


def test_num_classes_sets_the_output_width():
    assert build_model("digits_cnn", num_classes=7)(torch.randn(2, 1, 8, 8)).shape == (2, 7)


def test_cifar_resnet_stem_is_3x3_stride_1_without_maxpool():
    model = build_model("resnet18")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_resnet_init_is_kaiming_uniform():
    """PyTorch's Kaiming-uniform (a=√5): U(-1/√fan_in, 1/√fan_in), std = bound/√3."""
    conv = build_model("resnet18").layer4[1].conv2
    bound = 1 / math.sqrt(conv.weight[0].numel())
    w = conv.weight.detach()
    assert w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)


@pytest.mark.parametrize("name", ["vgg16_bn", "vgg19_bn"])
def test_vgg_init_and_dropout(name):
    model = build_model(name, dropout=0.4)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    last = convs[-1]  # 512·512·9 weights: a tight std estimate
    n = last.kernel_size[0] * last.kernel_size[1] * last.out_channels
    assert last.weight.std().item() == pytest.approx(math.sqrt(2 / n), rel=0.02)
    assert all((c.bias == 0).all() for c in convs)
    linear = model.classifier[1]
    assert linear.weight.abs().max() <= 1 / math.sqrt(linear.in_features)
    drops = [m.p for m in model.classifier if isinstance(m, nn.Dropout)]
    assert drops == [0.4, 0.4]
    assert not any(isinstance(m, nn.Dropout) for m in model.features)


def test_wrn_has_dropout_03():
    drops = {m.p for m in build_model("wrn28_10").modules() if isinstance(m, nn.Dropout)}
    assert drops == {0.3}


def test_unknown_model_is_a_clear_error():
    with pytest.raises(WcvizError, match="unknown model 'resnet19'.*resnet18"):
        build_model("resnet19")


@pytest.mark.parametrize("name,kw", [("digits", {}), ("synthetic-cifar", {"n_train": 64, "n_test": 16})])
def test_dataset_registry_matches_what_loads(name, kw):
    """The shape and classes the model/dataset check relies on are those of the loaded data."""
    spec = DATASETS[name]
    data = spec.load(None, **kw)
    assert (data.input_shape, data.num_classes) == (spec.input_shape, spec.num_classes)
    fits = [m.name for m in MODELS.values() if m.input_shape == spec.input_shape]
    x = data.arrays["test"].images[:2].float()  # a model that fits takes these images
    assert build_model(fits[0], num_classes=spec.num_classes)(x).shape == (2, spec.num_classes)
