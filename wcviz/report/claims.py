"""The paper's claims decided over seeds: paired differences, confidence intervals, verdicts.

A claim compared on one baseline run and one WC run flips between seeds when the gap is small.
Here a claim is decided on *groups* of runs (the same configuration, several seeds), paired
by seed:

* per group, the mean ± std (sample, ddof = 1) of the measure over the paired seeds;
* the paired difference d = WC − baseline (per seed), its mean and a 95 % confidence interval
  from the paired t distribution (``scipy.stats.ttest_rel``), and, since n is small, a
  percentile bootstrap CI of the mean difference (:data:`N_BOOT` resamples, fixed seed) and
  the exact Wilcoxon signed-rank p-value;
* a verdict (:func:`verdict`): **HOLDS** when the t CI lies entirely on the side the paper
  predicts, **FAILS** when it lies entirely on the other side, **INCONCLUSIVE** when it
  includes 0, when fewer than :data:`MIN_SEEDS` seeds pair up, or (below :data:`SMALL_N`
  pairs) when the bootstrap CI disagrees with the t CI.

Claims (Sec. IV-D of the paper, and its tables):

* **(i)** WC keeps |w| below its bound (aπ/2) in every layer at every epoch. A hard property:
  one violating seed FAILS it; it HOLDS with every seed inside, given ≥ :data:`MIN_SEEDS`
  seeds. The baseline's early growth is reported beside it.
* **(ii)** WC leaves fewer near-zero weights: the network fraction at the last epoch, for each
  recorded near-zero measure (:mod:`wcviz.record.measures`) and both aggregations (all weights, and
  the layer-mean), predicted lower for WC. Also: the reduction is larger in the first half of
  the layers than in the second (layer-mean of the default threshold; predicted > 0).
* **(iii)** WC improves accuracy: test accuracy at the best-validation epoch (and at the last
  epoch), predicted higher for WC (the paper's tables report gains). INCONCLUSIVE here means
  no difference could be shown, not that WC is worse.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from wcviz.extras import require

# Before the import below: without scipy, one clear line instead of a traceback.
require("stats", needed_by="wcviz.report.claims")

from scipy import stats

from wcviz.report import analysis as an
from wcviz.errors import WcvizError
from wcviz.record.metrics import BEST_ACC

#: Fewer paired seeds than this: never HOLDS/FAILS (one more seed could flip it).
MIN_SEEDS = 3
#: Below this many pairs the bootstrap CI must agree with the t CI.
SMALL_N = 10
#: Confidence level of every interval.
CONFIDENCE = 0.95
#: Bootstrap resamples (percentile method) and the generator's seed (results are reproducible).
N_BOOT = 10_000
BOOT_SEED = 0

HOLDS, FAILS, INCONCLUSIVE, NA = "HOLDS", "FAILS", "INCONCLUSIVE", "n/a"


@dataclass
class PairedResult:
    """One measure of one claim over paired seeds (baseline ``base``, companded ``wc``)."""

    claim: str
    measure: str
    predicted: str  # "lower" or "higher": the sign of WC − baseline the claim predicts
    seeds: list
    base: np.ndarray  # per paired seed (NaN-free); empty for one-sample measures
    wc: np.ndarray
    diff: np.ndarray  # WC − baseline per seed (or the one-sample quantity)
    ci_t: tuple[float, float] = (math.nan, math.nan)
    ci_boot: tuple[float, float] = (math.nan, math.nan)
    p_t: float = math.nan
    p_wilcoxon: float = math.nan
    verdict: str = INCONCLUSIVE
    why: str = ""

    @property
    def n(self) -> int:
        """Paired seeds behind the result."""
        return len(self.seeds)


def mean_std(values) -> tuple[float, float]:
    """(mean, sample std with ddof = 1); std NaN for fewer than two values."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else math.nan


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


