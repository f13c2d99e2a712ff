"""Seeds, folded in one place: runs grouped by everything but the seed, values averaged over seeds.

Runs of one configuration that differ only by their seed are one *seed group*
(:func:`iter_groups`). Figures, the dashboard, the accuracy table and the claims all fold a
group the same way, here:

* the value of a group is the **mean** over its seeds;
* its spread is the **sample standard deviation** over seeds (ddof = :data:`DDOF`; NaN for one
  seed: one run says nothing about the spread);
* ``seeds`` counts the runs that have a value there (a run that stopped early counts only up
  to its last record).

The rule has one function per container: :func:`mean_std` (one value per seed),
:func:`fold` (a DataArray with a ``seed`` dimension, built by :func:`stack`) and
:func:`fold_frame` (a tidy pandas frame with a ``run`` column).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.errors import WcvizError
from wcviz.report import analysis as an

#: The dimension runs are stacked on (:func:`stack`) and folded over (:func:`fold`).
SEED = "seed"
#: Delta degrees of freedom of the spread over seeds: the sample standard deviation.
DDOF = 1


# --------------------------------------------------------------------------- seed groups


def study_of(run_id) -> str:
    """The study a run belongs to: the top sub-folder of the runs root that holds it (the first
    part of its id, see :func:`wcviz.record.reader.run_key`), ``""`` for a run directly under
    the root. ``wcviz demo``'s runs and a ``wcviz reproduce digits`` study beside them are two
    studies: they are grouped, tabulated and compared apart, each named. Deeper folders of
    one study (``study/wc/seed0``, ``study/wc/seed1``) stay one study, so their seeds fold."""
    parts = str(run_id or "").split("/")
    return parts[0] if len(parts) > 1 else ""


def iter_groups(runs: Iterable[xr.Dataset]) -> dict[str, list[xr.Dataset]]:
    """Runs grouped by everything but the seed (key -> runs), for seed aggregation: study
    (:func:`study_of`), dataset, model, method label, and the stored config without the seed
    (:func:`wcviz.report.analysis.recipe_key`). A key starts with ``"<study>: "`` for runs in
    a sub-folder of the root."""
    by_label: dict[str, dict[str, list[xr.Dataset]]] = {}
    for ds in runs:
        study = study_of(an.run_attr(ds, "run_id", ""))
        label = (f"{study}: " if study else "") + \
            f"{an.run_attr(ds, 'dataset', '')}/{an.run_attr(ds, 'model', '')}/{an.run_label(ds)}"
        by_label.setdefault(label, {}).setdefault(an.recipe_key(ds), []).append(ds)
    groups: dict[str, list[xr.Dataset]] = {}
    for label, recipes in by_label.items():
        for i, members in enumerate(recipes.values()):
            # A label with several recipes (e.g. Adam and SGD) is told apart by a number.
            groups[label + (f" #{i + 1}" if len(recipes) > 1 else "")] = members
    return groups


def _is_seed(seed) -> bool:
    return seed is not None and not (isinstance(seed, float) and math.isnan(seed))


def repeated_seed(seeds: Sequence) -> tuple[int, int] | None:
    """(first, second) positions of the first seed that ``seeds`` holds twice, else None.
    Unseeded entries (None/NaN) are not compared."""
    seen: dict[int, int] = {}
    for i, seed in enumerate(seeds):
        if not _is_seed(seed):
            continue
        if int(seed) in seen:
            return seen[int(seed)], i
        seen[int(seed)] = i
    return None


def check_one_run_per_seed(label: str, seeds, paths) -> None:
    """Refuse a configuration with a seed twice (its runs found in two folders of one root).

    Unseeded runs (None/NaN) are not compared. Raises:
        WcvizError: naming the seed and both runs' folders.
    """
    seeds, paths = list(seeds), list(paths)
    twice = repeated_seed(seeds)
    if twice is not None:
        first, second = twice
        raise WcvizError(
            f"seed {int(seeds[second])} of {label} is twice under the root ({paths[first]}, "
            f"{paths[second]}): the same configuration in two folders (e.g. wcviz demo's runs "
            "beside a wcviz reproduce study); pass one of the folders, or move one copy out")


def seed_of(ds: xr.Dataset) -> int:
    """The run's seed attribute (WcvizError when absent: runs cannot be paired without it)."""
    seed = an.run_attr(ds, "seed")
    if seed is None:
        raise WcvizError(f"run {an.run_attr(ds, 'run_id', '?')} records no seed; runs are "
                         "paired by seed, so record it (attrs={'seed': ...})")
    return int(seed)


