"""Sharded (DTensor / FSDP2) models recorded on real gloo process groups of 2 and 3 ranks,
every statistic checked against numpy on the full tensors (gathered by the test's ranks only
after recording)."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import wcviz
from wcviz.record import sharded as D
from wcviz.record import stats as S
from wcviz.record.index import INDEX_NAME  # the runs index beside the runs
from wcviz.record.measures import parse_threshold

pytestmark = pytest.mark.slow  # spawns process groups

RANKS = Path(__file__).with_name("_sharded_ranks.py")
SCENARIOS_2 = ["mlp", "dtensor", "compand", "learnable", "transformer", "direct", "gradients"]
SCENARIOS_3 = ["mlp", "dtensor"]


def _spawn(root: Path, world: int, *scenarios: str, timeout: float = 600) -> None:
    proc = subprocess.run([sys.executable, str(RANKS), str(world), str(root), *scenarios],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    _spawn(root, 2, *SCENARIOS_2)
    return root


@pytest.fixture(scope="module")
def three_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    _spawn(root, 3, *SCENARIOS_3)
    return root


def _numpy_record(w: np.ndarray, labels, std0: float, edges: np.ndarray) -> dict:
    """Every statistic of a record, by numpy on the full float32 tensor ``w``."""
    w = w.ravel()
    wide = w.astype(np.float64)
    mag = np.abs(w)
    n = w.size
    std = math.sqrt(np.mean(wide * wide) - np.mean(wide) ** 2)
    scale = {"std": std, "med": float(np.median(mag.astype(np.float64)))}
    cutoffs = [t.value * scale[t.kind] if t.kind in scale else t.cutoff(std0=std0)
               for t in map(parse_threshold, labels)]
    # the histogram rule: bin floor((w + R)·bins / 2R) in float32, the ends clamped
    half, bins = edges[-1], len(edges) - 1
    idx = np.clip((w + np.float32(half)) * np.float32(bins / (2 * half)), 0, bins - 1)
    return {
        "weight_quantile": np.quantile(wide, S.QUANTILES),
        # a Python float cutoff compares in float32 (NEP 50), as torch does
        "near_zero_fraction": np.array([np.count_nonzero(mag < float(c)) / n for c in cutoffs]),
        "weight_histogram": np.bincount(idx.astype(np.intp), minlength=bins).astype(float),
        "weight_mean": wide.mean(), "weight_std": wide.std(), "weight_absmax": float(mag.max()),
        "weight_l2": np.linalg.norm(wide),
        "weight_participation": np.abs(wide).sum() ** 2 / (n * np.sum(wide * wide)),
    }


EXACT = ("weight_quantile", "near_zero_fraction", "weight_histogram", "weight_absmax")
SUMS = ("weight_mean", "weight_std", "weight_l2", "weight_participation")


def _check_run(root: Path, scenario: str, companded: bool = False,
               bound: float | None = None) -> None:
    ds = wcviz.open_run(root / scenario)
    full = np.load(root / f"{scenario}.npz")
    assert ds.attrs["status"] == "finished" and ds.epoch.values.tolist() == [0.0, 1.0]
    labels = ds.threshold.values.tolist()
    for li, layer in enumerate(ds.layer.values.tolist()):
        w0 = full[f"0/{layer}/w"]
        assert int(ds.layer_numel[li]) == w0.size
        np.testing.assert_allclose(ds.weight_std_init[li], w0.astype(np.float64).std(),
                                   rtol=1e-12)
        edges = ds.bin_edges.values[li]
        assert edges[-1] == S.histogram_range(np.abs(w0).max(), bound)
        for ei in range(2):
            w = full[f"{ei}/{layer}/w"]
            ref = _numpy_record(w, labels, float(ds.weight_std_init[li]), edges)
            where = f"{scenario} epoch {ei} layer {layer}"
            for name in EXACT:  # quantiles, counts and max|w|: exactly numpy's
                np.testing.assert_array_equal(ds[name].values[ei, li], ref[name], err_msg=where)
            for name in SUMS:  # float64 sums: numpy's up to float64 rounding
                np.testing.assert_allclose(ds[name].values[ei, li], ref[name], rtol=1e-12,
                                           atol=1e-15, err_msg=f"{where} {name}")
            assert ds.weight_histogram.values[ei, li].sum() == w.size
            v = full.get(f"{ei}/{layer}/v")
            if companded:
                np.testing.assert_array_equal(ds.v_quantile.values[ei, li],
                                              np.quantile(v.astype(np.float64), S.QUANTILES))
            else:
                assert v is None and np.isnan(ds.v_quantile.values[ei, li]).all()
        # the update ratio ‖w1 − w0‖ / ‖w0‖, from the shards (NaN at the first record)
        w0, w1 = w0.ravel(), full[f"1/{layer}/w"].ravel()
        assert np.isnan(ds.update_ratio.values[0, li])
        np.testing.assert_allclose(ds.update_ratio.values[1, li],
                                   np.linalg.norm((w1 - w0).astype(np.float64))
                                   / np.linalg.norm(w0.astype(np.float64)), rtol=1e-6)
    # the two records differ: the step between them changed the weights
    assert not np.array_equal(ds.weight_quantile.values[0], ds.weight_quantile.values[1])


def test_fsdp2_mlp_with_uneven_shards_on_two_ranks(two_ranks):
    _check_run(two_ranks, "mlp")


def test_fsdp2_mlp_on_three_ranks_one_holding_no_row(three_ranks):
    _check_run(three_ranks, "mlp")  # 2 output rows over 3 ranks: one shard is empty


@pytest.mark.parametrize("world", [2, 3])
def test_distribute_tensor_shard0_shard1_replicate(world, two_ranks, three_ranks):
    _check_run(two_ranks if world == 2 else three_ranks, "dtensor")


def test_fsdp2_transformer_encoder_layer(two_ranks):
    """Created and first recorded while a forward left the parameters unsharded (every rank
    holds them whole), then recorded from the shards after a step."""
    ds = wcviz.open_run(two_ranks / "transformer")
    assert "self_attn.in_proj_weight" in ds.layer.values.tolist()  # the packed Q/K/V tensor
    _check_run(two_ranks, "transformer")


@pytest.mark.parametrize("scenario", ["compand", "learnable"])
def test_companded_model_under_fsdp2(two_ranks, scenario):
    """w = Ψ(v) from the shards of v: w's statistics and v's quantiles are numpy's."""
    bound = 0.5 * math.pi / 2 if scenario == "compand" else None  # |Ψ| < aπ/2 for fixed a
    _check_run(two_ranks, scenario, companded=True, bound=bound)
    ds = wcviz.open_run(two_ranks / scenario)
    assert ds.attrs["method"] == "arctan"
    if scenario == "compand":
        assert (ds.a.values == 0.5).all() and np.allclose(ds.b.values, 0.3)
    else:  # learnable a, b (0-dim, left unsharded): recorded, and moved by the step
        assert ds.a.values[0].tolist() == pytest.approx([0.5] * 3)
        assert not np.array_equal(ds.a.values[0], ds.a.values[1])


