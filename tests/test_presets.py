"""The preset table against the paper (arXiv 2306.16993, Sec. IV and Tables I–VII)."""

import re
from pathlib import Path

import pytest

import dataclasses

from wcviz.training.models import MODELS
from wcviz.training.config import FIELD_TYPES, RunConfig, parse_overrides
from wcviz.training.presets import (METHODS, PRESETS, RECIPES, Recipe, check_config, format_presets,
                              resolve, run_name)
from wcviz.errors import WcvizError
from wcviz.reparam.psi import ALL_METHODS

# Table I (best a, b), transcribed from the paper: (model, dataset) -> (a, b).
# WRN-28-10 on CIFAR-100 is given in Sec. IV-C1's text; ResNet50 Tiny/ImageNet in IV-B, IV-C.
TABLE_I = {
    ("resnet18", "cifar10"): (1.0, 0.6), ("resnet18", "cifar100"): (0.6, 0.6),
    ("resnet34", "cifar10"): (0.8, 0.5), ("resnet34", "cifar100"): (0.7, 0.8),
    ("resnet50", "cifar10"): (1.0, 0.6), ("resnet50", "cifar100"): (1.0, 0.8),
    ("vgg16_bn", "cifar10"): (0.7, 0.7), ("vgg16_bn", "cifar100"): (0.7, 1.0),
    ("vgg19_bn", "cifar10"): (0.5, 0.7), ("vgg19_bn", "cifar100"): (0.7, 0.8),
    ("wrn28_10", "cifar100"): (0.7, 0.7),
    ("resnet50_imagenet", "tinyimagenet"): (0.7, 0.8),
    ("resnet50_imagenet", "imagenet"): (0.6, 0.7),
}

# Every result row of Tables II–VII: (preset, method).
PAPER_ROWS = [(f"{d}-{m}", meth) for d in ("cifar10", "cifar100")
              for m in ("resnet18", "resnet34", "resnet50")
              for meth in ("baseline", "wc", "pp", "wn", "arsinh", "erf")]
PAPER_ROWS += [(f"{d}-{m}", meth) for d in ("cifar10", "cifar100") for m in ("vgg16_bn", "vgg19_bn")
               for meth in ("baseline", "wc")]
PAPER_ROWS += [("cifar100-wrn28_10", "baseline"), ("cifar100-wrn28_10", "wc"),
               ("tinyimagenet-resnet50", "baseline"), ("tinyimagenet-resnet50", "wc"),
               ("imagenet-resnet50", "baseline"), ("imagenet-resnet50", "wc")]
PAPER_ROWS += [(f"cifar10-{m}", "wc-learnable") for m in ("resnet18", "resnet34", "resnet50")]


@pytest.mark.parametrize("preset,method", PAPER_ROWS)
def test_every_paper_row_is_a_preset(preset, method):
    assert method in PRESETS[preset].methods
    cfg = resolve(preset, method)
    assert cfg.optimizer == "sgd" and cfg.lr == 0.1 and cfg.momentum == 0.9
    assert cfg.val_fraction == 0.1


def test_table_i_pairs():
    found = {(p.model, p.dataset): p.ab for p in PRESETS.values()
             if not p.name.startswith(("digits", "mnist1d"))}
    assert found == TABLE_I
    for name, preset in PRESETS.items():
        cfg = resolve(name, "wc")
        assert (cfg.model, cfg.dataset, (cfg.a, cfg.b)) == (preset.model, preset.dataset, preset.ab)


def test_table_i_matches_paper_md_when_present():
    """Parse the digest's Table I (kept beside the repository in the project's shared/)."""
    here = Path(__file__).resolve().parents[1]
    candidates = [here / "shared" / "paper" / "PAPER.md", here.parent / "shared" / "paper" /
                  "PAPER.md"]
    paper = next((p for p in candidates if p.is_file()), None)
    if paper is None:
        pytest.skip("PAPER.md is not next to this checkout")
    text = paper.read_text()
    table = text[text.index("### Table I"):text.index("### Tables II")]
    names = {"ResNet18": "resnet18", "ResNet34": "resnet34", "ResNet50": "resnet50",
             "VGG16-BN": "vgg16_bn", "VGG19-BN": "vgg19_bn", "WRN-28-10": "wrn28_10"}
    parsed = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in names:
            for dataset, cell in zip(("cifar10", "cifar100"), cells[1:]):
                m = re.match(r"a=([\d.]+), b=([\d.]+)", cell)
                if m:
                    parsed[(names[cells[0]], dataset)] = (float(m[1]), float(m[2]))
    assert parsed == {k: v for k, v in TABLE_I.items() if k[1].startswith("cifar")}