def bootstrap_interval(diff) -> tuple[float, float]:
    """Percentile bootstrap 95 % CI of the mean of ``diff`` (:data:`N_BOOT`, fixed seed)."""
    diff = np.asarray(diff, dtype=float)
    if diff.size < 2:
        return math.nan, math.nan
    if np.ptp(diff) == 0:
        return float(diff[0]), float(diff[0])
    rng = np.random.default_rng(BOOT_SEED)
    means = diff[rng.integers(0, diff.size, size=(N_BOOT, diff.size))].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def wilcoxon_p(diff) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value of ``diff`` (NaN when all are 0 or n < 2)."""
    diff = np.asarray(diff, dtype=float)
    if diff.size < 2 or not np.any(diff != 0):
        return math.nan
    with warnings.catch_warnings():  # ties/zeros: scipy warns and falls back, which is fine
        warnings.simplefilter("ignore")
        return float(stats.wilcoxon(diff).pvalue)


def verdict(ci_t, ci_boot, n: int, predicted: str) -> tuple[str, str]:
    """The verdict of a difference and why (module docstring for the rule)."""
    if n < MIN_SEEDS:
        return INCONCLUSIVE, f"{n} paired seed(s) < {MIN_SEEDS}"
    side = _side(ci_t)
    if side == 0:
        return INCONCLUSIVE, "95% CI includes 0"
    if n < SMALL_N and _side(ci_boot) != side:
        return INCONCLUSIVE, "bootstrap CI includes 0 (t and bootstrap disagree)"
    wanted = 1 if predicted == "higher" else -1
    return (HOLDS, "CI excludes 0 on the predicted side") if side == wanted else \
        (FAILS, "CI excludes 0 on the other side")


def _side(ci) -> int:
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0
    return 1 if lo > 0 else -1 if hi < 0 else 0


def paired(claim: str, measure: str, predicted: str, seeds, base, wc,
           diff=None) -> PairedResult:
    """Decide one measure from per-seed values (pairs with a NaN on either side are dropped)."""
    base, wc = np.asarray(base, dtype=float), np.asarray(wc, dtype=float)
    diff = wc - base if diff is None else np.asarray(diff, dtype=float)
    keep = np.isfinite(diff)
    if base.size == keep.size:
        base, wc = base[keep], wc[keep]
    seeds = [s for s, k in zip(seeds, keep) if k]
    diff = diff[keep]
    res = PairedResult(claim, measure, predicted, seeds, base, wc, diff)
    res.ci_t, res.p_t = t_interval(diff)
    res.ci_boot = bootstrap_interval(diff)
    res.p_wilcoxon = wilcoxon_p(diff)
    res.verdict, res.why = verdict(res.ci_t, res.ci_boot, res.n, predicted)
    return res


# --------------------------------------------------------------------------- runs -> claims


def seed_of(ds: xr.Dataset):
    """The run's seed attribute (WcvizError when absent: runs cannot be paired without it)."""
    seed = an.run_attr(ds, "seed")
    if seed is None:
        raise WcvizError(f"run {an.run_attr(ds, 'run_id', '?')} records no seed; runs are "
                         "paired by seed, so record it (attrs={'seed': ...})")
    return int(seed)


def pair_by_seed(base_runs, wc_runs) -> tuple[list, list, list, list]:
    """(seeds, baseline Datasets, WC Datasets, unpaired seeds) of two groups of runs.

    Raises:
        WcvizError: a seed twice in one group (the groups mix configurations).
    """
    groups = []
    for name, runs in (("baseline", base_runs), ("WC", wc_runs)):
        by_seed: dict = {}
        for ds in an.as_datasets(runs):
            seed = seed_of(ds)
            if seed in by_seed:
                raise WcvizError(f"seed {seed} appears twice in the {name} group "
                                 f"({an.run_attr(by_seed[seed], 'run_id', '?')}, "
                                 f"{an.run_attr(ds, 'run_id', '?')}); pass one configuration "
                                 "per group")
            by_seed[seed] = ds
        groups.append(by_seed)
    base, wc = groups
    seeds = sorted(set(base) & set(wc))
    unpaired = sorted(set(base) ^ set(wc))
    return seeds, [base[s] for s in seeds], [wc[s] for s in seeds], unpaired


