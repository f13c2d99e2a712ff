"""Builders of small real run stores with chosen values, written through ``wcviz.record.store.RunStore``.

Shared by the figure tests (and usable read-only by other test modules). Each builder writes
a complete run directory with the real store code, so readers see exactly what a recorded run
looks like; the values are chosen so that tests know which claims they satisfy:

* :func:`baseline_run`: weights spread grows ×``growth`` over training; many near-zero weights.
* :func:`wc_run`: arctan a=0.8, b=0.5; |w| stays below 0.9·aπ/2; fewer near-zero weights
  (reduction largest in the first layers).
* :func:`violating_wc_run`: claims both fail: |w| exceeds aπ/2 and more near-zero weights.
* :func:`learnable_run`: fine learnable a, b drifting per layer; the linear layer's a grows.
* :func:`seed_group`: several seeds of one configuration with chosen accuracy curves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wcviz.record.stats import QUANTILES
from wcviz.record.store import RunStore

LAYERS = ("conv1", "layer1.conv", "layer2.conv", "fc")
KINDS = ("Conv2d", "Conv2d", "Conv2d", "Linear")
NUMEL = (108, 576, 1152, 320)
THRESHOLDS = ["abs=0.001", "abs=0.01", "rel=0.1", "rel=0.5"]
N_BINS = 8
#: Standard-normal z of each quantile, min/max at ±2.6 (a finite sample's extremes).
Z = np.array([-2.6, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.6])
assert len(Z) == len(QUANTILES)


def _bin_edges(limit: float = 3.0) -> np.ndarray:
    """Fixed per-layer histogram edges, shape (layer, bin + 1)."""
    return np.tile(np.linspace(-limit, limit, N_BINS + 1), (len(LAYERS), 1))


def _stats(scales: np.ndarray, near_zero: np.ndarray, a=None, b=None) -> dict[str, np.ndarray]:
    """One record's statistics for weights ~ N(0, scale²) per layer (exact chosen quantiles)."""
    quant = scales[:, None] * Z[None, :]
    n_layers = len(LAYERS)
    full = lambda x: np.full(n_layers, np.nan) if x is None else np.broadcast_to(np.asarray(x, float), (n_layers,)).copy()
    return {
        "weight_quantile": quant,
        "near_zero_fraction": near_zero,
        "weight_histogram": np.tile(np.arange(N_BINS, dtype=float), (n_layers, 1)),
        "weight_mean": np.zeros(n_layers),
        "weight_std": scales.copy(),
        "weight_absmax": np.abs(quant).max(axis=1),
        "weight_l2": scales * np.sqrt(np.asarray(NUMEL, float)),
        "weight_participation": np.full(n_layers, 2 / np.pi),
        "a": full(a),
        "b": full(b),
    }


def write_run(run_dir, *, method="none", a=None, b=None, learnable=None, seed=0, n_epochs=6,
              scales=None, near_zero=None, a_traj=None, b_traj=None, metrics=None,
              model="tinynet", dataset="synthetic", status="finished", config=None) -> Path:
    """Write a run with the given per-epoch values and return its directory.

    Args:
        scales: f(epoch) -> (layer,) weight std per layer.
        near_zero: f(epoch) -> (layer, threshold) fractions.
        a_traj, b_traj: f(epoch) -> (layer,) for learnable runs (else the fixed a, b).
        metrics: f(epoch) -> dict of metric name -> float.
        config: more config fields (e.g. the optimizer), stored with the run.
    """
    run_dir = Path(run_dir)
    attrs = {"method": method, "a": a, "b": b, "learnable": learnable, "seed": seed,
             "model": model, "dataset": dataset}
    store = RunStore.create(run_dir, layers=list(LAYERS), layer_kinds=list(KINDS),
                            layer_numel=list(NUMEL), bin_edges=_bin_edges(), thresholds=THRESHOLDS,
                            attrs=attrs, config={"seed": seed, "method": method, "a": a, "b": b,
                                                 **(config or {})},
                            weight_std_init=np.asarray(scales(0), float))
    for epoch in range(n_epochs):
        stats = _stats(np.asarray(scales(epoch), float), np.asarray(near_zero(epoch), float),
                       a_traj(epoch) if a_traj else a, b_traj(epoch) if b_traj else b)
        store.append(float(epoch), epoch * 10, stats, metrics(epoch) if metrics else {})
    store.finish(status)
    return run_dir


