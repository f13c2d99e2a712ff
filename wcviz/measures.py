"""What a record measures: the quantile list, near-zero thresholds, histogram defaults.

The facts every reader and writer of run stores shares, kept apart from :mod:`wcviz.stats`
(which computes them with torch) so that the store, the figures and the dashboard can use
them without importing torch. :mod:`wcviz.stats` re-exports all of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from wcviz.errors import WcvizError


#: The default quantile levels, as fractions: min/max and TensorBoard's histogram basis points,
#: the ±1.5σ, ±1σ and ±0.5σ points of a normal (Φ(∓1.5) = 0.0668/0.9332, Φ(∓1) =
#: 0.1587/0.8413, Φ(∓0.5) = 0.3085/0.6915), and the median. A Recorder may record any other
#: set; readers pair bands from the store's own ``quantile`` coordinate (:mod:`wcviz.bands`).
QUANTILES = (0.0, 0.0668, 0.1587, 0.3085, 0.5, 0.6915, 0.8413, 0.9332, 1.0)

#: Near-zero thresholds recorded by default: two absolute, two relative to std at epoch 0.
DEFAULT_THRESHOLDS = ("abs=0.001", "abs=0.01", "rel=0.01", "rel=0.1")

#: Histogram bins per layer. Odd, so that one bin is centred on 0.
DEFAULT_BINS = 81

#: Histogram half-range R = HIST_RANGE_FACTOR × max|w| at the first record: baseline weights
#: grow several-fold early in training (the paper's Fig. 3), so the range leaves room for it.
HIST_RANGE_FACTOR = 4.0

#: Scalar statistics at the end of each summary vector, in this order.
MOMENTS = ("weight_mean", "weight_std", "weight_absmax", "weight_l2", "weight_participation")

_THRESHOLD_RE = re.compile(r"^(abs|rel)=(.+)$")


@dataclass(frozen=True)
class Threshold:
    """A near-zero threshold: ``kind`` "abs" (value in weight units) or "rel" (× std₀)."""

    label: str
    kind: str
    value: float


def parse_threshold(label: str) -> Threshold:
    """Parse ``"abs=<value>"`` or ``"rel=<value>"`` (value > 0).

    Raises:
        WcvizError: on any other form.
    """
    match = _THRESHOLD_RE.match(str(label).strip())
    value = _float_or_nan(match.group(2)) if match else math.nan
    if not match or not (math.isfinite(value) and value > 0):
        raise WcvizError(f"bad near-zero threshold {label!r}; write 'abs=<value>' or "
                         f"'rel=<value>' with a positive value, e.g. 'abs=0.001' or 'rel=0.1'")
    return Threshold(f"{match.group(1)}={match.group(2)}", match.group(1), value)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    """Validate a quantile list (values in [0, 1], increasing); returns it as a tuple."""
    qs = tuple(float(q) for q in quantiles)
    if not qs or any(not 0.0 <= q <= 1.0 for q in qs) or list(qs) != sorted(set(qs)):
        raise WcvizError(f"quantiles must be distinct increasing values in [0, 1], got {qs}")
    return qs
