"""The compiled passes (wcviz.record.native) against numpy, and the statistics with and without
them bit for bit."""

import numpy as np
import pytest
import torch
from torch import nn

import wcviz
from wcviz.record import native
from wcviz.record import stats as S

QS = S.QUANTILES
# every kind of cutoff, inside, between and beyond the buckets, float32-overflowing ones too
CUTOFFS = [0.001, 0.01, 1e-30, 1e30, 1e300, ("std", 0.1), ("std", 0.5), ("med", 0.1),
           ("med", 0.5), ("med", 2.0)]


def _arrays():
    rng = np.random.default_rng(7)
    out = {f"normal_{n}": (rng.standard_normal(n) * 0.02).astype(np.float32)
           # around numpy's 8-lane blocks (8, 128), its 8192-element buffers, and big
           for n in (0, 1, 7, 8, 9, 127, 128, 129, 1000, 8191, 8192, 8193, 16_385, 300_007)}
    special = (rng.standard_normal(50_000) * 0.1).astype(np.float32)
    special[:2000] = 0.0
    special[2000:4000] = -0.0
    special[4000:4100] = np.float32(1e-45)  # subnormal
    special[4100:4200] = np.float32(3e38)  # squares overflow float32
    out["special"] = special
    out["one_value"] = np.full(40_000, -1.5, dtype=np.float32)
    out["wide"] = (rng.standard_cauchy(60_000) * 1e-3).astype(np.float32)
    return out


ARRAYS = _arrays()


def test_the_compiled_passes_are_built():
    """An install with a C compiler builds them (setup.py); without one the statistics take
    numpy's path, with the same results, so this is the one test that names it."""
    assert native.built(), ("wcviz.record._kernels was not built: install a C compiler "
                            "(gcc) and reinstall with pip install -e .")


def _widths() -> list[int]:
    """The lane widths of the scan's sums this build and CPU have (8: AVX-512, 4, 1)."""
    from wcviz.record import _kernels

    if _kernels is None:
        return []
    before, out = _kernels.lanes(), []
    for width in (8, 4, 1):
        try:
            _kernels.lanes(width)
            out.append(width)
        except ValueError:
            pass
    _kernels.lanes(before)
    return out


@pytest.fixture(params=_widths() or [None], ids=lambda w: f"lanes{w}")
def lanes(request):
    """Each lane width in turn (the widest the CPU has is the one used outside this test)."""
    from wcviz.record import _kernels

    if request.param is None:
        pytest.skip("the compiled passes are not built")
    before = _kernels.lanes(request.param)
    yield request.param
    _kernels.lanes(before)


def test_the_widest_lanes_the_cpu_has_are_in_use():
    from wcviz.record import _kernels

    assert _kernels is not None and _kernels.lanes() == max(_widths())


@pytest.mark.parametrize("name", list(ARRAYS))
def test_scan_is_numpys_sums_max_and_counts_bit_for_bit(name, lanes):
    arr = ARRAYS[name]
    got = native.scan(arr)
    mag = np.abs(arr)
    with np.errstate(over="ignore"):
        squares = mag * mag  # float32, as the statistics square
    assert got.total == np.add.reduce(arr, dtype=np.float64)
    assert got.sum_abs == np.add.reduce(mag, dtype=np.float64)
    assert got.sum_sq == np.add.reduce(squares, dtype=np.float64)
    assert got.absmax == (float(mag.max()) if arr.size else 0.0)
    np.testing.assert_array_equal(got.counts,
                                  np.bincount(arr.view(np.uint16)[1::2], minlength=1 << 16))


def test_scan_fills_the_arrays_it_is_given_with_the_counts_and_their_running_sums():
    out = (np.full(1 << 16, 99, dtype=np.int64), np.empty(1 << 16, dtype=np.int64),
           np.empty(1 << 15, dtype=np.int64))
    arr = ARRAYS["special"]
    got = native.scan(arr, out)
    assert got.counts is out[0] and got.signed_cum is out[1] and got.mag_cum is out[2]
    counts = np.bincount(arr.view(np.uint16)[1::2], minlength=1 << 16)
    np.testing.assert_array_equal(got.counts, counts)  # overwritten, not added to
    in_value_order = np.concatenate([counts[0x8000:][::-1], counts[:0x8000]])
    np.testing.assert_array_equal(got.signed_cum, np.cumsum(in_value_order))
    np.testing.assert_array_equal(got.mag_cum, np.cumsum(counts[:0x8000] + counts[0x8000:]))


