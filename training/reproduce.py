"""``wcviz reproduce NAME``: a named study (runs × seeds, figures, seed-aware claims, public
figures beside ours) in one resumable command.

A study is a list of *arms* (preset × method × a, b) trained over seeds, a list of
comparisons (a companded arm against its baseline arm, decided by :mod:`wcviz.report.claims`), and the
published numbers it can be checked against. Runs live under
``<runs>/reproduce-<name>[-quick]/``; a finished run is kept, an interrupted one resumed, so
running the command again continues where it stopped. ``--quick`` is the few-minute CPU
version (fewer arms, epochs and seeds), in its own folder.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from wcviz.training import demo, sweep
from wcviz.training.cli import use_run_options
from wcviz.record.config import run_state
from wcviz.record.runfolder import CONFLICT, DONE, NEW, RESUME, check_writable
from wcviz.errors import WcvizError
from wcviz.extras import require


@dataclass(frozen=True)
class Arm:
    """One configuration of a study: a preset row, optionally with its own a, b."""

    key: str
    preset: str
    method: str
    a: float | None = None
    b: float | None = None

    def overrides(self) -> dict:
        return {k: v for k, v in (("a", self.a), ("b", self.b)) if v is not None}


@dataclass(frozen=True)
class Public:
    """A published number an arm's test accuracy is set beside."""

    arm: str
    percent: float
    what: str
    source: str


