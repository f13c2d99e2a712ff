"""Runs as TensorBoard event files, so a team can keep its viewer (``wcviz export --format
tensorboard --out DIR``; needs the optional ``tensorboard`` package).

Each run goes to ``DIR/<run_id>/``, its id being its path below the runs root exported
(:func:`wcviz.record.reader.run_key`): ``reproduce-digits/digits-cnn_baseline_s0`` beside a
top-level ``digits-cnn_baseline_s0`` are two folders, two runs in TensorBoard. Per record (TensorBoard step = the recorded optimizer
step, or the record's index where a run did not record steps):

* ``weight_histogram/<layer>``: the recorded counts over the layer's real bin edges (the
  buckets' upper limits are the edges; a leading empty bucket ends at the first edge, so the
  lower edge is kept too),
* ``a/<layer>``, ``b/<layer>`` (companded layers), ``near_zero_fraction/<threshold>/<layer>``,
  ``weight_std/<layer>``, ``update_ratio/<layer>``, ``grad_l2/<layer>`` as scalars, and the
  recorded gradient quantiles as ``grad_quantile/<q>/<layer>`` (``grad_v_quantile`` likewise),

* every metric under the name it was recorded with (``val/acc``, ``train_loss``), and the
  record's epoch as ``wcviz/epoch``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wcviz.errors import WcvizError
from wcviz.extras import require
from wcviz.record.metrics import metric_variables

#: Per-layer scalar variables written as ``<variable>/<layer>`` (optional ones when recorded).
LAYER_SCALARS = ("a", "b", "weight_std", "update_ratio", "grad_l2")
#: Per-layer quantile variables written as ``<variable>/<q>/<layer>`` (when recorded).
LAYER_QUANTILES = ("grad_quantile", "grad_v_quantile")


def _writer_class():
    require("tensorboard", needed_by="--format tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter


def steps_of(ds) -> np.ndarray:
    """TensorBoard steps of a run's records: its optimizer steps when all were recorded and
    increase, else the record index."""
    steps = np.asarray(ds["step"].values, dtype=np.int64)
    if len(steps) and (steps >= 0).all() and (np.diff(steps) > 0).all():
        return steps
    return np.arange(len(steps))


def write_runs(datasets, out, histogram: bool = True) -> list[Path]:
    """Write each opened run to ``out/<run_id>/`` as event files (nested where its id is a path
    below a root); returns the folders."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WcvizError(f"cannot write TensorBoard events to {out}: it is a file; pass "
                         f"--out a folder")
    writer_class = _writer_class()
    folders = []
    for ds in datasets:
        folder = out / str(ds.attrs["run_id"])
        try:
            writer = writer_class(log_dir=str(folder))
        except OSError as err:
            raise WcvizError(f"cannot write {folder}: {err.strerror or err}; pass --out a "
                             f"writable folder") from None
        with writer:
            write_run(writer, ds, histogram)
        folders.append(folder)
    return folders


def write_run(writer, ds, histogram: bool = True) -> None:
    """Write one opened run through a ``SummaryWriter``."""
    ds = ds.load()
    layers = [str(x) for x in ds.layer.values]
    edges = ds["bin_edges"].values
    metrics = metric_variables(ds)
    for i, step in enumerate(steps_of(ds)):
        step = int(step)
        rec = ds.isel(epoch=i)
        writer.add_scalar("wcviz/epoch", float(rec.epoch), step)
        for name, var in metrics.items():
            _scalar(writer, name, rec[var].values, step)
        for j, layer in enumerate(layers):
            for var in (v for v in LAYER_SCALARS if v in rec):
                _scalar(writer, f"{var}/{layer}", rec[var].values[j], step)
            for var in (v for v in LAYER_QUANTILES if v in rec):
                for q, value in zip(ds["quantile"].values, rec[var].values[j]):
                    _scalar(writer, f"{var}/{float(q):g}/{layer}", value, step)
            for t, value in zip(ds.threshold.values, rec.near_zero_fraction.values[j]):
                _scalar(writer, f"near_zero_fraction/{t}/{layer}", value, step)
            if histogram:
                _histogram(writer, f"weight_histogram/{layer}", rec, j, edges[j], step)


def _scalar(writer, tag: str, value, step: int) -> None:
    value = float(value)
    if np.isfinite(value):
        writer.add_scalar(tag, value, step)


def _histogram(writer, tag: str, rec, j: int, edges: np.ndarray, step: int) -> None:
    """The recorded counts over their real edges, with min/max/sum from the record's stats."""
    counts = np.asarray(rec.weight_histogram.values[j], dtype=np.float64)
    if not np.isfinite(counts).all():
        return
    n = float(rec.layer_numel.values[j])
    mean, std = float(rec.weight_mean.values[j]), float(rec.weight_std.values[j])
    quantiles = rec.weight_quantile.values[j]
    lo = float(quantiles[0]) if rec["quantile"].values[0] == 0 else float(edges[0])
    hi = float(quantiles[-1]) if rec["quantile"].values[-1] == 1 else float(edges[-1])
    writer.add_histogram_raw(
        tag, min=min(lo, float(edges[0])), max=max(hi, float(edges[-1])), num=n,
        sum=mean * n, sum_squares=(std ** 2 + mean ** 2) * n,
        bucket_limits=[float(e) for e in edges], bucket_counts=[0.0, *counts.tolist()],
        global_step=step)