@pytest.mark.parametrize("name", ["normal_300007", "special", "wide", "one_value", "normal_9"])
@pytest.mark.parametrize("every", [1, 3, 50])
def test_gather_sorted_is_the_sorted_weights_of_the_wanted_buckets(name, every):
    arr = ARRAYS[name]
    top = arr.view(np.uint16)[1::2]
    wanted = np.zeros(1 << 16, dtype=bool)
    wanted[np.unique(top)[::every]] = True
    got = native.gather_sorted(arr, _in_value_order(wanted), native.scan(arr).counts)
    chosen = arr[wanted[top]]
    bits = chosen.view(np.int32)
    key = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # value order, −0.0 before +0.0
    expected = chosen[np.argsort(key, kind="stable")]
    assert got.view(np.uint32).tolist() == expected.view(np.uint32).tolist()


@pytest.mark.parametrize("n", [1, 2, 3, 1023, 1025, 2050, 4099, 20_001])
@pytest.mark.parametrize("where", ["first half", "second half", "both", "every weight"])
def test_gather_sorted_takes_the_wanted_weights_from_either_half(n, where):
    """The gather reads the two halves side by side, writing one up and one down: wanted
    weights in one half only, in both, or every weight (the two write positions meet)."""
    rng = np.random.default_rng(n)
    arr = rng.normal(size=n).astype(np.float32) * 0.01  # no weight in the buckets below
    half = n // 2
    if where in ("first half", "both"):
        arr[:half:3] = rng.uniform(1.0, 1.9, size=len(arr[:half:3]))
    if where in ("second half", "both"):
        arr[half::2] = rng.uniform(-1.9, -1.0, size=len(arr[half::2]))
    top = arr.view(np.uint16)[1::2]
    wanted = np.zeros(1 << 16, dtype=bool)
    if where == "every weight":
        wanted[top] = True
    else:
        wanted[np.unique(top[np.abs(arr) >= 1.0])] = True
    got = native.gather_sorted(arr, _in_value_order(wanted), native.scan(arr).counts)
    assert got.tolist() == np.sort(arr[wanted[top]]).tolist()


def _in_value_order(wanted: np.ndarray) -> np.ndarray:
    """The marked buckets, negative ones from the largest magnitude down, then the others up."""
    return S._SIGNED_ORDER[np.sort(S._POSITION[np.flatnonzero(wanted)])]


def test_gather_sorted_refuses_counts_of_other_weights_without_writing_past_its_output():
    arr = ARRAYS["normal_8193"]
    every = _in_value_order(np.ones(1 << 16, dtype=bool))
    counts = native.scan(arr).counts.copy()
    for change in (-1, 1):
        wrong = counts.copy()
        wrong[np.flatnonzero(wrong)[0]] += change
        with pytest.raises(ValueError, match="counts are not those of these weights"):
            native.gather_sorted(arr, every, wrong)


def test_gather_sorted_refuses_negative_counts_without_writing_outside_its_output():
    """Counts whose sum is right but one of them negative: refused before any weight moves
    (a negative run start once wrote weights before the output)."""
    arr = np.tile(np.float32([1.0, 2.0]), 4000)
    counts = native.scan(arr).counts.copy()
    one, two = (int(np.float32(x).view(np.uint32)) >> 16 for x in (1.0, 2.0))
    counts[one], counts[two] = -4000, 12_000
    from wcviz.record import _kernels

    buffer = np.zeros(24_000, dtype=np.float32)
    with pytest.raises(ValueError, match="none negative"):
        _kernels.gather_sorted_f32(arr, np.array([one, two]), counts, buffer[8000:16_000])
    assert not buffer.any()


def test_gather_sorted_refuses_buckets_out_of_order_repeated_or_out_of_range():
    arr = ARRAYS["normal_8193"]
    counts = native.scan(arr).counts
    held = _in_value_order(counts > 0)
    for buckets, match in ((held[::-1], "value order"), (held[[0, 0]], "value order"),
                           (np.array([1 << 16]), r"\[0, 65536\)"),
                           (np.array([-1]), r"\[0, 65536\)")):
        with pytest.raises(ValueError, match=match):
            native.gather_sorted(arr, buckets, counts)
    from wcviz.record import _kernels  # the size of out is checked too, below the wrapper

    with pytest.raises(ValueError, match="as many as the sum of the buckets' counts"):
        _kernels.gather_sorted_f32(arr, held, counts, np.empty(3, dtype=np.float32))


