"""Numbers from run stores: run metadata, tidy tables, seed-aggregated accuracy, the paper's claims.

Everything here reads :func:`wcviz.open_run` Datasets (schema in DESIGN.md, "Run store") and
returns plain Python, numpy or pandas objects; :mod:`wcviz.report.plots` draws them and
:mod:`wcviz.cli.figures` prints them.

* Run metadata: :func:`method_of`, :func:`is_baseline`, :func:`is_learnable`,
  :func:`method_label`, :func:`run_label`, :func:`check_layer`, :func:`select_threshold`,
  :func:`bound_over_epochs`, :func:`network_near_zero`.
* Tables: :func:`runs_table` (one row per run), :func:`layer_table` (one row per run × layer),
  :func:`accuracy_table` (the paper's Tables II–VII: mean ± std over seeds) and
  :func:`format_table` (Markdown, LaTeX, CSV).
* Claims: :func:`compare_runs` checks the paper's Sec. IV-D claims on a baseline and a WC run.

Accuracy is reported in percent. Stores may hold accuracies as fractions (0–1) or percent
(0–100); :func:`as_percent` converts fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.errors import WcvizError
from wcviz.record.measures import DEFAULT_KIND_ORDER, Threshold, network_fraction
from wcviz.record.metrics import BEST_ACC, best_val_index, resolve
from wcviz.record.reader import open_run, open_runs

#: Display names of the stored ``method`` (a :data:`wcviz.reparam.psi.ALL_METHODS` name), in the
#: paper's table order. Model and dataset display names come with the run (its ``model_label``
#: and ``dataset_label`` attributes, from the training registries), else the stored name.
METHOD_NAMES = {"none": "baseline", "arctan": "WC", "powerprop": "PP", "weightnorm": "WN",
                "arsinh": "arsinh", "erf": "erf"}
#: Relative tolerance of the bound check: float32 arctan of a huge v rounds to exactly
#: (π/2)·a in single precision, a hair above the float64 bound.
BOUND_RTOL = 1e-6



# --------------------------------------------------------------------------- run metadata


def as_dataset(run) -> xr.Dataset:
    """A run as an xarray Dataset: Datasets pass through, paths are opened with ``open_run``.

    Opened runs are loaded into memory at once: a run store holds kilobytes to a few
    megabytes, and one read beats the many small reads a figure would make lazily.
    """
    if isinstance(run, xr.Dataset):
        return run
    return open_run(run).load()


def as_datasets(runs) -> list[xr.Dataset]:
    """:func:`as_dataset` of each run (a single run is accepted too)."""
    if isinstance(runs, (xr.Dataset, str, Path)):
        runs = [runs]
    return [as_dataset(r) for r in runs]


def run_attr(ds: xr.Dataset, name: str, default=None):
    """A store attribute, with ``default`` for missing, None or NaN values."""
    value = ds.attrs.get(name, default)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def method_of(ds: xr.Dataset) -> str:
    """The run's companding method; ``"none"`` for a plain (baseline) network."""
    method = run_attr(ds, "method", "none")
    return "none" if str(method).lower() in ("", "none", "baseline") else str(method)


def is_baseline(ds: xr.Dataset) -> bool:
    """True for a run without reparametrization."""
    return method_of(ds) == "none"


def learnable_attr(value) -> bool:
    """Whether a store's ``learnable`` attribute says a, b were trained ("fine"/"coarse")."""
    return value in ("fine", "coarse")


def is_learnable(ds: xr.Dataset) -> bool:
    """True when the run's a, b were trained ("fine" or "coarse")."""
    return learnable_attr(run_attr(ds, "learnable"))


def run_kind(ds: xr.Dataset) -> str:
    """What decides a run's colour: its method, ``+learnable`` when a, b were trained
    (``"none"``, ``"arctan"``, ``"arctan+learnable"``, ``"powerprop"``, ...)."""
    return method_of(ds) + ("+learnable" if is_learnable(ds) else "")


def method_label(ds: xr.Dataset) -> str:
    """Short method name as in the paper's tables: baseline, WC, learnable WC, PP, ...

    Learnable a, b: "learnable WC" (per layer, the paper's "fine"), "learnable WC (coarse)".
    """
    label = METHOD_NAMES.get(method_of(ds), method_of(ds))
    if is_learnable(ds):
        mode = run_attr(ds, "learnable")
        label = f"learnable {label}" + (f" ({mode})" if mode != "fine" else "")
    return label


def _fmt(x) -> str:
    return f"{float(x):g}"


def run_label(ds: xr.Dataset, with_seed: bool = False) -> str:
    """The one display name of a run (figures, tables, CLI, dashboard): ``"baseline"``,
    ``"WC a=0.8, b=0.5"``, ``"learnable WC (init a=0.5, b=1)"``; ``with_seed`` adds ", seed 3"."""
    label = method_label(ds)
    a, b = run_attr(ds, "a"), run_attr(ds, "b")
    if not is_baseline(ds) and a is not None and b is not None:
        label += f" a={_fmt(a)}, b={_fmt(b)}" if not is_learnable(ds) else f" (init a={_fmt(a)}, b={_fmt(b)})"
    if with_seed and run_attr(ds, "seed") is not None:
        label += f", seed {run_attr(ds, 'seed')}"
    return label


