"""The paper's claims decided over seeds: paired differences, corrected tests, power, verdicts.

A claim compared on one baseline run and one WC run flips between seeds when the gap is small.
Here a claim is decided on *groups* of runs (the same configuration, several seeds), paired
by seed (:func:`wcviz.report.seeds.pair_by_seed`); one pair of runs is a study of one seed per
arm (:func:`compare_pair`), decided by the same rules (and so never HOLDS on its own).

Per measure:

* per group, the mean ± std (sample, ddof = 1) of the measure over the paired seeds;
* the paired difference d = WC − baseline (per seed), its mean, the 95 % confidence interval
  and the two-sided p-value of the paired t test (``scipy.stats.ttest_1samp`` of d);
* the exact sign-flip permutation p-value (:func:`signflip_p`: all 2ⁿ sign patterns of d, no
  normality assumed). Its smallest possible value is 2/2ⁿ, so below :data:`SIGNFLIP_MIN_N`
  pairs it cannot reach :data:`ALPHA` whatever the data; it is printed as a check beside the
  t test, never as the deciding test, and says so when n is too small;
* for an INCONCLUSIVE verdict, the smallest difference that n could have detected
  (:func:`min_detectable`: 80 % power of the two-sided t test at the row's level, from the
  observed SD of d).

The family (Holm–Bonferroni, :func:`holm`): each comparison's **headline** tests, the
headline measure of claim (ii) and the non-inferiority and difference tests of claim (iii),
over every comparison decided together (``wcviz compare ROOT``, ``wcviz reproduce``:
:func:`correct_family`). Their verdicts decide on the Holm-adjusted p (``p_holm``). Every other
measure is **exploratory**: decided on its raw p, and labelled so.

Verdicts (:func:`verdict`): fewer than :data:`MIN_SEEDS` paired seeds are INCONCLUSIVE. For
(ii) and the context measures: **HOLDS** when p < :data:`ALPHA` and d lies on the side the
paper predicts, **FAILS** when p < α on the other side, else **INCONCLUSIVE**. For (iii)
("keeps or improves"): **IMPROVES** / **WORSE** when the difference test rejects (p < α,
sign of d), else **KEEPS** when the non-inferiority test rejects "WC is worse by the margin
or more" (one-sided paired t of d + margin, :data:`NI_MARGIN` points by default), else
**INCONCLUSIVE**.

Claims (Sec. IV-D of the paper, and its tables):

* **(i)** WC keeps |w| below its bound (aπ/2) in every layer at every epoch. A hard property:
  one violating seed FAILS it; it HOLDS with every seed inside, given ≥ :data:`MIN_SEEDS`
  seeds. The baseline's early growth is reported beside it.
* **(ii)** WC leaves fewer near-zero weights: the network fraction at the last epoch, for each
  recorded near-zero measure (:mod:`wcviz.record.measures`) and both aggregations (all weights,
  and the layer-mean), predicted lower for WC. The headline is the largest ``rel`` cutoff
  (t·σ₀, the layer's std at its first record), else the largest ``abs`` one, all weights:
  a cutoff fixed over training, which a map moving weights toward zero (bounding the tails,
  claim (i)) can only make read *more* near zero. The record-scaled measures (``std``, ``med``)
  fall when the tails shrink, so they mix (i) into (ii): recorded, shown, labelled so, never
  the headline. Also (exploratory): the reduction is larger in the first half of the layers
  than in the second (layer-mean of the headline threshold; predicted > 0).
* **(iii)** WC keeps or improves accuracy: test accuracy at the best-validation epoch
  (headline) and at the last epoch.

Beside the verdicts, each comparison keeps a per-layer table at the last epoch (weight ranges,
the bound, max|w|/bound, near-zero fractions; the mean over the paired seeds):
:class:`LayerTable`, which ``wcviz compare BASELINE_RUN WC_RUN`` prints.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.extras import require

# Before the import below: without scipy, one clear line instead of a traceback.
require("stats", needed_by="wcviz.report.claims")

from scipy import optimize, stats

from wcviz.errors import WcvizError
from wcviz.record.measures import RECORD_SCALED, TAIL_SAFE_KINDS
from wcviz.record.metrics import BEST_ACC
from wcviz.report import analysis as an
from wcviz.report.seeds import (SEED, check_one_run_per_seed, fold, iter_groups, mean_std, study_of,
                                pair_by_seed)

#: Fewer paired seeds than this: never decided (one more seed could flip it).
MIN_SEEDS = 3
#: Confidence level of every interval, and the family-wise error rate of the verdicts.
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
#: Power at which :func:`min_detectable` reports the smallest detectable difference.
POWER = 0.80
#: Non-inferiority margin of claim (iii), in accuracy points: WC "keeps" accuracy when the
#: test rejects "WC is worse by this much or more".
NI_MARGIN = 0.5
#: Relative tolerance of the bound check (i): float32 arctan of a huge v rounds to exactly
#: (π/2)·a in single precision, a hair above the float64 bound.
BOUND_RTOL = 1e-6
#: Beyond this many pairs the sign-flip test draws :data:`SIGNFLIP_DRAWS` patterns (fixed seed)
#: instead of all 2ⁿ.
SIGNFLIP_EXACT_N = 16
SIGNFLIP_DRAWS = 2 ** 16

HOLDS, FAILS, INCONCLUSIVE, NA = "HOLDS", "FAILS", "INCONCLUSIVE", "n/a"
IMPROVES, KEEPS, WORSE = "IMPROVES", "KEEPS", "WORSE"
#: Verdicts that reject the null hypothesis of their test.
DECIDED = (HOLDS, FAILS, IMPROVES, KEEPS, WORSE)
HEADLINE, EXPLORATORY = "headline", "exploratory"
#: The family label of a record-scaled near-zero measure (:data:`wcviz.record.measures.RECORD_SCALED`).
MIXED = "exploratory; mixes (i) and (ii)"
#: Rows of claim (i), which no test decides: the bound check (every seed inside), and context.
PROPERTY, CONTEXT = "property, every seed", "context"


@dataclass
class PairedResult:
    """One measure of one claim over paired seeds (baseline ``base``, companded ``wc``).

    ``predicted``: "lower" or "higher", the sign of WC − baseline the claim predicts; "keep"
    for accuracy (claim (iii): keeps or improves, with the non-inferiority ``margin``).
    ``family``: :data:`HEADLINE` (decided on ``p_holm``) or exploratory (on ``p_t``).
    """

    claim: str
    measure: str
    predicted: str
    seeds: list
    base: np.ndarray  # per paired seed (NaN-free); empty for one-sample measures
    wc: np.ndarray
    diff: np.ndarray  # WC − baseline per seed (or the one-sample quantity)
    ci_t: tuple[float, float] = (math.nan, math.nan)
    p_t: float = math.nan
    p_signflip: float = math.nan
    p_ni: float = math.nan  # one-sided non-inferiority p ("keep" rows)
    p_holm: float = math.nan
    p_ni_holm: float = math.nan
    margin: float = math.nan
    mde: float = math.nan  # smallest |Δ| detectable at POWER (INCONCLUSIVE rows)
    family: str = EXPLORATORY
    family_size: int = 1  # tests in the family the row was corrected in
    verdict: str = INCONCLUSIVE
    why: str = ""

    @property
    def n(self) -> int:
        """Paired seeds behind the result."""
        return len(self.seeds)

    @property
    def level(self) -> float:
        """The strictest level the row's p meets in its family: α/m (Holm's first step)."""
        return ALPHA / self.family_size if self.family == HEADLINE else ALPHA


def t_interval(diff) -> tuple[tuple[float, float], float]:
    """95 % paired-t CI of the mean of ``diff`` and its two-sided p-value (n ≥ 2).

    Equal differences (zero spread) give the point interval (d, d) and p = 0 unless d = 0.
    """
    diff = np.asarray(diff, dtype=float)
    if diff.size < 2:
        return (math.nan, math.nan), math.nan
    mean = float(diff.mean())
    if np.ptp(diff) == 0:
        return (mean, mean), (1.0 if mean == 0 else 0.0)
    res = stats.ttest_1samp(diff, 0.0)  # = ttest_rel(wc, base) on the pairs
    ci = res.confidence_interval(CONFIDENCE)
    return (float(ci.low), float(ci.high)), float(res.pvalue)


def signflip_p(diff) -> float:
    """Two-sided sign-flip permutation p-value of the mean of ``diff`` (H0: d symmetric about 0).

    Exact (all 2ⁿ sign patterns) up to :data:`SIGNFLIP_EXACT_N` pairs, else
    :data:`SIGNFLIP_DRAWS` random patterns (fixed seed). Its smallest value is 2/2ⁿ
    (:func:`signflip_min_p`). NaN for n < 2.
    """
    diff = np.asarray(diff, dtype=float)
    n = diff.size
    if n < 2:
        return math.nan
    if n <= SIGNFLIP_EXACT_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(SIGNFLIP_DRAWS, n))
    means = np.abs(signs @ diff) / n
    observed = abs(float(diff.mean()))
    return float(np.mean(means >= observed * (1 - 1e-12)))  # ties count as extreme


def signflip_min_p(n: int) -> float:
    """The smallest p :func:`signflip_p` can reach with n pairs: 2/2ⁿ (both all-same-sign
    patterns); it exceeds α = 0.05 for n ≤ 5."""
    return 2.0 / 2 ** n if n >= 1 else math.nan


#: Fewest pairs at which the sign-flip test can reach :data:`ALPHA` (2/2ⁿ ≤ α).
SIGNFLIP_MIN_N = next(n for n in range(1, 64) if 2.0 / 2 ** n <= ALPHA)


def min_detectable(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest |mean difference| a two-sided one-sample t test on n pairs detects with
    probability ``power`` at level ``alpha``, given the SD of the differences (ddof = 1).

    Solves P(|T| > t₁₋α/₂) = power for T ~ noncentral t(n − 1, δ√n/sd) (``scipy.stats.nct``).
    NaN for n < :data:`MIN_SEEDS` (never decided anyway) or an unknown SD; 0 for SD 0.
    """
    if n < MIN_SEEDS or not np.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df, crit = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)

    def shortfall(effect):
        nc = effect * math.sqrt(n) / sd
        # P(T < −crit) = P(T > crit | −nc); far in the tail scipy may return NaN for a ~0
        lower = float(np.nan_to_num(stats.nct.sf(crit, df, -nc), nan=0.0))
        return stats.nct.sf(crit, df, nc) + lower - power

    hi = sd
    while shortfall(hi) < 0:  # power rises with the effect; nct is finite this far for n ≥ 3
        hi *= 2
    if not np.isfinite(shortfall(hi)):
        return math.nan
    return float(optimize.brentq(shortfall, 0.0, hi, xtol=1e-10 * sd))


