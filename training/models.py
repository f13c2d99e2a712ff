"""The model zoo: one small entry point per variant, each built from a table (timm-style).

CIFAR models take 32×32 inputs (3×3 stride-1 stem, no max-pool); ``resnet50_imagenet`` is
torchvision's ResNet50 (224×224); the ``digits_*`` models take the built-in 1×8×8 digits; the
``mnist1d_*`` models are MNIST-1D's reference CNN and MLP (sequences of length 40).

Initialisation follows the paper (Sec. IV-A): ResNets and WRN Kaiming-uniform, which is
PyTorch's default ``reset_parameters`` (``kaiming_uniform_(a=√5)``, fan-in) kept as is; VGG conv
weights normal(0, √(2/n)) with n = k²·out_channels, VGG linear layers Kaiming-uniform (the
default). ``resnet50_imagenet`` keeps torchvision's own initialisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from wcviz.errors import WcvizError


@dataclass(frozen=True)
class ModelSpec:
    """A registered model and its defaults (as timm's ``default_cfg``).

    Attributes:
        name: registry key (the builder's function name).
        builder: ``builder(num_classes=..., [dropout=...]) -> nn.Module``.
        input_shape: (C, H, W) of the images the model is built for.
        num_classes: default classifier width.
        dropout: default dropout probability; None when the model has no dropout option.
        display: the paper's spelling (tables, figures).
    """

    name: str
    builder: Callable[..., nn.Module]
    input_shape: tuple[int, int, int]
    num_classes: int
    dropout: float | None
    display: str


#: name -> :class:`ModelSpec`. Filled by ``@register`` below.
MODELS: dict[str, ModelSpec] = {}

CIFAR_INPUT = (3, 32, 32)
IMAGENET_INPUT = (3, 224, 224)
DIGITS_INPUT = (1, 8, 8)
MNIST1D_INPUT = (1, 1, 40)  # sequences of length 40, as one-row images


def register(*, input_shape: tuple[int, int, int], display: str, num_classes: int = 10,
             dropout: float | None = None):
    """Decorator: add a builder to :data:`MODELS` under its function name, with its defaults."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[fn.__name__] = ModelSpec(fn.__name__, fn, tuple(input_shape), num_classes,
                                        dropout, display)
        return fn

    return add


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``, or a one-line WcvizError listing the choices."""
    if name not in MODELS:
        raise WcvizError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, num_classes: int | None = None, dropout: float | None = None) -> nn.Module:
    """Build a registered model.

    Args:
        name: a key of :data:`MODELS` (e.g. "resnet18", "vgg16_bn", "digits_cnn").
        num_classes: size of the classifier output (default: the model's).
        dropout: dropout probability (default: the model's); only for models that have one.

    Returns:
        A freshly initialised ``nn.Module``.

    Raises:
        WcvizError: for an unknown name, or a dropout for a model without dropout.
    """
    spec = model_spec(name)
    kw = {"num_classes": spec.num_classes if num_classes is None else num_classes}
    if dropout is not None and spec.dropout is None:
        raise WcvizError(f"model {name!r} has no dropout option; drop --set dropout=...")
    if spec.dropout is not None:
        kw["dropout"] = spec.dropout if dropout is None else dropout
    return spec.builder(**kw)


# --------------------------------------------------------------------------- CIFAR ResNets


class BasicBlock(nn.Module):
    """Two 3×3 convs with an identity (or 1×1 projection) shortcut; expansion 1."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 convs with a shortcut; expansion 4."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class CifarResNet(nn.Module):
    """ResNet for 32×32 inputs: 3×3 stride-1 stem, no max-pool, four stages (64..512 planes)."""

    def __init__(self, block: type[nn.Module], depths: tuple[int, ...], num_classes: int = 10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages = []
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            stages.append(self._stage(block, planes, depth, stride=1 if i == 0 else 2))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _stage(self, block, planes: int, depth: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (depth - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
        return self.linear(out)


#: name -> (block, blocks per stage). One row per CIFAR ResNet.
RESNET_CFGS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def _create_resnet(name: str, num_classes: int) -> nn.Module:
    block, depths = RESNET_CFGS[name]
    return CifarResNet(block, depths, num_classes)  # default init = Kaiming-uniform


@register(input_shape=CIFAR_INPUT, display="ResNet18")
def resnet18(num_classes: int) -> nn.Module:
    """CIFAR ResNet18 (11,173,962 parameters for 10 classes)."""
    return _create_resnet("resnet18", num_classes)


@register(input_shape=CIFAR_INPUT, display="ResNet34")
def resnet34(num_classes: int) -> nn.Module:
    """CIFAR ResNet34 (21,282,122 parameters for 10 classes)."""
    return _create_resnet("resnet34", num_classes)


@register(input_shape=CIFAR_INPUT, display="ResNet50")
def resnet50(num_classes: int) -> nn.Module:
    """CIFAR ResNet50 (23,520,842 parameters for 10 classes)."""
    return _create_resnet("resnet50", num_classes)


# --------------------------------------------------------------------------- VGG-BN (CIFAR)

#: Conv widths per stage; "M" is a 2×2 max-pool. One row per VGG variant.
VGG_CFGS = {
    "vgg16_bn": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                 512, 512, 512, "M"),
    "vgg19_bn": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                 512, 512, 512, 512, "M"),
}


class CifarVGG(nn.Module):
    """VGG with batch norm for 32×32 inputs; dropout before the two hidden FC layers."""

    def __init__(self, cfg: tuple, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        layers, in_ch = [], 3
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(in_ch, item, 3, padding=1), nn.BatchNorm2d(item),
                       nn.ReLU(inplace=True)]
            in_ch = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(512, 512), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(512, 512), nn.ReLU(inplace=True),
            nn.Linear(512, num_classes))
        _vgg_init(self)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def _vgg_init(model: nn.Module) -> None:
    """Paper init: conv normal(0, √(2/n)), n = k²·out_channels, zero bias; linear kept default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            nn.init.zeros_(m.bias)


@register(input_shape=CIFAR_INPUT, display="VGG16-BN", dropout=0.5)
def vgg16_bn(num_classes: int, dropout: float) -> nn.Module:
    """CIFAR VGG16 with batch norm and dropout in the FC layers."""
    return CifarVGG(VGG_CFGS["vgg16_bn"], num_classes, dropout)


@register(input_shape=CIFAR_INPUT, display="VGG19-BN", dropout=0.5)
def vgg19_bn(num_classes: int, dropout: float) -> nn.Module:
    """CIFAR VGG19 with batch norm and dropout in the FC layers."""
    return CifarVGG(VGG_CFGS["vgg19_bn"], num_classes, dropout)


# --------------------------------------------------------------------------- WideResNet


class WideBlock(nn.Module):
    """Pre-activation wide block: BN-ReLU-conv, dropout, BN-ReLU-conv, shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.equal = in_planes == planes and stride == 1
        self.shortcut = None if self.equal else nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        # The projection sees the pre-activated input (as in the reference WRN).
        skip = x if self.equal else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
        return out + skip


class WideResNet(nn.Module):
    """WRN-depth-width for 32×32 inputs (Zagoruyko & Komodakis)."""

    def __init__(self, depth: int, width: int, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        if (depth - 4) % 6:
            raise WcvizError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * width, 32 * width, 64 * width)
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        blocks, in_planes = [], widths[0]
        for i, planes in enumerate(widths[1:]):
            stage = [WideBlock(in_planes if j == 0 else planes, planes,
                               (1 if i == 0 else 2) if j == 0 else 1, dropout) for j in range(n)]
            blocks.append(nn.Sequential(*stage))
            in_planes = planes
        self.block1, self.block2, self.block3 = blocks
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = torch.relu(self.bn(out))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


@register(input_shape=CIFAR_INPUT, display="WRN-28-10", dropout=0.3)
def wrn28_10(num_classes: int, dropout: float) -> nn.Module:
    """WideResNet-28-10 with dropout 0.3 (36,479,194 parameters for 10 classes)."""
    return WideResNet(28, 10, num_classes, dropout)


# --------------------------------------------------------------------------- ImageNet-size


@register(input_shape=IMAGENET_INPUT, display="ResNet50", num_classes=1000)
def resnet50_imagenet(num_classes: int) -> nn.Module:
    """torchvision's ResNet50 (7×7 stem, max-pool) for TinyImageNet/ImageNet at 224×224."""
    from torchvision.models import resnet50 as tv_resnet50

    return tv_resnet50(weights=None, num_classes=num_classes)


# --------------------------------------------------------------------------- demo (8×8 digits)


class DigitsCNN(nn.Module):
    """A small CNN for 1×8×8 digits: two 3×3 convs, a 2×2 pool, one hidden linear layer."""

    def __init__(self, num_classes: int = 10, width: int = 16, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc1 = nn.Linear(2 * width * 16, 64)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x):
        out = torch.relu(self.conv1(x))
        out = nn.functional.max_pool2d(torch.relu(self.conv2(out)), 2)  # 8×8 -> 4×4
        out = self.dropout(torch.relu(self.fc1(torch.flatten(out, 1))))
        return self.fc2(out)


class DigitsMLP(nn.Module):
    """A two-hidden-layer perceptron on the 64 flattened pixels."""

    def __init__(self, num_classes: int = 10, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        out = torch.relu(self.fc1(torch.flatten(x, 1)))
        out = self.dropout(torch.relu(self.fc2(out)))
        return self.fc3(out)


@register(input_shape=DIGITS_INPUT, display="digits CNN", dropout=0.0)
def digits_cnn(num_classes: int, dropout: float) -> nn.Module:
    """The demo's CNN for the built-in 8×8 digits."""
    return DigitsCNN(num_classes, dropout=dropout)


@register(input_shape=DIGITS_INPUT, display="digits MLP", dropout=0.0)
def digits_mlp(num_classes: int, dropout: float) -> nn.Module:
    """A perceptron for the built-in 8×8 digits."""
    return DigitsMLP(num_classes, dropout=dropout)


# --------------------------------------------------------------------------- MNIST-1D references


class Mnist1dCNN(nn.Module):
    """MNIST-1D's reference CNN (Greydanus 2020, ``ConvBase``): three Conv1d of 25 channels
    (kernel 5, 3, 3; stride 2; padding 1: length 40 -> 19 -> 10 -> 5), ReLU, and a linear
    classifier on the 125 flattened features. Published: ≈ 94 % test accuracy."""

    def __init__(self, num_classes: int = 10, channels: int = 25, length: int = 40):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        out_len = length
        for k in (5, 3, 3):
            out_len = (out_len + 2 - k) // 2 + 1
        self.linear = nn.Linear(channels * out_len, num_classes)

    def forward(self, x):
        out = x.reshape(x.shape[0], 1, x.shape[-1])  # (N, 1, 1, L) "images" -> (N, 1, L)
        out = torch.relu(self.conv1(out))
        out = torch.relu(self.conv2(out))
        out = torch.relu(self.conv3(out))
        return self.linear(torch.flatten(out, 1))


class Mnist1dMLP(nn.Module):
    """MNIST-1D's reference MLP (``MLPBase``): 40 -> 100 -> 100 -> 10 with ReLU and a
    residual connection around the second layer. Published: ≈ 68 % test accuracy."""

    def __init__(self, num_classes: int = 10, hidden: int = 100, length: int = 40):
        super().__init__()
        self.linear1 = nn.Linear(length, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        h = torch.relu(self.linear1(torch.flatten(x, 1)))
        h = h + torch.relu(self.linear2(h))
        return self.linear3(h)


@register(input_shape=MNIST1D_INPUT, display="MNIST-1D CNN")
def mnist1d_cnn(num_classes: int) -> nn.Module:
    """MNIST-1D's reference CNN (input (1, 1, 40))."""
    return Mnist1dCNN(num_classes)


@register(input_shape=MNIST1D_INPUT, display="MNIST-1D MLP")
def mnist1d_mlp(num_classes: int) -> nn.Module:
    """MNIST-1D's reference MLP (input (1, 1, 40))."""
    return Mnist1dMLP(num_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