@dataclass
class GroupComparison:
    """The claims decided on a baseline group and a companded group, paired by seed."""

    baseline: str
    wc: str
    seeds: list
    unpaired: list
    results: list[PairedResult] = field(default_factory=list)
    bound_symbol: str = "aπ/2"

    def frame(self) -> pd.DataFrame:
        """One row per (claim, measure): group means ± stds, paired difference, CIs, verdict."""
        rows = []
        for r in self.results:
            bm, bs = mean_std(r.base)
            wm, ws = mean_std(r.wc)
            dm = float(r.diff.mean()) if r.diff.size else math.nan
            rows.append({"claim": r.claim, "measure": r.measure, "predicted": r.predicted,
                         "n": r.n, "base_mean": bm, "base_std": bs, "wc_mean": wm,
                         "wc_std": ws, "diff_mean": dm, "ci_low": r.ci_t[0],
                         "ci_high": r.ci_t[1], "boot_low": r.ci_boot[0],
                         "boot_high": r.ci_boot[1], "p_t": r.p_t, "p_wilcoxon": r.p_wilcoxon,
                         "verdict": r.verdict, "why": r.why})
        return pd.DataFrame(rows)

    def report(self) -> str:
        """Readable text: the groups, then one line per measure, then one verdict per claim."""
        lines = [f"baseline: {self.baseline}", f"WC:       {self.wc}",
                 f"paired seeds: {', '.join(map(str, self.seeds)) or 'none'}"
                 f"{f' (n={len(self.seeds)})' if self.seeds else ''}"
                 + (f"; unpaired (left out): {', '.join(map(str, self.unpaired))}"
                    if self.unpaired else ""), ""]
        head = (f"{'claim':<6} {'measure':<44} {'baseline':>15} {'WC':>15} "
                f"{'Δ (WC−base) [95% CI]':>30} {'verdict':<12}")
        lines += [head, "-" * len(head)]
        for _, row in self.frame().iterrows():
            lines.append(f"{row['claim']:<6} {row['measure']:<44} "
                         f"{format_pm(row['base_mean'], row['base_std']):>15} "
                         f"{format_pm(row['wc_mean'], row['wc_std']):>15} "
                         f"{format_diff(row):>30} {row['verdict']:<12} {row['why']}")
        lines += ["", *self.summary_lines()]
        return "\n".join(lines)

    def headline(self, claim: str) -> PairedResult | None:
        """The headline measure of a claim ("(i)", "(ii)", "(iii)"): the first one decided for
        it; None when the claim was not decided."""
        return next((r for r in self.results if r.claim == claim), None)

    def headline_frame(self) -> pd.DataFrame:
        """:meth:`frame` cut to each claim's headline measure: one row per claim."""
        return self.frame().drop_duplicates("claim").reset_index(drop=True)

    def summary_lines(self) -> list[str]:
        """One line per claim: its headline measure's verdict."""
        out = []
        for claim, text in CLAIM_TEXT.items():
            head = self.headline(claim)
            if head is not None:
                out.append(f"{claim} {text.format(bound=self.bound_symbol)}: {head.verdict} "
                           f"({head.measure}; n={head.n}; {head.why})")
        return out

    def verdict_of(self, claim: str) -> str:
        """The headline verdict of a claim ("(i)", "(ii)", "(iii)")."""
        head = self.headline(claim)
        return head.verdict if head is not None else NA


CLAIM_TEXT = {"(i)": "WC keeps |w| < {bound} in every layer and epoch",
              "(ii)": "WC leaves fewer near-zero weights",
              "(iii)": "WC improves test accuracy over the baseline"}


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


