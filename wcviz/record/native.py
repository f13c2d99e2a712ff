"""The compiled passes of the CPU statistics, when they were built; numpy's path otherwise.

``wcviz/record/_kernels.c`` is compiled at install (``setup.py``; optional: without a C
compiler the install still succeeds). It reads a float32 weight array once for what
:mod:`wcviz.record.stats` otherwise needs six numpy passes for (the float64 sums of w, |w|
and w², max |w| and the radix-bucket counts), and gathers the few weights of the wanted
buckets, sorted, in one more pass (numpy: a mask, a selection and a sort). :func:`summary`
does both and answers every rank and count query of a summary in the same call (numpy: a
few dozen small calls, holding the GIL); :func:`scan` and :func:`gather_sorted` give its
first two steps on their own, which the tests check against numpy one by one. For the update
ratio it gives Σ(w_prev − w)² and overwrites the kept copy with w in the same pass. The sums
of the statistics follow numpy's own summation order, so every statistic is bit-equal either
way (tests/test_native.py checks both paths against each other).

``WCVIZ_NATIVE=0`` in the environment turns the compiled passes off (read at each call).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

try:
    from wcviz.record import _kernels
except ImportError:  # built without a C compiler: numpy's path
    _kernels = None

#: Buckets of the radix count: the top 16 bits of a float32.
BUCKETS = 1 << 16


class Scan(NamedTuple):
    """One pass over float32 weights: float64 sums bit-equal to ``np.add.reduce(...,
    dtype=np.float64)`` of w, |w| and the float32 w·w, and the max |w|. ``absmax`` is only
    meaningful when every weight is finite (``sum_sq`` then is too)."""

    total: float
    sum_abs: float
    sum_sq: float
    absmax: float
    counts: np.ndarray  # int64 (65536,): weights per bucket of their top 16 bits
    signed_cum: np.ndarray  # int64 (65536,): running sum of counts in value order
    mag_cum: np.ndarray  # int64 (32768,): running sum of counts in |w| order (both signs)


def built() -> bool:
    """Whether the compiled passes were built with this install."""
    return _kernels is not None


def enabled() -> bool:
    """Whether the statistics use the compiled passes now (built, and not turned off)."""
    return _kernels is not None and os.environ.get("WCVIZ_NATIVE", "1") != "0"


def scan(arr: np.ndarray, out: tuple | None = None) -> Scan:
    """:class:`Scan` of a C-contiguous float32 array (requires :func:`enabled`).

    ``out``: the (counts, signed_cum, mag_cum) int64 arrays to fill (of 65536, 65536 and
    32768; fresh ones when None). Callers that scan many tensors pass arrays they reuse: a
    fresh 512 kB array costs its page faults each time, as much as scanning 100,000 weights.
    """
    if out is None:
        out = tuple(np.empty(size, dtype=np.int64) for size in (BUCKETS, BUCKETS, BUCKETS // 2))
    total, sum_abs, sum_sq, absmax = _kernels.scan_f32(arr, *out)
    return Scan(total, sum_abs, sum_sq, absmax, *out)


def gather_sorted(arr: np.ndarray, buckets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The weights of ``arr`` whose bucket is one of ``buckets`` (int64 bucket numbers in value
    order: negative buckets from the largest magnitude down, then the positive ones up; no
    repeats), sorted; ``counts`` must be :attr:`Scan.counts` of ``arr`` (else ValueError,
    nothing written outside the result)."""
    buckets = np.ascontiguousarray(buckets, dtype=np.int64)
    if buckets.size and (buckets.min() < 0 or buckets.max() >= BUCKETS):
        raise ValueError("gather_sorted: buckets must lie in [0, 65536)")
    out = np.empty(int(counts[buckets].sum()), dtype=np.float32)
    _kernels.gather_sorted_f32(arr, buckets, counts, out)
    return out


def summary(arr: np.ndarray, scratch: tuple, plan: tuple, median_plan: tuple,
            cutoff_kinds: np.ndarray, cutoffs: np.ndarray, edges: np.ndarray,
            out: np.ndarray) -> bool:
    """The whole summary of a float32 array into ``out`` (float64; the layout of
    :class:`wcviz.record.stats.SummaryLayout`) in one call: the scan, one gather of every
    bucket a statistic needs, and the rank and count queries, as
    ``wcviz.record.stats._summary_shared_finite`` does them with numpy. False (``out``
    untouched) when a weight is NaN or inf.

    ``scratch``: (counts, signed_cum, mag_cum) as for :func:`scan`; ``plan``, ``median_plan``:
    (ranks, lo, hi, gamma) of ``wcviz.record.stats._plan`` for the quantiles and for 0.5;
    ``cutoff_kinds``: int64, 0 a number, 1 t × std(w), 2 t × median |w|, with ``cutoffs``
    (float64) the numbers or t's; ``edges``: the histogram's float32 thresholds.
    """
    return _kernels.summary_f32(arr, *scratch, *plan, *median_plan, cutoff_kinds, cutoffs,
                                edges, out)


def diff_sq(prev: np.ndarray, weights: np.ndarray, keep: bool) -> float:
    """Σ (prev − weights)² of two float32 arrays of one size: the difference rounded to
    float32, its square exact in float64, summed in a fixed order (8 lanes per block of 8192,
    the blocks in turn). With ``keep``, ``weights`` is copied into ``prev`` in the same pass
    (requires :func:`enabled`)."""
    return _kernels.diff_sq_f32(prev, weights, keep)