def unique_labels(runs: Sequence[xr.Dataset]) -> list[str]:
    """Legend labels that tell the runs apart (seed, then run id added where needed)."""
    labels = [run_label(ds) for ds in runs]
    if len(set(labels)) < len(labels):
        labels = [run_label(ds, with_seed=True) for ds in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} [{run_attr(ds, 'run_id', i)}]" for i, (lab, ds) in enumerate(zip(labels, runs))]
    return labels


def layer_names(ds: xr.Dataset) -> list[str]:
    """The run's recorded layers, in model order."""
    return [str(x) for x in ds["layer"].values]


def check_layer(ds: xr.Dataset, layer: str | None) -> str:
    """``layer`` if the run has it (``None``: the first layer), else a WcvizError listing them."""
    names = layer_names(ds)
    if not names:
        raise WcvizError(f"run {run_attr(ds, 'run_id', '?')} records no layers")
    require_records(ds)
    if layer is None:
        return names[0]
    if layer not in names:
        raise WcvizError(f"no layer {layer!r} in run {run_attr(ds, 'run_id', '?')}; "
                         f"its layers are: {', '.join(names)}")
    return layer


def require_records(ds: xr.Dataset) -> None:
    """Raise a WcvizError when the run has no committed record yet (nothing to draw)."""
    if ds.sizes.get("epoch", 0) == 0:
        raise WcvizError(f"run {run_attr(ds, 'run_id', '?')} has no records yet; "
                         "wait for its first record (epoch 0 is written before training)")


def bound_symbol(ds: xr.Dataset) -> str:
    """How the run's bound on |w| is written: "aπ/2" (arctan), "a" (erf), "" (unbounded)."""
    return {"arctan": "aπ/2", "erf": "a"}.get(method_of(ds), "")


def thresholds(ds: xr.Dataset) -> list[str]:
    """The run's near-zero threshold labels (e.g. ``"abs=0.001"``, ``"rel=0.1"``)."""
    return [str(x) for x in ds["threshold"].values]


def select_threshold(ds: xr.Dataset, threshold: str | float | None = None) -> str:
    """The stored threshold label meant by ``threshold``.

    Args:
        ds: a run.
        threshold: a stored label ("rel=0.1"), a label whose value is written differently
            ("abs=1e-3"), a bare number (an absolute threshold), or ``None`` for the default:
            the largest threshold of the first kind recorded in
            :data:`wcviz.record.measures.DEFAULT_KIND_ORDER` (scale-free std first; the largest counts
            enough weights to be stable).

    Returns:
        A label of ``ds.threshold``.

    Raises:
        WcvizError: when the run has no such threshold (the message lists the ones it has).
    """
    require_records(ds)
    labels = thresholds(ds)
    kinds = [str(k) for k in ds["threshold_kind"].values]
    values = np.asarray(ds["threshold_value"].values, dtype=float)
    if not labels:
        raise WcvizError(f"run {run_attr(ds, 'run_id', '?')} records no near-zero thresholds")
    if threshold is None:
        for kind in DEFAULT_KIND_ORDER:
            idx = [i for i, k in enumerate(kinds) if k == kind]
            if idx:
                return labels[max(idx, key=lambda i: values[i])]
        return labels[0]
    if str(threshold) in labels:
        return str(threshold)
    kind, _, number = str(threshold).rpartition("=")
    kind = kind or "abs"
    try:
        target = float(number)
    except ValueError:
        target = math.nan
    for label, k, v in zip(labels, kinds, values):
        if k == kind and math.isclose(v, target, rel_tol=1e-9):
            return label
    raise WcvizError(f"no near-zero threshold {threshold!r} in run {run_attr(ds, 'run_id', '?')}; "
                     f"it records: {', '.join(labels)}")


def threshold_text(ds: xr.Dataset, label: str) -> str:
    """The measure of a threshold label as a formula: ``|w| < 0.001``, ``|w| < 0.1·σ₀``,
    ``|w| < 0.5·std(w)``, ``|w| < 0.1·median|w|`` (definitions: :mod:`wcviz.record.measures`)."""
    i = thresholds(ds).index(label)
    kind = str(ds["threshold_kind"].values[i])
    value = float(ds["threshold_value"].values[i])
    return Threshold(label, kind, value).text


def epochs(ds: xr.Dataset) -> np.ndarray:
    """The run's epoch coordinate as floats."""
    return np.asarray(ds["epoch"].values, dtype=float)


