"""Numbers from run stores: run metadata, measures per epoch, tidy tables.

Everything here reads :func:`wcviz.open_run` Datasets (schema in DESIGN.md, "Run store") and
returns plain Python, numpy or pandas objects; :mod:`wcviz.report.plots` draws them and
:mod:`wcviz.cli.figures` prints them. Built on this module: :mod:`wcviz.report.seeds` (seed
groups, folding over seeds), :mod:`wcviz.report.claims` (the paper's claims, decided over
seeds) and :mod:`wcviz.report.tables` (the paper's accuracy tables).

* Run metadata: :func:`method_of`, :func:`is_baseline`, :func:`is_learnable`,
  :func:`method_label`, :func:`run_label`, :func:`check_layer`, :func:`select_threshold`,
  :func:`bound_over_epochs`, :func:`near_zero`, :func:`recipe_key`.
* Tables: :func:`runs_table` (one row per run) and :func:`layer_table` (one row per run ×
  layer).

Accuracy is reported in percent. Stores may hold accuracies as fractions (0–1) or percent
(0–100); :func:`as_percent` converts fractions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.errors import WcvizError
from wcviz.record.measures import DEFAULT_KIND_ORDER, Threshold, network_fraction
from wcviz.record.metrics import BEST_ACC, best_val_index, resolve
from wcviz.record.reader import open_run, open_runs
from wcviz.record.runfolder import STORE_NAME

#: Display names of the stored ``method`` (a :data:`wcviz.reparam.psi.ALL_METHODS` name), in the
#: paper's table order. Model and dataset display names come with the run (its ``model_label``
#: and ``dataset_label`` attributes, from the training registries), else the stored name.
METHOD_NAMES = {"none": "baseline", "arctan": "WC", "powerprop": "PP", "weightnorm": "WN",
                "arsinh": "arsinh", "erf": "erf"}



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
            :data:`wcviz.record.measures.DEFAULT_KIND_ORDER` (tail-safe rel first, as claim (ii)'s
            verdict; the largest counts enough weights to be stable).

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
    return Threshold(label, *threshold_kind(ds, label)).text


def threshold_kind(ds: xr.Dataset, label: str) -> tuple[str, float]:
    """(kind, value) of a stored threshold label, e.g. ``("rel", 0.5)``."""
    i = thresholds(ds).index(label)
    return str(ds["threshold_kind"].values[i]), float(ds["threshold_value"].values[i])


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
    """sup |Ψ|(a, b) of the run's a·f(v/b) method (:mod:`wcviz.reparam.bounds`: no torch), or None."""
    from wcviz.reparam.bounds import SCALED_BOUNDS

    return SCALED_BOUNDS.get(method_of(ds))


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
    return np.array([method(a=ai, b=bi) if np.isfinite(ai) else np.inf for ai, bi in zip(a, b)])


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
    """A directory that is neither a run dir nor a run store: a root of runs."""
    return path.is_dir() and path.suffix != ".zarr" and not (path / STORE_NAME).exists()


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


#: Config fields that name the method rather than the training recipe.
METHOD_FIELDS = ("method", "a", "b", "alpha", "learnable", "run_method")


def recipe_config(ds: xr.Dataset, with_method: bool = True) -> dict | None:
    """The run's stored config without its seed (and, ``with_method=False``, without
    :data:`METHOD_FIELDS` and the preset); None when no config is stored."""
    import json

    text = run_attr(ds, "config")
    try:
        config = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        return None
    dropped = ("seed",) if with_method else ("seed", "preset", *METHOD_FIELDS)
    for name in dropped:
        config.pop(name, None)
    return config


def recipe_key(ds: xr.Dataset, with_method: bool = True) -> str:
    """The run's stored config without its seed (JSON, keys sorted); "" when none is stored.

    Two runs with the same key differ only in the seed: e.g. the same model under Adam and
    under SGD, or trained for other epochs, get different keys. ``with_method=False`` also
    drops :data:`METHOD_FIELDS` and the preset, so a baseline and a companded run of the same
    recipe share the key (how a companded group finds its baseline).
    """
    import json

    config = recipe_config(ds, with_method)
    return "" if config is None else json.dumps(config, sort_keys=True)


def recipe_difference(ds: xr.Dataset, other: xr.Dataset) -> list[str]:
    """The config keys (beyond the method's own fields and the seed) in which two runs'
    recipes differ, sorted; ``["config"]`` when only one of them stores a config."""
    mine, theirs = recipe_config(ds, False), recipe_config(other, False)
    if mine is None or theirs is None:
        return [] if mine is theirs else ["config"]
    return sorted(k for k in {*mine, *theirs} if mine.get(k, "<unset>") != theirs.get(k, "<unset>"))