def noninferiority_p(diff, margin: float) -> float:
    """One-sided paired-t p of H0 "mean d ≤ −margin" (WC worse by the margin or more)."""
    diff = np.asarray(diff, dtype=float)
    if diff.size < 2 or not np.isfinite(margin):
        return math.nan
    shifted = diff + margin
    if np.ptp(diff) == 0:
        return 0.0 if shifted[0] > 0 else 1.0
    return float(stats.ttest_1samp(shifted, 0.0, alternative="greater").pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down; NaN entries are left out of the family
    and stay NaN). Reject at family-wise level α where the adjusted p < α."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def verdict(res: PairedResult) -> tuple[str, str]:
    """The verdict of a difference and why (module docstring for the rules)."""
    if res.n < MIN_SEEDS:
        return INCONCLUSIVE, f"{res.n} paired seed(s) < {MIN_SEEDS}"
    headline = res.family == HEADLINE
    p, p_ni = (res.p_holm, res.p_ni_holm) if headline else (res.p_t, res.p_ni)
    name = "Holm p" if headline else "p (uncorrected)"
    mean = float(res.diff.mean())
    if p < ALPHA:
        said = f"{name} = {_p(p)} < {ALPHA:g}"
        if res.predicted == "keep":
            return (IMPROVES, said) if mean > 0 else (WORSE, said)
        wanted = 1 if res.predicted == "higher" else -1
        return (HOLDS, f"{said}, on the predicted side") if np.sign(mean) == wanted else \
            (FAILS, f"{said}, on the other side")
    if res.predicted == "keep" and p_ni < ALPHA:
        return KEEPS, f"not worse by {res.margin:g} points or more ({name} = {_p(p_ni)})"
    return INCONCLUSIVE, f"{name} = {_p(p)} ≥ {ALPHA:g}; {power_text(res)}"


