"""The verdicts a statistician signs: a tail-safe headline for claim (ii), Holm within the
declared family, tests that can decide at the n in hand (with their power), non-inferiority
for claim (iii), pairs of one recipe only, paired table gaps, and sentences true of their
numbers."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import _fixture_runs as fx
import wcviz
from wcviz.errors import WcvizError
from wcviz.record.measures import DEFAULT_THRESHOLDS
from wcviz.report import claims, tables


# --------------------------------------------------------------------------- 1. tail-safe (ii)


def _trained_digits_mlp():
    """A digits MLP trained 150 full-batch SGD steps (lr 0.5, momentum 0.9: its first layer's
    weights grow from |w| < 0.125 to about 2, heavy tails as in real trained nets)."""
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data / 16, dtype=torch.float32)
    y = torch.tensor(digits.target)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    init = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert (model(x).argmax(1) == y).float().mean() > 0.95  # it learned: real trained weights
    return model, init


@pytest.fixture(scope="module")
def tail_mapped(tmp_path_factory):
    """Per s: a run recording the init (epoch 0), the trained weights (1), and the trained
    weights mapped through w -> s·arctan(w/s) (2), which moves every weight toward zero."""
    model, init = _trained_digits_mlp()
    trained = copy.deepcopy(model.state_dict())
    root = tmp_path_factory.mktemp("tail")
    out = {}
    for s in (0.3, 0.5, 1.0):
        model.load_state_dict(init)
        with wcviz.Recorder(model, root / f"s{s}") as rec:
            rec.record(0)
            model.load_state_dict(trained)
            rec.record(1)
            with torch.no_grad():
                for layer in model:
                    if isinstance(layer, nn.Linear):
                        layer.weight.copy_(s * torch.atan(layer.weight / s))
            rec.record(2)
        out[s] = wcviz.open_run(root / f"s{s}").load()
    return out


@pytest.mark.parametrize("s", [0.3, 0.5, 1.0])
def test_a_tail_map_cannot_move_the_headline_toward_fewer_near_zero(tail_mapped, s):
    ds = tail_mapped[s]
    head = claims.headline_threshold(ds, list(DEFAULT_THRESHOLDS))
    assert head == "rel=0.5"  # a cutoff fixed at the layer's initial std
    frac = lambda label: wcviz.report.analysis.near_zero(ds, label)  # all weights, per epoch
    assert frac(head)[2] >= frac(head)[1]  # clipping the tails never reads "fewer near zero"
    for label in DEFAULT_THRESHOLDS:
        if label.split("=")[0] in ("rel", "abs"):
            assert frac(label)[2] >= frac(label)[1], label
    # ...while the old headline, |w| < 0.5·std(w) of the same record, falls from clipping alone
    # (by about 19, 11 and 3 points at s = 0.3, 0.5, 1).
    assert frac("std=0.5")[2] < frac("std=0.5")[1] - 0.02


def test_record_scaled_measures_are_never_the_headline_and_are_labelled(tail_mapped):
    ds = tail_mapped[0.3]
    assert claims.headline_threshold(ds, ["std=0.5", "med=0.5"]) is None
    assert claims.headline_threshold(ds, ["std=0.5", "abs=0.01", "abs=0.001"]) == "abs=0.01"
    assert claims.headline_threshold(ds, ["abs=0.01", "rel=0.1", "rel=0.5"]) == "rel=0.5"


@pytest.fixture(scope="module")
def real_groups(tmp_path_factory):
    """Three seeds of a plain and a companded (WC a=1, b=0.6) digits MLP, recorded by the
    Recorder with its default thresholds."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16, dtype=torch.float32)
    y = torch.tensor(digits.target)
    root = tmp_path_factory.mktemp("groups")
    runs = {"base": [], "wc": []}
    for seed, kind in itertools.product(range(3), runs):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        if kind == "wc":
            wcviz.compand(model, "arctan", a=1.0, b=0.6)
        opt = wcviz.build_optimizer(model, "sgd", lr=0.3, momentum=0.9)
        path = root / f"{kind}-s{seed}"
        with wcviz.Recorder(model, path, config={"lr": 0.3}, attrs={"seed": seed}) as rec:
            rec.record(0)
            for epoch in range(1, 4):
                for _ in range(20):
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
                rec.record(epoch)
        runs[kind].append(path)
    return runs


