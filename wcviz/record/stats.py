"""Exact per-layer weight statistics, computed on the tensor's own device.

Everything a record needs from one weight tensor is packed into one small float64 vector on
the tensor's device (:func:`weight_summary`); the recorder concatenates the vectors of all
layers and moves them to the host in one transfer per record. No statistic copies the whole
tensor to the host.

Definitions (the run store's variables are these, per layer and record):

* **quantiles**: exactly ``numpy.quantile(w, q)`` with its default ``linear`` method, at
  :data:`QUANTILES` (TensorBoard's basis points) or any list. The two order statistics around
  each quantile are found by *selection*, never by a full sort: one pass counts the weights
  per radix bucket (the top 16 bits of the float, 1/128 of an octave whatever the scale),
  then only the few buckets that hold a wanted rank are ordered (typically well under 1 % of
  the weights; a bucket of exact zeros is all one value). CPU tensors use numpy on their own
  memory (and the compiled passes of :mod:`wcviz.record.native` where they were built, with
  the same bits), other devices torch ops on the device. Tensors above 2^24 elements (where older
  ``torch.quantile`` refuses) work too. A NaN weight makes every quantile NaN, as in numpy.
* **near-zero fraction**: the fraction of weights with ``|w| < c`` (strict; exact zeros count),
  over all n weights (a NaN weight counts as not near zero). The cutoff ``c`` of each kind
  (abs, rel × std₀, std × the record's std, med × the record's median|w|) is defined in
  :mod:`wcviz.record.measures`; abs and rel arrive as numbers, std and med as ``(kind, t)`` that
  this module scales by the population std of the same summary or the exact median of |w|
  (the same selection as the quantiles).
* **histogram**: counts over ``bins`` equal-width bins on the fixed range ``[-R, R]`` chosen
  when the store is created (:func:`histogram_range`: R = 4 × max|w| at epoch 0, capped at
  the bound aπ/2 of a fixed-scale arctan compander, or a of erf); weight w goes to bin
  floor((w + R)·bins / 2R) evaluated in float32, and values outside the range are counted in
  the first/last bin, so the counts always sum to the number of non-NaN weights.
* **moments**: mean, standard deviation (population, ddof = 0), max |w|, L2 norm ‖w‖₂.
* **participation ratio** (Σ|w|)² / (n·Σw²): 1 when all weights have the same magnitude,
  about 1/n when one weight dominates ("weight democracy"); NaN for an all-zero tensor.
"""

from __future__ import annotations

import functools
import math
import sys
import threading
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from wcviz.errors import WcvizError
from wcviz.record import native

# The measured quantities' definitions live in wcviz.record.measures (torch-free); re-exported here.
from wcviz.record.measures import (  # noqa: F401
    DEFAULT_BINS,
    DEFAULT_THRESHOLDS,
    HIST_RANGE_FACTOR,
    MOMENTS,
    QUANTILES,
    RECORD_SCALED,
    Threshold,
    check_quantiles,
    parse_threshold,
)

# ---------------------------------------------------------------- quantiles by selection


def _quantile_plan(n: int, quantiles: Sequence[float]):
    """numpy's ``linear`` method as index arithmetic (numpy's own formulas, in float64).

    Returns:
        (ranks, lo_pos, hi_pos, gamma): the distinct 0-based ranks to select, for each
        quantile the positions of its two order statistics in ``ranks``, and the weight of the
        upper one.
    """
    # copies of the cached plan: a caller may write to its arrays or hand them to torch
    return tuple(part.copy() for part in _plan(int(n), tuple(float(q) for q in quantiles)))


@functools.lru_cache(maxsize=4096)  # a layer's size and the quantiles are fixed for its run
def _plan(n: int, quantiles: tuple[float, ...]):
    q = np.asarray(quantiles, dtype=np.float64)
    # numpy's index for ``linear`` is (n − 1)·q itself; the general formula
    # n·q + α + q·(1 − α − β) − 1 (α = β = 1) is equal in exact arithmetic only.
    virtual = (n - 1) * q
    lo = np.floor(virtual)
    hi = lo + 1
    gamma = virtual - lo
    above = virtual >= n - 1
    lo[above] = hi[above] = n - 1
    below = virtual < 0
    lo[below] = hi[below] = 0
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    ranks = np.unique(np.concatenate([lo, hi]))
    # int64 places, not intp: the compiled summary takes 8-byte items on every platform
    return (ranks, np.searchsorted(ranks, lo).astype(np.int64),
            np.searchsorted(ranks, hi).astype(np.int64), gamma)


def order_statistics(x: Tensor, ranks: Sequence[int], backend: str | None = None) -> Tensor:
    """The values of rank ``ranks`` (0-based, ascending) of flat ``x``, as float64 on x's device.

    Selection, never a full sort: one radix-bucket count over the whole tensor, then only the
    few buckets holding a wanted rank are ordered. ``backend`` "numpy" (default on CPU, on the
    tensor's own memory; ``numpy.partition`` of the candidates) or "torch" (default elsewhere,
    all on the device; sorts the candidates, typically well under 1 % of the tensor). NaN must
    be absent.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    if _backend(x, backend) == "numpy":
        return torch.from_numpy(_order_stats_numpy(_flat(x).numpy(), ranks))
    return _order_stats_torch(_flat(x), ranks)


def _backend(x: Tensor, backend: str | None) -> str:
    if backend is None:
        return "numpy" if x.device.type == "cpu" else "torch"
    if backend not in ("numpy", "torch") or (backend == "numpy" and x.device.type != "cpu"):
        raise WcvizError(f"backend must be 'torch', or 'numpy' for CPU tensors; got {backend!r}")
    return backend


#: Radix buckets of the CPU selection: the top 16 bits of an order-preserving int32 key of a
#: float32 (sign, exponent, 7 mantissa bits), i.e. 1/128-octave buckets whatever the scale.
_RADIX_BITS = 16
#: Below this many elements ``numpy.partition`` alone is as fast as the radix pass.
_RADIX_MIN = 1 << 16
#: The same crossover with the compiled first pass (:mod:`wcviz.record.native`); measured on
#: a 2-core x86-64: 0.41 ms against numpy's 0.70 ms at 16,384 weights, 0.16 ms at 8,192.
_NATIVE_MIN = 1 << 14


def _radix_keys(arr: np.ndarray) -> np.ndarray:
    """Bucket of each float32 in [0, 2^16), increasing with the value (in-place int ops)."""
    bits = arr.view(np.int32)
    key = np.right_shift(bits, 31)  # -1 for negatives, 0 otherwise
    np.bitwise_and(key, 0x7FFFFFFF, out=key)
    np.bitwise_xor(bits, key, out=key)  # negatives: flip magnitude bits -> signed int order
    np.right_shift(key, 32 - _RADIX_BITS, out=key)
    key += 1 << (_RADIX_BITS - 1)
    return key


def _order_stats_numpy(arr: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Exact order statistics: count per radix bucket, then partition only the buckets that
    hold a wanted rank (typically well under 1 % of the tensor; all-equal buckets such as
    exact zeros are cheap to partition)."""
    if len(ranks) == 0:
        return np.zeros(0)
    if arr.dtype != np.float32 or arr.size < _RADIX_MIN:
        return np.partition(arr, ranks)[ranks].astype(np.float64)
    key = _radix_keys(arr)
    counts = np.bincount(key, minlength=1 << _RADIX_BITS)
    cum = np.cumsum(counts)
    buckets = np.searchsorted(cum, ranks, side="right")  # the bucket holding each rank
    local = ranks - (cum[buckets] - counts[buckets])  # rank inside its bucket
    wanted = np.zeros(1 << _RADIX_BITS, dtype=bool)
    wanted[buckets] = True
    cand = arr[np.take(wanted, key)]
    cand_key = _radix_keys(cand)  # recomputed on the few candidates: cheaper than a 2nd mask
    out = np.empty(len(ranks))
    for bucket in np.unique(buckets):
        sel = buckets == bucket
        values = cand[cand_key == bucket]
        out[sel] = np.partition(values, local[sel])[local[sel]]
    return out