@pytest.mark.parametrize("n", [0, 5, 8, 8200, 100_003])
def test_diff_sq_is_the_float64_sum_of_the_float32_differences_and_keeps_a_copy(n):
    rng = np.random.default_rng(n)
    prev = rng.standard_normal(n).astype(np.float32)
    weights = (prev + rng.standard_normal(n).astype(np.float32) * 1e-3).astype(np.float32)
    expected = np.sum((prev - weights).astype(np.float64) ** 2)
    kept = prev.copy()
    total = native.diff_sq(kept, weights, keep=True)
    np.testing.assert_allclose(total, expected, rtol=1e-13)
    np.testing.assert_array_equal(kept, weights)
    assert native.diff_sq(prev, weights, keep=False) == total  # the same order either way
    assert native.diff_sq(weights, prev, keep=False) == total  # and symmetric


def _summary(arr, monkeypatch, compiled: bool):
    monkeypatch.setenv("WCVIZ_NATIVE", "1" if compiled else "0")
    assert native.enabled() is compiled
    return S.weight_summary(torch.from_numpy(arr), QS, CUTOFFS, 0.5, 81).numpy()


@pytest.mark.parametrize("name", [n for n in ARRAYS if ARRAYS[n].size])
def test_summaries_are_the_same_bits_with_and_without_the_compiled_passes(name, monkeypatch):
    """Above 16,384 weights the compiled passes feed the shared radix summary; numpy's path
    takes its own six passes (and the general path below 65,536): all the same bits."""
    arr = ARRAYS[name]
    np.testing.assert_array_equal(_summary(arr, monkeypatch, True),
                                  _summary(arr, monkeypatch, False))


