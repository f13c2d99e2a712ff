"""The paper's accuracy tables (Tables II–VII): mean ± std over seeds, the gap to the baseline.

:func:`accuracy_table` folds the runs' rows (:func:`wcviz.report.analysis.runs_table`) per
configuration over seeds (:mod:`wcviz.report.seeds`) and pairs each companded configuration
with its baseline by seed (:func:`gap_interval`, decided as claim (iii) of
:mod:`wcviz.report.claims`); :func:`format_table` renders it as Markdown, LaTeX or CSV.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from wcviz.errors import WcvizError
from wcviz.record.metrics import BEST_ACC
from wcviz.record.runfolder import FINISHED
from wcviz.report import claims
from wcviz.report.analysis import METHOD_NAMES, runs_table
from wcviz.report.seeds import check_one_run_per_seed, mean_std, study_of

GROUP_KEYS = ["study", "dataset", "model", "recipe", "method", "learnable", "a", "b"]


def accuracy_table(runs, finished_only: bool = True) -> pd.DataFrame:
    """Mean ± std over seeds per (study, dataset, model, method[, a, b]): the paper's Tables
    II–VII. A root holding several studies (sub-folders, :func:`wcviz.report.seeds.study_of`,
    e.g. ``wcviz demo``'s runs beside ``reproduce-digits/``) gets rows per study, named in a
    ``study`` column, each gap taken to its own study's baseline.

    Args:
        runs: a runs root, run paths, Datasets, or a :func:`runs_table` DataFrame.
        finished_only: ignore runs whose status is not "finished" (their last epoch is not final).

    Returns:
        One row per group with ``n`` (seeds), ``best_mean``/``best_std`` (test accuracy of the
        best-validation epoch, %), ``last_mean``/``last_std`` (last-epoch test accuracy, %),
        ``n_paired`` (seeds shared with the same recipe's baseline), ``delta_best``/``delta_last``
        (the mean over those paired seeds of run − baseline, percentage points: the same
        seeds as the CI), ``ci_low``/``ci_high`` (95 % paired-t CI of the best-val gap),
        ``p_t`` (its two-sided p), ``p_holm`` (Holm-adjusted over the table's gaps: one
        family), ``ci_excludes_0`` (p_holm < 0.05 with ≥ 3 paired seeds) and ``note``
        (:func:`significance_note`). Std is the sample standard deviation (ddof=1); NaN for
        one seed.
    """
    df = runs if isinstance(runs, pd.DataFrame) else runs_table(runs)
    if finished_only and len(df):
        df = df[df["status"] == FINISHED]
    if not len(df):
        raise WcvizError("no finished runs to tabulate; train some (wcviz demo) or pass "
                         "--all to include unfinished runs")
    df = df.assign(learnable=df["learnable"].fillna(""), a=df["a"].fillna(-1.0), b=df["b"].fillna(-1.0),
                   study=df["run_id"].map(study_of) if "run_id" in df else "")
    rows = [_group_row(key, group) for key, group in df.groupby(GROUP_KEYS, sort=False, dropna=False)]
    table = pd.DataFrame(rows)
    # The paper's row order: per dataset and model, the baseline first, then the methods.
    rank = table["method"].map({m: i for i, m in enumerate(METHOD_NAMES)}).fillna(len(METHOD_NAMES))
    table = (table.assign(_rank=rank).sort_values(["study", "dataset", "model", "recipe", "_rank", "learnable", "a", "b"],
                                                 kind="stable").drop(columns="_rank").reset_index(drop=True))
    table[["a", "b"]] = table[["a", "b"]].where(table[["a", "b"]] >= 0)
    return _add_baseline_delta(table)


def _group_row(key: tuple, group: pd.DataFrame) -> dict:
    row = dict(zip(GROUP_KEYS, key))
    row["method_label"] = group["method_label"].iloc[0]
    row["run_label"] = group["run_label"].iloc[0]
    check_one_run_per_seed(row["run_label"], group["seed"].tolist(),
                           group.get("path", group["run_id"]).tolist())
    for name in ("model", "dataset"):  # a table from before the labels: the stored names
        row[f"{name}_label"] = group[f"{name}_label"].iloc[0] if f"{name}_label" in group else row[name]
    row["preset"] = group["preset"].iloc[0]
    row["n"] = len(group)
    # Per-seed values, for the gap's paired CI (runs of one configuration differ by seed).
    row["best_by_seed"] = dict(zip(group["seed"].tolist(), group[BEST_ACC].tolist()))
    row["last_by_seed"] = dict(zip(group["seed"].tolist(), group["last_test_acc"].tolist()))
    for name, column in (("best", BEST_ACC), ("last", "last_test_acc")):
        row[f"{name}_mean"], row[f"{name}_std"] = mean_std(group[column])
    return row


def _add_baseline_delta(table: pd.DataFrame) -> pd.DataFrame:
    names = ("n_paired", "delta_best", "delta_last", "ci_low", "ci_high", "p_t", "p_holm",
             "ci_excludes_0", "note", "shares_baseline")
    deltas = {key: [] for key in names}
    gaps, rows = [], []
    for i, row in table.iterrows():
        bases = table[(table["dataset"] == row["dataset"]) & (table["model"] == row["model"])
                      & (table["recipe"] == row["recipe"]) & (table["method"] == "none")]
        # Its own study's baseline, else one of another study (e.g. runs/baseline/, runs/wc/).
        own = bases[bases["study"] == row["study"]]
        base = own if len(own) else bases
        if row["method"] == "none" or base.empty:
            gaps.append(None)
            rows.append(("baseline" if row["method"] == "none" else "no baseline", None))
            continue
        base = base.iloc[0]
        gaps.append(gap_interval(row["best_by_seed"], base["best_by_seed"]))
        rows.append((None, base.name))
    claims.correct_rows([g for g in gaps if g is not None])  # the table's gaps: one family
    shared = pd.Series([b for _, b in rows if b is not None]).value_counts()
    for (note, base_index), gap, (_, row) in zip(rows, gaps, table.iterrows()):
        if gap is None:
            empty = {"n_paired": 0, "shares_baseline": 0, "ci_excludes_0": False, "note": note}
            for key in names:
                deltas[key].append(empty.get(key, math.nan))
            continue
        last = gap_interval(row["last_by_seed"], table.loc[base_index, "last_by_seed"])
        deltas["n_paired"].append(gap.n)
        deltas["delta_best"].append(float(gap.diff.mean()) if gap.n else math.nan)
        deltas["delta_last"].append(float(last.diff.mean()) if last.n else math.nan)
        deltas["ci_low"].append(gap.ci_t[0])
        deltas["ci_high"].append(gap.ci_t[1])
        deltas["p_t"].append(gap.p_t)
        deltas["p_holm"].append(gap.p_holm)
        deltas["ci_excludes_0"].append(gap.verdict in (claims.IMPROVES, claims.WORSE))
        deltas["note"].append(significance_note(gap))
        deltas["shares_baseline"].append(int(shared[base_index]))
    return table.assign(**deltas)


def gap_interval(method_by_seed: dict, base_by_seed: dict):
    """The best-val accuracy gap to the baseline, paired by seed: a
    :class:`wcviz.report.claims.PairedResult` of claim (iii) in the headline family (paired-t
    CI and p; :func:`wcviz.report.claims.correct_family` adjusts it over a table's gaps)."""
    seeds = sorted(set(method_by_seed) & set(base_by_seed), key=str)
    res = claims.paired("(iii)", "test acc at best val (%)", "keep", seeds,
                        [base_by_seed[s] for s in seeds], [method_by_seed[s] for s in seeds],
                        margin=claims.NI_MARGIN)
    res.family = claims.HEADLINE
    claims.correct_rows([res])  # alone: its own family (accuracy_table corrects over the table)
    return res


def significance_note(gap) -> str:
    """How much the best-val gap to the baseline means: the paired seeds, the 95 % CI of the
    paired difference and its Holm-adjusted p; "excludes 0" when the difference test rejects
    with ≥ 3 seeds (the rule of :func:`wcviz.report.claims.verdict`)."""
    if gap.n == 0:
        return "no seed shared with the baseline"
    if gap.n < 2:
        return f"n={gap.n} paired seed; no CI"
    ci = f"Δ 95% CI [{gap.ci_t[0]:+.2f}, {gap.ci_t[1]:+.2f}]"
    if gap.verdict in (claims.IMPROVES, claims.WORSE):
        return f"n={gap.n} paired seeds; Holm p {gap.p_holm:.2g}; {ci} excludes 0"
    return f"n={gap.n} paired seeds; {ci}; no verdict ({gap.why})"


#: What the mark on a gap means (printed under the Markdown table).
GAP_FOOTNOTE = ("\\* the gap differs from 0: paired t over the seeds both rows share (Δ is the "
                "mean over the same pairs), Holm-adjusted p < 0.05 over every gap of the "
                "table; needs ≥ 3 paired seeds")
#: Printed under the table when several rows are compared with one baseline.
SHARED_FOOTNOTE = ("gaps measured against the same baseline rows are correlated (a baseline "
                   "seed that ran low raises all of them); Holm holds under any dependence, "
                   "but the gaps are not independent evidence")


def _pm(mean: float, std: float, tex: bool = False) -> str:
    if not np.isfinite(mean):
        return "–"
    if not np.isfinite(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} $\\pm$ {std:.2f}" if tex else f"{mean:.2f} ± {std:.2f}"


def _delta(x: float, marked: bool = False) -> str:
    """A gap in points; ``*`` when its paired 95 % CI excludes 0."""
    return (f"{x:+.2f}" + ("*" if marked else "")) if np.isfinite(x) else ""


def _row_name(row) -> str:
    """The model, then the runs' display name (:func:`run_label`) unless they are baselines."""
    model = str(row["model_label"])
    return model if row["method"] == "none" else f"{model} + {row['run_label']}"


def display_rows(table: pd.DataFrame, tex: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and string cells of an accuracy table, as the paper shows it; a first ``study``
    column (the runs' sub-folder, "." for runs directly under the root) when the table holds
    runs of a sub-folder, so that two studies' look-alike rows are told apart."""
    header = ["dataset", "model", "seeds", "best-val test acc (%)", "last-epoch test acc (%)",
              "Δ best vs baseline (pp)", "note"]
    studies = table["study"] if "study" in table else pd.Series([""] * len(table))
    show_study = _has_studies(table)
    # A model trained with several recipes (e.g. Adam and SGD): its rows name their preset.
    recipes = table.groupby(["dataset", "model"])["recipe"].transform("nunique")
    names = [_row_name(r) + (f" [{r['preset'] or 'other recipe'}]" if k > 1 else "")
             for (_, r), k in zip(table.iterrows(), recipes)]
    cells = [[str(r["dataset_label"]), name, str(int(r["n"])),
              _pm(r["best_mean"], r["best_std"], tex), _pm(r["last_mean"], r["last_std"], tex),
              _delta(r["delta_best"], bool(r["ci_excludes_0"])), str(r["note"])]
             for (_, r), name in zip(table.iterrows(), names)]
    if show_study:
        header = ["study", *header]
        cells = [[study or ".", *row] for study, row in zip(studies, cells)]
    return header, cells


def _has_studies(table: pd.DataFrame) -> bool:
    """Whether the table holds runs of a sub-folder of the root (a named study)."""
    return "study" in table and bool((table["study"] != "").any())


def format_table(table: pd.DataFrame, fmt: str = "md") -> str:
    """Render an :func:`accuracy_table` as Markdown (``md``), LaTeX (``tex``) or CSV (``csv``).

    CSV keeps the numbers (mean and std in separate columns) for further processing; Markdown
    and LaTeX show "mean ± std" as the paper does.
    """
    if fmt == "csv":
        # the study column only where a sub-folder's runs are in the table, as in md and tex
        hidden = ["best_by_seed", "last_by_seed", "recipe",
                  *(["study"] if not _has_studies(table) else [])]
        return table.drop(columns=hidden, errors="ignore").to_csv(index=False, float_format="%.4f")
    if fmt == "md":
        header, cells = display_rows(table)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        shared = (table["shares_baseline"] > 1).any()
        return "\n".join(lines + ["", GAP_FOOTNOTE] + (["", SHARED_FOOTNOTE] if shared else [])) + "\n"
    if fmt == "tex":
        header, cells = display_rows(table, tex=True)
        esc = _tex_escape
        lines = [r"\begin{tabular}{" + "l" * (len(header) - 5) + "r" * 4 + "l}", r"\toprule",
                 " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
        lines += [" & ".join(c if "$" in c else esc(c) for c in row) + r" \\" for row in cells]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
    raise WcvizError(f"unknown table format {fmt!r}; choose md, tex or csv")


def _tex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                       ("#", r"\#"), ("Δ", r"$\Delta$"), ("±", r"$\pm$"), ("≥", r"$\geq$")):
        text = text.replace(char, repl)
    return text