def compare_groups(baseline_runs, wc_runs, thresholds=None) -> GroupComparison:
    """Decide claims (i)–(iii) on two groups of runs paired by seed (module docstring).

    Args:
        baseline_runs: runs of the plain network (paths or Datasets), one per seed.
        wc_runs: runs of one companded configuration, one per seed.
        thresholds: near-zero threshold labels for claim (ii) (default: every label both
            groups record; the first row is :func:`wcviz.report.analysis.select_threshold`'s default).

    Raises:
        WcvizError: a companded run in the baseline group, a plain run in the WC group, a
            group mixing configurations (a repeated seed), or no seed in common.
    """
    seeds, base, comp, unpaired = pair_by_seed(baseline_runs, wc_runs)
    _check_groups(base, comp)
    if not seeds:
        raise WcvizError("the baseline and WC groups share no seed; runs are paired by seed, "
                         "so train both with the same --seed values")
    result = GroupComparison(_group_label(base), _group_label(comp), seeds, unpaired,
                             bound_symbol=an.bound_symbol(comp[0]) or "bound")
    result.results += _claim_bound(seeds, base, comp)
    result.results += _claim_near_zero(seeds, base, comp, thresholds)
    result.results += _claim_accuracy(seeds, base, comp)
    return result


def _check_groups(base, comp) -> None:
    if any(not an.is_baseline(ds) for ds in base):
        raise WcvizError("the baseline group holds a companded run; pass plain runs with "
                         "--baseline and companded ones with --wc")
    if any(an.is_baseline(ds) for ds in comp):
        raise WcvizError("the WC group holds a plain (method none) run; pass companded runs "
                         "with --wc")
    an.check_same_task(base, comp)
    configs = {an.run_label(ds) for ds in comp}
    if len(configs) > 1:
        raise WcvizError(f"the WC group mixes configurations ({', '.join(sorted(configs))}); "
                         "compare one at a time")


def _group_label(runs) -> str:
    ds = runs[0]
    return (f"{an.run_label(ds)} ({an.run_attr(ds, 'dataset', '?')}/"
            f"{an.run_attr(ds, 'model', '?')}, {len(runs)} run(s))")


def _common_layers(base, comp) -> list[str]:
    names = [n for n in an.layer_names(base[0])
             if all(n in an.layer_names(ds) for ds in [*base, *comp])]
    if not names:
        raise WcvizError("the runs share no layer; compare runs of the same model")
    return names


def _claim_bound(seeds, base, comp) -> list[PairedResult]:
    """(i): max over layers and epochs of max|w| / bound per WC seed; one violation fails."""
    layers = _common_layers(base, comp)
    ratios = []
    for ds in comp:
        bounds = [an.bound_over_epochs(ds, n) for n in layers]
        if not all(np.isfinite(b).all() for b in bounds):
            return []  # an unbounded method (arsinh, powerprop): no claim (i)
        ratios.append(max(float(np.nanmax(an.absmax_over_epochs(ds, n) / b))
                          for n, b in zip(layers, bounds)))
    ratios = np.array(ratios)
    res = PairedResult("(i)", "max|w|/bound over layers and epochs (WC)", "lower", list(seeds),
                       np.array([]), ratios, np.array([]))
    inside = ratios < 1.0 + an.BOUND_RTOL
    if not inside.all():
        res.verdict = FAILS
        res.why = f"seed(s) {[s for s, ok in zip(seeds, inside) if not ok]} exceed the bound"
    elif len(ratios) < MIN_SEEDS:
        res.verdict, res.why = INCONCLUSIVE, f"inside the bound, but {len(ratios)} seed(s) < {MIN_SEEDS}"
    else:
        res.verdict, res.why = HOLDS, "every seed inside the bound"
    out = [res]
    growth = np.array([_growth(ds, layers) for ds in base])
    if np.isfinite(growth).any():
        out.append(PairedResult("(i)", "baseline max|w| growth in epoch 1 (×)", "higher",
                                list(seeds), growth, np.array([]), np.array([]), verdict=NA,
                                why="context: how far the plain weights grow"))
    return out


def _growth(ds, layers) -> float:
    if ds.sizes["epoch"] < 2:
        return math.nan
    return float(np.nanmax([an.absmax_over_epochs(ds, n)[1] / an.absmax_over_epochs(ds, n)[0]
                            for n in layers]))