def test_gradients_of_fsdp2_are_recorded_exactly_from_their_shards(two_ranks):
    """gradients=True on an FSDP2 model: ∂L/∂w is a sharded DTensor (reduced over the ranks'
    batches); its quantiles equal numpy's on the gathered gradient, its L2 norm numpy's."""
    ds = wcviz.open_run(two_ranks / "gradients")
    full = np.load(two_ranks / "gradients.npz")
    for li, layer in enumerate(ds.layer.values.tolist()):
        grad = full[f"{layer}/grad"].astype(np.float64).ravel()
        np.testing.assert_array_equal(ds.grad_quantile.values[0, li],
                                      np.quantile(grad, S.QUANTILES), err_msg=layer)
        np.testing.assert_allclose(ds.grad_l2.values[0, li], np.linalg.norm(grad), rtol=1e-12)


def test_partial_placement_refused_in_one_line(two_ranks):
    message = (two_ranks / "partial.txt").read_text()
    assert "Partial" in message and "Shard/Replicate" in message and "\n" not in message


@pytest.mark.parametrize("dtype", ["torch.float64", "torch.bfloat16"])
def test_sharded_quantiles_of_float64_and_bfloat16(two_ranks, dtype):
    """64-bit keys (four 16-bit passes) and widened bfloat16, signed zeros among the values."""
    out = np.load(two_ranks / "direct.npz")
    np.testing.assert_array_equal(out[f"{dtype}/ours"],
                                  np.quantile(out[f"{dtype}/full"], S.QUANTILES))