def scale_over_epochs(ds: xr.Dataset, name: str, layer: str) -> np.ndarray:
    """a or b of ``layer`` per epoch: the recorded value, else the run's fixed attribute."""
    values = np.asarray(ds[name].sel(layer=layer).values, dtype=float) if name in ds else None
    return _or_fixed(ds, name, np.full(ds.sizes["epoch"], np.nan) if values is None else values)


def _or_fixed(ds: xr.Dataset, name: str, values: np.ndarray) -> np.ndarray:
    """``values`` (a or b per epoch) with the run's fixed attribute where not recorded (NaN)."""
    fixed = run_attr(ds, name)
    return values if fixed is None else np.where(np.isfinite(values), values, float(fixed))


def bound_over_epochs(ds: xr.Dataset, layer: str) -> np.ndarray:
    """sup |Ψ| of ``layer`` per epoch (aπ/2 for WC); ``inf`` for unbounded methods and baselines."""
    if not _scaled_method(ds):
        return np.full(ds.sizes["epoch"], np.inf)
    return bound_of_scales(ds, scale_over_epochs(ds, "a", layer), scale_over_epochs(ds, "b", layer))


def _scaled_method(ds: xr.Dataset):
    """The run's a·f(v/b) method (:mod:`wcviz.reparam.psi`), or None."""
    from wcviz.reparam.psi import METHODS  # here, not at the top: wcviz.reparam.psi imports torch

    method = METHODS.get(method_of(ds))
    return method if method is not None and method.scaled else None


def bound_of_scales(ds: xr.Dataset, a, b) -> np.ndarray:
    """sup |Ψ| per epoch of the run ``ds`` describes (only its attributes are read: method,
    fixed a and b) given its per-epoch ``a`` and ``b`` (NaN where not recorded, the fixed
    attributes stand in); ``inf`` for unbounded methods and baselines.

    :func:`bound_over_epochs` without a Dataset of the arrays: the dashboard reads a and b of
    one layer of many runs straight from their stores.
    """
    method = _scaled_method(ds)
    a = _or_fixed(ds, "a", np.asarray(a, dtype=float))
    if method is None:
        return np.full(len(a), np.inf)
    b = _or_fixed(ds, "b", np.asarray(b, dtype=float))
    return np.array([method.bound(a=ai, b=bi) if np.isfinite(ai) else np.inf for ai, bi in zip(a, b)])


def quantile_curve(ds: xr.Dataset, layer: str, q: float, var: str = "weight_quantile") -> np.ndarray:
    """The recorded q-quantile of ``layer`` per epoch, selected by label (exact to 1e-9)."""
    da = ds[var].sel(layer=layer)
    stored = np.asarray(ds["quantile"].values, dtype=float)
    hit = np.flatnonzero(np.isclose(stored, q, rtol=0, atol=1e-9))
    if hit.size == 0:
        raise WcvizError(f"run {run_attr(ds, 'run_id', '?')} has no quantile {q}; "
                         f"it records: {', '.join(f'{x:g}' for x in stored)}")
    return np.asarray(da.sel(quantile=stored[hit[0]]).values, dtype=float)


def absmax_over_epochs(ds: xr.Dataset, layer: str) -> np.ndarray:
    """max |w| of ``layer`` per epoch (``weight_absmax``, else from the 0 and 1 quantiles)."""
    if "weight_absmax" in ds:
        values = np.asarray(ds["weight_absmax"].sel(layer=layer).values, dtype=float)
        if np.isfinite(values).all():
            return values
    return np.maximum(np.abs(quantile_curve(ds, layer, 0.0)), np.abs(quantile_curve(ds, layer, 1.0)))


def near_zero(ds: xr.Dataset, threshold: str, layer: str | None = None,
              how: str = "weights") -> np.ndarray:
    """Near-zero fraction (0–1) per epoch: of one layer, or of the whole network (``None``).

    The whole-network fraction is :func:`wcviz.record.measures.network_fraction`: ``how="weights"``
    weights each layer by its number of weights (the fraction of all recorded weights),
    ``how="layers"`` is the mean over layers (each layer counts once).
    """
    da = ds["near_zero_fraction"].sel(threshold=threshold)
    if layer is not None:
        return np.asarray(da.sel(layer=layer).values, dtype=float)
    frac = np.asarray(da.transpose("epoch", "layer").values, dtype=float)
    return network_fraction(frac, ds["layer_numel"].values, how)