@dataclass(frozen=True)
class Study:
    """A named study (see the module docstring)."""

    name: str
    about: str
    arms: tuple[Arm, ...]
    compare: tuple[tuple[str, str], ...]  # (baseline arm, companded arm)
    seeds: int
    quick_arms: tuple[str, ...]
    quick_epochs: int
    quick_seeds: int = 3
    public: tuple[Public, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


MNIST1D_SOURCE = ("Greydanus 2020, 'Scaling down Deep Learning' (arXiv:2011.14439): "
                  "logistic regression 32 %, MLP 68 %, CNN 94 %, GRU 91 %, human 96 % test "
                  "accuracy on MNIST-1D; also the README of github.com/greydanus/mnist1d")

STUDIES: dict[str, Study] = {
    "mnist1d": Study(
        "mnist1d",
        "MNIST-1D's reference CNN and MLP (Adam, its own recipe; and the CNN under SGD, the "
        "paper's optimizer), weight decay 1e-4 as in the paper: baseline vs WC (Table I's a=1.0, b=0.6, and a=0.8, b=0.5) vs learnable WC, "
        "against the published accuracies",
        (Arm("cnn-baseline", "mnist1d-cnn", "baseline"),
         Arm("cnn-wc", "mnist1d-cnn", "wc"),
         Arm("cnn-wc-a0.8-b0.5", "mnist1d-cnn", "wc", 0.8, 0.5),
         Arm("cnn-wc-learnable", "mnist1d-cnn", "wc-learnable"),
         Arm("cnn-sgd-baseline", "mnist1d-cnn-sgd", "baseline"),
         Arm("cnn-sgd-wc", "mnist1d-cnn-sgd", "wc"),
         Arm("cnn-sgd-wc-learnable", "mnist1d-cnn-sgd", "wc-learnable"),
         Arm("mlp-baseline", "mnist1d-mlp", "baseline"),
         Arm("mlp-wc", "mnist1d-mlp", "wc")),
        (("cnn-baseline", "cnn-wc"), ("cnn-baseline", "cnn-wc-a0.8-b0.5"),
         ("cnn-baseline", "cnn-wc-learnable"), ("cnn-sgd-baseline", "cnn-sgd-wc"),
         ("cnn-sgd-baseline", "cnn-sgd-wc-learnable"),
         ("mlp-baseline", "mlp-wc")),
        seeds=5,
        quick_arms=("cnn-baseline", "cnn-wc", "cnn-wc-learnable", "mlp-baseline"),
        quick_epochs=15,
        public=(Public("cnn-baseline", 94.0, "MNIST-1D reference CNN", MNIST1D_SOURCE),
                Public("mlp-baseline", 68.0, "MNIST-1D reference MLP", MNIST1D_SOURCE)),
        notes=("The published numbers train on all 4,000 training sequences for 6,000 Adam "
               "steps and report the final test accuracy; here 3,600 train (400 are the "
               "validation split) and the test accuracy at the best-validation epoch.",)),
    "digits": Study(
        "digits",
        "scikit-learn's 8×8 digits (the demo's data and CNN): baseline vs WC with a/b > 1 "
        "(a=0.5, b=0.3: bound aπ/2 = 0.785) vs learnable WC",
        (Arm("baseline", "digits-cnn", "baseline"),
         Arm("wc", "digits-cnn", "wc"),
         Arm("wc-learnable", "digits-cnn", "wc-learnable")),
        (("baseline", "wc"), ("baseline", "wc-learnable")),
        seeds=5,
        quick_arms=("baseline", "wc", "wc-learnable"),
        quick_epochs=8,
        notes=("digits has no published reference of this model; every method saturates near "
               "98-99 %, so claim (iii) is expected to be INCONCLUSIVE here.",)),
}


# ----------------------------------------------------------------------------- planning


def parse_seeds(text: str | None, default: int) -> list[int]:
    """None -> seeds 0..default-1; else as ``wcviz sweep --seeds`` (:func:`sweep.parse_seeds`)."""
    return list(range(default)) if text is None else sweep.parse_seeds(text)


@dataclass
class Planned:
    """One run of a study: its arm, seed, config and folder."""

    arm: Arm
    seed: int
    cfg: object
    run_dir: Path
    state: str = NEW


def plan(study: Study, root: Path, seeds: list[int], epochs: int | None, quick: bool,
         data_root: str) -> list[Planned]:
    """Every (arm, seed) run of the study with its state (new / done / resume / conflict)."""
    from wcviz.training.presets import check_config, resolve, run_name

    arms = [a for a in study.arms if not quick or a.key in study.quick_arms]
    epochs = epochs or (study.quick_epochs if quick else None)
    out = []
    for arm in arms:
        for seed in seeds:
            extra = {"epochs": epochs} if epochs else {}
            cfg = resolve(arm.preset, arm.method, seed=seed, device="cpu", progress=False,
                          data_root=data_root, **extra, **arm.overrides())
            check_config(cfg)
            run_dir = root / run_name(cfg)
            out.append(Planned(arm, seed, cfg, run_dir, run_state(run_dir, cfg.recipe())))
    return out


def study_root(runs: Path, study: Study, quick: bool) -> Path:
    """Where a study's runs live: ``<runs>/reproduce-<name>[-quick]``."""
    return Path(runs) / f"reproduce-{study.name}{'-quick' if quick else ''}"


# ----------------------------------------------------------------------------- running


def run_plan(planned: list[Planned], overwrite: bool) -> None:
    """Train what is missing: new runs, resumed ones; finished ones are kept."""
    from wcviz.training.loop import run

    conflicts = [p.run_dir for p in planned if p.state == CONFLICT and not overwrite]
    if conflicts:
        raise WcvizError(f"{conflicts[0]} holds a run with another config (e.g. other "
                         "--epochs); pass --overwrite to retrain, or choose another --runs")
    todo = [p for p in planned if overwrite or p.state != DONE]
    for i, p in enumerate(todo, 1):
        start = time.perf_counter()
        resume = p.state == RESUME and not overwrite
        print(f"[reproduce] {i}/{len(todo)} {p.arm.key} seed {p.seed} "
              f"({'resuming' if resume else 'training'}) -> {p.run_dir}", flush=True)
        result = run(p.cfg, p.run_dir, resume=resume, overwrite=overwrite, keep_memory=True)
        print(f"[reproduce]   {result.status}, test acc {100 * result.best_val_test_acc:.2f} % "
              f"at best val, {time.perf_counter() - start:.0f} s", flush=True)
    kept = len(planned) - len(todo)
    if kept:
        print(f"[reproduce] {kept} finished run(s) kept", flush=True)


# ----------------------------------------------------------------------------- reporting


def arm_runs(planned: list[Planned]) -> dict[str, list[Path]]:
    """Run folders per arm key, in seed order."""
    out: dict[str, list[Path]] = {}
    for p in planned:
        out.setdefault(p.arm.key, []).append(p.run_dir)
    return out


def comparisons(study: Study, runs: dict[str, list],
                margin: float | None = None) -> list[tuple[str, str, object]]:
    """(baseline arm, companded arm, :class:`wcviz.report.claims.GroupComparison`) for each
    pair run, decided as one Holm family (:func:`wcviz.report.claims.decide_together`)."""
    from wcviz.report import claims

    margin = claims.NI_MARGIN if margin is None else margin
    pairs = [(b, w) for b, w in study.compare if b in runs and w in runs]
    out = [(b, w, claims.compare_groups(runs[b], runs[w], margin=margin)) for b, w in pairs]
    claims.decide_together([res for _, _, res in out], [runs[b] for b, _ in pairs])
    return out


def claim_table(results) -> str:
    """One line per comparison and claim: the headline measure's Δ with its CI, raw and
    Holm-adjusted p, the verdict, and for INCONCLUSIVE the smallest difference n could have
    detected; then the family, the tests and the correlation of shared baselines."""
    from wcviz.report.claims import INCONCLUSIVE, POWER, format_diff, format_pm

    head = ("comparison", "claim", "measure", "n", "baseline", "companded", "Δ [95% CI]", "p",
            "p Holm", "verdict", f"n detects |Δ| ≥ ({POWER:.0%} power)")
    rows = [head]
    for base, wc, res in results:
        for _, r in res.headline_frame().iterrows():
            shown = r["verdict"] == INCONCLUSIVE and math.isfinite(r["mde_80"])
            mde = f"{r['mde_80']:.3g}" if shown else ""
            rows.append((f"{wc} vs {base}", r["claim"], r["measure"], str(int(r["n"])),
                         format_pm(r["base_mean"], r["base_std"], 3),
                         format_pm(r["wc_mean"], r["wc_std"], 3), format_diff(r),
                         _p(r["p_t"]), _p(r["p_holm"]), r["verdict"], mde))
    notes = results[0][2].method_lines()[:2] if results else []
    shared = sorted({base for base, _, res in results if res.shared_baseline > 1})
    if shared:
        notes.append(f"comparisons sharing a baseline arm ({', '.join(shared)}) are correlated: "
                     "one baseline seed moves all of them; Holm holds under any dependence")
    return _aligned(rows) + "".join(f"\n{n}" for n in notes)


def _p(p: float) -> str:
    return f"{p:.2g}" if math.isfinite(p) else "–"


def public_table(study: Study, runs: dict[str, list]) -> str:
    """Our test accuracy (mean ± std over seeds, 95 % t CI of the mean) beside the published."""
    if not study.public:
        return ""
    from wcviz.report import analysis
    from wcviz.report.claims import format_pm, t_interval
    from wcviz.report.seeds import mean_std

    rows = [("model", "published", "ours: test acc at best val (%)", "95% CI of the mean", "seeds",
             "ours − published")]
    for pub in study.public:
        if pub.arm not in runs:
            continue
        acc = analysis.as_percent([analysis.best_val_test_acc(analysis.as_dataset(p))[1]
                                   for p in runs[pub.arm]])
        (mean, std), n = mean_std(acc), len(acc)
        (lo, hi), _ = t_interval(acc)  # the t interval of the mean, as for the claims
        ci = f"[{lo:.2f}, {hi:.2f}]" if n > 1 else "–"
        rows.append((pub.what, f"≈ {pub.percent:g} %", format_pm(mean, std, 3), ci, str(n),
                     f"{mean - pub.percent:+.2f} pp"))
    sources = sorted({p.source for p in study.public})
    return _aligned(rows) + "\n" + "\n".join(f"source: {s}" for s in sources)


def _aligned(rows) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_outputs(study: Study, runs: dict[str, list], results, out: Path,
                  figures: bool) -> list[Path]:
    """claims.md (every measure of every comparison), claims.csv, table.md, figures."""
    import pandas as pd

    from wcviz.report import tables

    out.mkdir(parents=True, exist_ok=True)
    written = []
    reports = [f"## {wc} vs {base}\n\n```\n{res.report()}\n```\n" for base, wc, res in results]
    (out / "claims.md").write_text(f"# {study.name}: claims over seeds\n\n" + "\n".join(reports),
                                   encoding="utf-8")
    frames = [res.frame().assign(baseline=base, companded=wc) for base, wc, res in results]
    if frames:
        pd.concat(frames).to_csv(out / "claims.csv", index=False, float_format="%.6g")
    all_runs = [p for paths in runs.values() for p in paths]
    table = tables.format_table(tables.accuracy_table(all_runs), "md")
    (out / "table.md").write_text(table, encoding="utf-8")
    written += [out / "claims.md", out / "claims.csv", out / "table.md"]
    if figures:
        written += _figures(study, runs, out)
    report = demo.write_report(all_runs, out / "report.html", f"wcviz reproduce {study.name}")
    return written + ([report] if report else [])


def _figures(study: Study, runs: dict[str, list], out: Path) -> list[Path]:
    """Paper figures per preset, from the first seed of each of its arms."""
    from wcviz.report import plots

    by_preset: dict[str, list[Path]] = {}
    for arm in study.arms:
        if arm.key in runs:
            by_preset.setdefault(arm.preset, []).append(runs[arm.key][0])
    files = []
    for preset, paths in by_preset.items():
        files += plots.write_paper_figures(paths, out / "figures" / preset,
                                           formats=("png",))
    return files


# ----------------------------------------------------------------------------- command


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=(
        "Run a named study: its runs over seeds, figures, the seed-aware claim table and "
        "the published figures beside ours. Resumable: finished runs are kept, interrupted "
        "ones resumed. Studies: " + "; ".join(f"{s.name}: {s.about}" for s in STUDIES.values())))
    p.add_argument("name", nargs="?", help="study: " + ", ".join(STUDIES))
    p.add_argument("--list", action="store_true", help="list the studies and their runs")
    p.add_argument("--quick", action="store_true",
                   help="the few-minute CPU version (fewer arms and epochs, 3 seeds)")
    p.add_argument("--seeds", help="N (seeds 0..N-1) or a list 0,3,7 (default: the study's)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the presets')")
    p.add_argument("--runs", default="runs", help="runs root (default ./runs)")
    p.add_argument("--out", help="outputs folder (default <runs>/reproduce-<name>[-quick]/results)")
    p.add_argument("--data-root", default="data", help="data folder (MNIST-1D cache; default ./data)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these nets are tiny, and a second "
                        "spinning thread slows a shared machine down)")
    p.add_argument("--overwrite", action="store_true", help="retrain runs that exist")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--margin", type=float, metavar="POINTS",
                   help="non-inferiority margin of claim (iii), accuracy points (default 0.5)")
    return p


