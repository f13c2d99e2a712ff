"""wcviz.record.stats against numpy: quantiles, near-zero fractions, histogram, moments."""

import math

import numpy as np
import pytest
import torch

from wcviz.record import stats as S
from wcviz.errors import WcvizError

QS = S.QUANTILES


def _tensors():
    g = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(1)  # seeded: torch's own StudentT draws from the global seed
    heavy = torch.from_numpy(rng.standard_t(1.0, 20_001).astype(np.float32))  # Cauchy: outliers
    zeros = torch.randn(30_000, generator=g)
    zeros[torch.rand(30_000, generator=g) < 0.8] = 0.0  # 80 % exact zeros
    return {
        "normal": torch.randn(64, 3, 3, 3, generator=g) * 0.05,
        "heavy": heavy,
        "zero_heavy": zeros,
        "all_zero": torch.zeros(1000),
        "ties": torch.randint(-3, 4, (5_000,), generator=g).float(),
        "single": torch.tensor([0.25]),
        "two": torch.tensor([1.0, -2.0]),
        "float64": torch.randn(999, generator=g, dtype=torch.float64),
        # above wcviz.record.stats._RADIX_MIN: the CPU radix-selection path
        "big_normal": torch.randn(200_003, generator=g) * 0.01,
        "big_heavy": torch.from_numpy(rng.standard_t(0.8, 150_000).astype(np.float32)),
        "big_zero_heavy": torch.where(torch.rand(200_000, generator=g) < 0.9, 0.0,
                                      torch.randn(200_000, generator=g)),
        "big_signed_zeros": torch.cat([torch.zeros(70_000), -torch.zeros(70_000),
                                       torch.randn(1_001, generator=g)]),
        "big_narrow": 1.0 + torch.rand(100_000, generator=g) * 1e-6,  # one radix bucket
    }


TENSORS = _tensors()
BACKENDS = ["numpy", "torch"]  # the CPU default and the one used on CUDA


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(TENSORS))
def test_quantiles_equal_numpy(name, backend):
    """Against numpy on a float64 copy: numpy interpolates a float32 array in float32, whose
    rounding, where the two order statistics differ in sign, is far above 2e-7 of the result
    (a Cauchy sample's median once missed by 3.2e-7)."""
    x = TENSORS[name]
    ours = S.exact_quantiles(x, QS, backend=backend).numpy()
    np.testing.assert_array_equal(ours, np.quantile(x.numpy().astype(np.float64).ravel(), QS))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [864, 1280, 18_432, 73_728])
