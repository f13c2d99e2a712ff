"""Exact statistics of sharded (DTensor) weights, without gathering them on any rank.

Under FSDP2 (``torch.distributed.fsdp.fully_shard``) or ``distribute_tensor`` a parameter is a
DTensor: each rank holds a piece (its *shard*). Every statistic of
:func:`wcviz.record.stats.weight_summary` is a function of the multiset of values, so it can be
computed from the pieces: each rank reduces its own shard to a few numbers or counts, one
``all_reduce`` combines them, and every rank ends with the same summary vector, laid out as
:class:`~wcviz.record.stats.SummaryLayout` describes.

* **counts** (n, NaN count, near-zero counts, histogram counts) are summed exactly (int64 or
  float64 integers below 2^53); the histogram uses the same float32 bin rule as one device.
* **sums** (Σw, Σ|w|, Σw²) are float64 partial sums per rank, all-reduced in float64; mean,
  std, ‖w‖₂ and the participation ratio then follow the single-device formulas. They equal
  numpy's to float64 rounding (about 1e-15 relative), not bit for bit: numpy's pairwise
  summation order cannot be reproduced from pieces. max|w| is exact (a MAX reduction).
* **quantiles** (and the median |w| of ``med`` cutoffs) are exactly numpy's ``linear``
  quantiles, by a distributed radix *select*: every value maps to an order-preserving integer
  key (32 bits for float32), and the key of each wanted order statistic is found digit by
  digit, most significant first (16, then 8, then 8 bits; 16 per pass for float64). In each
  pass every rank counts, per candidate prefix, how many of its values fall on each next digit;
  one ``all_reduce`` of those counts (at most 2^16 per wanted rank) tells every rank the digit.
  Three passes fix a float32 exactly. Unlike one device, which orders the few candidates of its
  bucket in memory, candidates here are spread over ranks, so counting continues instead; after
  the first pass a rank looks only at its values in the wanted buckets (kept when there are at
  most :data:`CHUNK` of them, found again by a rescan otherwise).

Memory: each rank streams its own shard in chunks of :data:`CHUNK` elements, so a record needs
its shard (which it holds anyway) plus O(chunk + buckets) on top, never a full weight.

Placements: ``Shard(d)`` on any mesh dimension and ``Replicate`` (a replicated piece counts
once: only the ranks at coordinate 0 of each replicated mesh dimension contribute). ``Partial``
and any other placement are refused in one line: its pieces are not values of the weight.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from wcviz.errors import WcvizError
from wcviz.record import stats as S

#: Elements per streamed piece of a shard (4 MiB of float32): bounds a record's extra memory.
CHUNK = 1 << 20
#: Digit widths (bits) of the radix select per key width: the first pass splits the value range
#: in 2^16 buckets (1/128 octave for float32); later passes narrow the few wanted buckets.
_DIGITS = {32: (16, 8, 8), 64: (16, 16, 16, 16)}
#: Default seconds a rank waits at a record for the others (``Recorder(sync_timeout=...)``).
SYNC_TIMEOUT = 600.0


def is_dtensor(x) -> bool:
    """Whether ``x`` is a ``torch.distributed.tensor.DTensor``."""
    if not dist.is_available():
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(x, DTensor)


# ---------------------------------------------------------------- the public summaries


def sharded_summary(x: Tensor, quantiles: Sequence[float], cutoffs: Sequence, half_range: float,
                    bins: int) -> Tensor:
    """:func:`wcviz.record.stats.weight_summary` of a DTensor, from its shards.

    A collective: every rank of ``x``'s device mesh calls it, in the same order as its other
    collectives, and gets the same float64 vector (on its shard's device). No rank holds more
    than its own shard. Arguments and layout are those of ``weight_summary``.

    Raises:
        WcvizError: a placement other than Shard/Replicate (e.g. Partial).
    """
    local, group = local_part(x)
    return _summary(local, group, quantiles, cutoffs, half_range, bins)


def sharded_quantiles(x: Tensor, quantiles: Sequence[float]) -> Tensor:
    """Exactly ``numpy.quantile(full_x, quantiles)`` of a DTensor (a collective; float64)."""
    local, group = local_part(x)
    head = _all_reduce(torch.stack([_count(local), _nan_count(local)]), group)
    return _quantiles(local, group, int(head[0]), bool(head[1]), quantiles)


#: ``shared=True`` below: the tensor may be the unsharded storage of an FSDP2 parameter (a
#: forward leaves the root's parameters unsharded). numpy must not wrap it: ``.numpy()`` makes a
#: storage unresizable, and FSDP2 frees it by resizing, so statistics then use torch ops.


def summary(x: Tensor, quantiles, cutoffs, half_range: float, bins: int,
            shared: bool = False) -> Tensor:
    """``weight_summary`` of a plain tensor, :func:`sharded_summary` of a DTensor."""
    if is_dtensor(x):
        return sharded_summary(x, quantiles, cutoffs, half_range, bins)
    return S.weight_summary(x, quantiles, cutoffs, half_range, bins,
                            backend="torch" if shared else None)


def quantiles_of(x: Tensor, quantiles, shared: bool = False) -> Tensor:
    """``exact_quantiles`` of a plain tensor, :func:`sharded_quantiles` of a DTensor."""
    if is_dtensor(x):
        return sharded_quantiles(x, quantiles)
    return S.exact_quantiles(x, quantiles, backend="torch" if shared else None)


def l2_norm(x: Tensor) -> Tensor:
    """‖x‖₂ accumulated in float64, shape (1,): of a plain tensor, or of a DTensor from its
    shards (their sums of squares all-reduced, then the root; a collective)."""
    if not is_dtensor(x):
        return torch.linalg.vector_norm(x.detach(), dtype=torch.float64).reshape(1)
    local, group = local_part(x.detach())
    sumsq = torch.linalg.vector_norm(local, dtype=torch.float64).square().reshape(1)
    return _all_reduce(sumsq, group).sqrt()


def initial_scale(x: Tensor, shared: bool = False) -> tuple[float, float]:
    """:func:`wcviz.record.stats.initial_scale` (std, max|w| over the finite weights) of a plain
    tensor or a DTensor (then a collective)."""
    if not is_dtensor(x):
        if not shared:
            return S.initial_scale(x)
        local, group = S._flat(x), None
    else:
        local, group = local_part(x)
    layout = S.SummaryLayout(0, 0, 1)
    out = layout.unpack(_scale_summary(local, group).cpu().numpy())
    if out["nonfinite_flag"]:  # every rank sees the same flag: the same collectives follow
        out = layout.unpack(_scale_summary(local[torch.isfinite(local)], group).cpu().numpy())
    absmax = float(out["weight_absmax"])
    return float(out["weight_std"]), absmax if math.isfinite(absmax) else 0.0


def _scale_summary(local: Tensor, group) -> Tensor:
    """Moments of the values (a summary with no quantile, no cutoff and one bin)."""
    if group is None:  # a whole plain tensor, in torch ops
        return S.weight_summary(local, (), (), 1.0, 1, backend="torch")
    return _summary(local, group, (), (), 1.0, 1)


def nonfinite(x: Tensor) -> tuple[float, bool]:
    """(number of NaN/±inf values, whether one is NaN) of a plain tensor or a DTensor."""
    if not is_dtensor(x):
        return float((~torch.isfinite(x)).sum()), bool(torch.isnan(x).any())
    local, group = local_part(x)
    counts = torch.stack([(~torch.isfinite(local)).sum(dtype=torch.float64), _nan_count(local)])
    counts = _all_reduce(counts, group)
    return float(counts[0]), bool(counts[1])


def plain(x):
    """A DTensor's full value (meant for scalars such as a learnable a); others unchanged."""
    return x.full_tensor() if is_dtensor(x) else x


# ---------------------------------------------------------------- shards and process groups


def local_part(x: Tensor) -> tuple[Tensor, object]:
    """(this rank's contribution as a flat float tensor, the process group of ``x``'s mesh).

    A replicated piece is contributed by one rank only, so every value counts once.
    """
    mesh = x.device_mesh
    for p in x.placements:
        if not (p.is_shard() or p.is_replicate()):
            raise WcvizError(f"wcviz records DTensor weights placed with Shard or Replicate, not "
                             f"{p} (placements {tuple(x.placements)}); redistribute the tensor "
                             f"to Shard/Replicate first")
    coord = mesh.get_coordinate()
    copy = any(p.is_replicate() and coord[d] != 0 for d, p in enumerate(x.placements))
    local = S._flat(x.to_local())
    return (local[:0] if copy else local), _mesh_group(mesh)


def _mesh_group(mesh):
    """The process group spanning ``mesh``: its own for a 1-D mesh, the world for one covering
    every rank."""
    if mesh.ndim == 1:
        return mesh.get_group()
    if mesh.size() == dist.get_world_size():
        return dist.group.WORLD
    raise WcvizError(f"wcviz records DTensors on a 1-D device mesh or one spanning every rank; "
                     f"this one has shape {tuple(mesh.shape)} over {mesh.size()} of "
                     f"{dist.get_world_size()} ranks")


def _chunks(local: Tensor):
    """The non-empty pieces of ``local`` of at most :data:`CHUNK` elements."""
    return [c for c in local.split(CHUNK) if c.numel()]


def _all_reduce(t: Tensor, group, op=None) -> Tensor:
    dist.all_reduce(t, op=op or dist.ReduceOp.SUM, group=group)
    return t


# ---------------------------------------------------------------- one layer


def _count(local: Tensor) -> Tensor:
    return torch.tensor(float(local.numel()), dtype=torch.float64, device=local.device)


def _nan_count(local: Tensor) -> Tensor:
    return torch.isnan(local).sum(dtype=torch.float64)


def _summary(local: Tensor, group, quantiles, cutoffs, half_range: float, bins: int) -> Tensor:
    """The summary vector from this rank's values ``local`` (collective over ``group``)."""
    dev = local.device
    fixed = [float(c) for c in cutoffs if not isinstance(c, tuple)]
    sums, absmax = _local_sums(local, fixed, half_range, bins)
    sums = _all_reduce(sums, group)
    absmax = _all_reduce(absmax, group, dist.ReduceOp.MAX)
    n, total, l1, sumsq, nans = (float(v) for v in sums[:5])
    counts, hist = sums[5:5 + len(fixed)], sums[5 + len(fixed):]
    n = int(n)
    moments = _moments(n, total, l1, sumsq, math.nan if nans else float(absmax))
    flag = 0.0 if math.isfinite(moments[3]) else 1.0  # ‖w‖₂ non-finite, as on one device
    if n == 0:  # as weight_summary of an empty tensor
        return torch.from_numpy(np.concatenate(
            [np.full(len(quantiles), np.nan), np.zeros(len(cutoffs)), np.zeros(bins),
             np.full(len(moments), np.nan), [0.0]])).to(dev)
    scaled = [c for c in cutoffs if isinstance(c, tuple)]
    want_median = any(kind == "med" for kind, _ in scaled)
    quants, median = _selections(local, group, n, nans > 0, quantiles, want_median)
    levels = S._cutoff_values(scaled, lambda: moments[1], lambda: median)
    scaled_counts = _scaled_counts(local, group, levels)
    fractions = _in_order(cutoffs, counts.cpu().numpy(), scaled_counts) / n
    return torch.from_numpy(np.concatenate(
        [quants, fractions, hist.cpu().numpy(), moments, [flag]])).to(dev)


def _local_sums(local: Tensor, fixed: list[float], half_range: float, bins: int):
    """(float64 [n, Σw, Σ|w|, Σw², NaN count, count below each fixed cutoff, histogram], max|w|)
    of this rank's values, streamed in chunks."""
    dev = local.device
    sums = torch.zeros(5 + len(fixed) + bins, dtype=torch.float64, device=dev)
    absmax = torch.zeros(1, dtype=torch.float64, device=dev)  # |w| >= 0: 0 is neutral for max
    sums[0] = local.numel()
    for chunk in _chunks(local):
        mag = chunk.abs()
        wide = chunk.to(torch.float64)
        sums[1] += wide.sum()
        sums[2] += mag.sum(dtype=torch.float64)
        sums[3] += torch.dot(wide, wide)
        sums[4] += torch.isnan(chunk).sum()
        for i, c in enumerate(fixed):  # a Python float compares in the chunk's dtype, as on one device
            sums[5 + i] += torch.count_nonzero(mag < c)
        sums[5 + len(fixed):] += S._histogram(chunk, half_range, bins)
        absmax = torch.maximum(absmax, mag.max().to(torch.float64).reshape(1))
    return sums, absmax


def _moments(n: int, total: float, l1: float, sumsq: float, absmax: float) -> np.ndarray:
    """mean, std (ddof 0), max|w|, ‖w‖₂, participation ratio from the global sums, by the
    formulas of :func:`wcviz.record.stats.weight_summary`'s CPU path."""
    if n == 0:
        return np.full(len(S.MOMENTS), np.nan)
    l2 = math.sqrt(sumsq) if sumsq >= 0 else math.nan  # NaN stays NaN
    mean = total / n
    std = math.sqrt(max(l2 * l2 / n - mean * mean, 0.0)) if math.isfinite(l2) else math.nan
    participation = l1 * l1 / (n * l2 * l2) if l2 > 0 else math.nan
    return np.array([mean, std, absmax, l2, participation], dtype=np.float64)


def _scaled_counts(local: Tensor, group, levels: list[float]) -> np.ndarray:
    """Global counts of |w| below each record-scaled cutoff (one all_reduce)."""
    if not levels:
        return np.zeros(0)
    counts = torch.zeros(len(levels), dtype=torch.float64, device=local.device)
    for chunk in _chunks(local):
        mag = chunk.abs()
        for i, c in enumerate(levels):  # NaN cutoff (median of NaN weights): counts nothing
            counts[i] += torch.count_nonzero(mag < float(c))
    return _all_reduce(counts, group).cpu().numpy()


def _in_order(cutoffs, fixed_counts: np.ndarray, scaled_counts: np.ndarray) -> np.ndarray:
    """The fixed and the record-scaled counts back in the order of ``cutoffs``."""
    out = np.zeros(len(cutoffs))
    fixed, scaled = iter(fixed_counts), iter(scaled_counts)
    for i, c in enumerate(cutoffs):
        out[i] = next(scaled) if isinstance(c, tuple) else next(fixed)
    return out


# ---------------------------------------------------------------- quantiles by radix select


def _quantiles(local: Tensor, group, n: int, has_nan: bool, quantiles) -> Tensor:
    quants, _ = _selections(local, group, n, has_nan, quantiles, want_median=False)
    return torch.from_numpy(quants).to(local.device)


def _selections(local: Tensor, group, n: int, has_nan: bool, quantiles, want_median: bool):
    """(numpy's quantiles of the values, their median |w| or None), found together in the
    same radix passes (one all_reduce per pass). NaN anywhere makes both NaN, as numpy."""
    if n == 0 or has_nan:
        return np.full(len(quantiles), np.nan), math.nan
    plans = [S._quantile_plan(n, quantiles)] if len(quantiles) else []
    jobs = [(False, plans[0][0])] if plans else []
    if want_median:
        med_plan = S._quantile_plan(n, (0.5,))
        jobs.append((True, med_plan[0]))
    if not jobs:
        return np.zeros(0), None
    found = _radix_select(local, group, jobs)
    quants = np.zeros(0)
    if plans:
        _, lo, hi, gamma = plans[0]
        with np.errstate(invalid="ignore"):  # inf − inf where both order statistics are inf
            quants = S._lerp(found[0][lo], found[0][hi], gamma)
    median = None
    if want_median:
        _, lo, hi, gamma = med_plan
        median = float(S._lerp(found[-1][lo], found[-1][hi], gamma)[0])
    return np.asarray(quants, dtype=np.float64), median


def _key_width(local: Tensor) -> int:
    return 64 if local.dtype == torch.float64 else 32


def _keys(chunk: Tensor, magnitude: bool) -> Tensor:
    """Order-preserving integer keys of float values (of |values| when ``magnitude``), with
    the sign bit flipped so that the digits read as unsigned numbers increase with the value."""
    if magnitude:
        chunk = chunk.abs()
    width = 64 if chunk.dtype == torch.float64 else 32
    bits = chunk.view(torch.int64 if width == 64 else torch.int32)
    top = (1 << (width - 1)) - 1
    key = (bits >> (width - 1)) & top  # all magnitude bits for negatives, 0 otherwise
    key ^= bits  # negatives: flipped magnitude -> signed int order == float order
    key ^= -(1 << (width - 1))  # the sign bit flipped: unsigned order == float order
    return key


def _radix_select(local: Tensor, group, jobs) -> list[np.ndarray]:
    """For each job (magnitude?, sorted 0-based ranks) the values of those ranks, as float64.

    Each pass fixes one more digit of every wanted key: per job and wanted prefix, count the
    values on each next digit (local), sum the counts over ranks (one all_reduce for all
    jobs), and walk the cumulative counts to the digit holding each rank. After the first
    pass only the values in the wanted top buckets (candidates) are looked at again: kept in
    memory when this rank has at most :data:`CHUNK` of them, else found again by a rescan.
    """
    width = _key_width(local)
    # per job: the prefix (Python int, digits so far) and rank within that prefix, per rank
    state = [([0] * len(ranks), [int(r) for r in ranks]) for _, ranks in jobs]
    sources = [_all_keys(local, magnitude) for magnitude, _ in jobs]
    done = 0  # bits fixed so far
    for digit in _DIGITS[width]:
        shift = width - done - digit
        prefixes = [sorted(set(p)) for p, _ in state]
        local_counts = [_digit_counts(src(), wanted, done, shift, digit, local.device)
                        for src, wanted in zip(sources, prefixes)]
        counts = _all_reduce(torch.cat(local_counts), group).cpu().numpy()
        offset = 0
        for j, (prefix_of, within) in enumerate(state):
            size = len(prefixes[j]) << digit
            block = counts[offset:offset + size].reshape(-1, 1 << digit)
            offset += size
            cum = np.cumsum(block, axis=1)
            for r, (p, k) in enumerate(zip(prefix_of, within)):
                row = cum[prefixes[j].index(p)]
                d = int(np.searchsorted(row, k, side="right"))  # the digit holding rank k
                within[r] = k - (int(row[d - 1]) if d else 0)
                prefix_of[r] = (p << digit) | d
        if done == 0:  # the wanted top buckets are known: narrow each job to its candidates
            sources = [_candidate_keys(local, magnitude, sorted(set(p)), digit, width, n_local)
                       for (magnitude, _), (p, _), n_local in
                       zip(jobs, state, _held(local_counts, state, digit))]
        done += digit
    return [_decode(np.array(p, dtype=np.uint64), width) for p, _ in state]


def _held(local_counts, state, digit: int) -> list[int]:
    """Per job, how many of this rank's values lie in the wanted top buckets (from the first
    pass's local counts, before they were summed)."""
    return [int(c[torch.tensor(sorted(set(p)), dtype=torch.int64, device=c.device)].sum())
            for c, (p, _) in zip(local_counts, state)]


def _all_keys(local: Tensor, magnitude: bool):
    """A source of key chunks: every value's key, chunk by chunk."""
    return lambda: (_keys(chunk, magnitude) for chunk in _chunks(local))


def _candidate_keys(local: Tensor, magnitude: bool, top: list[int], digit: int, width: int,
                    held: int):
    """A source of the keys whose top ``digit`` bits are in ``top``: kept (one tensor) when
    this rank holds at most :data:`CHUNK` of them, else filtered from a rescan each time."""
    shift = width - digit
    lut = torch.zeros(1 << digit, dtype=torch.bool, device=local.device)
    lut[top] = True

    def scan():
        for chunk in _chunks(local):
            key = _keys(chunk, magnitude)
            yield key[lut[((key >> shift) & ((1 << digit) - 1)).long()]]

    if held > CHUNK:
        return scan
    kept = [torch.cat(list(scan()))] if held else []
    return lambda: iter(kept)


def _digit_counts(keys, wanted: list[int], done: int, shift: int, digit: int,
                  device) -> Tensor:
    """Counts (int64) of the keys per (wanted prefix of ``done`` bits, next digit), flat."""
    size = len(wanted) << digit
    out = torch.zeros(size, dtype=torch.int64, device=device)
    table = torch.tensor(wanted, dtype=torch.int64, device=device)
    for key in keys:
        digits = ((key >> shift) & ((1 << digit) - 1)).long()
        if done:
            prefix = ((key >> (shift + digit)) & ((1 << done) - 1)).long()
            slot = torch.searchsorted(table, prefix).clamp_(max=len(wanted) - 1)
            hit = table[slot] == prefix
            digits = slot[hit] * (1 << digit) + digits[hit]
        out += torch.bincount(digits, minlength=size)
    return out


def _decode(keys: np.ndarray, width: int) -> np.ndarray:
    """Float64 values of full keys made by :func:`_keys` (unsigned, sign bit flipped)."""
    if width == 32:
        signed = (keys.astype(np.uint32) ^ np.uint32(1 << 31)).view(np.int32)
        bits = signed ^ ((signed >> 31) & np.int32(0x7FFFFFFF))
        return bits.view(np.float32).astype(np.float64)
    signed = (keys ^ np.uint64(1 << 63)).view(np.int64)
    bits = signed ^ ((signed >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))
    return bits.view(np.float64)


# ---------------------------------------------------------------- every rank at a record


def sharded_model(model: nn.Module) -> bool:
    """Whether ``model`` has DTensor parameters (FSDP2 ``fully_shard``, ``distribute_tensor``)
    under an initialized process group.

    Raises:
        WcvizError: FSDP1 (``FullyShardedDataParallel``), whose flat parameters hold no
            per-layer weights on a rank.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    modules = list(model.modules())
    if any(isinstance(m, FullyShardedDataParallel) for m in modules):
        raise WcvizError("wcviz records FSDP2 models (torch.distributed.fsdp.fully_shard, "
                         "DTensor parameters), not FullyShardedDataParallel (FSDP1), whose flat "
                         "shards mix layers; shard with fully_shard instead")
    # an FSDP2 module counts even while a forward left its parameters unsharded
    return (any(isinstance(m, FSDPModule) for m in modules)
            or any(is_dtensor(p) for p in model.parameters()))


class RankSync:
    """Every rank's part in recording a sharded model: a barrier with a timeout opens each
    record (a rank that does not call ``record`` fails the others in one line, instead of a
    hang), and rank 0 shares its store's plan with the others.

    Args:
        timeout: seconds a rank waits at the barrier for the others.
    """

    def __init__(self, timeout: float = SYNC_TIMEOUT):
        self.timeout = float(timeout)
        self.rank = dist.get_rank()
        # monitored_barrier is gloo's: a gloo group beside an NCCL (or other) default group
        self._group = (None if dist.get_backend() == "gloo" else
                       dist.new_group(backend="gloo", timeout=timedelta(seconds=self.timeout)))

    def barrier(self, what: str) -> None:
        """Wait until every rank reached ``what``; WcvizError after ``timeout`` seconds."""
        try:
            dist.monitored_barrier(group=self._group, timeout=timedelta(seconds=self.timeout),
                                   wait_all_ranks=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WcvizError(
                f"rank {self.rank}: not every rank reached {what} within {self.timeout:g} s "
                f"({first}); with sharded (DTensor/FSDP2) parameters every rank must call it, "
                f"at the same epochs") from None

    def share(self, obj):
        """Rank 0's ``obj``, on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]


class PeerStore:
    """What a rank other than 0 keeps of rank 0's run store when recording a sharded model:
    the quantiles, bins, last recorded epoch (so every rank skips the same epochs) and the
    per-layer variables it holds (so every rank computes the same ones). It writes nothing."""

    def __init__(self, quantiles, n_bins: int, last_epoch: float | None,
                 layer_vars: dict | None = None):
        self.quantiles = list(quantiles)
        self.n_bins = int(n_bins)
        self.last_epoch = last_epoch
        self.n_committed = 0  # this rank commits nothing
        self._layer_vars = dict(layer_vars or {})

    def layer_vars(self) -> dict[str, tuple[str, ...]]:
        """The per-layer variables of rank 0's store, and their dims."""
        return self._layer_vars

    def last_row(self, name: str):
        """Rank 0's values; this rank's part of the update ratio is a difference of shards,
        whose quotient rank 0 alone stores."""
        return np.nan

    def append(self, epoch, step, stats, metrics) -> None:
        self.last_epoch = float(epoch)

    def finish(self, status: str) -> None:
        """Nothing to mark: rank 0 marks the run."""