def _claim_near_zero(seeds, base, comp, thresholds) -> list[PairedResult]:
    """(ii): network near-zero fraction (%) at the last epoch, each measure, both weightings."""
    layers = _common_layers(base, comp)
    sub_b = [ds.sel(layer=layers) for ds in base]
    sub_c = [ds.sel(layer=layers) for ds in comp]
    default = an.select_threshold(base[0])
    labels = list(thresholds) if thresholds else [
        t for t in an.thresholds(base[0]) if all(t in an.thresholds(ds) for ds in [*base, *comp])]
    labels = [an.select_threshold(base[0], t) for t in labels]
    labels.sort(key=lambda t: t != default)  # the headline measure first
    out = []
    for label in labels:
        text = an.threshold_text(base[0], label)
        for how, name in (("weights", "all weights"), ("layers", "layer-mean")):
            b = [100 * an.near_zero(ds, label, how=how)[-1] for ds in sub_b]
            c = [100 * an.near_zero(ds, an.select_threshold(ds, label), how=how)[-1] for ds in sub_c]
            out.append(paired("(ii)", f"near-zero % {text}, {name}", "lower", seeds, b, c))
    if len(layers) >= 2:
        half = len(layers) // 2
        early = []
        for b, c in zip(sub_b, sub_c):
            drop = 100 * (b["near_zero_fraction"].sel(threshold=default).isel(epoch=-1).values
                          - c["near_zero_fraction"].sel(threshold=an.select_threshold(c, default))
                          .isel(epoch=-1).values)
            early.append(float(drop[:half].mean() - drop[half:].mean()))
        out.append(paired("(ii)", f"reduction early − late layers (pp), {default}", "higher",
                          seeds, [], [], diff=np.array(early)))
    return out


def _claim_accuracy(seeds, base, comp) -> list[PairedResult]:
    """(iii): test accuracy (%) at the best-validation epoch and at the last epoch."""
    out = []
    for column, name in ((BEST_ACC, "test acc at best val (%)"),
                         ("last_test_acc", "test acc, last epoch (%)")):
        b = [an.run_row(ds)[column] for ds in base]
        c = [an.run_row(ds)[column] for ds in comp]
        if np.isfinite(b).any() and np.isfinite(c).any():
            out.append(paired("(iii)", name, "higher", seeds, b, c))
    return out


def _baseline_for(ds, bases):
    """The baseline group of the same dataset, model and recipe (config without method and
    seed), else the only baseline group of the same dataset and model, else None."""
    def ident(x):
        return an.run_attr(x, "dataset", ""), an.run_attr(x, "model", "")

    same = [g for g in bases if ident(g[0]) == ident(ds)]
    recipe = an.recipe_key(ds, with_method=False)
    exact = [g for g in same if an.recipe_key(g[0], with_method=False) == recipe]
    return exact[0] if exact else same[0] if len(same) == 1 else None


def compare_root(root, thresholds=None) -> list[GroupComparison]:
    """Every companded configuration under a runs root against its baseline (same dataset,
    model and recipe: the stored config without method and seed).

    Runs are grouped by everything but the seed (:func:`wcviz.report.analysis.iter_groups`).

    Raises:
        WcvizError: no baseline, or no companded group, under ``root``.
    """
    runs = an.collect_runs(root)
    groups = an.iter_groups(runs)
    out = []
    for members in groups.values():
        an.check_one_run_per_seed(an.run_label(members[0]),
                                  [an.run_attr(ds, "seed") for ds in members],
                                  [an.run_attr(ds, "path", an.run_attr(ds, "run_id", "?"))
                                   for ds in members])
    bases = [g for g in groups.values() if an.is_baseline(g[0])]
    for members in groups.values():
        if not an.is_baseline(members[0]):
            base = _baseline_for(members[0], bases)
            if base is not None:
                out.append(compare_groups(base, members, thresholds))
    if not out:
        raise WcvizError(f"no baseline and companded runs of the same dataset and model under "
                         f"{root}; train both (e.g. wcviz reproduce digits)")
    return out