def _by_seed(name: str, runs) -> dict[int, xr.Dataset]:
    runs = an.as_datasets(runs)
    seeds = [seed_of(ds) for ds in runs]
    twice = repeated_seed(seeds)
    if twice is not None:
        first, second = (runs[i] for i in twice)
        raise WcvizError(f"seed {seed_of(second)} appears twice in the {name} group "
                         f"({an.run_attr(first, 'run_id', '?')}, "
                         f"{an.run_attr(second, 'run_id', '?')}); pass one configuration "
                         "per group")
    return dict(zip(seeds, runs))


def pair_by_seed(base_runs, wc_runs) -> tuple[list, list, list, list]:
    """(seeds, baseline Datasets, WC Datasets, unpaired seeds) of two groups of runs.

    Raises:
        WcvizError: a run without a seed, or a seed twice in one group (the groups mix
            configurations).
    """
    base, wc = _by_seed("baseline", base_runs), _by_seed("WC", wc_runs)
    seeds = sorted(set(base) & set(wc))
    unpaired = sorted(set(base) ^ set(wc))
    return seeds, [base[s] for s in seeds], [wc[s] for s in seeds], unpaired


# --------------------------------------------------------------------------- folding


def mean_std(values) -> tuple[float, float]:
    """(mean, sample std) of one value per seed; std NaN for fewer than two values, both NaN
    for none."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=DDOF)) if values.size > 1 else math.nan


def stack(runs: Sequence[xr.Dataset], values: Callable[[xr.Dataset], np.ndarray]) -> xr.DataArray:
    """Per-run curves ``values(ds)`` (one per epoch) stacked on a :data:`SEED` dimension, on the
    epochs all runs share.

    Raises:
        WcvizError: the runs share no recorded epoch.
    """
    arrays = [xr.DataArray(values(ds), dims="epoch", coords={"epoch": an.epochs(ds)}) for ds in runs]
    arrays = xr.align(*arrays, join="inner")
    if arrays[0].sizes["epoch"] == 0:
        raise WcvizError("the runs share no recorded epoch; seed aggregation needs common epochs")
    return xr.concat(arrays, dim=SEED)


def fold(values: xr.DataArray) -> xr.Dataset:
    """``values`` folded over its :data:`SEED` dimension: ``mean``, ``std`` (ddof =
    :data:`DDOF`; NaN for one seed) and ``seeds`` (how many have a value)."""
    n = values.count(SEED)
    std = values.std(SEED, ddof=DDOF) if values.sizes[SEED] > DDOF else xr.full_like(n, np.nan, float)
    return xr.Dataset({"mean": values.mean(SEED), "std": std, "seeds": n})


def fold_frame(frame: pd.DataFrame, group_of: Mapping[str, str], keys: Sequence[str],
               values: Sequence[str], spread: Mapping[str, str] | None = None,
               first: Sequence[str] = ()) -> pd.DataFrame:
    """A tidy frame (one row per run and ``keys``) folded per seed group and ``keys``.

    Args:
        frame: rows with a ``run`` column (run ids).
        group_of: run id -> group id; the folded frame's ``run`` column holds the group ids.
        keys: the columns a value is folded at (e.g. epoch, layer), in the frame's order.
        values: columns folded to their seed mean.
        spread: column -> name of its spread column (std over seeds, ddof = :data:`DDOF`).
        first: columns that are the same for every run of a group (one recipe, one value).

    Returns:
        One row per (group, keys) in order of appearance: ``run``, ``keys``, the means of
        ``values``, ``seeds`` (runs with a value of ``values[0]`` there), ``first`` and the
        ``spread`` columns.
    """
    by = frame.assign(run=frame["run"].map(group_of)).groupby(["run", *keys], sort=False)
    out = by[list(values)].mean()
    out["seeds"] = by[values[0]].count() if values else 0
    for column in first:
        out[column] = by[column].first()
    for column, name in (spread or {}).items():
        out[name] = by[column].std(ddof=DDOF)
    return out.reset_index()