def power_text(res: PairedResult) -> str:
    """What n could have detected: the :func:`min_detectable` difference of the row."""
    if not np.isfinite(res.mde):
        return f"n={res.n} detects no difference"
    level = f"α/{res.family_size}" if res.family == HEADLINE and res.family_size > 1 else "α"
    return f"n={res.n} detects |Δ| ≥ {res.mde:.3g} ({POWER:.0%} power, {level})"


def _p(p: float) -> str:
    return f"{p:.2g}" if np.isfinite(p) else "–"


def decide(res: PairedResult) -> PairedResult:
    """Set the row's power (:func:`min_detectable` at its level) and verdict."""
    sd = float(res.diff.std(ddof=1)) if res.n > 1 else math.nan
    res.mde = min_detectable(res.n, sd, res.level)
    res.verdict, res.why = verdict(res)
    return res


def paired(claim: str, measure: str, predicted: str, seeds, base, wc,
           diff=None, margin: float = math.nan) -> PairedResult:
    """Decide one measure from per-seed values (pairs with a NaN on either side are dropped),
    as an exploratory row (:func:`correct_family` makes headline rows).

    ``predicted`` "keep" with a ``margin`` (points) for claim (iii)'s keeps-or-improves.
    """
    base, wc = np.asarray(base, dtype=float), np.asarray(wc, dtype=float)
    diff = wc - base if diff is None else np.asarray(diff, dtype=float)
    keep = np.isfinite(diff)
    if base.size == keep.size:
        base, wc = base[keep], wc[keep]
    seeds = [s for s, k in zip(seeds, keep) if k]
    diff = diff[keep]
    res = PairedResult(claim, measure, predicted, seeds, base, wc, diff, margin=margin)
    res.ci_t, res.p_t = t_interval(diff)
    res.p_signflip = signflip_p(diff)
    res.p_ni = noninferiority_p(diff, margin) if predicted == "keep" else math.nan
    return decide(res)


def correct_family(comparisons) -> int:
    """Holm–Bonferroni over the headline tests of ``comparisons`` (:class:`GroupComparison`,
    one family; :func:`correct_rows`), recorded on each comparison. Returns the family size m.
    """
    m = correct_rows([r for c in comparisons for r in c.results])
    for c in comparisons:
        c.family_size, c.family_comparisons = m, len(comparisons)
    return m