def test_summary_streamed_in_chunks_smaller_than_the_candidates(two_ranks):
    """More candidates than CHUNK on a rank (a bucket of many equal values): found again by
    rescans each pass, with the same result as one device's summary."""
    out = np.load(two_ranks / "direct.npz")
    ours, ref = out["small_chunks/ours"], out["small_chunks/ref"]
    n_q = len(S.QUANTILES)
    np.testing.assert_array_equal(ours[:n_q], np.quantile(out["small_chunks/full"].astype(float),
                                                          S.QUANTILES))
    np.testing.assert_array_equal(ours[n_q:n_q + 4 + 10], ref[n_q:n_q + 4 + 10])  # counts
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_a_rank_that_does_not_record_fails_within_the_timeout(tmp_path):
    _spawn(tmp_path, 2, "missing", timeout=300)
    seconds, message = (tmp_path / "missing.txt").read_text().split("\n", 1)
    assert "not every rank reached Recorder.record within 3 s" in message
    assert "every rank must call it" in message and "\n" not in message
    assert float(seconds) < 60  # the barrier's timeout, not the process group's 30 minutes
    assert wcviz.open_run(tmp_path / "missing").sizes["epoch"] == 0  # nothing recorded


# ---------------------------------------------------------------- single process, no group


def test_keys_order_like_the_values_and_decode_back():
    """Radix keys of float32 and float64: unsigned order == value order, and decoded back
    bit for bit (signed zeros, infinities and subnormals included)."""
    for dtype, width in ((torch.float32, 32), (torch.float64, 64)):
        info = torch.finfo(dtype)
        x = torch.tensor([-math.inf, -info.max, -1.5, -info.tiny / 4, -0.0, 0.0, info.tiny / 4,
                          1e-30, 2.0, info.max, math.inf], dtype=dtype)
        keys = D._keys(x, magnitude=False).numpy()
        unsigned = [int(k) & ((1 << width) - 1) for k in keys]  # two's complement -> unsigned
        assert unsigned == sorted(unsigned) and len(set(unsigned)) == len(unsigned)
        back = D._decode(np.array(unsigned, dtype=np.uint64), width)
        np.testing.assert_array_equal(back, x.numpy().astype(np.float64))
        np.testing.assert_array_equal(np.signbit(back), np.signbit(x.numpy()))


def test_lightning_fsdp2_fit_on_cpu_with_the_callback(tmp_path):
    """Lightning's FSDP2 strategy (ModelParallelStrategy) runs on CPU: two processes fit and
    the callback records from the shards on both; the last record is numpy's on the final
    weights."""
    pytest.importorskip("lightning")
    script = Path(__file__).with_name("_lightning_fsdp2.py")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "finished" and ds.epoch.values.tolist() == [0.0, 1.0, 2.0]
    final = np.load(tmp_path / "final.npz")
    for li, layer in enumerate(ds.layer.values.tolist()):
        w = final[layer]
        ref = _numpy_record(w, ds.threshold.values.tolist(), float(ds.weight_std_init[li]),
                            ds.bin_edges.values[li])
        for name in EXACT:
            np.testing.assert_array_equal(ds[name].values[-1, li], ref[name], err_msg=name)
        for name in SUMS:
            np.testing.assert_allclose(ds[name].values[-1, li], ref[name], rtol=1e-12)
    assert np.isfinite(ds.train_loss.values[1:]).all()  # the module's logged metric
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != INDEX_NAME)
    assert written == ["final.npz", "run"]  # rank 0 alone
