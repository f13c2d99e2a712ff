"""What a record measures: the quantile list, near-zero measures, histogram defaults.

The facts every reader and writer of run stores shares, kept apart from :mod:`wcviz.record.stats`
(which computes them with torch) so that the store, the figures and the dashboard can use
them without importing torch. :mod:`wcviz.record.stats` re-exports all of them.

Near-zero measures: the ONE definition
--------------------------------------
For a layer with weights w₁..wₙ at one record (epoch), the near-zero fraction of a threshold
is ``f = #{i : |wᵢ| < c} / n`` (strict; exact zeros count; a NaN weight is not near zero),
with the cutoff ``c`` given by the threshold's kind (store label ``"<kind>=<t>"``):

========  ==========================  ===============================================
label     cutoff c                    what it answers
========  ==========================  ===============================================
abs=t     t (weight units)            how many weights are below a fixed magnitude
rel=t     t · σ₀, σ₀ = std(w) at the  the above in units of the layer's *initial*
          first record (creation)     scale; fixed over training, so a layer whose
                                      weights grow ×3 keeps its shape but drops its
                                      fraction (it mixes scale with concentration)
std=t     t · std(w) at this record   scale-free: concentration at zero relative to
                                      the layer's *current* spread (population std)
med=t     t · median(|w|) at this     scale-free and robust to heavy tails (a few huge
          record                      weights inflate std, not the median)
========  ==========================  ===============================================

``std`` and ``med`` are invariant to multiplying a layer by any constant, so they compare
runs whose weights grow at different rates (WC with a/b > 1 grows small weights faster).
But their cutoff falls when the tails are bounded: a map that moves every weight toward zero
(w -> s·arctan(w/s)) can lower their fraction, while it can only raise the fraction of a
fixed cutoff (``abs``, ``rel``: :data:`TAIL_SAFE_KINDS`), which is why claim (ii) of the
paper is decided on ``rel=0.5`` (:mod:`wcviz.report.claims`).
Note ``med=1`` is 50 % by definition; useful values are well below 1.

Across layers a network fraction is reported two ways (:func:`network_fraction`):

* **weight-weighted**: ``Σₗ nₗ fₗ / Σₗ nₗ``, the fraction of *all* weights (the largest layer
  decides it);
* **layer-mean**: ``(1/L) Σₗ fₗ``, each layer counts once (early, small layers count as much
  as late, big ones).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from wcviz.errors import WcvizError

#: The default quantile levels, as fractions: min/max and TensorBoard's histogram basis points,
#: the ±1.5σ, ±1σ and ±0.5σ points of a normal (Φ(∓1.5) = 0.0668/0.9332, Φ(∓1) =
#: 0.1587/0.8413, Φ(∓0.5) = 0.3085/0.6915), and the median. A Recorder may record any other
#: set; readers pair bands from the store's own ``quantile`` coordinate (:mod:`wcviz.report.bands`).
QUANTILES = (0.0, 0.0668, 0.1587, 0.3085, 0.5, 0.6915, 0.8413, 0.9332, 1.0)

#: Near-zero thresholds recorded by default: two absolute, three relative to the std at epoch
#: 0, and the scale-free ones (× the std, × the median |w| of the same record). rel=0.5 and
#: std=0.5 count about 38 % of a normal layer, the order of the paper's "≈ 40 % near zero"
#: (Fig. 4). rel=0.5 is claim (ii)'s headline (:data:`TAIL_SAFE_KINDS`).
DEFAULT_THRESHOLDS = ("abs=0.001", "abs=0.01", "rel=0.01", "rel=0.1", "rel=0.5", "std=0.1",
                      "std=0.5", "med=0.1", "med=0.5")

#: Threshold kinds: label prefix -> the cutoff's scale (see the table above).
THRESHOLD_KINDS = {"abs": "weight units", "rel": "σ₀ (std at the first record)",
                   "std": "std(w) of the same record", "med": "median|w| of the same record"}

#: Kinds whose cutoff is computed from the weights of each record (scale-free).
RECORD_SCALED = ("std", "med")

#: Kinds whose cutoff is fixed over training (weight units, or the layer's initial std). A map
#: that moves every weight toward zero, such as clipping the tails with w -> s·arctan(w/s),
#: can only *raise* their fraction; a record-scaled cutoff (std, med) falls with the tails, so
#: those kinds can read "fewer near zero" from bounding the tails alone (claim (i) leaking into
#: claim (ii)). Claim (ii) is decided on these kinds, the largest rel first.
TAIL_SAFE_KINDS = ("rel", "abs")

#: Preference order of the default threshold that figures, tables and the dashboard show (the
#: largest value of the first kind present): the tail-safe kinds first, so that what is drawn
#: by default is what claim (ii) is decided on; the record-scaled kinds (which mix claim (i)'s
#: bounded tails into the fraction) stay available by name.
DEFAULT_KIND_ORDER = (*TAIL_SAFE_KINDS, *RECORD_SCALED)

#: How a network-wide fraction weights its layers: by weight count, or each layer once.
AGGREGATIONS = ("weights", "layers")

#: Histogram bins per layer. Odd, so that one bin is centred on 0.
DEFAULT_BINS = 81

#: Histogram half-range R = HIST_RANGE_FACTOR × max|w| at the first record: baseline weights
#: grow several-fold early in training (the paper's Fig. 3), so the range leaves room for it.
HIST_RANGE_FACTOR = 4.0

#: Scalar statistics at the end of each summary vector, in this order.
MOMENTS = ("weight_mean", "weight_std", "weight_absmax", "weight_l2", "weight_participation")

_THRESHOLD_RE = re.compile(rf"^({'|'.join(THRESHOLD_KINDS)})=(.+)$")


@dataclass(frozen=True)
class Threshold:
    """A near-zero threshold: ``kind`` ∈ :data:`THRESHOLD_KINDS`, ``value`` t > 0."""

    label: str
    kind: str
    value: float

    def cutoff(self, std0: float = math.nan, std: float = math.nan,
               median_abs: float = math.nan) -> float:
        """The cutoff c of ``|w| < c`` (module docstring): t, t·σ₀, t·std or t·median|w|."""
        scale = {"abs": 1.0, "rel": std0, "std": std, "med": median_abs}[self.kind]
        return self.value * scale

    @property
    def text(self) -> str:
        """The measure as a formula, e.g. ``|w| < 0.1·std(w)``."""
        scale = {"abs": "", "rel": "·σ₀", "std": "·std(w)", "med": "·median|w|"}[self.kind]
        return f"|w| < {self.value:g}{scale}"


def parse_threshold(label: str) -> Threshold:
    """Parse ``"<kind>=<value>"``, kind ∈ abs, rel, std, med (value > 0).

    Raises:
        WcvizError: on any other form.
    """
    match = _THRESHOLD_RE.match(str(label).strip())
    value = _float_or_nan(match.group(2)) if match else math.nan
    if not match or not (math.isfinite(value) and value > 0):
        raise WcvizError(f"bad near-zero threshold {label!r}; write '<kind>=<value>' with kind "
                         f"abs, rel, std or med and a positive value, e.g. 'abs=0.001', "
                         f"'rel=0.1' or 'std=0.5'")
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


def network_fraction(fractions, numel, how: str = "weights"):
    """Network-wide near-zero fraction from per-layer fractions (module docstring).

    Args:
        fractions: array (..., layer) of per-layer fractions.
        numel: weights per layer (``layer_numel``).
        how: "weights" (Σ nₗ fₗ / Σ nₗ) or "layers" (mean over layers, each once).

    Returns:
        numpy array of the leading shape of ``fractions``.
    """
    frac = np.asarray(fractions, dtype=float)
    if how == "layers":
        return frac.mean(axis=-1)
    if how != "weights":
        raise WcvizError(f"unknown near-zero aggregation {how!r}; choose one of: "
                         f"{', '.join(AGGREGATIONS)}")
    n = np.asarray(numel, dtype=float)
    return frac @ n / n.sum()


#: The customary healthy update-to-weight ratio ‖Δw‖ / ‖w‖ per optimizer step (a rule of thumb
#: for tuning the learning rate); the reference line of the update-ratio figures.
UPDATE_RATIO_REFERENCE = 1e-3
