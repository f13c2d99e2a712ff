"""One self-contained HTML file of runs: ``wcviz report ROOT|RUN... --out FILE.html``.

The file carries the dashboard's views as the same charts (:mod:`wcviz.report.charts`, Vega-Lite
through Altair) with their data and the Vega, Vega-Lite and vega-embed scripts inlined (the
bundle of ``vl-convert-python``): opened from disk it makes no request to any network, so a
co-author can read it on a laptop without installing anything.

Views, in page order: the runs table; every layer's percentile bands side by side (one panel
per run, up to :data:`wcviz.report.charts.MANY_RUNS` runs) and overlaid, a drop-down picks the
layer; the whole network's near-zero fraction over epochs and by layer at the last epoch; a/b of
the learnable runs; the metrics; the sweep heatmaps when the runs hold an (a, b) grid; the
seed-aware claims when the runs hold a baseline and companded runs of one task (needs the
``[stats]`` extra); every run's config.

Size: a chart's rows are thinned to every k-th epoch (first and last kept) so that the bands
stay under :data:`BAND_ROWS` rows and other charts under :data:`MAX_ROWS`, and values keep
:data:`DIGITS` significant digits; the page says which views were thinned. The demo's three
runs make 1.8 MB (0.9 MB of it the scripts).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from wcviz.errors import WcvizError
from wcviz.extras import require
from wcviz.report import analysis, frames, palette, sweep

#: Most rows of a wide quantile frame (runs × layers × epochs) the bands charts carry; beyond
#: it, epochs are thinned evenly. Measured on the demo's runs: a row costs about 1.2 kB of JSON
#: in the overlay and 1.9 kB side by side (fills, lines and hover points), so 1,200 rows stay
#: under 4 MB for both.
BAND_ROWS = 1_200

#: Most rows of any other chart's frame (metrics, near zero, a/b: about 0.15 kB a row).
MAX_ROWS = 6_000

#: Significant digits kept of every value drawn (a weight quantile to 1e-5 of its size: far
#: below a pixel; full float64 text would double the file).
DIGITS = 5


@dataclass
class Page:
    """The parts of a report page while it is built: HTML sections and chart specs."""

    sections: list[str] = field(default_factory=list)
    specs: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def chart(self, chart, caption: str = "") -> None:
        """Add one chart (an Altair chart) as a placeholder div and its Vega-Lite spec."""
        import altair as alt

        # our own thinning bounds the rows (BAND_ROWS, MAX_ROWS); Altair's 5,000-row guard counts
        # the drawn pieces (bands × runs × epochs), not the file's size
        with alt.data_transformers.enable("default", max_rows=None):
            self.specs.append(chart.to_dict())
        cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
        self.sections.append(f'<div class="chart" id="chart{len(self.specs) - 1}"></div>{cap}')

    def heading(self, text: str, intro: str = "") -> None:
        """A section heading and an optional paragraph (escaped)."""
        self.sections.append(f"<h2>{html.escape(text)}</h2>")
        if intro:
            self.sections.append(f"<p>{html.escape(intro)}</p>")


def run_ids(datasets, root: Path | None = None) -> list[str]:
    """Each run's id in the page: its folder below ``root`` (``sweep/seed0``), else its run id;
    a repeated id gets ``#2``, ``#3`` (two folders of one name under different roots)."""
    out: list[str] = []
    for ds in datasets:
        rid = str(ds.attrs.get("run_id", "run"))
        path = ds.attrs.get("path")
        if root is not None and path:
            rel = Path(path).resolve()
            rel = rel.parent if rel.name.endswith(".zarr") else rel
            if rel.is_relative_to(root.resolve()) and rel != root.resolve():
                rid = rel.relative_to(root.resolve()).as_posix()
        n = sum(r == rid or r.startswith(f"{rid}#") for r in out)
        out.append(rid if n == 0 else f"{rid}#{n + 1}")
    return out