def _order_stats_torch(flat: Tensor, ranks: np.ndarray) -> Tensor:
    """The radix selection of :func:`_order_stats_numpy` in torch ops, on ``flat``'s device."""
    dev = flat.device
    if len(ranks) == 0:
        return torch.zeros(0, dtype=torch.float64, device=dev)
    if flat.dtype != torch.float32 or flat.numel() < _RADIX_MIN:
        return torch.stack([torch.kthvalue(flat, int(r) + 1).values for r in ranks]).double()
    bits = flat.view(torch.int32)
    key = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # signed int order == float order
    bucket = (key >> (32 - _RADIX_BITS)) + (1 << (_RADIX_BITS - 1))
    counts = torch.bincount(bucket, minlength=1 << _RADIX_BITS)
    cum = counts.cumsum(0)
    ranks_t = torch.as_tensor(ranks, device=dev)
    held = torch.searchsorted(cum, ranks_t, right=True)  # the bucket holding each rank
    local = ranks_t - (cum[held] - counts[held])
    wanted = torch.zeros_like(counts, dtype=torch.bool)
    wanted[held] = True
    before = (counts * wanted).cumsum(0)[held] - counts[held]  # candidates in lower buckets
    candidates = torch.sort(flat[wanted[bucket]]).values  # value order == bucket order
    return candidates[before + local].double()


def exact_quantiles(x: Tensor, quantiles: Sequence[float] = QUANTILES,
                    backend: str | None = None) -> Tensor:
    """Exactly ``numpy.quantile(x, quantiles)`` (linear), on ``x``'s device, as float64.

    Args:
        x: any tensor (flattened); float16/bfloat16 are widened to float32.
        quantiles: probabilities in [0, 1].
        backend: see :func:`order_statistics` (default by device).

    Returns:
        float64 tensor of ``len(quantiles)`` values on ``x.device``; all NaN when ``x`` is
        empty or holds a NaN (as numpy).
    """
    flat = _flat(x)
    if _backend(flat, backend) == "numpy":
        return torch.from_numpy(_quantiles_numpy(flat.numpy(), quantiles))
    n = flat.numel()
    if n == 0:
        return torch.full((len(quantiles),), math.nan, dtype=torch.float64, device=x.device)
    ranks, lo_pos, hi_pos, gamma = _quantile_plan(n, quantiles)
    # NaN would select as the largest value: replace by +inf, then mark the result NaN.
    has_nan = torch.isnan(flat).any()
    clean = torch.where(torch.isnan(flat), math.inf, flat)
    stats = order_statistics(clean, ranks, backend="torch")
    lo_pos, hi_pos = (torch.as_tensor(p, device=x.device) for p in (lo_pos, hi_pos))
    out = _lerp(stats[lo_pos], stats[hi_pos], torch.as_tensor(gamma, device=x.device))
    return torch.where(has_nan, torch.full_like(out, math.nan), out)


def _lerp(a, b, t):
    """numpy's ``_lerp``: a + (b − a)·t, evaluated from the nearer end when t ≥ 0.5; a zero
    result is +0.0 (``+ 0.0`` changes nothing else). Which of −0.0 and +0.0 sits at a rank
    among zeros depends on the sort (numpy orders equal zeros arbitrarily, the compiled
    passes −0.0 first), so the sign would differ between paths that agree on every value."""
    diff = b - a
    where = torch.where if isinstance(a, Tensor) else np.where
    return where(t >= 0.5, b - diff * (1 - t), a + diff * t) + 0.0


def _quantiles_numpy(arr: np.ndarray, quantiles: Sequence[float],
                     check_nan: bool = True) -> np.ndarray:
    if arr.size == 0 or (check_nan and np.isnan(arr).any()):
        return np.full(len(quantiles), np.nan)
    ranks, lo_pos, hi_pos, gamma = _quantile_plan(arr.size, quantiles)
    stats = _order_stats_numpy(arr, ranks)
    with np.errstate(invalid="ignore"):  # inf − inf where both order statistics are inf
        return _lerp(stats[lo_pos], stats[hi_pos], gamma)


def _flat(x: Tensor) -> Tensor:
    flat = x.detach().reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.to(torch.float32)
    return flat.contiguous()


# ---------------------------------------------------------------- histogram range


def histogram_range(absmax: float, bound: float | None = None,
                    factor: float = HIST_RANGE_FACTOR) -> float:
    """The half-range R of a layer's fixed histogram edges ``[-R, R]``, chosen once.

    R = ``factor`` × ``absmax`` (max|w| over the finite weights at the first record). For a
    bounded reparametrization (|Ψ| < ``bound``, e.g. aπ/2 for arctan with fixed a) R is capped
    at the bound, since no weight can get past it. A zero or non-finite result gives R = 1 (so
    the edges stay valid).
    """
    half = factor * float(absmax)
    if bound is not None and math.isfinite(bound) and bound > 0:
        half = min(half, float(bound))
    return half if half > 0 and math.isfinite(half) else 1.0


