"""Grid searches over the compander's (a, b): a summary row per run, one cell per (a, b).

The paper picks a and b by a grid search (the runs behind its Table I). Each run of such a sweep
is summarised by three numbers, and the runs of one (a, b) (seeds) are folded into a cell:

* ``best_val_test_acc``: test accuracy at the best-validation epoch, in %
  (:func:`wcviz.report.analysis.best_val_test_acc`, as ``wcviz table`` reports it);
* ``near_zero``: the fraction of all weights near zero at the last record, at the figures'
  default threshold (:func:`wcviz.report.analysis.select_threshold`, e.g. std=0.5), named in
  ``near_zero_measure``;
* ``absmax_over_bound``: max over layers of max|w| / (aπ/2) at the last record: how much of the
  range WC allows the weights use (1 = at the bound; NaN for unbounded methods).

The dashboard's Sweeps page and ``wcviz figures --sweep`` (:mod:`wcviz.report.plots.sweep`) both use
these functions. No torch or matplotlib import here; the bound's formula (torch-free lookups in
:mod:`wcviz.reparam.psi`) is read only for bounded runs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.report import analysis
from wcviz.errors import WcvizError
from wcviz.report.seeds import DDOF

#: The summaries of a run, in the order pages and figures show them, with their display titles.
SWEEP_METRICS: dict[str, str] = {
    "best_val_test_acc": "test acc at best val (%)",
    "near_zero": "fraction near zero",
    "absmax_over_bound": "max|w| / (aπ/2)",
}


def absmax_over_bound(ds: xr.Dataset) -> float:
    """max over layers of max|w| / bound at the run's last record (NaN when unbounded)."""
    if not analysis.bound_symbol(ds) or not ds.sizes.get("epoch", 0):
        return math.nan
    ratios = []
    for layer in analysis.layer_names(ds):
        bound = analysis.bound_over_epochs(ds, layer)[-1]
        if np.isfinite(bound) and bound > 0:
            ratios.append(analysis.last_finite(analysis.absmax_over_epochs(ds, layer)) / bound)
    return max(ratios) if ratios else math.nan


def run_summary(ds: xr.Dataset) -> dict:
    """One run of a sweep: identity (a, b, seed, ...) and the :data:`SWEEP_METRICS`."""
    _, acc = analysis.best_val_test_acc(ds)
    near, measure = math.nan, ""
    if ds.sizes.get("epoch", 0) and ds.sizes.get("threshold", 0):
        label = analysis.select_threshold(ds)
        near = analysis.last_finite(analysis.near_zero(ds, label))
        measure = analysis.threshold_text(ds, label)
    fixed = not analysis.is_baseline(ds)
    return {
        "run_id": analysis.run_attr(ds, "run_id", ""),
        "dataset": analysis.run_attr(ds, "dataset", ""),
        "model": analysis.run_attr(ds, "model", ""),
        "method": analysis.method_of(ds),
        "learnable": bool(analysis.is_learnable(ds)),
        "a": float(analysis.run_attr(ds, "a", math.nan)) if fixed else math.nan,
        "b": float(analysis.run_attr(ds, "b", math.nan)) if fixed else math.nan,
        "seed": analysis.run_attr(ds, "seed", math.nan),
        "best_val_test_acc": float(analysis.as_percent([acc])[0]) if np.isfinite(acc) else math.nan,
        "near_zero": near,
        "near_zero_measure": measure,  # its formula, e.g. "|w| < 0.5·std(w)"
        "absmax_over_bound": absmax_over_bound(ds),
    }


def is_grid_run(row) -> bool:
    """A run that belongs on the (a, b) grid: a compander run with fixed, finite a and b."""
    return (row["method"] != "none" and not row["learnable"]
            and np.isfinite(row["a"]) and np.isfinite(row["b"]))


def sweep_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """The (a, b) cells of a sweep: mean, std and count over seeds of each summary, and runs.

    Args:
        rows: :func:`run_summary` rows (other runs, e.g. baselines, are left out here).

    Returns:
        One row per (method, a, b): ``<metric>``, ``<metric>_std``, ``<metric>_n`` for each of
        :data:`SWEEP_METRICS`, and ``runs`` (the run ids, comma-separated).
    """
    grid = rows[rows.apply(is_grid_run, axis=1)] if len(rows) else rows
    columns = ["method", "a", "b", "runs"] + [f"{m}{s}" for m in SWEEP_METRICS
                                              for s in ("", "_std", "_n")]
    if not len(grid):
        return pd.DataFrame(columns=columns)
    groups = grid.groupby(["method", "a", "b"], sort=True)
    out = groups[list(SWEEP_METRICS)].mean()
    for metric in SWEEP_METRICS:
        out[f"{metric}_std"] = groups[metric].std(ddof=DDOF)  # the seeds' rule: NaN for one seed
        out[f"{metric}_n"] = groups[metric].count()
    out["runs"] = groups["run_id"].agg(lambda ids: ", ".join(map(str, ids)))
    return out.reset_index()[columns]


def baseline_values(rows: pd.DataFrame) -> dict[str, float]:
    """Each summary's mean over the baseline runs (method "none"); NaN without baselines."""
    base = rows[rows["method"] == "none"] if len(rows) else rows
    return {m: float(base[m].mean()) if len(base) else math.nan for m in SWEEP_METRICS}


def sweep_table(runs) -> pd.DataFrame:
    """:func:`run_summary` of each run (a runs root, run paths or Datasets)."""
    return pd.DataFrame([run_summary(ds) for ds in analysis.collect_runs(runs)])


def check_one_setup(rows: pd.DataFrame) -> None:
    """Refuse rows that hold more than one grid: one heatmap cell per (a, b) needs one dataset,
    model and method (two methods at the same a, b would overwrite each other's cell; two
    models' accuracies would be averaged into one).

    Raises:
        WcvizError: naming the configurations found and the fix.
    """
    if not len(rows):
        return
    grid = rows[rows.apply(is_grid_run, axis=1)]
    setups = sorted(set(zip(rows["dataset"].astype(str), rows["model"].astype(str))))
    methods = sorted(set(grid["method"].astype(str)))
    if len(setups) > 1 or len(methods) > 1:
        found = ", ".join(f"{d}/{m}" for d, m in setups) + "; methods " + ", ".join(methods)
        raise WcvizError(f"a sweep figure shows one configuration (dataset, model, method), "
                         f"but these runs hold several ({found}); pass the runs of one sweep")