def _round(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns to :data:`DIGITS` significant digits (shorter JSON, same picture)."""
    out = {}
    for col in frame.columns:
        if frame[col].dtype.kind == "f" and col not in ("epoch", "a", "b"):
            x = frame[col].to_numpy(float)
            shown = np.isfinite(x) & (x != 0)
            mag = np.floor(np.log10(np.abs(np.where(shown, x, 1.0))))
            scale = 10.0 ** (DIGITS - 1 - mag)
            out[col] = np.where(shown, np.round(x * scale) / scale, x)
    return frame.assign(**out) if out else frame


def thin(frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """``frame`` cut to every k-th recorded epoch of each run (its first and last kept) so that
    it holds at most about ``max_rows`` rows; returns it and k (1: nothing thinned)."""
    if len(frame) <= max_rows or "epoch" not in frame.columns:
        return frame, 1
    k = math.ceil(len(frame) / max_rows)
    keep = []
    for _, part in frame.groupby("run", sort=False):
        epochs = np.sort(part["epoch"].unique())
        chosen = set(epochs[::k]) | {epochs[-1]}
        keep.append(part[part["epoch"].isin(chosen)])
    return pd.concat(keep, ignore_index=True), k


def _label(frame: pd.DataFrame, names: dict, colors: dict) -> pd.DataFrame:
    return frame.assign(name=frame["run"].map(names), color=frame["run"].map(colors))


def _thinned(page: Page, frame: pd.DataFrame, view: str, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    frame, k = thin(frame, max_rows)
    if k > 1:
        page.notes.append(f"{view}: one recorded epoch in {k} drawn (each run's first and last "
                          f"kept) to keep the file small; the run stores hold every record.")
    return _round(frame)


def _runs_table(datasets, ids: list[str], names: list[str]) -> str:
    rows = []
    for rid, name, ds in zip(ids, names, datasets):
        row = analysis.run_row(ds)
        acc = row[analysis.BEST_ACC]
        cells = [rid, name, row["model"], row["dataset"], row["method_label"],
                 "" if analysis.is_baseline(ds) else _fmt(row["a"]),
                 "" if analysis.is_baseline(ds) else _fmt(row["b"]),
                 row["learnable"], _fmt(row["seed"]), row["status"], str(row["n_epochs"]),
                 "" if not np.isfinite(acc) else f"{acc:.2f} %"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = ("run", "name", "model", "dataset", "method", "a", "b", "learnable", "seed", "status",
            "records", "test acc at best val")
    return ("<div class='scroll'><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _fmt(value) -> str:
    """A table cell: empty for None/NaN, numbers as ``%g``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _bands(page: Page, charts, datasets, ids, names, colors) -> None:
    wide = pd.concat([frames.all_quantiles(ds, rid) for ds, rid in zip(datasets, ids)],
                     ignore_index=True)
    if wide.empty:
        return
    wide = _thinned(page, _label(wide, names, colors), "Percentile bands", BAND_ROWS)
    cols = frames.band_columns(wide)
    order = list(dict.fromkeys(wide.sort_values("depth", kind="stable")["layer"]))
    page.heading("Percentile bands", "Pick the layer with the drop-down under each chart; the "
                 "bound lines' check box hides them, and the y axis then fits the weights. "
                 "Hover for exact values; the mouse wheel zooms the epoch axis.")
    if 1 < len(ids) <= charts.MANY_RUNS:
        page.chart(charts.band_chart(wide, cols, layout="side", layers=order, bound_box=True),
                   "Side by side: one panel per run, shared axes.")
    page.chart(charts.band_chart(wide, cols, layout="overlay", layers=order, bound_box=True),
               "Overlaid: each run's median, main band and bound as lines.")


def _near_zero(page: Page, charts, datasets, ids, names, colors) -> None:
    if not datasets or "near_zero_fraction" not in datasets[0] or not datasets[0].sizes.get("threshold"):
        return
    threshold = analysis.select_threshold(datasets[0])
    frame = pd.concat([frames.near_zero(ds, rid) for ds, rid in zip(datasets, ids)],
                      ignore_index=True)
    frame = _label(frame[frame["threshold"] == threshold], names, colors)
    if frame.empty:
        return
    page.heading("Near zero", f"Fraction of weights near zero ({threshold}: "
                 f"{analysis.threshold_text(datasets[0], threshold)}).")
    over = _thinned(page, frames.near_zero_overall(frame), "Near zero over epochs")
    page.chart(charts.near_zero_over_epochs(over), "Whole network (layers weighted by size).")
    last = frame[frame["epoch"] == frame.groupby("run")["epoch"].transform("max")]
    page.chart(charts.near_zero_by_depth(_round(last)), "By layer at each run's last epoch.")


def _compander(page: Page, charts, datasets, ids, names, colors) -> None:
    learnt = [(ds, rid) for ds, rid in zip(datasets, ids) if analysis.is_learnable(ds)]
    if not learnt:
        return
    shown = learnt[:charts.MANY_RUNS]
    frame = pd.concat([frames.compander(ds, rid) for ds, rid in shown], ignore_index=True)
    if frame.empty:
        return
    page.heading("Compander a and b", "Learnt a and b per layer over epochs (runs with fixed "
                 "a, b are in the runs table)."
                 + (f" The first {len(shown)} of {len(learnt)} learnable runs." if len(learnt) > len(shown) else ""))
    page.chart(charts.compander_chart(_thinned(page, _label(frame, names, colors), "a and b")))


def _metrics(page: Page, charts, datasets, ids, names, colors) -> None:
    frame = pd.concat([frames.metrics(ds, rid) for ds, rid in zip(datasets, ids)], ignore_index=True)
    frame = frame[frame["kind"].isin(["loss", "acc"])]
    if frame.empty:
        return
    page.heading("Metrics")
    page.chart(charts.metrics_chart(_thinned(page, _label(frame, names, colors), "Metrics")))


def _sweeps(page: Page, charts, datasets) -> None:
    rows = pd.DataFrame([sweep.run_summary(ds) for ds in datasets])
    if rows.empty:
        return
    setups = rows.groupby(["dataset", "model"], sort=True, dropna=False)
    drawn = False
    for (dataset, model), part in setups:
        grid = part[part.apply(sweep.is_grid_run, axis=1)]
        for method in sorted(set(grid["method"].astype(str))):
            sub = part[(part["method"].astype(str) == method) | (part["method"] == "none")]
            cells = sweep.sweep_cells(sub)
            if len(cells) < 2:  # one (a, b): no grid to map
                continue
            if not drawn:
                page.heading("Sweep", "Mean over seeds per (a, b); hover a cell for the seed "
                             "count, the spread (std) and its runs.")
                drawn = True
            base = sweep.baseline_values(sub)
            page.sections.append(f"<h3>{html.escape(f'{dataset} / {model} / {method}')}</h3>")
            for metric in sweep.SWEEP_METRICS:
                page.chart(charts.sweep_heatmap(cells, metric, base[metric]))


def _claims(page: Page, datasets) -> None:
    try:
        require("stats", needed_by="the claims table")
    except WcvizError as err:
        page.notes.append(f"No claims table: {err}.")
        return
    from wcviz.report import claims

    try:
        results = claims.compare_root(datasets)
    except WcvizError:  # no baseline and companded runs of one task: no study
        return
    page.heading("Claims over seeds", "Runs paired by seed; each claim's headline measure with "
                 "the paired difference's 95 % CI and a verdict (HOLDS / FAILS / INCONCLUSIVE: "
                 "the CI includes 0, or fewer than 3 seeds).")
    head = ("comparison", "claim", "measure", "n", "baseline", "companded", "Δ [95% CI]", "verdict")
    rows = []
    for res in results:
        for _, r in res.headline_frame().iterrows():
            cells = (f"{res.wc} vs {res.baseline}", r["claim"], r["measure"], str(int(r["n"])),
                     claims.format_pm(r["base_mean"], r["base_std"], 3),
                     claims.format_pm(r["wc_mean"], r["wc_std"], 3), claims.format_diff(r),
                     r["verdict"])
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    page.sections.append("<div class='scroll'><table><thead><tr>"
                         + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                         + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    full = "\n\n".join(res.report() for res in results)
    page.sections.append(f"<details><summary>every measure</summary><pre>{html.escape(full)}"
                         "</pre></details>")


def _configs(page: Page, datasets, ids, names) -> None:
    page.heading("Run configs")
    for rid, name, ds in zip(ids, names, datasets):
        text = ds.attrs.get("config") or "{}"
        try:
            text = json.dumps(json.loads(text), indent=2, sort_keys=True)
        except (TypeError, ValueError):
            text = str(text)
        path = str(ds.attrs.get("path", ""))
        page.sections.append(f"<details><summary title='{html.escape(path, quote=True)}'>"
                             f"{html.escape(name)} ({html.escape(rid)})</summary>"
                             f"<pre>{html.escape(text)}</pre></details>")


def build(datasets, *, title: str = "wcviz report", root: Path | None = None) -> str:
    """The report page of opened runs, as HTML text (see the module docstring)."""
    require("altair", "vl_convert", needed_by="the HTML report")
    from wcviz.report import charts

    datasets = [ds for ds in datasets if ds.sizes.get("epoch", 0)]
    if not datasets:
        raise WcvizError("no run with a committed record to report; train first (e.g. wcviz demo)")
    ids = run_ids(datasets, root)
    labels = analysis.unique_labels(datasets)
    names, colors = dict(zip(ids, labels)), dict(zip(ids, palette.run_colors(datasets)))
    page = Page()
    page.heading("Runs")
    page.sections.append(_runs_table(datasets, ids, labels))
    for view in (_bands, _near_zero, _compander, _metrics):
        view(page, charts, datasets, ids, names, colors)
    _sweeps(page, charts, datasets)
    _claims(page, datasets)
    _configs(page, datasets, ids, labels)
    return _document(title, page)


def _script_json(spec: dict) -> str:
    """A spec as JavaScript source inside <script>: ``</`` and the line separators escaped,
    so no run name can end the script element."""
    text = json.dumps(spec, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script, for the Vega-Lite version Altair writes."""
    import vl_convert
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;
max-width:1200px;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ddd;padding:.2rem .45rem;
text-align:left;white-space:nowrap}th{background:#f5f5f5}.scroll{max-width:100%;overflow-x:auto}
.caption{color:#555;font-size:.85rem;margin-top:.2rem}.chart{margin-top:1rem;overflow-x:auto}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem}
.notes{background:#fff8e1;padding:.5rem 1rem;border-left:4px solid #f0c000}
#errors{color:#b00020}#errors:empty{display:none}
"""

#: Renders every chart; ``window.wcvizRendered`` resolves to the errors (empty: all drawn).
_RUNNER = """
const specs = %s;
window.wcvizRendered = Promise.allSettled(specs.map((spec, i) =>
  vegaEmbed('#chart' + i, spec, {actions: false, renderer: 'svg'}))).then(results => {
  const errors = results.flatMap((r, i) => r.status === 'rejected' ? ['chart ' + i + ': ' + r.reason] : []);
  document.getElementById('errors').textContent = errors.join('\\n');
  document.body.dataset.rendered = errors.length ? 'errors' : 'ok';
  return errors;
});
"""


def _document(title: str, page: Page) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notes = ("<div class='notes'>" + "".join(f"<p>{html.escape(n)}</p>" for n in page.notes)
             + "</div>") if page.notes else ""
    specs = "[" + ",".join(_script_json(s) for s in page.specs) + "]"
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script>{_bundle()}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><p class='caption'>Written by wcviz on {stamp}; "
            f"everything this page shows is inside this one file.</p>{notes}"
            f"<pre id='errors'></pre>" + "\n".join(page.sections)
            + f"<script>{_RUNNER % specs}</script></body></html>\n")


def write_report(runs, out, *, title: str | None = None) -> Path:
    """Write the report of ``runs`` (a runs root, run folders or opened Datasets) to ``out``.

    Returns:
        The file written.

    Raises:
        WcvizError: no runs, or ``out`` cannot be written.
    """
    from wcviz.record.atomic import write_atomic

    root = Path(runs) if isinstance(runs, (str, Path)) and Path(runs).is_dir() else None
    datasets = analysis.collect_runs(runs)
    text = build(datasets, title=title or f"wcviz report: {root.name if root else 'runs'}",
                 root=root)
    out = Path(out)
    if not out.parent.is_dir():
        raise WcvizError(f"cannot write {out}: folder {out.parent} does not exist")
    try:
        write_atomic(out, text.encode("utf-8"))
    except OSError as err:
        raise WcvizError(f"cannot write {out}: {err.strerror or err}; pass --out a file path in "
                         "a writable folder") from None
    return out
