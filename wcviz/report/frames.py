"""The columns of the wide quantile frames that the charts (:mod:`wcviz.report.charts`) draw,
shared by the dashboard (:mod:`wcviz.app.data`) and the one-file report (:mod:`wcviz.report.html`).

A wide quantile frame has one row per run, layer and epoch and one column per recorded quantile
level (:func:`quantile_column`); :func:`band_columns` says which column holds which level, band,
median and seed spread, so the charts decode nothing out of column names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.record.metrics import metric_variables, split_kind
from wcviz.report import analysis
from wcviz.report.bands import band_label, band_pairs, median_quantile


def quantile_column(q: float) -> str:
    """Column name of quantile level ``q`` in the wide frames, e.g. ``0.0668 -> "p6_68"``.

    No dots in the names: Vega-Lite reads a dot in a field name as nesting.
    """
    return f"p{float(q) * 100:.6g}".replace(".", "_")


def column_quantile(column: str) -> float:
    """The quantile level of a :func:`quantile_column` name (``"p6_68" -> 0.0668``)."""
    # Rounded: 84.13 / 100 is 0.8413000000000001 in floats; levels are stored to 6 digits.
    return round(float(column[1:].replace("_", ".")) / 100, 12)


def _is_quantile_column(column) -> bool:
    rest = str(column)[1:].replace("_", "", 1)
    return str(column).startswith("p") and rest.replace("e-", "", 1).isdigit()


def quantile_columns(wide: pd.DataFrame) -> dict[float, str]:
    """Quantile level -> column of a wide quantile frame, in level order.

    The levels are those the stores recorded (their ``quantile`` coordinate), so a store made
    with ``Recorder(quantiles=(0, .05, .25, .5, .75, .95, 1))`` has its own seven columns.
    """
    cols = {column_quantile(c): c for c in wide.columns if _is_quantile_column(c)}
    return dict(sorted(cols.items()))


class Band(NamedTuple):
    """One percentile band of a wide quantile frame: its label, the columns of its edges and
    the level of its lower edge (``("15.87–84.13 %", "p15_87", "p84_13", 0.1587)``)."""

    label: str
    low: str
    high: str
    level: float


def bands(wide: pd.DataFrame) -> list[Band]:
    """Nested percentile bands of a wide frame, widest first: the symmetric pairs of its
    recorded levels (:func:`wcviz.report.bands.band_pairs`)."""
    cols = quantile_columns(wide)
    return [Band(band_label(lo, hi), cols[lo], cols[hi], lo) for lo, hi in band_pairs(list(cols))]


def median_column(wide: pd.DataFrame) -> str | None:
    """The median's column of a wide quantile frame, or None when 0.5 was not recorded."""
    q = median_quantile(list(quantile_columns(wide)))
    return None if q is None else quantile_columns(wide)[q]


#: Prefix of the spread column :func:`fold_quantiles` adds beside a folded quantile column
#: (``sd_p50`` beside ``p50``): its standard deviation over seeds.
SPREAD_PREFIX = "sd_"


@dataclass(frozen=True)
class BandColumns:
    """What the columns of a wide quantile frame hold, named for the charts
    (:mod:`wcviz.report.charts`), which draw a frame by these names and decode none.

    Attributes:
        levels: quantile level -> its column, in level order.
        bands: the nested bands (:func:`bands`), widest first.
        median: the median's column, or None.
        spreads: ``(column, its std over seeds)`` column pairs of a seed-folded frame
            (:func:`fold_quantiles`), empty for single runs.
    """

    levels: dict[float, str]
    bands: tuple[Band, ...]
    median: str | None
    spreads: tuple[tuple[str, str], ...] = ()


def band_columns(wide: pd.DataFrame) -> BandColumns:
    """The :class:`BandColumns` of a wide quantile frame (:func:`distributions`,
    :func:`all_layers`, :func:`fold_quantiles`): what a chart of it needs besides the frame."""
    spreads = tuple((str(c).removeprefix(SPREAD_PREFIX), str(c)) for c in wide.columns
                    if str(c).startswith(SPREAD_PREFIX))
    return BandColumns(quantile_columns(wide), tuple(bands(wide)), median_column(wide), spreads)


# ---------------------------------------------------------------- frames of one run
# Built from one opened run (an xarray Dataset); the dashboard caches them per committed state.


def _values(da) -> np.ndarray:
    return np.asarray(da.values, dtype=float)


def _bound(ds, layer: str) -> np.ndarray:
    """sup |w| of ``layer`` per epoch (aπ/2 for WC), NaN where the method has no bound."""
    if not analysis.bound_symbol(ds):  # no bound: skip the psi (torch) import entirely
        return np.full(ds.sizes["epoch"], np.nan)
    bound = analysis.bound_over_epochs(ds, layer)
    return np.where(np.isfinite(bound), bound, np.nan)