def correct_rows(rows) -> int:
    """Holm–Bonferroni over the headline rows among ``rows`` (one family), then decide them on
    the adjusted p. Returns the family size m.

    The tests of a headline row: its difference test (``p_t``), and for claim (iii) ("keep")
    also its non-inferiority test (``p_ni``); per comparison that is (ii)'s headline measure
    and (iii)'s headline accuracy.
    """
    rows = [r for r in rows if r.family == HEADLINE]
    tests = [(r, "p_t", "p_holm") for r in rows] + \
            [(r, "p_ni", "p_ni_holm") for r in rows if r.predicted == "keep"]
    tests = [t for t in tests if np.isfinite(getattr(t[0], t[1]))]
    adjusted = holm([getattr(r, raw) for r, raw, _ in tests])
    for (r, _, out), p in zip(tests, adjusted):
        setattr(r, out, float(p))
    for r in rows:
        r.family_size = max(len(tests), 1)
        decide(r)
    return len(tests)


# --------------------------------------------------------------------------- runs -> claims


@dataclass
class LayerTable:
    """Per layer at the last epoch, the mean over the paired seeds: the weight range of each
    group, the WC bound, max|w|/bound (max over epochs) and the near-zero fractions (0–1)."""

    baseline: str  # the runs' display name and ids
    wc: str
    threshold: str  # the near-zero threshold label of the table
    threshold_text: str
    bound_symbol: str
    frame: pd.DataFrame  # one row per layer: LAYER_COLUMNS
    n: int = 1  # paired seeds averaged

    def report(self) -> str:
        """The table as readable text."""
        over = f", mean of {self.n} paired seeds" if self.n > 1 else ""
        head = (f"{'layer':<24} {'baseline w range':>22} {'WC w range':>22} {self.bound_symbol:>7} "
                f"{'max|w|/bound':>12} {'near-0 base':>11} {'near-0 WC':>9}")
        lines = [f"baseline: {self.baseline}", f"WC:       {self.wc}",
                 f"near-zero: {self.threshold_text} ({self.threshold}), last epoch{over}", "", head]
        for _, r in self.frame.iterrows():
            lines.append(f"{r['layer']:<24} {_range(r['base_min'], r['base_max']):>22} "
                         f"{_range(r['wc_min'], r['wc_max']):>22} {r['wc_bound']:>7.3g} "
                         f"{r['wc_max_ratio']:>12.3f} {100 * r['base_near_zero']:>10.1f}% "
                         f"{100 * r['wc_near_zero']:>8.1f}%")
        return "\n".join(lines)


#: Columns of a :class:`LayerTable`'s frame after ``layer``.
LAYER_COLUMNS = ("base_min", "base_max", "wc_min", "wc_max", "wc_bound", "wc_max_ratio",
                 "base_near_zero", "wc_near_zero")


def _range(lo: float, hi: float) -> str:
    return f"[{lo:+.3g}, {hi:+.3g}]"


