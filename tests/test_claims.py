"""Claims over seeds: paired CIs, verdict rules, and real run stores grouped and paired by seed."""

import math

import numpy as np
import pytest
from scipy import stats

import _fixture_runs as fx
from wcviz.report import claims, tables
from wcviz.errors import WcvizError


def test_t_interval_is_the_paired_t_formula():
    d = np.array([-1.0, -2.5, -0.5, -1.8])
    (lo, hi), p = claims.t_interval(d)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert (lo, hi) == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-12)
    assert p == pytest.approx(stats.ttest_rel(d, np.zeros(4)).pvalue)


@pytest.mark.parametrize("diff, predicted, expected", [
    ([-1.0, -1.2, -0.9], "lower", "HOLDS"),
    ([-1.0, -1.2, -0.9], "higher", "FAILS"),
    ([-1.0, 1.2, -0.9], "lower", "INCONCLUSIVE"),  # CI includes 0
    ([-1.0, -1.2], "lower", "INCONCLUSIVE"),  # two seeds: one more could flip it
    ([0.0, 0.0, 0.0], "lower", "INCONCLUSIVE"),
])
def test_verdict_rules(diff, predicted, expected):
    res = claims.paired("(ii)", "m", predicted, list(range(len(diff))), np.zeros(len(diff)), diff)
    assert res.verdict == expected