def _frame(parts: dict, dims: list[str], run_id: str) -> pd.DataFrame:
    """One row per element of ``dims`` (in that order, the last varying fastest): the
    arrays of ``parts`` (DataArrays, or ``(dims, values)`` pairs broadcast along the others)
    as columns after ``run`` and the coordinates, by :meth:`xarray.Dataset.to_dataframe`."""
    # Measured against np.repeat/np.tile labels (benchmarks/dash_load.py, 50 layers × 200
    # epochs): 1-6 ms a run more with the arrays in memory, lost in the noise of reading them
    # (0.02-0.18 s a run); each frame is built once per committed state (the caches above).
    table = xr.Dataset(parts)
    # Labels (layer, threshold) as numpy strings, not the store's objects: reset_index turned
    # object labels into pandas strings one by one, 12 of a near-zero frame's 17 ms.
    text = {d: table[d].values.astype(str) for d in dims if table[d].dtype == object}
    frame = table.assign_coords(text).to_dataframe(dim_order=dims).reset_index()
    frame.insert(0, "run", run_id)
    return frame


def _floats(da: xr.DataArray) -> xr.DataArray:
    """``da`` as float64 without its non-index coordinates (which would become columns)."""
    return da.reset_coords(drop=True).astype(float)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The frames stacked, or an empty frame with ``columns`` when there are none."""
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def all_quantiles(ds: xr.Dataset, run_id: str, variable: str = "weight_quantile",
                  depth=None) -> pd.DataFrame:
    """Wide quantile frame of every layer of one run: ``run, layer, depth, epoch, p…[, bound,
    bound_symbol]`` (``bound``: the method's bound on |w| per epoch, NaN where unbounded).
    ``depth``: each layer's index in the model when ``ds`` holds a selection of its layers
    (default: their order in ``ds``)."""
    names = [str(x) for x in ds["layer"].values]
    levels = _floats(ds[variable]).to_dataset(dim="quantile")  # one variable per level
    depth = np.arange(len(names)) if depth is None else np.asarray(depth)
    parts = {"depth": ("layer", depth),
             **{quantile_column(q): levels[q] for q in levels.data_vars}}
    if variable == "weight_quantile":
        parts["bound"] = (("epoch", "layer"), np.stack([_bound(ds, n) for n in names], axis=1))
    frame = _frame(parts, ["epoch", "layer"], run_id)
    frame = frame[["run", "layer", "depth", "epoch", *[c for c in parts if c != "depth"]]]
    if variable == "weight_quantile":
        frame = frame.assign(bound_symbol=analysis.bound_symbol(ds))
    return frame


def near_zero(ds: xr.Dataset, run_id: str) -> pd.DataFrame:
    """Near-zero fractions of one run, long: ``run, epoch, layer, depth, numel, threshold,
    fraction``."""
    n_layer = ds.sizes["layer"]
    numel = (_values(ds["layer_numel"]) if "layer_numel" in ds.variables
             else np.full(n_layer, np.nan))
    parts = {"depth": ("layer", np.arange(n_layer)), "numel": ("layer", numel),
             "fraction": _floats(ds["near_zero_fraction"])}
    frame = _frame(parts, ["epoch", "layer", "threshold"], run_id)
    return frame[["run", "epoch", "layer", "depth", "numel", "threshold", "fraction"]]


def near_zero_overall(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-network fraction per run, epoch and threshold: layers weighted by their size
    (:func:`wcviz.record.measures.network_fraction`: NaN where a layer's fraction is missing, not the
    fraction of the other layers over all layers' size)."""
    weight = frame["numel"].fillna(1.0)
    tmp = frame.assign(weighted=frame["fraction"] * weight, weight=weight,
                       missing=frame["fraction"].isna())
    keys = [c for c in ("run", "name", "color", "epoch", "threshold") if c in frame.columns]
    out = tmp.groupby(keys, as_index=False, sort=False)[["weighted", "weight", "missing"]].sum()
    out["fraction"] = (out["weighted"] / out["weight"]).where(out["missing"] == 0)
    out["layer"] = "all layers"
    return out[[*keys[:-2], "epoch", "layer", "threshold", "fraction"]]


def compander(ds: xr.Dataset, run_id: str) -> pd.DataFrame:
    """a and b per layer over epochs of one run, long: ``run, epoch, layer, depth, a, b`` (NaN
    rows dropped)."""
    parts = {"depth": ("layer", np.arange(ds.sizes["layer"])),
             "a": _floats(ds["a"]), "b": _floats(ds["b"])}
    frame = _frame(parts, ["epoch", "layer"], run_id)[["run", "epoch", "layer", "depth", "a", "b"]]
    return frame.dropna(subset=["a", "b"], how="all").reset_index(drop=True)


def metrics(ds: xr.Dataset, run_id: str) -> pd.DataFrame:
    """Per-epoch metrics of one run, long: ``run, epoch, metric, split (train/val/test/""),
    kind, value``."""
    epochs = _values(ds["epoch"])
    parts = []
    for name, var in metric_variables(ds).items():  # every metric, by the user's name
        split, kind = split_kind(name)
        parts.append(pd.DataFrame({"run": run_id, "epoch": epochs, "metric": name, "split": split,
                                   "kind": kind, "value": _values(ds[var])}))
    frame = _concat(parts, ["run", "epoch", "metric", "split", "kind", "value"])
    return frame.dropna(subset=["value"]).reset_index(drop=True)