def test_real_runs_decide_ii_on_the_tail_safe_measure_and_label_the_mixed_ones(real_groups):
    res = claims.compare_groups(real_groups["base"], real_groups["wc"])
    head = res.headline("(ii)")
    assert head.family == claims.HEADLINE and head.measure == "near-zero % |w| < 0.5·σ₀, all weights"
    frame = res.frame()
    mixed = frame[frame["measure"].str.contains("std\\(w\\)|median", regex=True)]
    assert len(mixed) == 8 and (mixed["family"] == claims.MIXED).all()
    assert (frame["family"] == claims.HEADLINE).sum() == 1  # no accuracy recorded: (ii) only
    assert "[exploratory; mixes (i) and (ii)]" in res.report()


# --------------------------------------------------------------------------- 2. Holm


def test_holm_adjusts_step_down():
    got = claims.holm([0.01, 0.04, 0.03, 0.005, math.nan])
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 -> max(0.06, 0.04)
    np.testing.assert_allclose(got[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(got[4])


def _row(diff, family=claims.HEADLINE, predicted="lower"):
    diff = np.asarray(diff, float)
    res = claims.paired("(ii)", "m", predicted, list(range(len(diff))), np.zeros(diff.size), diff)
    res.family = family
    return res


def test_headline_verdicts_decide_on_the_holm_adjusted_p():
    # p ≈ 0.029 alone HOLDS; in a family of 5 tests (the others null) Holm gives ≈ 0.14.
    alone = _row([-1.0, -2.2, -0.3, -1.1, -0.7])
    assert alone.p_t < 0.05 < 5 * alone.p_t
    claims.correct_rows([alone])
    assert alone.verdict == claims.HOLDS and alone.p_holm == pytest.approx(alone.p_t)
    rows = [_row([-1.0, -2.2, -0.3, -1.1, -0.7])] + [_row([1, -1, 0.5, -0.5, 0.2])
                                                    for _ in range(4)]
    assert claims.correct_rows(rows) == 5
    assert rows[0].p_holm == pytest.approx(5 * rows[0].p_t)
    assert rows[0].verdict == claims.INCONCLUSIVE and "Holm p" in rows[0].why
    exploratory = _row([-1.0, -2.2, -0.3, -1.1, -0.7], family=claims.EXPLORATORY)
    claims.correct_rows([exploratory, *rows])
    assert exploratory.verdict == claims.HOLDS and math.isnan(exploratory.p_holm)


def test_claims_csv_columns_carry_raw_and_holm_p_and_the_family(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline")
    wc = fx.seed_group(tmp_path / "w", "wc")
    frame = claims.compare_groups(base, wc).frame()
    for column in ("p_t", "p_holm", "p_signflip", "family", "mde_80", "p_noninferiority"):
        assert column in frame
    head = frame[frame["family"] == claims.HEADLINE]
    assert list(head["claim"]) == ["(ii)", "(iii)"] and head["p_holm"].notna().all()
    assert "boot_low" not in frame and "p_wilcoxon" not in frame


@pytest.mark.slow
def test_a_root_is_one_family_and_shared_baselines_are_noted(tmp_path):
    fx.seed_group(tmp_path, "baseline")
    fx.seed_group(tmp_path, "wc")
    fx.seed_group(tmp_path, "learnable")
    found = claims.compare_root(tmp_path)
    assert {c.family_size for c in found} == {6} and {c.family_comparisons for c in found} == {2}
    text = found[0].report()
    assert "family: 6 headline test(s) over 2 comparison(s)" in text and "Holm" in text
    assert "2 comparisons share this baseline group" in text


# --------------------------------------------------------------------------- 3. tests and power


@pytest.mark.parametrize("diff", [[0.3, -0.1, 0.8, 0.5, 1.2], [1.0, 2.0, 3.0], [-0.2, 0.4, 0.1, 0.7]])
def test_signflip_p_is_the_exact_permutation_test(diff):
    d = np.asarray(diff)
    exact = stats.permutation_test((d,), np.mean, permutation_type="samples",
                                   n_resamples=math.inf, alternative="two-sided")
    assert claims.signflip_p(d) == pytest.approx(exact.pvalue)


def test_the_signflip_test_says_when_n_is_too_small():
    assert claims.signflip_p([1.0, 1.1, 0.9, 1.2, 1.05]) == pytest.approx(2 / 32)
    assert claims.signflip_min_p(5) > claims.ALPHA >= claims.signflip_min_p(6)
    assert claims.SIGNFLIP_MIN_N == 6


def test_min_detectable_has_the_stated_power():
    n, sd = 5, 1.3
    mde = claims.min_detectable(n, sd)
    rng = np.random.default_rng(0)
    samples = rng.normal(mde, sd, size=(40_000, n))
    power = np.mean(stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.80, abs=0.01)
    assert claims.min_detectable(10, 1.0) == pytest.approx(0.996, abs=2e-3)
    assert math.isnan(claims.min_detectable(2, 1.0))


def test_every_inconclusive_row_prints_what_n_could_detect(tmp_path):
    res = _row([1, -1, 0.5, -0.5, 0.2], family=claims.EXPLORATORY)
    assert res.verdict == claims.INCONCLUSIVE
    assert f"n=5 detects |Δ| ≥ {res.mde:.3g} (80% power, α)" in res.why
    base = fx.seed_group(tmp_path / "b", "baseline")
    wc = fx.seed_group(tmp_path / "w", "wc")
    report = claims.compare_groups(base, wc).report()
    assert "n=3 is too small for it to reject" in report
    for line in report.splitlines():
        if " INCONCLUSIVE " in line and "paired seed(s)" not in line:
            assert "detects |Δ| ≥" in line


# --------------------------------------------------------------------------- 4. (iii) keeps


@pytest.mark.parametrize("diff, margin, expected", [
    ([1.0, 1.2, 0.9, 1.1], 0.5, claims.IMPROVES),
    ([-1.0, -1.2, -0.9, -1.1], 0.5, claims.WORSE),
    ([0.05, -0.1, 0.1, -0.05, 0.0], 0.5, claims.KEEPS),  # no gain, but not worse by 0.5
    ([0.05, -0.1, 0.1, -0.05, 0.0], 0.01, claims.INCONCLUSIVE),  # a tighter margin
    ([2.0, -3.0, 1.0, -2.5], 0.5, claims.INCONCLUSIVE),
])
def test_accuracy_is_keeps_or_improves_with_a_margin(diff, margin, expected):
    res = claims.paired("(iii)", "acc", "keep", list(range(len(diff))), np.zeros(len(diff)),
                        diff, margin=margin)
    assert res.verdict == expected


def test_compare_groups_takes_the_margin(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline")
    wc = fx.seed_group(tmp_path / "w", "wc")  # +2 points on every seed
    assert claims.compare_groups(base, wc).verdict_of("(iii)") == claims.IMPROVES
    with pytest.raises(WcvizError, match="margin must be a number >= 0"):
        claims.compare_groups(base, wc, margin=-1)


# --------------------------------------------------------------------------- 5. the paper's arm


def test_the_mnist1d_study_has_the_sgd_fixed_wc_arm_and_the_papers_decay():
    from wcviz.training.presets import RECIPES, resolve
    from wcviz.training.reproduce import STUDIES

    study = STUDIES["mnist1d"]
    arm = next(a for a in study.arms if a.key == "cnn-sgd-wc")
    assert (arm.preset, arm.method) == ("mnist1d-cnn-sgd", "wc")
    assert ("cnn-sgd-baseline", "cnn-sgd-wc") in study.compare
    assert RECIPES["mnist1d"].weight_decay == RECIPES["mnist1d-sgd"].weight_decay == 1e-4
    assert resolve("mnist1d-cnn-sgd", "wc").weight_decay == 1e-4


# --------------------------------------------------------------------------- 6. one recipe


@pytest.mark.slow
def test_pairs_of_different_recipes_are_refused_naming_the_keys(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline", config={"lr": 0.02, "epochs": 20})
    wc = fx.seed_group(tmp_path / "w", "wc", config={"lr": 0.2, "epochs": 20})
    with pytest.raises(WcvizError, match=r"config differs in: lr\)"):
        claims.compare_groups(base, wc)
    same = fx.seed_group(tmp_path / "w2", "wc", config={"lr": 0.02, "epochs": 20}, a=0.9)
    assert claims.compare_groups(base, same).seeds == [0, 1, 2]  # a, b, method: the method's own


@pytest.mark.slow
def test_compare_root_no_longer_falls_back_to_another_recipes_baseline(tmp_path):
    fx.seed_group(tmp_path, "baseline", config={"lr": 0.02})
    fx.seed_group(tmp_path / "lr0.2", "wc", config={"lr": 0.2})
    with pytest.raises(WcvizError, match="no baseline of its recipe.*differs in: lr"):
        claims.compare_root(tmp_path)


# --------------------------------------------------------------------------- 7. paired table


@pytest.mark.slow
def test_table_delta_and_ci_use_the_same_pairs_and_shared_baselines_are_footnoted(tmp_path):
    fx.seed_group(tmp_path, "baseline", seeds=(0, 1, 2, 3, 4))
    fx.seed_group(tmp_path, "wc", seeds=(0, 1, 2))  # +2 points on each paired seed
    fx.seed_group(tmp_path, "learnable", seeds=(0, 1, 2))
    table = tables.accuracy_table(tmp_path)
    wc = table[table["method"] == "arctan"].iloc[0]
    assert wc["n_paired"] == 3
    assert wc["delta_best"] == pytest.approx(2.0)  # the mean over seeds 0-2, as the CI
    assert (wc["ci_low"] + wc["ci_high"]) / 2 == pytest.approx(wc["delta_best"])
    text = tables.format_table(table, "md")
    assert "Holm-adjusted" in text and "correlated" in text
    assert "p_holm" in tables.format_table(table, "csv").splitlines()[0]


# --------------------------------------------------------------------------- 8. true sentences


def test_the_demo_says_how_much_of_the_bound_the_weights_reach(tmp_path):
    from wcviz.training import demo

    runs = [fx.baseline_run(tmp_path / "base"), fx.wc_run(tmp_path / "wc")]
    ds = wcviz.open_run(runs[1])
    reached = float(ds.weight_absmax.sel(layer="conv1").max() / (0.8 * np.pi / 2))
    base_top = float(wcviz.open_run(runs[0]).weight_absmax.sel(layer="conv1").max())
    text = demo.demo_table(runs)
    assert f"{reached:.0%}" in text.splitlines()[3]  # the table's max|w|/bound column
    sentence = text.splitlines()[-1]
    assert sentence == (f"WC a=0.8, b=0.5: conv1's largest |w| reaches {reached:.0%} of its bound "
                        f"aπ/2 = {0.8 * np.pi / 2:.3f}; the baseline's reaches {base_top:.3f}, "
                        f"{'above' if base_top > 0.8 * np.pi / 2 else 'below'} that bound.")
    assert "shows" not in text