def test_recipes():
    for name in ("cifar10-resnet18", "cifar10-resnet34", "cifar10-resnet50"):
        cfg = resolve(name)
        assert (cfg.epochs, cfg.batch_size, cfg.milestones, cfg.gamma, cfg.weight_decay) == \
            (200, 128, (90, 136), 0.1, 1e-4)
    wrn_style = [n for n in PRESETS if n.startswith("cifar100") or "vgg" in n]
    assert len(wrn_style) == 8
    for name in wrn_style:
        cfg = resolve(name)
        assert (cfg.epochs, cfg.batch_size, cfg.milestones, cfg.gamma, cfg.weight_decay) == \
            (200, 128, (60, 120, 160), 0.2, 5e-4)
    # Dropout is the model's own (the registry's default) unless overridden.
    assert resolve("cifar100-wrn28_10").dropout is None and MODELS["wrn28_10"].dropout == 0.3
    assert MODELS["vgg16_bn"].dropout == 0.5 and MODELS["resnet18"].dropout is None
    tiny, inet = resolve("tinyimagenet-resnet50"), resolve("imagenet-resnet50")
    for cfg in (tiny, inet):
        assert (cfg.epochs, cfg.milestones, cfg.gamma, cfg.weight_decay, cfg.model) == \
            (300, (75, 150, 225), 0.1, 1e-4, "resnet50_imagenet")
    assert (tiny.batch_size, inet.batch_size) == (128, 256)


def test_a_preset_resolves_to_its_recipe():
    """Every Recipe field is a RunConfig field that resolve() sets (a new column is one edit)."""
    for name, preset in PRESETS.items():
        cfg = resolve(name, preset.methods[0])
        for field in dataclasses.fields(Recipe):
            assert getattr(cfg, field.name) == getattr(RECIPES[preset.recipe], field.name), name


def test_mnist1d_presets_follow_its_reference_recipe():
    for name in ("mnist1d-cnn", "mnist1d-mlp"):
        for method in ("baseline", "wc", "wc-learnable"):
            cfg = resolve(name, method)
            # MNIST-1D's own recipe, with the paper's weight decay (its script has none)
            assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.weight_decay) == ("adam", 1e-2, 100, 1e-4)
            assert cfg.dataset == "mnist1d"
    assert (resolve("mnist1d-cnn", "wc").a, resolve("mnist1d-cnn", "wc").b) == (1.0, 0.6)
    sgd = resolve("mnist1d-cnn-sgd", "wc-learnable")
    assert (sgd.optimizer, sgd.momentum, sgd.method) == ("sgd", 0.9, "wc-learnable")
    assert (resolve("mnist1d-mlp").model, resolve("mnist1d-cnn").model) == ("mnist1d_mlp", "mnist1d_cnn")


def test_methods():
    cfg = resolve("cifar10-resnet50", "wc-learnable")
    assert (cfg.a, cfg.b) == (0.5, 1.0)
    assert METHODS["wc-learnable"].learnable == "fine"
    assert resolve("cifar10-resnet18", "pp").alpha >= 1
    assert resolve("cifar10-resnet18").a is None


def test_every_method_names_a_wcviz_method():
    """One vocabulary: each --method maps to a method wcviz.compand knows (or none)."""
    for spec in METHODS.values():
        assert spec.compand is None or spec.compand in ALL_METHODS
    for preset in PRESETS.values():
        assert set(preset.methods) <= set(METHODS)


def test_a_method_the_preset_does_not_list_is_refused():
    with pytest.raises(WcvizError, match="preset 'digits-cnn' runs the methods baseline, wc, "
                                         "wc-learnable, not 'pp'"):
        resolve("digits-cnn", "pp")


def test_model_and_dataset_are_checked_together():
    with pytest.raises(WcvizError, match=r"model 'resnet18' takes 3×32×32 images but dataset "
                                         r"'digits' has 1×8×8; for digits use digits_cnn or digits_mlp"):
        check_config(resolve("digits-cnn", "baseline", model="resnet18"))
    with pytest.raises(WcvizError, match="model 'resnet18' has no dropout option"):
        check_config(resolve("cifar10-resnet18", "baseline", dropout=0.2))
    for name in PRESETS:  # every preset itself is consistent
        check_config(resolve(name, PRESETS[name].methods[0]))


