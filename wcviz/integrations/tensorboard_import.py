"""TensorBoard log dirs as run stores: ``wcviz import tensorboard LOGDIR --runs ROOT`` (the
``[tensorboard]`` extra; read with TensorBoard's own ``EventAccumulator``).

Every folder of ``LOGDIR`` that holds event files (``events.out.tfevents.*``) becomes one run
store, ``ROOT/<its path below LOGDIR>`` (``ROOT/<LOGDIR's name>`` for event files at the top):

* each histogram tag (``add_histogram`` of a layer's weights) is one layer, named by its tag;
* one record per step at which the histograms were written; the record's epoch is the run's
  ``epoch`` scalar at that step where it logged one, else the step itself;
* quantiles, the histogram over fixed per-layer edges (:data:`BINS` bins from the layer's
  smallest to largest weight over all steps) and the near-zero fractions are **approximate**:
  TensorBoard keeps only bucket counts, so each bucket's weights are taken as spread evenly
  inside it (its edges clamped to the recorded min and max) and the quantiles and fractions
  are read off that piecewise-linear distribution. Mean, std, max|w| and ‖w‖₂ are exact (from
  TensorBoard's sum and sum of squares). The store says so in its root attribute
  ``approximate`` (``"tensorboard buckets"``); the ``med`` thresholds and the participation
  ratio, which buckets cannot give, are left NaN;
* every scalar tag is a metric under its own name (``loss/train``), at the records' steps
  (NaN where a scalar was not written at that step).

A run folder whose store already exists under ``ROOT`` is skipped, never overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from wcviz.errors import WcvizError
from wcviz.extras import require
from wcviz.record.measures import DEFAULT_THRESHOLDS, parse_threshold
from wcviz.record.runfolder import STORE_NAME
from wcviz.record.stats import QUANTILES

#: Histogram bins of an imported layer (odd, as a recorded one: one bin centred on the middle).
BINS = 81

#: The ``approximate`` root attribute of an imported store.
APPROXIMATE = "tensorboard buckets"

#: Near-zero thresholds an import computes: the recorder's defaults but the ``med`` ones (the
#: median |w| is not in TensorBoard's buckets).
THRESHOLDS = tuple(t for t in DEFAULT_THRESHOLDS if parse_threshold(t).kind != "med")

#: Scalar tags read as the record's epoch.
EPOCH_TAGS = ("epoch", "wcviz/epoch")


def run_folders(logdir: Path) -> list[Path]:
    """Folders of ``logdir`` (itself included) that hold TensorBoard event files, sorted."""
    found = {p.parent for p in Path(logdir).rglob("events.out.tfevents.*") if p.is_file()}
    return sorted(found)


def bucket_cdf(hist) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative count at each bucket edge of a TensorBoard ``HistogramValue``.

    Bucket i holds the weights in (limit[i-1], limit[i]]; the first starts at the recorded min
    and every edge is clamped to [min, max], so the piecewise-linear CDF through these points
    spreads each bucket's count evenly inside it. Returns (edges, cumulative counts), both
    non-decreasing, the last count the bucket total.
    """
    lo, hi = float(hist.min), float(hist.max)
    limits = np.clip(np.asarray(hist.bucket_limit, dtype=float), lo, hi)
    counts = np.asarray(hist.bucket, dtype=float)
    edges = np.concatenate([[lo], limits])
    edges = np.maximum.accumulate(edges)
    return edges, np.concatenate([[0.0], np.cumsum(counts)])


def quantiles_of(edges: np.ndarray, cum: np.ndarray, levels) -> np.ndarray:
    """Quantiles at ``levels`` of the piecewise-linear CDF (:func:`bucket_cdf`), interpolated
    inside the bucket that holds each level's count (level 0: the min, 1: the max)."""
    total = cum[-1]
    out = np.empty(len(levels))
    for i, q in enumerate(levels):
        target = q * total
        k = int(np.searchsorted(cum[1:], target, side="left"))  # first bucket reaching it
        k = min(k, len(cum) - 2)
        inside = cum[k + 1] - cum[k]
        frac = 0.0 if inside <= 0 else (target - cum[k]) / inside
        out[i] = edges[k] + np.clip(frac, 0.0, 1.0) * (edges[k + 1] - edges[k])
    return out


def cdf_at(edges: np.ndarray, cum: np.ndarray, x) -> np.ndarray:
    """Count of weights ≤ ``x`` under the piecewise-linear CDF (0 below min, all above max)."""
    x = np.asarray(x, dtype=float)
    # np.interp needs increasing xp: a bucket squeezed to one point (clamped) jumps there
    keep = np.concatenate([np.diff(edges) > 0, [True]])
    return np.interp(x, edges[keep], cum[keep], left=0.0, right=cum[-1])


def layer_stats(hist, bin_edges: np.ndarray, std_init: float) -> dict[str, np.ndarray]:
    """One layer's record (schema variables, no layer axis) from a ``HistogramValue``."""
    edges, cum = bucket_cdf(hist)
    n = float(hist.num) or float(cum[-1])
    mean = float(hist.sum) / n if n else np.nan
    std = float(np.sqrt(max(float(hist.sum_squares) / n - mean * mean, 0.0))) if n else np.nan
    near = []
    for label in THRESHOLDS:
        t = parse_threshold(label)
        cut = t.value * {"abs": 1.0, "rel": std_init, "std": std}[t.kind]
        inside = cdf_at(edges, cum, cut) - cdf_at(edges, cum, -cut)
        near.append(inside / cum[-1] if cum[-1] else np.nan)
    return {"weight_quantile": quantiles_of(edges, cum, QUANTILES),
            "weight_histogram": np.diff(cdf_at(edges, cum, bin_edges)) * (n / cum[-1] if cum[-1] else 1),
            "near_zero_fraction": np.asarray(near), "weight_mean": mean, "weight_std": std,
            "weight_absmax": max(abs(float(hist.min)), abs(float(hist.max))),
            "weight_l2": float(np.sqrt(float(hist.sum_squares))), "weight_nonfinite": 0.0}