def _nz(levels) -> np.ndarray:
    """(layer, threshold) fractions from one level per layer, increasing with the threshold."""
    levels = np.asarray(levels, float)[:, None]
    return np.clip(levels * np.array([0.05, 0.4, 0.6, 1.0])[None, :], 0, 1)


def _acc_metrics(seed: int, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    val = rng.uniform(0.5, 0.9, 20)
    test = rng.uniform(0.5, 0.9, 20) + offset

    def metrics(epoch):
        return {"train_loss": 2.0 / (epoch + 1), "val_loss": 2.2 / (epoch + 1),
                "test_loss": 2.3 / (epoch + 1), "train_acc": min(1.0, 0.5 + 0.1 * epoch),
                "val_acc": float(val[epoch]), "test_acc": float(test[epoch]), "lr": 0.1}
    return metrics


INIT_SCALE = np.array([0.20, 0.10, 0.07, 0.10])  # epoch-0 std per layer
INIT_NZ = np.array([0.30, 0.20, 0.15, 0.20])  # epoch-0 near-zero level per layer


def baseline_run(run_dir, seed=0, growth=8.0, n_epochs=6, **kw) -> Path:
    """Baseline: std grows ×``growth`` within the first epoch, near-zero level rises."""
    return write_run(
        run_dir, seed=seed, n_epochs=n_epochs,
        scales=lambda e: INIT_SCALE * (1 if e == 0 else growth) * (1 + 0.05 * e),
        near_zero=lambda e: _nz(INIT_NZ * (1 + 0.3 * min(e, 3))),
        metrics=_acc_metrics(seed), **kw)


def wc_run(run_dir, seed=0, a=0.8, b=0.5, n_epochs=6, **kw) -> Path:
    """WC satisfying both claims: max |w| ≤ 0.9·aπ/2 always; near-zero falls, most in conv1."""
    bound = a * np.pi / 2
    top = 0.9 * bound / Z.max()  # largest std keeping the max quantile at 0.9·bound
    drop = np.array([0.6, 0.4, 0.2, 0.1])  # relative reduction per layer, early layers most
    return write_run(
        run_dir, method="arctan", a=a, b=b, seed=seed, n_epochs=n_epochs,
        scales=lambda e: np.minimum(INIT_SCALE * (1 + 0.5 * e), top),
        near_zero=lambda e: _nz(INIT_NZ * (1 - drop * min(e, 3) / 3)),
        metrics=_acc_metrics(seed, 0.02), **kw)


def violating_wc_run(run_dir, seed=0, a=0.8, b=0.5, n_epochs=6) -> Path:
    """A "WC" run violating both claims: |w| reaches 1.2·aπ/2, near-zero grows past the baseline's."""
    bound = a * np.pi / 2
    return write_run(
        run_dir, method="arctan", a=a, b=b, seed=seed, n_epochs=n_epochs,
        scales=lambda e: INIT_SCALE if e == 0 else np.full(len(LAYERS), 1.2 * bound / Z.max()),
        near_zero=lambda e: _nz(INIT_NZ * (1 + 0.6 * min(e, 3))),
        metrics=_acc_metrics(seed))


def learnable_run(run_dir, seed=0, n_epochs=6, config=None) -> Path:
    """Learnable fine WC from a=0.5, b=1.0: conv a drifts ±0.1, the linear layer's a and b grow."""
    a_slope = np.array([0.02, -0.01, 0.015, 0.8])
    b_slope = np.array([0.1, 0.05, -0.05, 1.5])
    return write_run(
        run_dir, method="arctan", a=0.5, b=1.0, learnable="fine", seed=seed, n_epochs=n_epochs,
        scales=lambda e: INIT_SCALE * (1 + 0.2 * e),
        near_zero=lambda e: _nz(INIT_NZ * 0.8),
        a_traj=lambda e: 0.5 + a_slope * e, b_traj=lambda e: 1.0 + b_slope * e,
        metrics=_acc_metrics(seed, 0.01), config=config)


def seed_group(root, kind: str, seeds=(0, 1, 2), **kw) -> list[Path]:
    """Several seeds of one configuration under ``root`` (kind: "baseline", "wc", "learnable")."""
    make = {"baseline": baseline_run, "wc": wc_run, "learnable": learnable_run}[kind]
    return [make(Path(root) / f"{kind}-s{s}", seed=s, **kw) for s in seeds]