@dataclass
class GroupComparison:
    """The claims decided on a baseline group and a companded group, paired by seed."""

    baseline: str
    wc: str
    seeds: list
    unpaired: list
    results: list[PairedResult] = field(default_factory=list)
    bound_symbol: str = "aπ/2"
    layers: LayerTable | None = None  # per layer at the last epoch, mean over the paired seeds
    family_size: int = 0  # headline tests in the Holm family (:func:`correct_family`)
    family_comparisons: int = 1  # comparisons the family spans
    shared_baseline: int = 1  # comparisons of the family that use this one's baseline group

    def frame(self) -> pd.DataFrame:
        """One row per (claim, measure): group means ± stds, paired difference, CI, raw and
        Holm-adjusted p, sign-flip p, power, family and verdict."""
        rows = []
        for r in self.results:
            bm, bs = mean_std(r.base)
            wm, ws = mean_std(r.wc)
            dm = float(r.diff.mean()) if r.diff.size else math.nan
            rows.append({"claim": r.claim, "measure": r.measure, "family": r.family,
                         "predicted": r.predicted, "n": r.n, "base_mean": bm, "base_std": bs,
                         "wc_mean": wm, "wc_std": ws, "diff_mean": dm, "ci_low": r.ci_t[0],
                         "ci_high": r.ci_t[1], "p_t": r.p_t, "p_holm": r.p_holm,
                         "p_signflip": r.p_signflip, "signflip_min_p": signflip_min_p(r.n),
                         "margin": r.margin, "p_noninferiority": r.p_ni,
                         "p_noninferiority_holm": r.p_ni_holm, "mde_80": r.mde,
                         "verdict": r.verdict, "why": r.why})
        return pd.DataFrame(rows)

    def report(self) -> str:
        """Readable text: the groups, the family and tests, one line per measure, then one
        verdict per claim."""
        lines = [f"baseline: {self.baseline}", f"WC:       {self.wc}",
                 f"paired seeds: {', '.join(map(str, self.seeds)) or 'none'}"
                 f"{f' (n={len(self.seeds)})' if self.seeds else ''}"
                 + (f"; unpaired (left out): {', '.join(map(str, self.unpaired))}"
                    if self.unpaired else ""), *self.method_lines(), ""]
        head = (f"{'claim':<6} {'measure':<44} {'baseline':>15} {'WC':>15} "
                f"{'Δ (WC−base) [95% CI]':>30} {'p':>7} {'p Holm':>7} {'p flip':>7} "
                f"{'verdict':<12}")
        lines += [head, "-" * len(head)]
        for _, row in self.frame().iterrows():
            lines.append(f"{row['claim']:<6} {row['measure']:<44} "
                         f"{format_pm(row['base_mean'], row['base_std']):>15} "
                         f"{format_pm(row['wc_mean'], row['wc_std']):>15} "
                         f"{format_diff(row):>30} {_p(row['p_t']):>7} {_p(row['p_holm']):>7} "
                         f"{_p(row['p_signflip']):>7} {row['verdict']:<12} "
                         f"[{row['family']}] {row['why']}")
        lines += ["", *self.summary_lines()]
        return "\n".join(lines)

    def method_lines(self) -> list[str]:
        """The family, the correction, the tests and their power, as printed with the table."""
        n = len(self.seeds)
        flip = (f"exact sign-flip p beside it (its smallest value at n={n} is "
                f"{signflip_min_p(n):.3g}" + (f" > α: n={n} is too small for it to reject)"
                                               if n < SIGNFLIP_MIN_N else ")")) if n else ""
        out = [f"test: two-sided paired t, α = {ALPHA:g}; {flip}".rstrip("; "),
               f"family: {self.family_size} headline test(s) over {self.family_comparisons} "
               f"comparison(s) (claim (ii)'s headline measure; claim (iii)'s difference and "
               f"non-inferiority tests, margin {NI_MARGIN:g} points), Holm–Bonferroni; every "
               f"other row is exploratory (uncorrected p)"]
        if self.shared_baseline > 1:
            out.append(f"note: {self.shared_baseline} comparisons share this baseline group, so "
                       "their differences are correlated (one baseline seed moves all of them); "
                       "Holm holds under any dependence")
        return out

    def headline(self, claim: str) -> PairedResult | None:
        """The headline measure of a claim ("(i)", "(ii)", "(iii)"): its row in the Holm family
        (for (i), the bound check), else its first row; None when the claim was not decided."""
        rows = [r for r in self.results if r.claim == claim]
        return next((r for r in rows if r.family == HEADLINE), rows[0] if rows else None)

    def headline_frame(self) -> pd.DataFrame:
        """:meth:`frame` cut to each claim's headline measure: one row per claim."""
        frame = self.frame()
        keep = [frame.index[(frame["claim"] == c) & (frame["measure"] == h.measure)][0]
                for c in CLAIM_TEXT if (h := self.headline(c)) is not None]
        return frame.loc[keep].reset_index(drop=True)

    def summary_lines(self) -> list[str]:
        """One line per claim: its headline measure's verdict."""
        out = []
        for claim, text in CLAIM_TEXT.items():
            head = self.headline(claim)
            if head is not None:
                note = "" if claim != "(ii)" or head.family == HEADLINE else \
                    " [no rel/abs measure recorded: exploratory only]"
                out.append(f"{claim} {text.format(bound=self.bound_symbol)}: {head.verdict} "
                           f"({head.measure}; n={head.n}; {head.why}){note}")
        return out

    def verdict_of(self, claim: str) -> str:
        """The headline verdict of a claim ("(i)", "(ii)", "(iii)")."""
        head = self.headline(claim)
        return head.verdict if head is not None else NA


CLAIM_TEXT = {"(i)": "WC keeps |w| < {bound} in every layer and epoch",
              "(ii)": "WC leaves fewer near-zero weights",
              "(iii)": "WC keeps or improves test accuracy"}


def format_pm(mean: float, std: float, digits: int = 4) -> str:
    """``mean ± std`` with ``digits`` significant figures (std with 2); "–" without a mean."""
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}g}" if not np.isfinite(std) else f"{mean:.{digits}g} ± {std:.2g}"


def format_diff(row) -> str:
    """A frame row's Δ (WC − baseline) with its 95 % CI, "[no CI]" without one; "–" without Δ."""
    if not np.isfinite(row["diff_mean"]):
        return "–"
    ci = (f" [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}]"
          if np.isfinite(row["ci_low"]) else " [no CI]")
    return f"{row['diff_mean']:+.3g}{ci}"


def compare_groups(baseline_runs, wc_runs, thresholds=None,
                   margin: float = NI_MARGIN) -> GroupComparison:
    """Decide claims (i)–(iii) on two groups of runs paired by seed (module docstring), the
    headline tests Holm-corrected within this comparison (:func:`correct_family`; callers
    deciding several comparisons together correct over all of them again).

    Args:
        baseline_runs: runs of the plain network (paths or Datasets), one per seed.
        wc_runs: runs of one companded configuration, one per seed.
        thresholds: near-zero threshold labels for claim (ii) (default: every label both
            groups record); the headline is the first tail-safe one (:func:`headline_threshold`).
        margin: claim (iii)'s non-inferiority margin, accuracy points.

    Raises:
        WcvizError: a companded run in the baseline group, a plain run in the WC group, a
            group mixing configurations (a repeated seed), groups trained with different
            recipes (:func:`check_same_recipe`), or no seed in common.
    """
    seeds, base, comp, unpaired = pair_by_seed(baseline_runs, wc_runs)
    _check_groups(base, comp)
    if not seeds:
        raise WcvizError("the baseline and WC groups share no seed; runs are paired by seed, "
                         "so train both with the same --seed values")
    if not (np.isfinite(margin) and margin >= 0):
        raise WcvizError(f"the non-inferiority margin must be a number >= 0 (accuracy points), "
                         f"got {margin!r}")
    result = GroupComparison(_group_label(base), _group_label(comp), seeds, unpaired,
                             bound_symbol=an.bound_symbol(comp[0]) or "bound")
    labels = _threshold_labels(base, comp, thresholds)
    label = headline_threshold(base[0], labels) or labels[0]
    per_layer = _per_layer(seeds, base, comp, _common_layers(base, comp), label)
    result.layers = _layer_table(result, base, comp, per_layer, label)
    result.results += _claim_bound(seeds, base, per_layer)
    result.results += _claim_near_zero(seeds, base, comp, labels)
    result.results += _claim_accuracy(seeds, base, comp, margin)
    correct_family([result])
    return result


