"""The paper's claims decided over seeds: paired differences, confidence intervals, verdicts.

A claim compared on one baseline run and one WC run flips between seeds when the gap is small.
Here a claim is decided on *groups* of runs (the same configuration, several seeds), paired
by seed (:func:`wcviz.report.seeds.pair_by_seed`); one pair of runs is a study of one seed per
arm (:func:`compare_pair`), decided by the same rules (and so never HOLDS on its own):

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

Beside the verdicts, each comparison keeps a per-layer table at the last epoch (weight ranges,
the bound, max|w|/bound, near-zero fractions; the mean over the paired seeds):
:class:`LayerTable`, which ``wcviz compare BASELINE_RUN WC_RUN`` prints.
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

from wcviz.errors import WcvizError
from wcviz.record.metrics import BEST_ACC
from wcviz.report import analysis as an
from wcviz.report.seeds import (SEED, check_one_run_per_seed, fold, iter_groups, mean_std, study_of,
                                pair_by_seed)

#: Fewer paired seeds than this: never HOLDS/FAILS (one more seed could flip it).
MIN_SEEDS = 3
#: Below this many pairs the bootstrap CI must agree with the t CI.
SMALL_N = 10
#: Confidence level of every interval.
CONFIDENCE = 0.95
#: Bootstrap resamples (percentile method) and the generator's seed (results are reproducible).
N_BOOT = 10_000
BOOT_SEED = 0
#: Relative tolerance of the bound check (i): float32 arctan of a huge v rounds to exactly
#: (π/2)·a in single precision, a hair above the float64 bound.
BOUND_RTOL = 1e-6

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
    label = an.select_threshold(base[0], thresholds[0] if thresholds else None)
    per_layer = _per_layer(seeds, base, comp, _common_layers(base, comp), label)
    result.layers = _layer_table(result, base, comp, per_layer, label)
    result.results += _claim_bound(seeds, base, per_layer)
    result.results += _claim_near_zero(seeds, base, comp, thresholds)
    result.results += _claim_accuracy(seeds, base, comp)
    return result


def compare_pair(baseline, wc, thresholds=None) -> GroupComparison:
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
    return compare_groups([base], [comp], thresholds)


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
                       np.array([]), ratios, np.array([]))
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
    seed), else the only baseline group of the same dataset and model, else None; searched in
    the run's own study (sub-folder of the root) first, then across the root."""
    def ident(x):
        return an.run_attr(x, "dataset", ""), an.run_attr(x, "model", "")

    study = study_of(an.run_attr(ds, "run_id", ""))
    own = [g for g in bases if study_of(an.run_attr(g[0], "run_id", "")) == study]
    for pool in (own, bases):
        same = [g for g in pool if ident(g[0]) == ident(ds)]
        recipe = an.recipe_key(ds, with_method=False)
        exact = [g for g in same if an.recipe_key(g[0], with_method=False) == recipe]
        if exact or len(same) == 1:
            return exact[0] if exact else same[0]
    return None


def compare_root(root, thresholds=None) -> list[GroupComparison]:
    """Every companded configuration under a runs root against its baseline (same dataset,
    model and recipe: the stored config without method and seed).

    Runs are grouped by everything but the seed (:func:`wcviz.report.seeds.iter_groups`).

    Raises:
        WcvizError: no baseline, or no companded group, under ``root``.
    """
    runs = an.collect_runs(root)
    groups = iter_groups(runs)
    out = []
    for members in groups.values():
        check_one_run_per_seed(an.run_label(members[0]),
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