def as_percent(values) -> np.ndarray:
    """Accuracies in percent: values that are all within [0, 1] are read as fractions."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return values * 100.0 if finite.size and finite.max() <= 1.0 else values


# --------------------------------------------------------------------------- tidy tables


def metric_values(ds: xr.Dataset, name: str) -> np.ndarray:
    """A metric per epoch as floats, by the name the user recorded it under (``"val/acc"``
    too); a schema name such as ``"val_acc"`` also finds the same metric logged by a framework
    as ``"val/acc"`` or ``"eval_accuracy"`` (:func:`wcviz.record.metrics.resolve`). All NaN when the
    run did not record it."""
    var = resolve(ds, name)
    if var is None:
        return np.full(ds.sizes["epoch"], np.nan)
    return np.asarray(ds[var].values, dtype=float)


def best_val_test_acc(ds: xr.Dataset) -> tuple[float, float]:
    """(epoch, test accuracy) of the best-validation epoch: argmax of ``val_acc`` (first on ties).

    The paper evaluates the model best on validation on the test set; with a test accuracy
    recorded every epoch, that is the test accuracy at the argmax of the validation accuracy
    over trained epochs (:func:`best_val_index`, the rule ``wcviz.training.loop`` records as
    :data:`BEST_ACC`). Returns (nan, nan) when no validation accuracy was recorded.
    """
    test = metric_values(ds, "test_acc")
    i = best_val_index(epochs(ds), metric_values(ds, "val_acc"), test)
    if i is None:
        return math.nan, math.nan
    return float(epochs(ds)[i]), float(test[i])


def last_finite(values: np.ndarray) -> float:
    """The last finite value of a per-epoch array (NaN when there is none)."""
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


def run_row(ds: xr.Dataset) -> dict:
    """One tidy row describing a run: identity, recipe and final metrics (accuracy in %)."""
    best_epoch, best_test = best_val_test_acc(ds)
    return {
        "run_id": run_attr(ds, "run_id", ""),
        "path": run_attr(ds, "path", ""),
        "dataset": run_attr(ds, "dataset", ""),
        "model": run_attr(ds, "model", ""),
        "model_label": run_attr(ds, "model_label", run_attr(ds, "model", "")),
        "dataset_label": run_attr(ds, "dataset_label", run_attr(ds, "dataset", "")),
        "method": method_of(ds),
        "method_label": method_label(ds),
        "run_label": run_label(ds),
        "a": run_attr(ds, "a", math.nan) if not is_baseline(ds) else math.nan,
        "b": run_attr(ds, "b", math.nan) if not is_baseline(ds) else math.nan,
        "learnable": run_attr(ds, "learnable", "") or "",
        "seed": run_attr(ds, "seed", math.nan),
        "preset": run_attr(ds, "preset", "") or "",
        "recipe": recipe_key(ds, with_method=False),
        "status": run_attr(ds, "status", ""),
        "n_epochs": int(ds.sizes["epoch"]),
        "last_epoch": float(epochs(ds)[-1]) if ds.sizes["epoch"] else math.nan,
        "best_val_epoch": best_epoch,
        BEST_ACC: float(as_percent([best_test])[0]) if np.isfinite(best_test) else math.nan,
        "last_test_acc": last_finite(as_percent(metric_values(ds, "test_acc"))),
        "last_val_acc": last_finite(as_percent(metric_values(ds, "val_acc"))),
        "last_train_loss": last_finite(metric_values(ds, "train_loss")),
    }


def runs_table(runs) -> pd.DataFrame:
    """One row per run (see :func:`run_row`); ``runs`` is a runs root, paths or Datasets."""
    return pd.DataFrame([run_row(ds) for ds in collect_runs(runs)])


def collect_runs(runs) -> list[xr.Dataset]:
    """Datasets from a runs root (a directory of run dirs), a list of runs, or one run."""
    if isinstance(runs, (str, Path)) and _is_root(Path(runs)):
        found = open_runs(runs)
        if not found:
            raise WcvizError(f"no run stores under {runs}; pass a runs root such as ./runs")
        return list(found)
    return as_datasets(runs)


def _is_root(path: Path) -> bool:
    """A directory that is neither a run dir nor a record.zarr: a root of runs."""
    return path.is_dir() and path.suffix != ".zarr" and not (path / "record.zarr").exists()


def layer_table(runs, epoch: int = -1) -> pd.DataFrame:
    """One row per (run, layer) at one epoch index (default: the last): range, spread, near-zero."""
    rows = []
    for ds in collect_runs(runs):
        at = ds.isel(epoch=epoch)
        for depth, layer in enumerate(layer_names(ds)):
            row = {"run_id": run_attr(ds, "run_id", ""), "method_label": method_label(ds),
                   "epoch": float(at["epoch"]), "depth": depth, "layer": layer,
                   "layer_kind": str(at["layer_kind"].sel(layer=layer).values),
                   "numel": int(at["layer_numel"].sel(layer=layer).values),
                   "w_min": float(quantile_curve(ds, layer, 0.0)[epoch]),
                   "w_max": float(quantile_curve(ds, layer, 1.0)[epoch]),
                   "w_std": float(at["weight_std"].sel(layer=layer))}
            for label in thresholds(ds):
                row[f"near_zero[{label}]"] = float(at["near_zero_fraction"].sel(layer=layer, threshold=label))
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- accuracy tables

GROUP_KEYS = ["dataset", "model", "recipe", "method", "learnable", "a", "b"]


def accuracy_table(runs, finished_only: bool = True) -> pd.DataFrame:
    """Mean ± std over seeds per (dataset, model, method[, a, b]): the paper's Tables II–VII.

    Args:
        runs: a runs root, run paths, Datasets, or a :func:`runs_table` DataFrame.
        finished_only: ignore runs whose status is not "finished" (their last epoch is not final).

    Returns:
        One row per group with ``n`` (seeds), ``best_mean``/``best_std`` (test accuracy of the
        best-validation epoch, %), ``last_mean``/``last_std`` (last-epoch test accuracy, %),
        ``delta_best``/``delta_last`` (mean minus the same dataset+model baseline's mean,
        percentage points), ``ci_low``/``ci_high`` (95 % CI of the best-val gap, paired by
        seed), ``ci_excludes_0`` and ``note`` (:func:`significance_note`). Std is
        the sample standard deviation (ddof=1); NaN for one seed.
    """
    df = runs if isinstance(runs, pd.DataFrame) else runs_table(runs)
    if finished_only and len(df):
        df = df[df["status"] == "finished"]
    if not len(df):
        raise WcvizError("no finished runs to tabulate; train some (wcviz demo) or pass "
                         "--all to include unfinished runs")
    df = df.assign(learnable=df["learnable"].fillna(""), a=df["a"].fillna(-1.0), b=df["b"].fillna(-1.0))
    rows = [_group_row(key, group) for key, group in df.groupby(GROUP_KEYS, sort=False, dropna=False)]
    table = pd.DataFrame(rows)
    # The paper's row order: per dataset and model, the baseline first, then the methods.
    rank = table["method"].map({m: i for i, m in enumerate(METHOD_NAMES)}).fillna(len(METHOD_NAMES))
    table = (table.assign(_rank=rank).sort_values(["dataset", "model", "recipe", "_rank", "learnable", "a", "b"],
                                                 kind="stable").drop(columns="_rank").reset_index(drop=True))
    table[["a", "b"]] = table[["a", "b"]].where(table[["a", "b"]] >= 0)
    return _add_baseline_delta(table)


def check_one_run_per_seed(label: str, seeds, paths) -> None:
    """Refuse a configuration with a seed twice (its runs found in two folders of one root).

    Unseeded runs (None/NaN) are not compared. Raises:
        WcvizError: naming the seed and both runs' folders.
    """
    seen: dict[int, str] = {}
    for seed, path in zip(seeds, paths):
        if seed is None or (isinstance(seed, float) and math.isnan(seed)):
            continue
        if int(seed) in seen:
            raise WcvizError(
                f"seed {int(seed)} of {label} is twice under the root ({seen[int(seed)]}, "
                f"{path}): the same configuration in two folders (e.g. wcviz demo's runs beside "
                "a wcviz reproduce study); pass one of the folders, or move one copy out")
        seen[int(seed)] = path


def _group_row(key: tuple, group: pd.DataFrame) -> dict:
    row = dict(zip(GROUP_KEYS, key))
    row["method_label"] = group["method_label"].iloc[0]
    row["run_label"] = group["run_label"].iloc[0]
    check_one_run_per_seed(row["run_label"], group["seed"].tolist(),
                           group.get("path", group["run_id"]).tolist())
    for name in ("model", "dataset"):  # a table from before the labels: the stored names
        row[f"{name}_label"] = group[f"{name}_label"].iloc[0] if f"{name}_label" in group else row[name]
    row["preset"] = group["preset"].iloc[0]
    row["n"] = len(group)
    # Per-seed values, for the gap's paired CI (runs of one configuration differ by seed).
    row["best_by_seed"] = dict(zip(group["seed"].tolist(), group[BEST_ACC].tolist()))
    for name, column in (("best", BEST_ACC), ("last", "last_test_acc")):
        values = group[column].to_numpy(dtype=float)
        row[f"{name}_mean"] = float(np.mean(values)) if len(values) else math.nan
        row[f"{name}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return row


def _add_baseline_delta(table: pd.DataFrame) -> pd.DataFrame:
    deltas = {"delta_best": [], "delta_last": [], "ci_low": [], "ci_high": [],
              "ci_excludes_0": [], "note": []}
    for _, row in table.iterrows():
        base = table[(table["dataset"] == row["dataset"]) & (table["model"] == row["model"])
                     & (table["recipe"] == row["recipe"]) & (table["method"] == "none")]
        if row["method"] == "none" or base.empty:
            for key in ("delta_best", "delta_last", "ci_low", "ci_high"):
                deltas[key].append(math.nan)
            deltas["ci_excludes_0"].append(False)
            deltas["note"].append("baseline" if row["method"] == "none" else "no baseline")
            continue
        base = base.iloc[0]
        deltas["delta_best"].append(row["best_mean"] - base["best_mean"])
        deltas["delta_last"].append(row["last_mean"] - base["last_mean"])
        gap = gap_interval(row["best_by_seed"], base["best_by_seed"])
        deltas["ci_low"].append(gap.ci_t[0])
        deltas["ci_high"].append(gap.ci_t[1])
        deltas["ci_excludes_0"].append(gap.verdict in ("HOLDS", "FAILS"))
        deltas["note"].append(significance_note(gap))
    return table.assign(**deltas)


def gap_interval(method_by_seed: dict, base_by_seed: dict):
    """The best-val accuracy gap to the baseline, paired by seed: a
    :class:`wcviz.report.claims.PairedResult` (paired-t CI, bootstrap CI, verdict of claim (iii))."""
    from wcviz.report import claims  # here: wcviz.report.claims builds on this module

    seeds = sorted(set(method_by_seed) & set(base_by_seed), key=str)
    return claims.paired("(iii)", "test acc at best val (%)", "higher", seeds,
                         [base_by_seed[s] for s in seeds], [method_by_seed[s] for s in seeds])


def significance_note(gap) -> str:
    """How much the best-val gap to the baseline means: the paired seeds and the 95 % CI of
    the paired difference; "CI excludes 0" only with ≥ 3 seeds and t and bootstrap agreeing
    (the rule of :func:`wcviz.report.claims.verdict`)."""
    if gap.n == 0:
        return "no seed shared with the baseline"
    if gap.n < 2:
        return f"n={gap.n} paired seed; no CI"
    ci = f"Δ 95% CI [{gap.ci_t[0]:+.2f}, {gap.ci_t[1]:+.2f}]"
    if gap.verdict in ("HOLDS", "FAILS"):
        return f"n={gap.n} paired seeds; {ci} excludes 0"
    return f"n={gap.n} paired seeds; {ci}; no verdict ({gap.why})"


#: What the mark on a gap means (printed under the Markdown table).
GAP_FOOTNOTE = ("\\* the paired 95 % CI of the gap (same seeds, paired t and bootstrap) "
                "excludes 0; needs ≥ 3 seeds")


def _pm(mean: float, std: float, tex: bool = False) -> str:
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} $\\pm$ {std:.2f}" if tex else f"{mean:.2f} ± {std:.2f}"


def _delta(x: float, marked: bool = False) -> str:
    """A gap in points; ``*`` when its paired 95 % CI excludes 0."""
    return (f"{x:+.2f}" + ("*" if marked else "")) if np.isfinite(x) else ""


def _row_name(row) -> str:
    """The model, then the runs' display name (:func:`run_label`) unless they are baselines."""
    model = str(row["model_label"])
    return model if row["method"] == "none" else f"{model} + {row['run_label']}"