def headline_threshold(ds: xr.Dataset, labels) -> str | None:
    """Claim (ii)'s headline threshold among ``labels``: the largest of the first kind of
    :data:`wcviz.record.measures.TAIL_SAFE_KINDS` present (rel, then abs); None when every
    label is record-scaled (std, med), which a tail map alone moves (module docstring)."""
    kinds = {label: an.threshold_kind(ds, label) for label in labels}
    for kind in TAIL_SAFE_KINDS:
        found = [label for label in labels if kinds[label][0] == kind]
        if found:
            return max(found, key=lambda label: kinds[label][1])
    return None


def _threshold_labels(base, comp, thresholds) -> list[str]:
    """The near-zero labels claim (ii) decides: the requested ones, else every one all runs
    record; the headline first."""
    runs = [*base, *comp]
    labels = list(thresholds) if thresholds else [
        t for t in an.thresholds(base[0]) if all(t in an.thresholds(ds) for ds in runs)]
    labels = [an.select_threshold(base[0], t) for t in labels]
    if not labels:
        raise WcvizError("the runs share no near-zero threshold; record the same thresholds "
                         "in both groups (the Recorder's defaults do)")
    head = headline_threshold(base[0], labels)
    return sorted(labels, key=lambda t: t != head)


def compare_pair(baseline, wc, thresholds=None, margin: float = NI_MARGIN) -> GroupComparison:
    """Decide the claims on one baseline run and one companded run: :func:`compare_groups`
    of one seed per arm (so no claim HOLDS on one pair; a bound violation still FAILS), with
    the per-layer table (:class:`LayerTable`) of the two runs.

    Raises:
        WcvizError: when the first run is companded or the second is not (besides the
            errors of :func:`compare_groups`).
    """
    base, comp = an.as_dataset(baseline), an.as_dataset(wc)
    if not an.is_baseline(base):
        raise WcvizError(f"the first run must be a baseline, but it uses method {an.method_of(base)!r}; "
                         "pass BASELINE_RUN first, then WC_RUN")
    if an.is_baseline(comp):
        raise WcvizError("the second run is not companded (method none); pass a WC run second")
    return compare_groups([base], [comp], thresholds, margin)


def task_of(ds: xr.Dataset) -> str:
    """The run's "dataset/model" ("?" for a missing attribute)."""
    return f"{an.run_attr(ds, 'dataset', '?')}/{an.run_attr(ds, 'model', '?')}"


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


def _check_groups(base, comp) -> None:
    if any(not an.is_baseline(ds) for ds in base):
        raise WcvizError("the baseline group holds a companded run; pass plain runs with "
                         "--baseline and companded ones with --wc")
    if any(an.is_baseline(ds) for ds in comp):
        raise WcvizError("the WC group holds a plain (method none) run; pass companded runs "
                         "with --wc")
    check_same_task(base, comp)
    configs = {an.run_label(ds) for ds in comp}
    if len(configs) > 1:
        raise WcvizError(f"the WC group mixes configurations ({', '.join(sorted(configs))}); "
                         "compare one at a time")
    check_same_recipe(base, comp)


def check_same_recipe(base, comp) -> None:
    """Refuse runs (Datasets) whose stored configs differ in anything but the method's own
    fields (method, a, b, learnable, alpha: :data:`wcviz.report.analysis.METHOD_FIELDS`) and
    the seed: a gap between two recipes is not the method's.

    Raises:
        WcvizError: naming the keys that differ.
    """
    runs = [*base, *comp]
    keys = sorted({k for ds in runs[1:] for k in an.recipe_difference(runs[0], ds)})
    if keys:
        raise WcvizError(f"the runs were trained with different recipes (config differs in: "
                         f"{', '.join(keys)}); compare runs that differ only in method, a, b, "
                         "learnable, alpha and seed")


def _group_label(runs) -> str:
    ds = runs[0]
    study = study_of(an.run_attr(ds, "run_id", ""))
    return ((f"{study}: " if study else "") + f"{an.run_label(ds)} ({an.run_attr(ds, 'dataset', '?')}/"
            f"{an.run_attr(ds, 'model', '?')}, {len(runs)} run(s))")