def _hard_arrays(seed: int) -> dict[str, np.ndarray]:
    """Arrays above the compiled summary's threshold that stress its rank and count logic:
    one sign only, ties across bucket edges, zeros of both signs, subnormals, squares near
    float32's largest, two clusters far apart (the median between distant buckets)."""
    rng = np.random.default_rng(seed)
    n = 20_001 + seed
    ties = rng.choice(np.float32([-0.5, -0.25, 0.0, -0.0, 1e-40, 0.25, 0.5, 0.75]), n)
    clusters = np.concatenate([rng.normal(-3.0, 1e-3, n // 2),
                               rng.normal(1e-12, 1e-14, n - n // 2)])
    return {"positive": np.abs(rng.standard_normal(n)).astype(np.float32) + np.float32(1e-3),
            "negative": -np.abs(rng.standard_normal(n)).astype(np.float32),
            "ties": ties.astype(np.float32),
            "huge": (rng.standard_normal(n) * 1e18).astype(np.float32),
            "tiny": (rng.standard_normal(n) * 1e-39).astype(np.float32),
            "clusters": rng.permutation(clusters).astype(np.float32)}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("bins,quantiles", [(81, QS), (1, ()), (2, (0.5,)),
                                            (8, (0.0, 0.001, 0.25, 0.999, 1.0))])
def test_the_compiled_summary_is_numpys_on_hard_arrays(seed, bins, quantiles, monkeypatch):
    cutoffs = [*CUTOFFS, ("std", 1e-30), ("med", 1e-30), ("std", 1e30), ("med", 1e30), 0.0,
               -1.0, float("inf")]
    for name, arr in _hard_arrays(seed).items():
        got = []
        for compiled in (True, False):
            monkeypatch.setenv("WCVIZ_NATIVE", "1" if compiled else "0")
            got.append(S.weight_summary(torch.from_numpy(arr), quantiles, cutoffs, 2.0,
                                        bins).numpy())
        np.testing.assert_array_equal(got[0], got[1], err_msg=name)


@pytest.mark.parametrize("compiled", [True, False])
def test_med_cutoffs_whose_range_ends_round_to_zero_or_overflow(compiled, monkeypatch):
    """t × median|w| is finite and positive while t × an end of the median's bucket rounds
    to inf (a huge t) or to 0 (a median among subnormals): the count still needs its
    buckets gathered (it once failed: IndexError, or a bucket not gathered)."""
    monkeypatch.setenv("WCVIZ_NATIVE", "1" if compiled else "0")
    rng = np.random.default_rng(3)
    subnormal = (np.float32(1e-45) * rng.integers(0, 9, 70_001)).astype(np.float32)
    for arr, t in ((np.full(70_000, -1.5, dtype=np.float32), 2.26e38),  # 1.5 t < max < 1.51 t
                   (subnormal, 0.5), (subnormal, 3.0)):
        cutoffs = [("med", t), ("med", 1.0)]
        with np.errstate(over="ignore"):
            got = S.weight_summary(torch.from_numpy(arr), QS, cutoffs, 0.5, 81).numpy()
            median = np.float64(np.median(np.abs(arr)))
            want = [np.mean(np.abs(arr) < np.float32(c[1] * median)) for c in cutoffs]
        assert got[len(QS):len(QS) + 2].tolist() == want


def test_a_zero_quantile_is_plus_zero_on_every_path(monkeypatch):
    """Among −0.0 and +0.0 the sort decides which zero sits at a rank (numpy orders equal
    zeros arbitrarily, the compiled passes −0.0 first): every path reports +0.0, so the
    paths agree in every bit, not only in value."""
    rng = np.random.default_rng(5)
    qs = (0.0, 0.25, 0.5, 0.75, 1.0)
    zeros = np.float32([-0.0, 0.0, -0.0, 0.0, 1.0, -1.0])
    got = []
    for n in (70_000, 20_000):  # numpy's shared and general paths; compiled for both
        arr = torch.from_numpy(rng.choice(zeros[:4] if n > 50_000 else zeros, n))
        for compiled in (True, False):
            monkeypatch.setenv("WCVIZ_NATIVE", "1" if compiled else "0")
            got.append(S.weight_summary(arr, qs, [], 0.5, 3).numpy()[:len(qs)])
        got.append(S.exact_quantiles(arr, qs, backend="torch").numpy())
    small = [torch.from_numpy(rng.choice(zeros[:4], 4000)) for _ in range(3)]
    got.append(S.weight_summaries(small, qs, [[]] * 3, [0.5] * 3, 3)[:, :len(qs)].ravel())
    for quants in got:
        zero = quants == 0
        assert zero.any() and not np.signbit(quants[zero]).any()
    assert got[0].tobytes() == got[1].tobytes() and got[3].tobytes() == got[4].tobytes()


def test_the_compiled_summary_refuses_buffers_that_do_not_fit():
    arr = ARRAYS["normal_300007"]
    scratch = tuple(np.empty(size, dtype=np.int64) for size in (1 << 16, 1 << 16, 1 << 15))
    plan, median = S._plan(arr.size, QS), S._plan(arr.size, (0.5,))
    kinds, values = S._cutoff_spec(tuple(CUTOFFS))
    edges = S._histogram_thresholds(0.5, 81)
    size = len(QS) + len(CUTOFFS) + 81 + 6

    def summary(**change):
        parts = dict(scratch=scratch, plan=plan, median_plan=median, cutoff_kinds=kinds,
                     cutoffs=values, edges=edges, out=np.empty(size))
        parts.update(change)
        return native.summary(arr, **parts)

    assert summary() is True
    far = (np.array([arr.size]), *plan[1:])
    for change, match in ((dict(out=np.empty(size + 1)), "out must hold"),
                          (dict(cutoffs=values[1:]), "differ in length"),
                          (dict(cutoff_kinds=np.full_like(kinds, 3)), "cutoff kind"),
                          (dict(plan=far), "outside the weights"),
                          (dict(plan=(plan[0], plan[1] + 99, *plan[2:])), "outside its plan"),
                          (dict(scratch=scratch[:2] + scratch[:1]), "32768")):
        with pytest.raises(ValueError, match=match):
            summary(**change)
    nan = arr.copy()
    nan[7] = np.nan
    assert native.summary(nan, scratch, plan, median, kinds, values, edges,
                          np.empty(size)) is False


def test_update_ratios_are_numpys_with_and_without_the_compiled_pass(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 200), nn.ReLU(), nn.Linear(200, 10))
    before = [model[i].weight.detach().double().numpy().copy() for i in (0, 2)]
    recorders = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("WCVIZ_NATIVE", mode)
        recorders[mode] = wcviz.Recorder(model, tmp_path / mode)
        recorders[mode].record(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    after = [model[i].weight.detach().double().numpy() for i in (0, 2)]
    expected = [np.linalg.norm(w1 - w0) / np.linalg.norm(w0) for w0, w1 in zip(before, after)]
    for mode, rec in recorders.items():
        monkeypatch.setenv("WCVIZ_NATIVE", mode)
        rec.record(1)
        rec.finish()
        got = wcviz.open_run(tmp_path / mode).update_ratio.values[1]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