@pytest.fixture
def groups(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline")
    wc = fx.seed_group(tmp_path / "w", "wc")
    return base, wc


def _row(result, claim, measure_start):
    return next(r for r in result.results if r.claim == claim and r.measure.startswith(measure_start))


def test_claims_hold_on_three_seeds_and_values_match_the_stores(groups):
    import wcviz

    base, wc = groups
    res = claims.compare_groups(base, wc)
    assert res.seeds == [0, 1, 2] and res.unpaired == []
    assert res.verdict_of("(i)") == "HOLDS"
    assert res.verdict_of("(ii)") == "HOLDS"
    head = _row(res, "(ii)", "near-zero")
    assert head.measure == "near-zero % |w| < 0.5·σ₀, all weights"  # default: largest rel
    ds = wcviz.open_run(base[1])
    frac = ds.near_zero_fraction.sel(threshold="rel=0.5").isel(epoch=-1).values
    numel = np.asarray(fx.NUMEL, float)
    assert head.base[1] == pytest.approx(100 * (frac * numel).sum() / numel.sum())
    mean = _row(res, "(ii)", "near-zero % |w| < 0.5·σ₀, layer-mean")
    assert mean.base[1] == pytest.approx(100 * frac.mean())
    early = _row(res, "(ii)", "reduction early")
    assert early.verdict == "HOLDS"  # the fixture drops conv1 most
    acc = _row(res, "(iii)", "test acc at best val")
    for got, path in zip(acc.wc, wc):
        run = wcviz.open_run(path)
        best = 1 + int(np.argmax(run.val_acc.values[1:]))  # trained epochs only
        assert got == pytest.approx(100 * run.test_acc.values[best])
    text = res.report()
    assert "(ii) WC leaves fewer near-zero weights: HOLDS" in text


def test_two_seeds_are_inconclusive_even_when_every_pair_agrees(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline", seeds=(0, 1))
    wc = fx.seed_group(tmp_path / "w", "wc", seeds=(0, 1))
    res = claims.compare_groups(base, wc)
    assert res.verdict_of("(i)") == "INCONCLUSIVE"
    assert res.verdict_of("(ii)") == "INCONCLUSIVE"


def test_violations_fail_over_seeds(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline")
    bad = [fx.violating_wc_run(tmp_path / f"v{s}", seed=s) for s in (0, 1, 2)]
    res = claims.compare_groups(base, bad)
    assert res.verdict_of("(i)") == "FAILS"
    assert res.verdict_of("(ii)") == "FAILS"


def test_a_gap_that_changes_sign_between_seeds_is_inconclusive(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline")
    shift = {0: 0.6, 1: 1.6, 2: 0.9}  # WC above the baseline on seed 1 only
    wc = [fx.write_run(tmp_path / f"w{s}", method="arctan", a=0.8, b=0.5, seed=s,
                       scales=lambda e: fx.INIT_SCALE,
                       near_zero=lambda e, s=s: fx._nz(fx.INIT_NZ * (1 + 0.3 * min(e, 3)) * shift[s]))
          for s in shift]
    res = claims.compare_groups(base, wc, thresholds=["rel=0.1"])
    assert res.verdict_of("(ii)") == "INCONCLUSIVE"
    assert _row(res, "(ii)", "near-zero").why.startswith("Holm p = 0.92 ≥ 0.05; n=3 detects |Δ| ≥ ")


def test_unpaired_seeds_are_left_out_and_named(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline", seeds=(0, 1, 2, 3))
    wc = fx.seed_group(tmp_path / "w", "wc", seeds=(1, 2, 3, 7))
    res = claims.compare_groups(base, wc)
    assert res.seeds == [1, 2, 3] and res.unpaired == [0, 7]
    assert "unpaired (left out): 0, 7" in res.report()


def test_bad_groups(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline")
    wc = fx.seed_group(tmp_path / "w", "wc")
    with pytest.raises(WcvizError, match="baseline group holds a companded run"):
        claims.compare_groups(wc, wc)
    with pytest.raises(WcvizError, match="seed 0 appears twice"):
        claims.compare_groups(base + [fx.baseline_run(tmp_path / "dup", seed=0)], wc)
    other = fx.seed_group(tmp_path / "o", "wc", seeds=(5, 6))
    with pytest.raises(WcvizError, match="share no seed"):
        claims.compare_groups(base, other)


def test_compare_root_groups_by_config(tmp_path):
    fx.seed_group(tmp_path, "baseline")
    fx.seed_group(tmp_path, "wc")
    fx.seed_group(tmp_path, "learnable")
    found = claims.compare_root(tmp_path)
    assert len(found) == 2
    assert {r.wc.split(" (")[0] for r in found} == {"WC a=0.8, b=0.5", "learnable WC"}


def test_compare_root_pairs_each_recipe_with_its_own_baseline(tmp_path):
    for opt, growth, a in (("adam", 8.0, 0.8), ("sgd", 4.0, 0.9)):
        fx.seed_group(tmp_path / opt, "baseline", growth=growth, config={"optimizer": opt})
        fx.seed_group(tmp_path / opt, "wc", a=a, config={"optimizer": opt})
    found = claims.compare_root(tmp_path)
    assert len(found) == 2
    for res in found:  # each WC group is paired with the baseline of its own optimizer
        growth = _row(res, "(i)", "baseline max|w| growth").base
        expected = 4.0 if "a=0.9" in res.wc else 8.0
        assert growth == pytest.approx([expected * 1.05] * 3)
    table = tables.accuracy_table(tmp_path)
    assert len(table) == 4 and table["ci_excludes_0"].sum() == 2
    header, cells = tables.display_rows(table)
    names = [row[header.index("model")] for row in cells]
    assert sum("[other recipe]" in name for name in names) == 4
    assert [row[0] for row in cells] == ["adam"] * 2 + ["sgd"] * 2  # each study named


def test_runs_of_other_data_or_models_are_refused(tmp_path):
    # A digits baseline against an MNIST-1D WC run was compared and given verdicts.
    base = fx.seed_group(tmp_path / "b", "baseline")
    other = fx.seed_group(tmp_path / "w", "wc", dataset="mnist1d", model="mnist1d_cnn")
    with pytest.raises(WcvizError, match="same dataset and model.*synthetic/tinynet.*mnist1d/mnist1d_cnn"):
        claims.compare_groups(base, other)
    with pytest.raises(WcvizError, match="same dataset and model"):
        claims.compare_pair(base[0], other[0])
    mixed = base[:2] + [fx.baseline_run(tmp_path / "m", seed=2, dataset="mnist1d")]
    with pytest.raises(WcvizError, match="same dataset and model"):
        claims.compare_groups(mixed, fx.seed_group(tmp_path / "w2", "wc"))


def test_a_seed_twice_in_one_study_is_named_with_both_paths(tmp_path):
    # Seed 0 of one config twice in one study (sub-folder of the root): `table` counted it
    # twice (6 "seeds"), `compare` blamed the user's groups. (A copy in another study is
    # another study's row: tests/adversarial/test_run_identity.py.)
    fx.seed_group(tmp_path / "study", "baseline")
    fx.seed_group(tmp_path / "study", "wc")
    copy = fx.baseline_run(tmp_path / "study" / "again" / "baseline-s0", seed=0)
    for call in (claims.compare_root, tables.accuracy_table):
        with pytest.raises(WcvizError, match=r"seed 0 of baseline .*twice under the root") as err:
            call(tmp_path)
        assert str(copy) in str(err.value) and "study" in str(err.value)
    assert len(tables.accuracy_table(tmp_path / "study" / "again")) == 1  # one folder: fine


def test_one_paired_seed_does_not_read_as_none(tmp_path):
    # "paired seeds: 0" read as zero paired seeds, beside verdicts saying "1 paired seed(s)".
    base = fx.seed_group(tmp_path / "b", "baseline", seeds=(0,))
    wc = fx.seed_group(tmp_path / "w", "wc", seeds=(0,))
    assert "paired seeds: 0 (n=1)" in claims.compare_groups(base, wc).report()


# --------------------------------------------------------------------------- one pair of runs
# A pair is a study of one seed per arm: decided by the same rules (so no claim HOLDS on one
# seed, a bound violation still FAILS), with the per-layer table of the two runs.


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    return {"base": fx.baseline_run(root / "base"), "wc": fx.wc_run(root / "wc"),
            "bad": fx.violating_wc_run(root / "bad"), "learn": fx.learnable_run(root / "learn")}


def test_pair_measures_match_the_stores(pair):
    import wcviz

    res = claims.compare_pair(pair["base"], pair["wc"])
    bound = _row(res, "(i)", "max|w|/bound")
    assert bound.wc[0] < 1 and bound.verdict == "INCONCLUSIVE"
    assert bound.why == "inside the bound, but 1 seed(s) < 3"
    base, wc = wcviz.open_run(pair["base"]), wcviz.open_run(pair["wc"])
    numel = np.asarray(fx.NUMEL, float)
    frac = lambda ds: (ds.near_zero_fraction.sel(threshold="rel=0.5").isel(epoch=-1).values * numel).sum() / numel.sum()
    head = _row(res, "(ii)", "near-zero % |w| < 0.5·σ₀, all weights")
    assert head.base[0] == pytest.approx(100 * frac(base))
    assert head.wc[0] == pytest.approx(100 * frac(wc)) and head.diff[0] < 0  # fewer near zero
    assert _row(res, "(ii)", "reduction early").diff[0] > 0  # largest in the early layers
    assert _row(res, "(i)", "baseline max|w| growth").base[0] == pytest.approx(8.0 * 1.05)
    top = wc.weight_absmax.max("epoch").values / (0.8 * np.pi / 2)
    assert list(res.layers.frame["wc_max_ratio"]) == pytest.approx(list(top))
    text = res.layers.report()
    assert "near-zero: |w| < 0.5·σ₀ (rel=0.5), last epoch\n" in text
    for layer in fx.LAYERS:
        assert f"\n{layer} " in text
    assert "(i) WC keeps |w| < aπ/2 in every layer and epoch: INCONCLUSIVE" in res.report()


def test_pair_bound_violation_fails(pair):
    res = claims.compare_pair(pair["base"], pair["bad"])
    assert res.verdict_of("(i)") == "FAILS"
    assert _row(res, "(ii)", "near-zero").diff[0] > 0  # not fewer near-zero weights
    assert res.layers.frame["wc_max_ratio"].max() == pytest.approx(1.2)


def test_pair_learnable_uses_recorded_a(pair):
    import wcviz

    res = claims.compare_pair(pair["base"], pair["learn"], ["abs=0.01"])
    ds = wcviz.open_run(pair["learn"])
    fc = res.layers.frame.set_index("layer").loc["fc"]
    assert fc["wc_bound"] == pytest.approx(float(ds.a.sel(layer="fc").isel(epoch=-1)) * np.pi / 2)
    assert res.layers.threshold == "abs=0.01"


def test_pair_argument_order(pair):
    with pytest.raises(WcvizError, match="first run must be a baseline"):
        claims.compare_pair(pair["wc"], pair["base"])
    with pytest.raises(WcvizError, match="second run is not companded"):
        claims.compare_pair(pair["base"], pair["base"])


def test_layer_table_of_groups_is_the_seed_mean(groups):
    import wcviz

    base, wc = groups
    res = claims.compare_groups(base, wc)
    nz = [wcviz.open_run(p).near_zero_fraction.sel(threshold="rel=0.5").isel(epoch=-1).values for p in wc]
    np.testing.assert_allclose(res.layers.frame["wc_near_zero"], np.mean(nz, axis=0))
    assert res.layers.n == 3 and "last epoch, mean of 3 paired seeds" in res.layers.report()
