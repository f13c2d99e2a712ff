"""Nested percentile bands from a store's own quantile levels: pairs, median, labels, opacity.

A run store records whatever quantile list its :class:`wcviz.Recorder` was given (default
:data:`wcviz.record.measures.QUANTILES`: min/max and the ±1.5σ, ±1σ, ±0.5σ points of a normal, and
the median). Figures (:mod:`wcviz.report.plots`) and the dashboard (``app/``) draw one band per
symmetric pair of *recorded* levels, so a store with any quantile set, e.g.
``(0, .05, .25, .5, .75, .95, 1)``, draws its own bands. No torch, numpy or matplotlib import.
"""

from __future__ import annotations

from typing import Iterable

#: Fill opacity of one band (figures and dashboard). Bands nest, so the k-th band from the
#: outside shows 1 − (1 − BAND_OPACITY)^k: four bands reach 1 − 0.78⁴ ≈ 0.63.
BAND_OPACITY = 0.22

#: Two levels lo < hi pair into a band when |lo + hi − 1| is at most this (stored levels are
#: decimals such as 0.0668 and 0.9332, whose float sum is 1 only to about 1e-16).
PAIR_TOL = 1e-6


def quantile_levels(ds_or_quantiles) -> tuple[float, ...]:
    """The quantile levels, sorted: a Dataset/DataArray's ``quantile`` coordinate, or the
    given sequence of levels (fractions in [0, 1])."""
    coords = getattr(ds_or_quantiles, "coords", None)
    if coords is not None:
        if "quantile" not in coords:
            raise ValueError("this Dataset has no 'quantile' coordinate; pass a run store's "
                             "Dataset (wcviz.open_run) or a list of quantile levels")
        values: Iterable = coords["quantile"].values
    else:
        values = ds_or_quantiles
    return tuple(sorted(float(q) for q in values))


def band_pairs(ds_or_quantiles) -> list[tuple[float, float]]:
    """Symmetric (lo, hi) pairs of the recorded levels, outermost first.

    ``lo`` and ``hi`` are the stored values (select with them by label). A level without a
    mirror (no ``hi`` with |lo + hi − 1| ≤ :data:`PAIR_TOL`) forms no band.

    Args:
        ds_or_quantiles: a run's Dataset (its ``quantile`` coordinate) or a list of levels.

    Returns:
        e.g. ``[(0.0, 1.0), (0.05, 0.95), (0.25, 0.75)]``.
    """
    levels = quantile_levels(ds_or_quantiles)
    pairs = []
    for lo in levels:
        if lo >= 0.5 - PAIR_TOL:
            break
        hi = next((q for q in reversed(levels) if abs(lo + q - 1.0) <= PAIR_TOL), None)
        if hi is not None:
            pairs.append((lo, hi))
    return pairs


def median_quantile(ds_or_quantiles) -> float | None:
    """The recorded level equal to 0.5 (within :data:`PAIR_TOL`), or ``None``."""
    return next((q for q in quantile_levels(ds_or_quantiles) if abs(q - 0.5) <= PAIR_TOL), None)


def _percent(q: float) -> str:
    return f"{100.0 * q:.6g}"  # 0.0668 -> "6.68" (not 6.680000000000001), 0.05 -> "5"


def band_label(lo: float, hi: float) -> str:
    """The one label of a band: ``"min–max"`` for (0, 1), else exact percents, ``"6.68–93.32 %"``."""
    if lo == 0.0 and hi == 1.0:
        return "min–max"
    return f"{_percent(lo)}–{_percent(hi)} %"


def quantile_label(q: float) -> str:
    """The one label of a single level: ``"min"``, ``"max"``, ``"median"`` or ``"6.68 %"``."""
    named = {0.0: "min", 1.0: "max"}
    if q in named:
        return named[q]
    return "median" if abs(q - 0.5) <= PAIR_TOL else f"{_percent(q)} %"