def _common_layers(base, comp) -> list[str]:
    names = [n for n in an.layer_names(base[0])
             if all(n in an.layer_names(ds) for ds in [*base, *comp])]
    if not names:
        raise WcvizError("the runs share no layer; compare runs of the same model")
    return names


def _last(ds, layer: str, q: float) -> float:
    """The layer's q-quantile at the last epoch; NaN when the run did not record q."""
    try:
        return float(an.quantile_curve(ds, layer, q)[-1])
    except WcvizError:  # a Recorder given other quantiles: no range to show, the rest stands
        return math.nan


def _per_layer(seeds, base, comp, layers, label) -> xr.Dataset:
    """(seed, layer) values of the paired runs (:data:`LAYER_COLUMNS`, ``bounded``): ranges,
    the bound and near-zero fractions at the last epoch, max|w|/bound over epochs."""
    rows = {name: [] for name in (*LAYER_COLUMNS, "bounded")}
    for b, c in zip(base, comp):
        bounds = [an.bound_over_epochs(c, n) for n in layers]
        label_wc = an.select_threshold(c, label)
        rows["base_min"].append([_last(b, n, 0.0) for n in layers])
        rows["base_max"].append([_last(b, n, 1.0) for n in layers])
        rows["wc_min"].append([_last(c, n, 0.0) for n in layers])
        rows["wc_max"].append([_last(c, n, 1.0) for n in layers])
        rows["wc_bound"].append([float(bound[-1]) for bound in bounds])
        rows["wc_max_ratio"].append([float(np.nanmax(an.absmax_over_epochs(c, n) / bound))
                                     for n, bound in zip(layers, bounds)])
        rows["bounded"].append([bool(np.isfinite(bound).all()) for bound in bounds])
        rows["base_near_zero"].append([float(an.near_zero(b, label, n)[-1]) for n in layers])
        rows["wc_near_zero"].append([float(an.near_zero(c, label_wc, n)[-1]) for n in layers])
    return xr.Dataset({name: ((SEED, "layer"), np.array(values)) for name, values in rows.items()},
                      coords={SEED: list(seeds), "layer": list(layers)})


def _runs_name(runs) -> str:
    ids = ", ".join(str(an.run_attr(ds, "run_id", "")) for ds in runs)
    return f"{an.run_label(runs[0])} [{ids}]"


def _layer_table(result: GroupComparison, base, comp, per_layer: xr.Dataset, label) -> LayerTable:
    means = {name: fold(per_layer[name])["mean"].values for name in LAYER_COLUMNS}
    frame = pd.DataFrame({"layer": per_layer["layer"].values, **means})
    return LayerTable(_runs_name(base), _runs_name(comp), label, an.threshold_text(base[0], label),
                      result.bound_symbol, frame, n=per_layer.sizes[SEED])


def _claim_bound(seeds, base, per_layer: xr.Dataset) -> list[PairedResult]:
    """(i): max over layers and epochs of max|w| / bound per WC seed; one violation fails."""
    if not per_layer["bounded"].all():
        return []  # an unbounded method (arsinh, powerprop): no claim (i)
    ratios = per_layer["wc_max_ratio"].max("layer").values
    res = PairedResult("(i)", "max|w|/bound over layers and epochs (WC)", "lower", list(seeds),
                       np.array([]), ratios, np.array([]), family=PROPERTY)
    inside = ratios < 1.0 + BOUND_RTOL
    if not inside.all():
        res.verdict = FAILS
        res.why = f"seed(s) {[s for s, ok in zip(seeds, inside) if not ok]} exceed the bound"
    elif len(ratios) < MIN_SEEDS:
        res.verdict, res.why = INCONCLUSIVE, f"inside the bound, but {len(ratios)} seed(s) < {MIN_SEEDS}"
    else:
        res.verdict, res.why = HOLDS, "every seed inside the bound"
    out = [res]
    layers = [str(n) for n in per_layer["layer"].values]
    growth = np.array([_growth(ds, layers) for ds in base])
    if np.isfinite(growth).any():
        out.append(PairedResult("(i)", "baseline max|w| growth in epoch 1 (×)", "higher",
                                list(seeds), growth, np.array([]), np.array([]), verdict=NA,
                                family=CONTEXT, why="how far the plain weights grow"))
    return out


def _growth(ds, layers) -> float:
    if ds.sizes["epoch"] < 2:
        return math.nan
    return float(np.nanmax([an.absmax_over_epochs(ds, n)[1] / an.absmax_over_epochs(ds, n)[0]
                            for n in layers]))


def _claim_near_zero(seeds, base, comp, labels) -> list[PairedResult]:
    """(ii): network near-zero fraction (%) at the last epoch, each measure, both weightings;
    the headline (first label if tail-safe, all weights) joins the Holm family."""
    layers = _common_layers(base, comp)
    sub_b = [ds.sel(layer=layers) for ds in base]
    sub_c = [ds.sel(layer=layers) for ds in comp]
    head = headline_threshold(base[0], labels)
    out = []
    for label in labels:
        text = an.threshold_text(base[0], label)
        family = MIXED if an.threshold_kind(base[0], label)[0] in RECORD_SCALED else EXPLORATORY
        for how, name in (("weights", "all weights"), ("layers", "layer-mean")):
            b = [100 * an.near_zero(ds, label, how=how)[-1] for ds in sub_b]
            c = [100 * an.near_zero(ds, an.select_threshold(ds, label), how=how)[-1] for ds in sub_c]
            res = paired("(ii)", f"near-zero % {text}, {name}", "lower", seeds, b, c)
            res.family = HEADLINE if (label, how) == (head, "weights") else family
            out.append(res)
    if len(layers) >= 2:
        out.append(_early_late(seeds, sub_b, sub_c, labels[0]))
    return out