def test_every_field_parses_from_its_own_text():
    """--set coercion follows the dataclass field types: each default round-trips."""
    cfg = resolve("cifar10-vgg16_bn", "wc", milestones=(3, 5), dropout=0.25)
    for field in dataclasses.fields(RunConfig):
        value = getattr(cfg, field.name)
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert parse_overrides([f"{field.name}={text}"]) == {field.name: value}, field.name
    assert set(FIELD_TYPES) == {f.name for f in dataclasses.fields(RunConfig)}


def test_overrides_are_typed():
    got = parse_overrides(["epochs=2", "lr=0.05", "milestones=3,5", "dropout=none",
                           "amp=off", "device=cpu"])
    assert got == {"epochs": 2, "lr": 0.05, "milestones": (3, 5), "dropout": None,
                   "amp": False, "device": "cpu"}
    cfg = resolve("cifar10-resnet18", "wc", **got)
    assert cfg.epochs == 2 and cfg.milestones == (3, 5) and cfg.a == 1.0
    assert "amp" not in cfg.recipe() and "epochs" in cfg.recipe()


@pytest.mark.parametrize("bad,match", [
    (["epochs=two"], "bad value 'two' for epochs"),
    (["nope=1"], "unknown setting 'nope'"),
    (["epochs"], "NAME=VALUE"),
    (["amp=maybe"], "bad value 'maybe' for amp"),
])
def test_bad_overrides(bad, match):
    with pytest.raises(WcvizError, match=match):
        parse_overrides(bad)


@pytest.mark.parametrize("method,override,match", [
    ("baseline", {"a": -1.0}, "method 'baseline' has no a; drop --a / --set a="),
    ("baseline", {"b": 0.6}, "method 'baseline' has no b"),
    ("wc", {"alpha": 3.0}, "method 'wc' has no alpha; drop --set alpha="),
    ("wc", {"a": -1.0}, "a must be a positive number for method 'wc'"),
])
def test_values_a_method_has_no_use_for_are_refused(method, override, match):
    """A value the method would leave unused is refused (the run's config would record it)."""
    with pytest.raises(WcvizError, match=match):
        check_config(resolve("digits-cnn", method, **override))
    check_config(resolve("digits-cnn", "wc", a=0.7, b=0.3))  # what the methods take


def test_unknown_preset_and_method():
    with pytest.raises(WcvizError, match="unknown preset 'cifar10-resnet19'"):
        resolve("cifar10-resnet19")
    with pytest.raises(WcvizError, match="unknown method 'wcx'"):
        resolve("cifar10-resnet18", "wcx")


def test_run_names_read_as_a_table():
    assert run_name(resolve("cifar10-resnet18", "wc", a=0.5, b=0.6)) == \
        "cifar10-resnet18_wc_a0.5_b0.6_s0"
    assert run_name(resolve("cifar10-resnet18", "wc", seed=3)) == "cifar10-resnet18_wc_a1.0_b0.6_s3"
    assert run_name(resolve("cifar100-resnet50", "baseline", seed=1)) == \
        "cifar100-resnet50_baseline_s1"


def test_list_shows_every_preset():
    text = format_presets()
    for name, preset in PRESETS.items():
        line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
        assert " ".join(preset.methods) in line


def test_list_footer_does_not_call_the_adam_presets_sgd():
    # The footer said "SGD with momentum 0.9" above the Adam MNIST-1D rows.
    footer = format_presets().splitlines()[-1]
    assert any(r.optimizer == "adam" for r in RECIPES.values())
    assert not footer.startswith("SGD with momentum")
    assert "opt sgd: momentum 0.9" in footer


def test_dropout_outside_0_1_is_one_line_before_training():
    # --set dropout=2 ended in torch's ValueError traceback from inside the model.
    for bad in (2.0, -0.1, 1.0):
        with pytest.raises(WcvizError, match=r"dropout must be in \[0, 1\)"):
            check_config(resolve("cifar10-vgg16_bn", "baseline", dropout=bad))
    check_config(resolve("cifar10-vgg16_bn", "baseline", dropout=0.0))