def _list() -> str:
    lines = []
    for s in STUDIES.values():
        lines.append(f"{s.name}: {s.about}")
        lines.append(f"  arms ({s.seeds} seeds): " + ", ".join(a.key for a in s.arms))
        lines.append(f"  --quick: {', '.join(s.quick_arms)}; {s.quick_epochs} epochs, "
                     f"{s.quick_seeds} seeds")
    return "\n".join(lines)


def reproduce_main(argv: list[str], prog: str = "wcviz reproduce") -> int:
    """``wcviz reproduce NAME``: train what is missing, then print claims and public figures."""
    from wcviz.report import analysis

    args = _parser(prog).parse_args(argv)
    if args.list:
        print(_list())
        return 0
    if args.name is None:
        raise WcvizError(f"name a study: wcviz reproduce NAME ({', '.join(STUDIES)}), "
                         "or --list to see them")
    if args.name not in STUDIES:
        raise WcvizError(f"unknown study {args.name!r}; choose one of: {', '.join(STUDIES)}")
    require("train", "figures", "stats", needed_by="a study (training, figures, claims)")
    use_run_options(args.epochs, args.threads)
    study = STUDIES[args.name]
    seeds = parse_seeds(args.seeds, study.quick_seeds if args.quick else study.seeds)
    root = check_writable(study_root(Path(args.runs), study, args.quick))
    planned = plan(study, root, seeds, args.epochs, args.quick, args.data_root)
    start = time.perf_counter()
    run_plan(planned, args.overwrite)
    # Each store loaded once: the comparisons (a baseline arm in several), the tables and the
    # figures all read the same runs (about 1.3 s less for the 9 runs of `digits --quick`).
    runs = {arm: analysis.as_datasets(paths) for arm, paths in arm_runs(planned).items()}
    results = comparisons(study, runs, args.margin)
    out = Path(args.out) if args.out else root / "results"
    files = write_outputs(study, runs, results, out, figures=not args.no_figures)
    print(f"\n[reproduce] {study.name}{' (quick)' if args.quick else ''}: {len(planned)} runs "
          f"({len(study.arms if not args.quick else study.quick_arms)} arms × {len(seeds)} "
          f"seeds), {time.perf_counter() - start:.0f} s\n")
    print("Claims over seeds (headline measure per claim; every measure in claims.md):")
    print(claim_table(results))
    public = public_table(study, runs)
    if public:
        print("\nPublished figures beside ours:")
        print(public)
    notes = list(study.notes)
    if args.quick or args.epochs:
        notes.append("shortened runs (--quick/--epochs): accuracies sit below the full "
                     "recipe's; run without --quick for the study itself.")
    for note in notes:
        print(f"\nnote: {note}")
    print(f"\nWrote {len(files)} files under {out} (claims.md, claims.csv, table.md, report.html"
          f"{', figures/' if not args.no_figures else ''})")
    return 0