def _early_late(seeds, sub_b, sub_c, label) -> PairedResult:
    """(ii), exploratory: the near-zero reduction (pp) in the first half of the layers minus
    that in the second half, layer-mean of ``label``; predicted > 0."""
    half = len(sub_b[0]["layer"]) // 2
    early = []
    for b, c in zip(sub_b, sub_c):
        drop = 100 * (b["near_zero_fraction"].sel(threshold=label).isel(epoch=-1).values
                      - c["near_zero_fraction"].sel(threshold=an.select_threshold(c, label))
                      .isel(epoch=-1).values)
        early.append(float(drop[:half].mean() - drop[half:].mean()))
    return paired("(ii)", f"reduction early − late layers (pp), {label}", "higher",
                  seeds, [], [], diff=np.array(early))


def _claim_accuracy(seeds, base, comp, margin: float) -> list[PairedResult]:
    """(iii): test accuracy (%) at the best-validation epoch (headline) and at the last epoch,
    keeps-or-improves with the non-inferiority ``margin`` (points)."""
    out = []
    for column, name in ((BEST_ACC, "test acc at best val (%)"),
                         ("last_test_acc", "test acc, last epoch (%)")):
        b = [an.run_row(ds)[column] for ds in base]
        c = [an.run_row(ds)[column] for ds in comp]
        if np.isfinite(b).any() and np.isfinite(c).any():
            res = paired("(iii)", name, "keep", seeds, b, c, margin=margin)
            res.family = HEADLINE if not out else EXPLORATORY
            out.append(res)
    return out


def _baseline_for(ds, bases):
    """The baseline group of the same dataset, model and recipe (config without the method's
    fields and seed), searched in the run's own study (sub-folder of the root) first, then
    across the root; None when no baseline shares the dataset and model.

    Raises:
        WcvizError: baselines of the dataset and model exist, but none of the same recipe
            (naming the keys that differ from the nearest one).
    """
    def ident(x):
        return an.run_attr(x, "dataset", ""), an.run_attr(x, "model", "")

    study = study_of(an.run_attr(ds, "run_id", ""))
    own = [g for g in bases if study_of(an.run_attr(g[0], "run_id", "")) == study]
    same = []
    for pool in (own, bases):
        same = [g for g in pool if ident(g[0]) == ident(ds)]
        exact = [g for g in same if not an.recipe_difference(ds, g[0])]
        if exact:
            return exact[0]
    if not same:
        return None
    nearest = min((an.recipe_difference(ds, g[0]) for g in same), key=len)
    raise WcvizError(f"{an.run_label(ds)} ({task_of(ds)}) has no baseline of its recipe: the "
                     f"nearest baseline's config differs in: {', '.join(nearest)}; train the "
                     "baseline with the same recipe, or compare runs of one recipe")


def compare_root(root, thresholds=None, margin: float = NI_MARGIN) -> list[GroupComparison]:
    """Every companded configuration under a runs root against its baseline (same dataset,
    model and recipe: the stored config without method and seed).

    Runs are grouped by everything but the seed (:func:`wcviz.report.seeds.iter_groups`).

    The comparisons are one Holm family (:func:`decide_together`).

    Raises:
        WcvizError: no baseline, or no companded group, under ``root``; a companded group
            whose dataset and model have baselines, none of its recipe.
    """
    runs = an.collect_runs(root)
    groups = iter_groups(runs)
    for members in groups.values():
        check_one_run_per_seed(an.run_label(members[0]),
                                  [an.run_attr(ds, "seed") for ds in members],
                                  [an.run_attr(ds, "path", an.run_attr(ds, "run_id", "?"))
                                   for ds in members])
    bases = [g for g in groups.values() if an.is_baseline(g[0])]
    pairs = [(_baseline_for(members[0], bases), members) for members in groups.values()
             if not an.is_baseline(members[0])]
    pairs = [(base, members) for base, members in pairs if base is not None]
    if not pairs:
        raise WcvizError(f"no baseline and companded runs of the same dataset and model under "
                         f"{root}; train both (e.g. wcviz reproduce digits)")
    out = [compare_groups(base, members, thresholds, margin) for base, members in pairs]
    decide_together(out, [base for base, _ in pairs])
    return out


def decide_together(comparisons, baselines) -> None:
    """Decide several comparisons as one family (:func:`correct_family`) and note, on each,
    how many comparisons share its baseline group (``baselines``: each one's baseline runs,
    compared by identity; correlated comparisons)."""
    correct_family(comparisons)
    for c, b in zip(comparisons, baselines):
        c.shared_baseline = sum(other is b for other in baselines)