def initial_scale(weight: Tensor) -> tuple[float, float]:
    """(std, max|w|) of a tensor at creation: what relative thresholds multiply and what the
    histogram range scales. Non-finite weights are left out (NaN std if none is finite)."""
    flat = _flat(weight)
    layout = SummaryLayout(0, 0, 1)
    out = layout.unpack(weight_summary(flat, (), (), 1.0, 1).cpu().numpy())
    if out["nonfinite_flag"]:
        flat = flat[torch.isfinite(flat)]
        out = layout.unpack(weight_summary(flat, (), (), 1.0, 1).cpu().numpy())
    absmax = float(out["weight_absmax"])
    return float(out["weight_std"]), absmax if math.isfinite(absmax) else 0.0


def histogram_edges(half_range: float, bins: int = DEFAULT_BINS) -> np.ndarray:
    """``bins + 1`` equal-width edges on ``[-half_range, half_range]`` (float64)."""
    return np.linspace(-half_range, half_range, bins + 1)


# ---------------------------------------------------------------- one layer's summary


@dataclass(frozen=True)
class SummaryLayout:
    """Where each statistic sits in a :func:`weight_summary` vector."""

    n_quantiles: int
    n_thresholds: int
    n_bins: int

    @property
    def size(self) -> int:
        # quantiles | fractions | histogram | moments | non-finite flag
        return self.n_quantiles + self.n_thresholds + self.n_bins + len(MOMENTS) + 1

    def unpack(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        """Split summary vectors (..., size) into named arrays (host side)."""
        q, t, b = self.n_quantiles, self.n_thresholds, self.n_bins
        out = {"weight_quantile": vec[..., :q],
               "near_zero_fraction": vec[..., q:q + t],
               "weight_histogram": vec[..., q + t:q + t + b]}
        for i, name in enumerate(MOMENTS):
            out[name] = vec[..., q + t + b + i]
        out["nonfinite_flag"] = vec[..., -1]
        return out


def weight_summary(x: Tensor, quantiles: Sequence[float], cutoffs: Sequence,
                   half_range: float, bins: int, backend: str | None = None) -> Tensor:
    """All statistics of one weight tensor as one float64 vector on ``x``'s device.

    Args:
        x: the weight tensor (any shape).
        quantiles: probabilities for :func:`exact_quantiles`.
        cutoffs: near-zero cutoffs, in the order of the fractions: a number c (fraction of
            |w| < c), or ``("std", t)`` / ``("med", t)`` for c = t × this tensor's std /
            median |w| (:mod:`wcviz.record.measures`).
        half_range: R of the histogram range [-R, R].
        bins: number of histogram bins (bin i holds floor((w + R)·bins / 2R) = i, clamped).
        backend: "numpy" (default for CPU tensors) or "torch" (default elsewhere).

    Returns:
        float64 vector laid out as :class:`SummaryLayout` describes. The last entry is 1 when
        the tensor holds a NaN or ±inf (then moments are NaN/inf and the caller flags it).
    """
    flat = _flat(x)
    if _backend(flat, backend) == "numpy":
        arr = flat.numpy()
        shared = _summary_shared(arr, quantiles, cutoffs, half_range, bins)
        if shared is not None:
            return torch.from_numpy(shared)
        rest = _summary_numpy(arr, cutoffs, half_range, bins)
        quants = _quantiles_numpy(arr, quantiles, check_nan=bool(rest[-1][0]))
        return torch.from_numpy(np.concatenate([quants, *rest]))
    n = flat.numel()
    dev = flat.device
    parts = [exact_quantiles(flat, quantiles, backend="torch")]
    mag = flat.abs()
    moments = _moments(flat, mag)
    levels = _cutoff_values(cutoffs, lambda: moments[1],
                            lambda: exact_quantiles(mag, (0.5,), backend="torch")[0])
    counts = [torch.count_nonzero(mag < c) for c in levels]
    parts.append(torch.stack(counts).to(torch.float64) / max(n, 1) if counts
                 else torch.zeros(0, dtype=torch.float64, device=dev))
    parts.append(_histogram(flat, half_range, bins))
    parts.append(moments)
    parts.append((~torch.isfinite(moments[3:4])).to(torch.float64))  # ‖w‖₂ non-finite
    return torch.cat([p.to(dev) for p in parts])


def _cutoff_values(cutoffs: Sequence, std, median_abs) -> list:
    """The cutoff of each entry of ``cutoffs``; ``std``/``median_abs`` are called (once) only
    when a record-scaled entry needs them (the median costs a selection pass)."""
    cache: dict = {}
    out = []
    for c in cutoffs:
        kind = _scaled_kind(c)
        if kind is not None:
            t = c[1]
            if kind not in cache:
                cache[kind] = std() if kind == "std" else median_abs()
            out.append(float(t) * cache[kind])
        else:
            out.append(float(c))
    return out


def _scaled_kind(cutoff) -> str | None:
    """The kind of a record-scaled cutoff (kind, t); None for a number."""
    if not isinstance(cutoff, tuple):
        return None
    if cutoff[0] not in RECORD_SCALED:
        raise WcvizError(f"record-scaled cutoff kind must be one of {RECORD_SCALED}, "
                         f"got {cutoff[0]!r}")
    return cutoff[0]


def _summary_numpy(arr: np.ndarray, cutoffs, half_range: float, bins: int) -> list[np.ndarray]:
    """Fractions, histogram, moments and the non-finite flag of a CPU array (float64)."""
    n = arr.size
    if n == 0:
        return [np.zeros(len(cutoffs)), np.zeros(bins), np.full(len(MOMENTS), np.nan), [0.0]]
    mag = np.abs(arr)
    fractions = np.zeros(len(cutoffs))
    with np.errstate(over="ignore"):  # a cutoff beyond float16's range compares as inf
        for i, c in enumerate(cutoffs):  # fixed cutoffs now, before the buffer is reused
            if not isinstance(c, tuple):
                fractions[i] = np.count_nonzero(mag < c) / n
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite weights give NaN/inf
        total = np.add.reduce(arr, dtype=np.float64)
        l1 = np.add.reduce(mag, dtype=np.float64)
        absmax = float(mag.max())
        np.multiply(mag, mag, out=mag)  # reuse the buffer: w² (float32, summed in float64)
        l2 = math.sqrt(np.add.reduce(mag, dtype=np.float64))
        mean = total / n
        std = math.sqrt(max(l2 * l2 / n - mean * mean, 0.0)) if math.isfinite(l2) else math.nan
        participation = l1 * l1 / (n * l2 * l2) if l2 > 0 else math.nan
    moments = np.array([mean, std, absmax, l2, participation], dtype=np.float64)
    flag = 0.0 if math.isfinite(l2) else 1.0
    scaled = [i for i, c in enumerate(cutoffs) if isinstance(c, tuple)]
    if scaled:  # |w| again, into the same buffer (it holds w² now)
        np.abs(arr, out=mag)
        levels = _cutoff_values([cutoffs[i] for i in scaled], lambda: std,
                                lambda: _median_abs_numpy(mag, check_nan=bool(flag)))
        # a cutoff beyond float32's range compares as inf, as the fixed ones above
        with np.errstate(invalid="ignore", over="ignore"):
            for i, c in zip(scaled, levels):  # a Python float compares in float32, as above
                fractions[i] = np.count_nonzero(mag < float(c)) / n
    return [fractions, _histogram_numpy(arr, half_range, bins, mag, check_nan=bool(flag)),
            moments, [flag]]


#: Signed order of the 2^16 buckets of a float32's top 16 bits (sign, exponent, 7 mantissa
#: bits): negatives from the largest magnitude down, then positives from zero up.
_SIGNED_ORDER = np.concatenate([0x8000 + np.arange(0x7FFF, -1, -1), np.arange(0x8000)])
#: Each bucket's place in :data:`_SIGNED_ORDER`.
_POSITION = np.argsort(_SIGNED_ORDER)
_LITTLE_ENDIAN = sys.byteorder == "little"


def _summary_shared(arr: np.ndarray, quantiles, cutoffs, half_range: float,
                    bins: int) -> np.ndarray | None:
    """The summary of a big, finite float32 array with ONE radix count shared by every
    quantile level, the median |w| and every near-zero cutoff; None where it does not apply
    (then the general path runs: small, non-float32 or non-finite arrays).

    The count is over the top 16 bits of each float (read in place as every other uint16):
    in signed order those buckets give the quantiles' order statistics, summed over the sign
    they give |w|'s (the median |w|, and ``#{|w| < c}`` as the buckets wholly below c's plus
    a comparison inside c's bucket). One gather then collects the few buckets any of them
    needs (med cutoffs' buckets are bounded beforehand from the median's bucket), instead of
    a pass over the weights per threshold and a separate selection per statistic. Results
    are bit-equal to :func:`_summary_numpy` and :func:`_quantiles_numpy`.
    """
    compiled = native.enabled()
    small = _NATIVE_MIN if compiled else _RADIX_MIN
    if arr.dtype != np.float32 or arr.size < small or not _LITTLE_ENDIAN:
        return None
    if compiled:
        return _summary_compiled(arr, quantiles, cutoffs, half_range, bins)
    with np.errstate(over="ignore", invalid="ignore"):  # cutoffs beyond float32's range: inf
        return _summary_shared_finite(arr, quantiles, cutoffs, half_range, bins)


def _summary_compiled(arr, quantiles, cutoffs, half_range, bins) -> np.ndarray | None:
    """:func:`_summary_shared_finite` in one compiled call (:func:`wcviz.record.native.summary`:
    the same steps, the same bits), None for an array holding NaN or inf."""
    n = arr.size
    kinds, values = _cutoff_spec(tuple(cutoffs))
    out = np.empty(len(quantiles) + len(cutoffs) + bins + len(MOMENTS) + 1)
    scratch = _SCRATCH
    done = native.summary(arr, (scratch.counts, scratch.signed_cum, scratch.mag_cum),
                          _plan(n, tuple(float(q) for q in quantiles)), _plan(n, (0.5,)),
                          kinds, values, _histogram_thresholds(half_range, bins), out)
    return out if done else None


#: Cutoff kind -> its number in the compiled summary (``_kernels.c``'s CUT_NUMBER, CUT_STD,
#: CUT_MED); None is a number.
_CUTOFF_KIND_CODES = {None: 0, "std": 1, "med": 2}


@functools.lru_cache(maxsize=1024)  # a layer's cutoffs are fixed for its whole run
def _cutoff_spec(cutoffs: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The cutoffs as the compiled summary takes them: kinds (0 a number, 1 t × std, 2 t ×
    median |w|) and the numbers or t's."""
    kinds = [_CUTOFF_KIND_CODES[kind] for kind in map(_scaled_kind, cutoffs)]
    values = [float(c[1] if isinstance(c, tuple) else c) for c in cutoffs]
    return np.array(kinds, dtype=np.int64), np.array(values, dtype=np.float64)


def _summary_shared_finite(arr, quantiles, cutoffs, half_range, bins) -> np.ndarray | None:
    """:func:`_summary_shared` of a big float32 array (see :func:`_summary_shared`)."""
    n = arr.size
    first = _first_pass(arr)
    if first is None:
        return None  # NaN or inf weights: the general path handles them
    l2 = math.sqrt(first.sum_sq)
    mean = first.total / n
    std = math.sqrt(max(l2 * l2 / n - mean * mean, 0.0))
    participation = first.sum_abs * first.sum_abs / (n * l2 * l2) if l2 > 0 else math.nan
    buckets = first.buckets
    ranks, lo_pos, hi_pos, gamma = _quantile_plan(n, quantiles)
    m_ranks, m_lo, m_hi, m_gamma = _quantile_plan(n, (0.5,))
    q_at = buckets.signed_rank(ranks)
    m_at = buckets.magnitude_rank(m_ranks)
    levels = _shared_levels(cutoffs, std, m_at[0])
    edges = _histogram_thresholds(half_range, bins)
    wanted = np.zeros(1 << 16, dtype=bool)
    wanted[q_at[0]] = True
    wanted[_signed_buckets(edges)] = True
    for m in [*m_at[0], *[b for _, bs in levels for b in bs]]:
        wanted[m] = wanted[m | 0x8000] = True
    negated = [_next_up(-c) for c in _level_floats(levels) if c is not None]
    wanted[_signed_buckets(np.array(negated, dtype=np.float32))] = True
    by_value = first.gather_sorted(wanted)  # the few weights of the wanted buckets, sorted
    buckets.gathered(wanted)
    stats = by_value[buckets.cand_signed_before(q_at[0]) + q_at[1]].astype(np.float64)
    with np.errstate(invalid="ignore"):
        quants = _lerp(stats[lo_pos], stats[hi_pos], gamma)
    med = buckets.magnitude_order_stats(by_value, m_at[0], m_at[1])
    median_abs = float(_lerp(med[m_lo], med[m_hi], m_gamma)[0])
    values = [c if c is not None else float(cutoffs[i][1]) * median_abs  # a med cutoff
              for i, (c, _) in enumerate(levels)]
    fractions = buckets.count_magnitude_below(np.array(values, dtype=np.float32), by_value) / n
    at_least = np.concatenate([[n], n - buckets.count_below(edges, by_value), [0]])
    hist = (at_least[:-1] - at_least[1:]).astype(np.float64)
    moments = [mean, std, first.absmax, l2, participation]
    return np.concatenate([quants, fractions, hist, moments, [0.0]])


class _FirstPass(NamedTuple):
    """What one read of a finite float32 array gives :func:`_summary_shared_finite`: the
    float64 sums of w, |w| and w² (each ``np.add.reduce(..., dtype=np.float64)``), max |w|,
    the weights' buckets, and how to gather the weights of some buckets, sorted."""

    total: float
    sum_abs: float
    sum_sq: float
    absmax: float
    buckets: "_Buckets"
    gather_sorted: Callable[[np.ndarray], np.ndarray]


def _first_pass(arr: np.ndarray) -> _FirstPass | None:
    """:class:`_FirstPass` of a float32 array, None if it holds NaN or inf (numpy's six
    passes; the compiled summary does it in one)."""
    scratch = _SCRATCH
    mag = np.abs(arr)
    total = np.add.reduce(arr, dtype=np.float64)
    sum_abs = np.add.reduce(mag, dtype=np.float64)
    absmax = float(mag.max())
    np.multiply(mag, mag, out=mag)
    sum_sq = np.add.reduce(mag, dtype=np.float64)
    if not math.isfinite(sum_sq):
        return None
    del mag
    # each float's high half (sign, exponent, 7 mantissa bits), as intp once: bincount and
    # take would each convert the strided uint16 view themselves (twice the time)
    top = arr.view(np.uint16)[1::2].astype(np.intp)
    counts = np.bincount(top, minlength=1 << 16)
    return _FirstPass(float(total), float(sum_abs), float(sum_sq), absmax,
                      _Buckets(counts, arr.size, *_cumulate(counts, scratch)),
                      lambda wanted: np.sort(arr[np.take(wanted, top)]))


def _cumulate(counts: np.ndarray, scratch: "_Scratch") -> tuple[np.ndarray, np.ndarray]:
    """The running sums of bucket counts in value order (the negative buckets from 0xFFFF
    down, a reversed view, then the positive ones on top of them) and in |w| order."""
    cum = scratch.signed_cum
    np.cumsum(counts[:0x7FFF:-1], out=cum[:0x8000])
    np.cumsum(counts[:0x8000], out=cum[0x8000:])
    cum[0x8000:] += cum[0x7FFF]
    mag = np.add(counts[:0x8000], counts[0x8000:], out=scratch.mag_cum)
    return cum, np.cumsum(mag, out=mag)


class _Scratch(threading.local):
    """Per-thread arrays of the bucket counts and their running sums, reused from one tensor
    to the next: fresh ones of this size (0.5 MB) cost their page faults every time (about
    0.1 ms each)."""

    def __init__(self):
        self.counts = np.empty(1 << 16, dtype=np.int64)
        self.signed_cum = np.empty(1 << 16, dtype=np.int64)
        self.mag_cum = np.empty(1 << 15, dtype=np.int64)


_SCRATCH = _Scratch()


class _Buckets:
    """Counts of finite float32 weights per bucket of their top 16 bits, and rank and count
    queries answered from them plus the sorted weights of a few gathered buckets.

    Bucket order is value order: in signed order (:data:`_SIGNED_ORDER`) for the weights,
    in magnitude order (the low 15 bits, both signs together) for |w|. Every query needs its
    bucket gathered (``wanted``): a bucket's candidates then sit in the sorted candidates
    after those of the gathered buckets before it.
    """

    def __init__(self, counts: np.ndarray, n: int, signed_cum: np.ndarray,
                 mag_cum: np.ndarray):
        self.counts, self.n = counts, n
        self.signed_cum, self.mag_cum = signed_cum, mag_cum

    def signed(self, pos):
        """The counts of the buckets at signed positions ``pos``."""
        return self.counts[_SIGNED_ORDER[pos]]

    def signed_rank(self, ranks: np.ndarray):
        """(bucket, rank inside it) of each rank of the weights in value order."""
        pos = np.searchsorted(self.signed_cum, ranks, side="right")
        return _SIGNED_ORDER[pos], ranks - (self.signed_cum[pos] - self.signed(pos))

    def magnitude_rank(self, ranks: np.ndarray):
        """(magnitude bucket, rank inside it) of each rank of |w| in value order."""
        pos = np.searchsorted(self.mag_cum, ranks, side="right")
        return pos, ranks - (self.mag_cum[pos] - self.counts[pos] - self.counts[pos | 0x8000])

    def gathered(self, wanted: np.ndarray) -> None:
        """Record which buckets were gathered (their signed positions, in order, and the
        candidates in the gathered buckets before each)."""
        self._gathered = np.sort(_POSITION[np.flatnonzero(wanted)])
        held = self.signed(self._gathered)
        self._before = np.cumsum(held) - held

    def cand_signed_before(self, buckets) -> np.ndarray:
        """Candidates (sorted) before the first one of each gathered bucket of ``buckets``."""
        return self._before_at(_POSITION[buckets])

    def _before_at(self, positions) -> np.ndarray:
        """Candidates before the gathered buckets at signed ``positions``."""
        return self._before[np.searchsorted(self._gathered, positions)]

    def magnitude_order_stats(self, by_value: np.ndarray, buckets, local) -> np.ndarray:
        """|w| of each (magnitude bucket, rank inside it): the bucket's negatives and
        positives are two sorted runs of the candidates, merged by bisection."""
        out = np.empty(len(buckets))
        for i, (m, k) in enumerate(zip(buckets, local)):
            neg, pos = (self.run(by_value, b) for b in (m | 0x8000, m))
            out[i] = _kth_smallest(np.abs(neg[::-1]), pos, int(k))  # |w| ascending, both
        return out

    def run(self, by_value: np.ndarray, bucket: int) -> np.ndarray:
        """The sorted candidates of one gathered bucket."""
        start = int(self.cand_signed_before(bucket))
        return by_value[start:start + int(self.counts[bucket])]

    def count_below(self, t: np.ndarray, by_value: np.ndarray) -> np.ndarray:
        """#{w < t} for each of the float32 thresholds ``t`` (finite or ±inf; +0 is taken
        as −0, the same value, whose bucket holds no positive weight)."""
        t = np.where(t == 0, np.float32(-0.0), t).astype(np.float32)
        pos = _POSITION[_signed_buckets(t)]
        whole = self.signed_cum[pos] - self.signed(pos)  # buckets wholly below t's
        inside = np.searchsorted(by_value, t, side="left") - self._before_at(pos)
        return whole + inside

    def count_magnitude_below(self, c: np.ndarray, by_value: np.ndarray) -> np.ndarray:
        """#{|w| < c} = #{w < c} − #{w ≤ −c} for each float32 of ``c``: none for c ≤ 0 or
        NaN, all for c = inf."""
        inside = (c > 0) & np.isfinite(c)
        within = c[inside]
        both = self.count_below(np.concatenate([within, _next_up(-within)]), by_value)
        out = np.where(c == np.inf, self.n, 0).astype(np.int64)
        out[inside] = both[:len(within)] - both[len(within):]
        return out


def _kth_smallest(a: np.ndarray, b: np.ndarray, k: int):
    """The k-th smallest (0-based) of two ascending arrays together, in O(log) steps: the
    smallest count i taken from ``a`` whose next value is not below b's last one taken."""
    lo, hi = max(0, k + 1 - len(b)), min(k + 1, len(a))
    while lo < hi:
        i = (lo + hi) // 2
        if b[k - i] > a[i]:  # b[j − 1] with j = k + 1 − i: a's share is too small
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    return max(a[lo - 1] if lo else -np.inf, b[j - 1] if j else -np.inf)


def _next_up(t) -> np.float32:
    """The next float32 above ``t`` (w ≤ t  ⇔  w < next_up(t))."""
    return np.nextafter(np.float32(t), np.float32(np.inf))


def _level_floats(levels) -> list:
    """The cutoffs known before the gather, as float32 (positive finite ones only)."""
    out = []
    for c, _ in levels:
        c32 = None if c is None else np.float32(c)
        out.append(c32 if c32 is not None and c32 > 0 and math.isfinite(c32) else None)
    return out


def _shared_levels(cutoffs, std: float, median_buckets: np.ndarray) -> list:
    """Per cutoff: (its value, or None for a med cutoff whose median is not known yet; the
    magnitude buckets its count needs). A med cutoff t·median|w| lies between t × the
    smallest and t × the largest value of the median's buckets, so its bucket is in a short
    range known before the gather."""
    lo = float(np.uint32(int(median_buckets.min()) << 16).view(np.float32))
    hi = float(np.uint32(((int(median_buckets.max()) + 1) << 16) - 1).view(np.float32))
    out = []
    for c, value in zip(cutoffs, _cutoff_values(cutoffs, lambda: std, lambda: math.nan)):
        if isinstance(c, tuple) and c[0] == "med":
            t = float(c[1])
            if not t > 0:  # then c ≤ 0 (or NaN): a count of none, which needs no bucket
                out.append((None, []))
                continue
            # t × an end may round to 0 or overflow where t·median|w| does not: the ends'
            # buckets are then the smallest and the largest finite ones
            first, last = (_bucket_at_most_finite(np.float32(t * end)) for end in (lo, hi))
            # one bucket lower too: next_up(−c) of :meth:`_Buckets.count_magnitude_below`
            out.append((None, list(range(max(first - 1, 0), last + 1))))
        else:
            bucket = _magnitude_bucket(np.float32(value))
            out.append((value, [] if bucket is None else [bucket]))
    return out


def _bucket_at_most_finite(c: np.float32) -> int:
    """The magnitude bucket of a float32 c ≥ 0, that of the largest finite float32 for inf."""
    return int(np.asarray(min(c, np.finfo(np.float32).max), dtype=np.float32).view(np.uint32)) >> 16


def _magnitude_bucket(c: np.float32) -> int | None:
    """The magnitude bucket of a positive finite float32 (None for ≤ 0, inf or NaN: their
    counts need no bucket)."""
    if not (c > 0 and math.isfinite(c)):
        return None
    return int(np.asarray(c).view(np.uint32)) >> 16


def _signed_buckets(t: np.ndarray) -> np.ndarray:
    """The bucket (top 16 bits) of each float32 of ``t``, +0 taken as −0 (see
    :meth:`_Buckets.count_below`)."""
    t = np.where(t == 0, np.float32(-0.0), np.asarray(t, dtype=np.float32)).astype(np.float32)
    return (t.view(np.uint32) >> 16).astype(np.intp)


@functools.lru_cache(maxsize=1024)  # a layer's R and bins are fixed for its whole run
def _histogram_thresholds(half_range: float, bins: int) -> np.ndarray:
    """For each bin b = 1..bins−1, the smallest float32 t whose bin (the float32 rule of
    :func:`_histogram_numpy`) is ≥ b: that rule is non-decreasing in w (a rounded add, a
    rounded product by a positive factor, a clip, a truncation), so bin b and above hold
    exactly the weights ≥ t, and counts follow from :meth:`_Buckets.count_below`. Found by
    bisection over the float32 values in order (their ordered integer keys)."""
    shift, scale = np.float32(half_range), np.float32(bins / (2 * half_range))
    targets = np.arange(1, bins)

    def bin_of(keys):
        values = _float_of_key(keys)
        with np.errstate(over="ignore", invalid="ignore"):
            return np.clip((values + shift) * scale, 0, bins - 1).astype(np.intp)

    lo = np.full(len(targets), _key_of(np.float32(-np.inf)), dtype=np.int64)
    hi = np.full(len(targets), _key_of(np.float32(np.inf)), dtype=np.int64)
    while np.any(lo < hi):  # smallest key with bin >= target (bin(+inf) = bins − 1)
        mid = (lo + hi) // 2
        up = bin_of(mid) >= targets
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid + 1)
    out = _float_of_key(lo)
    out.flags.writeable = False  # shared by every call with these arguments
    return out


def _key_of(value: np.float32) -> int:
    """Ordered integer key of a float32 (signed int order == float order)."""
    bits = int(np.asarray(value, dtype=np.float32).view(np.int32))
    return bits ^ 0x7FFFFFFF if bits < 0 else bits


def _float_of_key(keys) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    bits = np.where(keys < 0, keys ^ 0x7FFFFFFF, keys).astype(np.int32)
    return bits.view(np.float32)


def _median_abs_numpy(mag: np.ndarray, check_nan: bool = True) -> float:
    """numpy.median of the magnitudes ``mag`` (≥ 0), by a one-shift radix selection.

    Non-negative float32 values order like their int32 bit patterns, so the bucket of a value
    is just its top bits (no sign handling): one shift and one count over the tensor, then only
    the one or two buckets holding the middle ranks are partitioned. Half the cost of the
    general selection, which matters because this runs on every layer at every record.
    """
    if check_nan or mag.dtype != np.float32 or mag.size < _RADIX_MIN:
        return float(_quantiles_numpy(mag, (0.5,), check_nan=check_nan)[0])
    ranks, lo_pos, hi_pos, gamma = _quantile_plan(mag.size, (0.5,))
    key = np.right_shift(mag.view(np.int32), 32 - _RADIX_BITS)  # < 2^15: sign bit is 0
    counts = np.bincount(key, minlength=1 << (_RADIX_BITS - 1))
    cum = np.cumsum(counts)
    buckets = np.searchsorted(cum, ranks, side="right")
    local = ranks - (cum[buckets] - counts[buckets])
    stats = np.empty(len(ranks))
    for bucket in np.unique(buckets):
        sel = buckets == bucket
        values = mag[key == bucket]
        stats[sel] = np.partition(values, local[sel])[local[sel]]
    return float(_lerp(stats[lo_pos], stats[hi_pos], gamma)[0])


def _histogram_numpy(arr: np.ndarray, half_range: float, bins: int, buf: np.ndarray,
                     check_nan: bool = True) -> np.ndarray:
    """Counts of floor((w + R)·bins / 2R) clamped to [0, bins − 1]; NaN not counted."""
    scale = np.float32(bins / (2 * half_range))
    with np.errstate(invalid="ignore", over="ignore"):
        np.add(arr, np.float32(half_range), out=buf)
        np.multiply(buf, scale, out=buf)
        np.clip(buf, 0, bins - 1, out=buf)  # outside values go to the end bins
    if check_nan and np.isnan(buf).any():
        buf = buf[~np.isnan(buf)]
    return np.bincount(buf.astype(np.intp), minlength=bins).astype(np.float64)


def _histogram(flat: Tensor, half_range: float, bins: int) -> Tensor:
    """The rule of :func:`_histogram_numpy` on the tensor's device, in the same float32 steps.

    Not ``torch.histc``: it places values on bin edges by its own arithmetic, so a record
    would depend on the device it was computed on.
    """
    scale = float(np.float32(bins / (2 * half_range)))  # the numpy path's float32 factor
    idx = ((flat.to(torch.float32) + float(np.float32(half_range))) * scale).clamp_(0, bins - 1)
    idx = idx[~torch.isnan(idx)]  # NaN weights are not counted
    return torch.bincount(idx.long(), minlength=bins).to(torch.float64)


def _moments(flat: Tensor, mag: Tensor) -> Tensor:
    """mean, std (ddof 0), max|w|, ‖w‖₂, participation ratio, in float64."""
    n = flat.numel()
    if n == 0:
        return torch.full((len(MOMENTS),), math.nan, dtype=torch.float64, device=flat.device)
    total = flat.sum(dtype=torch.float64)
    l1 = mag.sum(dtype=torch.float64)
    l2 = torch.linalg.vector_norm(flat, dtype=torch.float64)
    absmax = mag.max().to(torch.float64)
    mean = total / n
    # Var = E[w²] − mean²; |mean| ≪ std for weights, so the cancellation is harmless.
    std = torch.sqrt(torch.clamp(l2 * l2 / n - mean * mean, min=0.0))
    participation = l1 * l1 / (n * l2 * l2)
    return torch.stack([mean, std, absmax, l2, participation])


# ---------------------------------------------------------------- many small layers at once

#: Layers of at most this many weights (float32 on the CPU) are summarised together: their
#: weights are concatenated and every statistic is a segment reduction over the concatenation
#: (one sort of all of them, one ``bincount`` per measure), instead of a dozen numpy calls per
#: layer. A model of 10,000 tiny layers then costs a few vectorised passes, not 10,000 loops.
#: The results are bit-equal to :func:`weight_summary` (the same float32/float64 steps).
BATCH_MAX_NUMEL = 4096


def batchable(x: Tensor) -> bool:
    """Whether :func:`weight_summaries` takes ``x`` (a small, non-empty CPU float tensor)."""
    return (x.device.type == "cpu" and 0 < x.numel() <= BATCH_MAX_NUMEL
            and x.dtype in (torch.float32, torch.float16, torch.bfloat16))


class _Segments:
    """Flat float32 weights of several tensors, one segment each, with their sorted order."""

    def __init__(self, tensors: Sequence[Tensor]):
        arrays = [_flat(t).numpy() for t in tensors]
        self.n = np.array([a.size for a in arrays], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.n)[:-1]]).astype(np.int64)
        self.values = np.concatenate(arrays) if arrays else np.zeros(0, np.float32)
        self.seg = np.repeat(np.arange(len(arrays), dtype=np.int64), self.n)
        self.has_nan = np.add.reduceat(np.isnan(self.values), self.offsets) > 0 \
            if len(arrays) else np.zeros(0, bool)

    def sorted_values(self, values: np.ndarray) -> np.ndarray:
        """``values`` (float32, one per weight) sorted inside each segment, in one sort.

        Each value becomes an unsigned 32-bit key that orders like the float (the radix keys
        of the selection, unshifted), prefixed by its segment number: one 64-bit sort orders
        every segment at once. NaN segments come out in some order; their quantiles are NaN.
        """
        bits = values.view(np.int32)
        key = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # signed int order == float order
        ukey = (key.view(np.uint32) ^ np.uint32(0x80000000)).astype(np.uint64)
        full = np.sort((self.seg.astype(np.uint64) << np.uint64(32)) | ukey)
        low = (full & np.uint64(0xFFFFFFFF)).astype(np.uint32) ^ np.uint32(0x80000000)
        key = low.view(np.int32)
        return (key ^ ((key >> 31) & 0x7FFFFFFF)).view(np.float32)

    def quantiles(self, sorted_vals: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
        """numpy's ``linear`` quantiles of each segment from its sorted values: (segments, Q).

        The index arithmetic of :func:`_quantile_plan`, element-wise over the segments."""
        q = np.asarray(quantiles, dtype=np.float64)
        n = self.n[:, None]
        virtual = (n - 1) * q
        lo = np.floor(virtual)
        gamma = virtual - lo
        lo = np.clip(lo, 0, n - 1).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        hi = np.where(virtual < 0, 0, hi)
        base = self.offsets[:, None]
        a = sorted_vals[base + lo].astype(np.float64)
        b = sorted_vals[base + hi].astype(np.float64)
        with np.errstate(invalid="ignore"):  # inf − inf where both order statistics are inf
            out = _lerp(a, b, gamma)
        out[self.has_nan] = np.nan
        return out

    def total(self, values: np.ndarray) -> np.ndarray:
        """The float64 sum of each segment, bit-equal to ``np.add.reduce(segment,
        dtype=float64)``: segments of one length are summed as the rows of one 2-D array
        (numpy's pairwise summation runs per row). ``np.add.reduceat`` is no substitute: it
        sums sequentially, which differs in the last bits."""
        out = np.empty(len(self.n))
        for size in np.unique(self.n):
            rows = np.flatnonzero(self.n == size)
            block = values[self.offsets[rows, None] + np.arange(size)]
            out[rows] = np.add.reduce(block, axis=1, dtype=np.float64)
        return out

    def count(self, mask: np.ndarray) -> np.ndarray:
        """True entries of ``mask`` per segment."""
        return np.bincount(self.seg[mask], minlength=len(self.n))


def segment_quantiles(tensors: Sequence[Tensor], quantiles: Sequence[float]) -> np.ndarray:
    """:func:`exact_quantiles` of each of several :func:`batchable` tensors: (tensors, Q)."""
    segs = _Segments(tensors)
    if not len(segs.n):
        return np.zeros((0, len(quantiles)))
    return segs.quantiles(segs.sorted_values(segs.values), quantiles)


def weight_summaries(tensors: Sequence[Tensor], quantiles: Sequence[float],
                     cutoffs: Sequence[Sequence], half_ranges: Sequence[float],
                     bins: int) -> np.ndarray:
    """:func:`weight_summary` of each of several :func:`batchable` tensors, computed together.

    Args:
        tensors: the weight tensors (each :func:`batchable`).
        quantiles: as :func:`weight_summary`.
        cutoffs: per tensor, its cutoffs as :func:`weight_summary` takes them (the same kinds,
            in the same order, for every tensor).
        half_ranges: per tensor, R of its histogram range.
        bins: histogram bins.

    Returns:
        float64 array (tensors, :attr:`SummaryLayout.size`), row i bit-equal to
        ``weight_summary(tensors[i], ...)``.
    """
    segs = _Segments(tensors)
    count = len(segs.n)
    if count == 0:
        return np.zeros((0, SummaryLayout(len(quantiles), 0, bins).size))
    n, vals = segs.n, segs.values
    mag = np.abs(vals)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        total = segs.total(vals)
        l1 = segs.total(mag)
        absmax = np.maximum.reduceat(mag, segs.offsets).astype(np.float64)
        l2 = np.sqrt(segs.total(mag * mag))
        mean = total / n
        finite = np.isfinite(l2)
        std = np.where(finite, np.sqrt(np.maximum(l2 * l2 / n - mean * mean, 0.0)), np.nan)
        part = np.where(l2 > 0, l1 * l1 / (n * l2 * l2), np.nan)
    median_abs = None
    if any(isinstance(c, tuple) and c[0] == "med" for c in cutoffs[0]):
        median_abs = segs.quantiles(segs.sorted_values(mag), (0.5,))[:, 0]
    fractions = np.zeros((count, len(cutoffs[0])))
    for j, first in enumerate(cutoffs[0]):
        level = _segment_levels([c[j] for c in cutoffs], first, std, median_abs)
        with np.errstate(invalid="ignore", over="ignore"):
            # a Python float compares with float32 weights in float32 (NumPy 2): the same here
            below = mag < level.astype(np.float32)[segs.seg]
        fractions[:, j] = segs.count(below) / n
    hist = _segment_histogram(segs, vals, np.asarray(half_ranges, dtype=np.float64), bins)
    quants = segs.quantiles(segs.sorted_values(vals), quantiles)
    moments = np.stack([mean, std, absmax, l2, part], axis=1)
    flag = (~finite).astype(np.float64)[:, None]
    return np.concatenate([quants, fractions, hist, moments, flag], axis=1)


def _segment_levels(column: list, first, std: np.ndarray, median_abs) -> np.ndarray:
    """One threshold's cutoff for every tensor, as :func:`_cutoff_values` scales it (t × std
    or t × median|w| in float64, element-wise)."""
    if not isinstance(first, tuple):
        return np.array([float(c) for c in column], dtype=np.float64)
    kind, t = first
    if kind not in RECORD_SCALED:
        raise WcvizError(f"record-scaled cutoff kind must be one of {RECORD_SCALED}, "
                         f"got {kind!r}")
    return float(t) * (std if kind == "std" else median_abs)


def _segment_histogram(segs: _Segments, vals: np.ndarray, half: np.ndarray,
                       bins: int) -> np.ndarray:
    """The rule of :func:`_histogram_numpy` per segment, in the same float32 steps."""
    scale = (bins / (2 * half)).astype(np.float32)[segs.seg]
    with np.errstate(invalid="ignore", over="ignore"):
        buf = (vals + half.astype(np.float32)[segs.seg]) * scale
        np.clip(buf, 0, bins - 1, out=buf)
    keep = ~np.isnan(buf)
    index = segs.seg[keep] * bins + buf[keep].astype(np.intp)
    return np.bincount(index, minlength=len(segs.n) * bins).reshape(-1, bins).astype(np.float64)


def initial_scales(weights: Sequence[Tensor]) -> list[tuple[float, float]]:
    """:func:`initial_scale` of each tensor; the :func:`batchable` ones computed together."""
    out: list = [None] * len(weights)
    small = [i for i, w in enumerate(weights) if batchable(w)]
    if small:
        layout = SummaryLayout(0, 0, 1)
        rows = layout.unpack(weight_summaries([weights[i] for i in small], (),
                                              [()] * len(small), [1.0] * len(small), 1))
        for j, i in enumerate(small):
            if not rows["nonfinite_flag"][j]:  # non-finite ones: initial_scale drops them
                out[i] = (float(rows["weight_std"][j]), float(rows["weight_absmax"][j]))
    return [o if o is not None else initial_scale(w) for o, w in zip(out, weights)]