def _accumulator(folder: Path):
    require("tensorboard", needed_by="wcviz import tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        HISTOGRAMS, SCALARS, EventAccumulator)

    acc = EventAccumulator(str(folder), size_guidance={HISTOGRAMS: 0, SCALARS: 0})  # keep all
    acc.Reload()
    return acc


def import_run(folder: Path, run_dir: Path, logdir: Path) -> int:
    """Write the run store of one TensorBoard run folder; returns its record count.

    Raises:
        WcvizError: the folder holds no histogram.
    """
    from wcviz.record.store import RunStore

    acc = _accumulator(folder)
    tags = acc.Tags()
    layers = list(tags.get("histograms", []))
    if not layers:
        raise WcvizError(f"{folder} holds no histogram (add_histogram of the weights); nothing "
                         "to import as weight distributions")
    events = {tag: {e.step: e.histogram_value for e in acc.Histograms(tag)} for tag in layers}
    steps = sorted(set().union(*events.values()))
    scalars = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in tags.get("scalars", [])}
    epoch_tag = next((t for t in EPOCH_TAGS if t in scalars), None)
    first = [events[tag][min(events[tag])] for tag in layers]
    std_init = [_std(h) for h in first]
    bin_edges = np.stack([_layer_edges(events[tag].values()) for tag in layers])
    store = RunStore.create(
        run_dir, layers=layers, layer_kinds=["tensorboard"] * len(layers),
        layer_numel=[int(h.num) for h in first], bin_edges=bin_edges, thresholds=THRESHOLDS,
        weight_std_init=std_init, config={"imported_from": str(folder)},
        # method "tensorboard": the label says where the run came from, not "baseline"
        attrs={"approximate": APPROXIMATE, "method": "tensorboard", "model": folder.name,
               "dataset": None, "imported_from": str(folder.relative_to(logdir))})
    last = -np.inf
    for step in steps:
        epoch = scalars[epoch_tag].get(step, np.nan) if epoch_tag else float(step)
        if not np.isfinite(epoch) or epoch <= last:
            epoch = float(step) if float(step) > last else last + 1e-6  # keep epochs increasing
        rows = [layer_stats(events[tag][step], bin_edges[j], std_init[j]) if step in events[tag]
                else None for j, tag in enumerate(layers)]
        store.append(epoch, int(step), _stack(rows, len(THRESHOLDS), BINS),
                     {tag: v[step] for tag, v in scalars.items() if step in v and tag != epoch_tag})
        last = epoch
    store.finish("finished")
    return len(steps)


def _std(hist) -> float:
    n = float(hist.num)
    mean = float(hist.sum) / n if n else 0.0
    return float(np.sqrt(max(float(hist.sum_squares) / n - mean * mean, 0.0))) if n else np.nan


def _layer_edges(hists) -> np.ndarray:
    """:data:`BINS` equal bins from the layer's smallest to its largest weight over all steps."""
    lo = min(float(h.min) for h in hists)
    hi = max(float(h.max) for h in hists)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5  # a constant layer: one unit around its value
    return np.linspace(lo, hi, BINS + 1)


def _stack(rows: list, n_thresholds: int, n_bins: int) -> dict[str, np.ndarray]:
    """Per-layer records stacked along the layer axis; a layer absent at a step is NaN."""
    blank = {"weight_quantile": np.full(len(QUANTILES), np.nan),
             "weight_histogram": np.full(n_bins, np.nan),
             "near_zero_fraction": np.full(n_thresholds, np.nan)}
    names = ("weight_quantile", "weight_histogram", "near_zero_fraction", "weight_mean",
             "weight_std", "weight_absmax", "weight_l2", "weight_nonfinite")
    return {name: np.stack([np.asarray(r[name] if r else blank.get(name, np.nan), dtype=float)
                            for r in rows]) for name in names}


def import_logdir(logdir, root) -> tuple[list[Path], list[Path]]:
    """Import every run folder of ``logdir`` into ``root``; returns (written, skipped) run dirs.

    Raises:
        WcvizError: ``logdir`` is missing or holds no event file.
    """
    logdir, root = Path(logdir), Path(root)
    require("tensorboard", needed_by="wcviz import tensorboard")
    if not logdir.is_dir():
        raise WcvizError(f"{logdir} is not a folder; pass a TensorBoard log dir (the --logdir "
                         "of tensorboard)")
    folders = run_folders(logdir)
    if not folders:
        raise WcvizError(f"no TensorBoard event files (events.out.tfevents.*) under {logdir}")
    written, skipped = [], []
    for folder in folders:
        rel = folder.relative_to(logdir)
        run_dir = root / (rel if rel.parts else Path(logdir.resolve().name))
        if (run_dir / STORE_NAME).exists():
            skipped.append(run_dir)
            continue
        try:
            import_run(folder, run_dir, logdir)
        except WcvizError as err:
            print(f"skipping {folder}: {err}", file=sys.stderr)
            continue
        written.append(run_dir)
    return written, skipped