def display_rows(table: pd.DataFrame, tex: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and string cells of an accuracy table, as the paper shows it."""
    header = ["dataset", "model", "seeds", "best-val test acc (%)", "last-epoch test acc (%)",
              "Δ best vs baseline (pp)", "note"]
    # A model trained with several recipes (e.g. Adam and SGD): its rows name their preset.
    recipes = table.groupby(["dataset", "model"])["recipe"].transform("nunique")
    names = [_row_name(r) + (f" [{r['preset'] or 'other recipe'}]" if k > 1 else "")
             for (_, r), k in zip(table.iterrows(), recipes)]
    cells = [[str(r["dataset_label"]), name, str(int(r["n"])),
              _pm(r["best_mean"], r["best_std"], tex), _pm(r["last_mean"], r["last_std"], tex),
              _delta(r["delta_best"], bool(r["ci_excludes_0"])), str(r["note"])]
             for (_, r), name in zip(table.iterrows(), names)]
    return header, cells


def format_table(table: pd.DataFrame, fmt: str = "md") -> str:
    """Render an :func:`accuracy_table` as Markdown (``md``), LaTeX (``tex``) or CSV (``csv``).

    CSV keeps the numbers (mean and std in separate columns) for further processing; Markdown
    and LaTeX show "mean ± std" as the paper does.
    """
    if fmt == "csv":
        return table.drop(columns=["best_by_seed", "recipe"]).to_csv(index=False, float_format="%.4f")
    if fmt == "md":
        header, cells = display_rows(table)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines + ["", GAP_FOOTNOTE]) + "\n"
    if fmt == "tex":
        header, cells = display_rows(table, tex=True)
        esc = _tex_escape
        lines = [r"\begin{tabular}{ll" + "r" * 4 + "l}", r"\toprule",
                 " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(c if "$" in c else esc(c) for c in row) + r" \\" for row in cells]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
    raise WcvizError(f"unknown table format {fmt!r}; choose md, tex or csv")


def _tex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                       ("#", r"\#"), ("Δ", r"$\Delta$"), ("±", r"$\pm$"), ("≥", r"$\geq$")):
        text = text.replace(char, repl)
    return text


# --------------------------------------------------------------------------- the paper's claims


@dataclass
class LayerComparison:
    """One layer of a baseline/WC comparison (weights at the last epoch, fractions 0–1)."""

    layer: str
    kind: str
    base_range: tuple[float, float]
    wc_range: tuple[float, float]
    wc_bound: float  # sup |Ψ| at the last epoch (aπ/2 for WC)
    wc_max_ratio: float  # max over epochs of |w|max / bound (< 1: inside the bound)
    base_near_zero: float
    wc_near_zero: float


@dataclass
class Comparison:
    """The paper's two Sec. IV-D claims decided on one baseline and one WC run."""

    baseline: str
    wc: str
    threshold: str
    threshold_text: str
    bound_symbol: str = "aπ/2"  # how the WC run's bound is written ("a" for erf)
    layers: list[LayerComparison] = field(default_factory=list)
    bounded: bool = True  # False: the WC run's method has no bound (arsinh, powerprop)
    bound_holds: bool | None = None  # claim (i); None when not applicable
    base_growth: float = math.nan  # baseline max|w| at epoch 1 / at epoch 0
    base_near_zero: float = math.nan  # whole network, last epoch
    wc_near_zero: float = math.nan
    fewer_near_zero: bool = False  # claim (ii)
    most_in_early_layers: bool | None = None  # the reduction is larger in the first half

    def report(self, verdicts: bool = True) -> str:
        """The comparison as readable text: a per-layer table and (``verdicts``) the two
        one-pair verdicts; :mod:`wcviz.report.claims` decides claims over seeds instead."""
        head = (f"{'layer':<24} {'baseline w range':>22} {'WC w range':>22} {self.bound_symbol:>7} "
                f"{'max|w|/bound':>12} {'near-0 base':>11} {'near-0 WC':>9}")
        lines = [f"baseline: {self.baseline}", f"WC:       {self.wc}",
                 f"near-zero: {self.threshold_text} ({self.threshold}), last epoch", "", head]
        for r in self.layers:
            lines.append(f"{r.layer:<24} {_range(r.base_range):>22} {_range(r.wc_range):>22} "
                         f"{r.wc_bound:>7.3g} {r.wc_max_ratio:>12.3f} "
                         f"{100 * r.base_near_zero:>10.1f}% {100 * r.wc_near_zero:>8.1f}%")
        if verdicts:
            lines += ["", self._claim_bound(), self._claim_near_zero()]
        return "\n".join(lines)

    def _claim_bound(self) -> str:
        if not self.bounded:
            return "(i) |w| < aπ/2 from the first epoch: not applicable (the WC run's method is unbounded)"
        verdict = "HOLDS" if self.bound_holds else "FAILS"
        growth = (f"; baseline max|w| grew ×{self.base_growth:.2f} in the first epoch"
                  if np.isfinite(self.base_growth) else "")
        return f"(i) WC keeps |w| < {self.bound_symbol} in every layer and epoch: {verdict}{growth}"

    def _claim_near_zero(self) -> str:
        verdict = "HOLDS" if self.fewer_near_zero else "FAILS"
        early = {True: "largest reduction in the early layers",
                 False: "reduction not largest in the early layers", None: ""}[self.most_in_early_layers]
        early = early if self.fewer_near_zero else ""  # no reduction to locate
        return (f"(ii) WC has fewer near-zero weights: {verdict} ({100 * self.wc_near_zero:.2f}% vs "
                f"{100 * self.base_near_zero:.2f}% of all weights" + (f"; {early})" if early else ")"))


def _range(r: tuple[float, float]) -> str:
    return f"[{r[0]:+.3g}, {r[1]:+.3g}]"


def task_of(ds: xr.Dataset) -> str:
    """The run's "dataset/model" ("?" for a missing attribute)."""
    return f"{run_attr(ds, 'dataset', '?')}/{run_attr(ds, 'model', '?')}"


def check_same_task(base, comp) -> None:
    """Refuse baseline and companded runs (Datasets) of different datasets or models.

    Raises:
        WcvizError: naming each group's dataset/model; a verdict across them means nothing.
    """
    tasks = {task_of(ds) for ds in [*base, *comp]}
    if len(tasks) > 1:
        names = (f"baseline: {', '.join(sorted({task_of(ds) for ds in base}))}; "
                 f"WC: {', '.join(sorted({task_of(ds) for ds in comp}))}")
        raise WcvizError(f"the runs are not of the same dataset and model ({names}); "
                         "compare runs of one dataset and model")


def compare_runs(baseline, wc, threshold: str | float | None = None) -> Comparison:
    """Decide the paper's claims on a baseline run and a companded run.

    (i) The WC run keeps every layer's max |w| below its bound (aπ/2, with the recorded a of
    learnable runs) at every recorded epoch, within :data:`BOUND_RTOL`.
    (ii) At the last epoch, the fraction of all weights below the near-zero threshold is lower
    for WC than for the baseline; also reported: whether the per-layer reduction is larger in
    the first half of the layers than in the second.

    Args:
        baseline: the plain run (path or Dataset).
        wc: the companded run.
        threshold: near-zero threshold (see :func:`select_threshold`); default: the largest
            relative one.

    Raises:
        WcvizError: when the first run is companded, the second is not, or they share no layer.
    """
    base, comp = as_dataset(baseline), as_dataset(wc)
    if not is_baseline(base):
        raise WcvizError(f"the first run must be a baseline, but it uses method {method_of(base)!r}; "
                         "pass BASELINE_RUN first, then WC_RUN")
    if is_baseline(comp):
        raise WcvizError("the second run is not companded (method none); pass a WC run second")
    check_same_task([base], [comp])
    common = [n for n in layer_names(base) if n in set(layer_names(comp))]
    if not common:
        raise WcvizError(f"the runs share no layer; baseline has {', '.join(layer_names(base))}; "
                         f"WC has {', '.join(layer_names(comp))}")
    label = select_threshold(base, threshold)
    label_wc = select_threshold(comp, label)
    result = Comparison(run_label(base) + f" [{run_attr(base, 'run_id', '')}]",
                        run_label(comp) + f" [{run_attr(comp, 'run_id', '')}]",
                        label, threshold_text(base, label))
    result.bound_symbol = bound_symbol(comp) or "bound"
    result.layers = [_compare_layer(base, comp, name, label, label_wc) for name in common]
    _decide(result, base, comp, common, label, label_wc)
    return result


def _compare_layer(base, comp, name, label, label_wc) -> LayerComparison:
    def rng(ds):
        return (float(quantile_curve(ds, name, 0.0)[-1]), float(quantile_curve(ds, name, 1.0)[-1]))

    bound = bound_over_epochs(comp, name)
    ratio = absmax_over_epochs(comp, name) / bound
    return LayerComparison(
        name, str(comp["layer_kind"].sel(layer=name).values), rng(base), rng(comp),
        float(bound[-1]), float(np.nanmax(ratio)),
        float(near_zero(base, label, name)[-1]), float(near_zero(comp, label_wc, name)[-1]))


def _decide(result: Comparison, base, comp, common, label, label_wc) -> None:
    ratios = [r.wc_max_ratio for r in result.layers]
    result.bounded = all(np.isfinite(r.wc_bound) for r in result.layers)
    if result.bounded:
        result.bound_holds = bool(max(ratios) < 1.0 + BOUND_RTOL)
    if base.sizes["epoch"] > 1:
        growth = [absmax_over_epochs(base, n)[1] / absmax_over_epochs(base, n)[0] for n in common]
        result.base_growth = float(np.nanmax(growth))
    sub_b, sub_c = base.sel(layer=common), comp.sel(layer=common)
    result.base_near_zero = float(near_zero(sub_b, label)[-1])
    result.wc_near_zero = float(near_zero(sub_c, label_wc)[-1])
    result.fewer_near_zero = bool(result.wc_near_zero < result.base_near_zero)
    if len(common) >= 2:
        drop = np.array([r.base_near_zero - r.wc_near_zero for r in result.layers])
        half = len(drop) // 2
        result.most_in_early_layers = bool(drop[:half].mean() > drop[half:].mean())


#: Config fields that name the method rather than the training recipe.
METHOD_FIELDS = ("method", "a", "b", "alpha", "learnable", "run_method")


def recipe_key(ds: xr.Dataset, with_method: bool = True) -> str:
    """The run's stored config without its seed (JSON, keys sorted); "" when none is stored.

    Two runs with the same key differ only in the seed: e.g. the same model under Adam and
    under SGD, or trained for other epochs, get different keys. ``with_method=False`` also
    drops :data:`METHOD_FIELDS` and the preset, so a baseline and a companded run of the same
    recipe share the key (how a companded group finds its baseline).
    """
    import json

    text = run_attr(ds, "config")
    try:
        config = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        return ""
    dropped = ("seed",) if with_method else ("seed", "preset", *METHOD_FIELDS)
    for name in dropped:
        config.pop(name, None)
    return json.dumps(config, sort_keys=True)


def iter_groups(runs: Iterable[xr.Dataset]) -> dict[str, list[xr.Dataset]]:
    """Runs grouped by everything but the seed (key -> runs), for seed aggregation: dataset,
    model, method label, and the stored config without the seed (:func:`recipe_key`)."""
    by_label: dict[str, dict[str, list[xr.Dataset]]] = {}
    for ds in runs:
        label = f"{run_attr(ds, 'dataset', '')}/{run_attr(ds, 'model', '')}/{run_label(ds)}"
        by_label.setdefault(label, {}).setdefault(recipe_key(ds), []).append(ds)
    groups: dict[str, list[xr.Dataset]] = {}
    for label, recipes in by_label.items():
        for i, members in enumerate(recipes.values()):
            # A label with several recipes (e.g. Adam and SGD) is told apart by a number.
            groups[label + (f" #{i + 1}" if len(recipes) > 1 else "")] = members
    return groups