def test_quantiles_are_numpys_bit_for_bit(backend, n):
    """Equal to numpy on a float64 copy, not merely close: the same order statistics and
    numpy's own interpolation index (n − 1)·q (the general formula n·q + 1 − q − 1 is equal in
    exact arithmetic but rounds differently, off by an ulp at these sizes)."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 0.05
    ours = S.exact_quantiles(x, QS, backend=backend).numpy()
    np.testing.assert_array_equal(ours, np.quantile(x.numpy().astype(np.float64), QS))


@pytest.mark.parametrize("qs", [(0.5,), (0.0, 1.0), (0.01, 0.25, 0.33, 0.99), tuple(np.linspace(0, 1, 21))])
def test_other_quantile_lists(qs):
    x = torch.randn(10_007, generator=torch.Generator().manual_seed(len(qs)))
    np.testing.assert_array_equal(S.exact_quantiles(x, qs).numpy(),
                                  np.quantile(x.numpy().astype(np.float64), qs))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [4097, 300_001])
def test_order_statistics_are_exact(backend, n):
    """Both selection paths (radix above 2^16 elements) against a full numpy sort."""
    x = torch.randn(n) * torch.rand(n) ** 4  # heavy centre, wide range of exponents
    ranks = [0, 1, 5, n // 3, n // 2, n // 2 + 1, n - 2, n - 1]
    np.testing.assert_array_equal(S.order_statistics(x, ranks, backend=backend).numpy(),
                                  np.sort(x.numpy())[ranks])


def test_quantiles_above_2_pow_24_elements():
    """Older torch.quantile refuses > 2^24 elements; ours must match numpy there too."""
    n = 2**24 + 1001
    x = torch.randn(n)
    x[: n // 3] = 0.0  # also zero-heavy
    ours = S.exact_quantiles(x, QS).numpy()
    np.testing.assert_allclose(ours, np.quantile(x.numpy(), QS), rtol=2e-7, atol=0)
    x[5] = 1e6  # an outlier moves the upper order statistics only
    np.testing.assert_allclose(S.exact_quantiles(x, QS).numpy(), np.quantile(x.numpy(), QS),
                               rtol=2e-7, atol=0)
    cut = S.weight_summary(x, QS, [1e-3], 1.0, 11)
    assert cut[len(QS)].item() == pytest.approx(np.mean(np.abs(x.numpy()) < 1e-3), abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [100, 100_000])
def test_quantiles_nan_inf_and_empty(backend, n):
    x = torch.randn(n)
    x[7] = math.nan
    assert torch.isnan(S.exact_quantiles(x, QS, backend=backend)).all()
    assert torch.isnan(S.exact_quantiles(torch.zeros(0), QS, backend=backend)).all()
    inf = torch.randn(n)
    inf[:3] = torch.tensor([math.inf, -math.inf, math.inf])
    with np.errstate(invalid="ignore"):
        ref = np.quantile(inf.numpy(), QS)
    np.testing.assert_allclose(S.exact_quantiles(inf, QS, backend=backend).numpy(), ref,
                               rtol=2e-7, atol=0)  # NaN where numpy gives NaN (inf − inf)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["normal", "heavy", "zero_heavy", "all_zero", "ties",
                                  "big_normal", "big_zero_heavy"])
def test_summary_matches_numpy(name, backend):
    x = TENSORS[name]
    w = x.numpy().astype(np.float64).ravel()
    cutoffs = [1e-3, 0.05, 1.0]
    half, bins = 0.1, 9
    layout = S.SummaryLayout(len(QS), len(cutoffs), bins)
    out = layout.unpack(S.weight_summary(x, QS, cutoffs, half, bins, backend=backend).numpy())
    np.testing.assert_allclose(out["weight_quantile"], np.quantile(w, QS), rtol=2e-7)
    np.testing.assert_array_equal(out["near_zero_fraction"],
                                  [np.mean(np.abs(x.numpy()) < t) for t in cutoffs])
    ref_hist, _ = np.histogram(np.clip(w, -half, half), bins, (-half, half))
    np.testing.assert_array_equal(out["weight_histogram"], ref_hist)
    assert out["weight_histogram"].sum() == w.size
    np.testing.assert_allclose(out["weight_mean"], w.mean(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out["weight_std"], w.std(), rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(out["weight_absmax"], np.abs(w).max())
    np.testing.assert_allclose(out["weight_l2"], np.linalg.norm(w), rtol=1e-6)
    if np.any(w):
        part = np.abs(w).sum() ** 2 / (w.size * (w**2).sum())
        np.testing.assert_allclose(out["weight_participation"], part, rtol=1e-6)
    else:
        assert math.isnan(out["weight_participation"])
    assert out["nonfinite_flag"] == 0


def test_participation_extremes():
    layout = S.SummaryLayout(len(QS), 0, 3)
    equal = layout.unpack(S.weight_summary(torch.tensor([0.5, -0.5, 0.5, -0.5]), QS, [], 1, 3).numpy())
    assert equal["weight_participation"] == pytest.approx(1.0)
    spike = torch.zeros(1000)
    spike[3] = 2.0
    one = layout.unpack(S.weight_summary(spike, QS, [], 1, 3).numpy())
    assert one["weight_participation"] == pytest.approx(1 / 1000)


def test_near_zero_is_strict_and_counts_exact_zeros():
    x = torch.tensor([0.0, 0.0, 0.01, -0.01, 0.02])
    frac = S.weight_summary(x, QS, [0.01, 0.0100001], 1, 3)[len(QS):len(QS) + 2].numpy()
    np.testing.assert_array_equal(frac, [2 / 5, 4 / 5])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_flagged_not_raised(backend):
    x = torch.randn(50)
    x[3] = math.inf
    x[4] = math.nan
    summary = S.weight_summary(x, QS, [0.1], 2.0, 5, backend=backend).numpy()
    out = S.SummaryLayout(len(QS), 1, 5).unpack(summary)
    assert out["nonfinite_flag"] == 1
    assert out["weight_histogram"].sum() == 49  # inf clamped into the last bin, NaN dropped
    assert np.isnan(out["weight_quantile"]).all()


def test_unknown_backend():
    with pytest.raises(WcvizError, match="backend"):
        S.exact_quantiles(torch.ones(3), QS, backend="jax")


def test_histogram_bins_values_on_edges_alike_on_every_backend():
    half, bins = 0.3, 9
    edges = np.linspace(-half, half, bins + 1, dtype=np.float32)
    on_edges = np.concatenate([edges, np.nextafter(edges, np.float32(-1)),
                               np.nextafter(edges, np.float32(1)), [np.inf, -np.inf, np.nan]])
    x = torch.from_numpy(on_edges.astype(np.float32))
    layout = S.SummaryLayout(len(QS), 0, bins)
    counts = [layout.unpack(S.weight_summary(x, QS, [], half, bins, backend=b).numpy())
              ["weight_histogram"] for b in BACKENDS]
    np.testing.assert_array_equal(counts[0], counts[1])  # same record whatever the device
    assert counts[0].sum() == np.isfinite(on_edges).sum() + 2  # ±inf in the end bins


def test_histogram_range_rule():
    assert S.histogram_range(0.2) == pytest.approx(S.HIST_RANGE_FACTOR * 0.2)
    assert S.histogram_range(0.2, bound=0.5) == pytest.approx(0.5)  # capped at a·π/2
    assert S.histogram_range(0.0) == 1.0 and S.histogram_range(math.inf) == 1.0
    edges = S.histogram_edges(0.5, 5)
    assert edges[0] == -0.5 and edges[-1] == 0.5 and len(edges) == 6


@pytest.mark.parametrize("n", [10, 100_000])
def test_initial_scale_ignores_nonfinite(n):
    x = torch.randn(n)
    std, absmax = S.initial_scale(x)
    assert std == pytest.approx(x.numpy().std(), rel=1e-5) and absmax == x.abs().max().item()
    x[0], x[1] = math.nan, math.inf
    std, absmax = S.initial_scale(x)
    assert std == pytest.approx(x[2:].numpy().std(), rel=1e-5)
    assert absmax == x[2:].abs().max().item()


@pytest.mark.parametrize("label,kind,value", [("abs=0.001", "abs", 0.001), ("rel=0.1", "rel", 0.1),
                                              (" abs=1e-2", "abs", 0.01), ("std=0.5", "std", 0.5),
                                              ("med=0.1", "med", 0.1)])
def test_parse_threshold(label, kind, value):
    t = S.parse_threshold(label)
    assert (t.kind, t.value) == (kind, value)


@pytest.mark.parametrize("label", ["0.1", "abs=-1", "rel=x", "abs=nan", "pct=5", "abs=0"])
def test_bad_threshold(label):
    with pytest.raises(WcvizError, match="threshold"):
        S.parse_threshold(label)


@pytest.mark.parametrize("qs", [(), (0.5, 0.2), (0.1, 1.5), (0.3, 0.3)])
def test_bad_quantiles(qs):
    with pytest.raises(WcvizError, match="quantiles"):
        S.check_quantiles(qs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [1001, 100_001])  # numpy's partition, and the radix selection
def test_record_scaled_near_zero_fractions(backend, n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(n)) * 0.3
    w = x.numpy()
    cutoffs = [0.05, ("std", 0.5), ("med", 0.1), ("med", 1.0)]
    layout = S.SummaryLayout(len(QS), len(cutoffs), 5)
    out = layout.unpack(S.weight_summary(x, QS, cutoffs, 1.0, 5, backend=backend).cpu().numpy())
    median = float(np.median(np.abs(w)))
    expected = [np.mean(np.abs(w) < 0.05), np.mean(np.abs(w) < np.float32(0.5 * w.std())),
                np.mean(np.abs(w) < np.float32(0.1 * median)), np.mean(np.abs(w) < np.float32(median))]
    np.testing.assert_allclose(out["near_zero_fraction"], expected, rtol=0, atol=1.5 / n)
    assert abs(out["near_zero_fraction"][3] - 0.5) <= 1 / n  # med=1 is one half by definition


@pytest.mark.parametrize("backend", BACKENDS)
def test_record_scaled_fractions_are_scale_free(backend):
    x = torch.randn(5000, generator=torch.Generator().manual_seed(1))
    cutoffs = [("std", 0.1), ("med", 0.5), 0.1]
    layout = S.SummaryLayout(len(QS), len(cutoffs), 3)

    def fractions(t):
        return layout.unpack(S.weight_summary(t, QS, cutoffs, 1.0, 3, backend=backend)
                             .cpu().numpy())["near_zero_fraction"]

    one, three = fractions(x), fractions(x * 4.0)  # ×4: exact in binary floating point
    np.testing.assert_array_equal(one[:2], three[:2])  # std and med: unchanged
    assert three[2] < one[2]  # the absolute cutoff counts fewer of the grown weights


def test_bad_record_scaled_kind():
    with pytest.raises(WcvizError, match="record-scaled"):
        S.weight_summary(torch.ones(4), QS, [("rel", 0.1)], 1.0, 3)


def test_network_fraction_weights_or_layers():
    from wcviz.record.measures import network_fraction

    frac = np.array([[0.5, 0.1]])  # a small layer half near zero, a big one 10 %
    assert network_fraction(frac, [10, 90])[0] == pytest.approx(0.14)
    assert network_fraction(frac, [10, 90], "layers")[0] == pytest.approx(0.3)
    with pytest.raises(WcvizError, match="aggregation"):
        network_fraction(frac, [10, 90], "median")


@pytest.mark.parametrize("n", [65_536, 100_001])
def test_median_abs_selection_equals_numpy_median_with_ties(n):
    rng = np.random.default_rng(n)
    mag = np.abs(np.round(rng.standard_normal(n) * 20) / 100).astype(np.float32)  # many ties, zeros
    assert S._median_abs_numpy(mag, check_nan=False) == np.median(mag)
    mag[: n // 2 + 3] = 0.0  # the median is an exact zero
    assert S._median_abs_numpy(mag, check_nan=False) == 0.0


def _mixed_small_tensors():
    """Small tensors of every awkward kind, as a model of many tiny layers holds them."""
    g = torch.Generator().manual_seed(7)
    out = []
    for i in range(120):
        n = int(torch.randint(1, S.BATCH_MAX_NUMEL + 1, (1,), generator=g)) if i % 3 else i % 5 + 1
        x = torch.randn(n, generator=g) * float(torch.rand(1, generator=g)) * 3
        kind = i % 8
        if kind == 1:
            x[torch.rand(n, generator=g) < 0.7] = 0.0
        elif kind == 2:
            x = torch.randint(-3, 4, (n,), generator=g).float()
        elif kind == 3:
            x[0] = math.nan
        elif kind == 4:
            x[-1] = math.inf
        elif kind == 5:
            x = x.half()
        elif kind == 6:
            x = torch.zeros(n)
        elif kind == 7:
            x = torch.from_numpy(  # huge outliers: sums' last bits (seeded, as the rest)
                np.random.default_rng(n).standard_t(0.8, n).astype(np.float32))
        out.append(x)
    return out


def test_batched_summaries_are_bit_equal_to_one_by_one():
    """Many small layers summarised together give exactly each layer's own summary (every
    quantile, fraction, bin count and moment, NaN/inf layers too)."""
    tensors = _mixed_small_tensors()
    base = [0.001, ("std", 0.1), ("std", 0.5), ("med", 0.1), ("med", 0.5), 0.3]
    cutoffs = [[c if isinstance(c, tuple) else c * (i % 3 + 1) for c in base]
               for i in range(len(tensors))]
    ranges = [0.5 + i % 5 for i in range(len(tensors))]
    together = S.weight_summaries(tensors, QS, cutoffs, ranges, 81)
    for i, x in enumerate(tensors):
        alone = S.weight_summary(x, QS, cutoffs[i], ranges[i], 81).numpy()
        np.testing.assert_array_equal(together[i], alone, err_msg=f"tensor {i}")
    quants = S.segment_quantiles(tensors, QS)
    for i, x in enumerate(tensors):
        np.testing.assert_array_equal(quants[i], S.exact_quantiles(x, QS).numpy())
    np.testing.assert_array_equal(np.array(S.initial_scales(tensors)),
                                  np.array([S.initial_scale(x) for x in tensors]))


@pytest.mark.parametrize("name", [n for n in TENSORS if n.startswith("big_")] +
                         ["conv", "negative_narrow", "many_ties", "many_zeros", "positive"])
@pytest.mark.parametrize("half_range", [0.05, 1.0, 10.0])
def test_shared_radix_summary_is_bit_equal_to_the_general_path(name, half_range):
    """One radix count shared by quantiles, median|w| and every cutoff gives exactly what a
    selection per statistic and a pass per threshold give (cutoffs inside, between and
    beyond the buckets, float32-overflowing ones too)."""
    g = torch.Generator().manual_seed(3)
    extra = {"conv": torch.randn(256, 64, 3, 3, generator=g) * 0.01,
             "negative_narrow": -1.0 - torch.rand(100_000, generator=g) * 1e-6,
             "many_ties": torch.randint(-3, 4, (70_000,), generator=g).float(),
             "many_zeros": torch.zeros(70_000), "positive": torch.rand(80_000, generator=g)}
    arr = (TENSORS.get(name) if name in TENSORS else extra[name]).numpy().ravel()
    cutoffs = [0.001, 0.01, 0.05, 1e-30, 1e30, 1e300, ("std", 0.1), ("std", 0.5),
               ("med", 0.1), ("med", 0.5), ("med", 2.0)]
    shared = S._summary_shared(arr, QS, cutoffs, half_range, 81)
    general = np.concatenate([S._quantiles_numpy(arr, QS),
                              *S._summary_numpy(arr, cutoffs, half_range, 81)])
    np.testing.assert_array_equal(shared, general)
