"""Interactive Altair (Vega-Lite) charts: the one chart vocabulary of the dashboard
(:mod:`wcviz.app`) and the one-file HTML report (:mod:`wcviz.report.html`), built from tidy frames
(:mod:`wcviz.app.data` builds them for the dashboard).

Charts hold no logic about stores: give them a frame, get a chart. Frames carry each run's
display ``name`` and ``color`` (:func:`wcviz.app.data.label_runs`: the names and method colours of the
figures), so a run looks the same on every page and in every exported figure. A wide quantile
frame comes with its :class:`wcviz.report.frames.BandColumns` (which column holds which level, band,
median and spread), so the charts read no meaning out of column names. Hovering shows exact
values, the mouse wheel zooms the epoch axis and dragging pans it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd

from wcviz.report import sweep
from wcviz.report.bands import BAND_OPACITY

if TYPE_CHECKING:  # annotations only: the charts draw what they are given
    from wcviz.report.frames import Band, BandColumns

_EPOCH = alt.X("epoch:Q", title="epoch", axis=alt.Axis(format="~g"))

#: Legend title of the line-style legend of overlaid runs.
LINE_TITLE = "line"

#: Line styles of an overlay: the median solid and thick, the main band's edges solid, min–max
#: dashed, the bound dotted (Vega-Lite strokeDash arrays, in px).
_DASH = {"median": [1, 0], "band": [1, 0], "min–max": [5, 3], "bound": [1, 3], "spread": [2, 2]}


def run_color(frame: pd.DataFrame, title: str = "run", legend: bool = True) -> alt.Color:
    """Colour by run: the frame's ``name`` column, coloured with its ``color`` column.

    The colours are :func:`wcviz.report.palette.run_colors`' (by method, as in the figures;
    Okabe–Ito, readable under colour-vision deficiencies), the names the figures' labels.
    Every layer of a chart uses the same scale (one legend); ``legend=False`` for all but one.
    """
    # one row per run first: zipping the columns of 100 runs × 200 epochs costs ~40 ms
    runs = frame[["name", "color"]].drop_duplicates("name") if len(frame) else frame
    pairs = dict(zip(runs["name"], runs["color"])) if len(frame) else {}
    shown = alt.Legend(title=title, orient="bottom", columns=2, labelLimit=500, symbolOpacity=1,
                       symbolType="stroke", symbolStrokeWidth=3)
    return alt.Color("name:N", legend=shown if legend else None,
                     scale=alt.Scale(domain=list(pairs), range=list(pairs.values())))


def _main_band(bands: tuple[Band, ...]) -> Band | None:
    """The band an overlay fills: the one whose low level is nearest 15.87 % (a normal's ±1σ)."""
    inner = [b for b in bands if b.label != "min–max"]
    if not inner:
        return None
    return min(inner, key=lambda b: abs(b.level - 0.1587))


def symlog_constant(wide: pd.DataFrame, cols: BandColumns) -> float:
    """Linear half-width of the symlog y scale: a tenth of the typical main band's half-width.

    Weights live on very different scales per layer (about 1e-3 to 1), so a fixed constant
    would make symlog either linear or meaningless; a tenth of the spread keeps the bulk of the
    distribution linear and compresses the tails logarithmically.
    """
    band = _main_band(cols.bands) if len(wide) else None
    if band is None:
        return 1e-3
    spread = np.nanmedian((wide[band.high] - wide[band.low]).to_numpy(float) / 2)
    return float(spread / 10) if np.isfinite(spread) and spread > 0 else 1e-3


def symlog_ticks(wide: pd.DataFrame, cols: BandColumns, y_range=None,
                 constant: float = 1e-3) -> list[float]:
    """Tick values of a symlog y axis: 0 and ±10^k from the linear half-width ``constant`` up
    to the data's (or ``y_range``'s) largest |y|, and ±2·10^k, ±5·10^k where fewer than three
    powers fit. Vega's own symlog ticks skip 0 and land on odd values (1.5, −0.5, −2.5)."""
    levels = list(cols.levels.values())
    if y_range:
        lo, hi = (float(v) for v in y_range)
    elif len(wide) and levels:
        lo, hi = float(np.nanmin(wide[levels[0]])), float(np.nanmax(wide[levels[-1]]))
        if "bound" in wide.columns and wide["bound"].notna().any():
            b = float(np.nanmax(wide["bound"]))
            lo, hi = min(lo, -b), max(hi, b)
    else:
        return [0.0]
    top = max(abs(lo), abs(hi))
    if not np.isfinite(top) or top <= 0:
        return [0.0]
    k_hi = int(np.floor(np.log10(top)))
    k_lo = max(int(np.floor(np.log10(max(constant, 1e-12)))), k_hi - 5)
    steps = (1.0,) if k_hi - k_lo >= 2 else (1.0, 2.0, 5.0)
    mags = sorted(m * 10.0 ** k for k in range(k_lo, k_hi + 1) for m in steps if m * 10.0 ** k <= top)
    ticks = [0.0, *[float(f"{m:.6g}") for m in mags if m <= hi], *[-float(f"{m:.6g}") for m in mags if -m >= lo]]
    return sorted(set(ticks))


def _y_scale(yscale: str, constant: float, y_range: tuple[float, float] | None) -> alt.Scale:
    kw = {"domain": list(y_range), "clamp": True} if y_range else {"zero": False}
    if yscale == "symlog":
        return alt.Scale(type="symlog", constant=constant, **kw)
    return alt.Scale(type="linear", **kw)


def _rings(wide: pd.DataFrame, cols: BandColumns) -> pd.DataFrame:
    """Non-overlapping pieces of the nested bands: ``run, name, color, epoch, band, y, y2``.

    Band k (outermost first) is drawn as its two rings outside band k+1 (the innermost band
    whole), each with the opacity that k nested fills of :data:`wcviz.report.bands.BAND_OPACITY` give.
    The picture is that of nested fills, and the band legend can show each band's true shade.
    """
    bands = cols.bands
    ids = [c for c in ("run", "name", "color", "layer", "epoch") if c in wide.columns]
    parts = []
    for k, (label, lo, hi, _) in enumerate(bands):
        nxt = bands[k + 1] if k + 1 < len(bands) else None
        pieces = [(lo, nxt.low), (nxt.high, hi)] if nxt else [(lo, hi)]
        for side, (a, b) in enumerate(pieces):
            parts.append(wide[ids].assign(band=label, side=side, y=wide[a], y2=wide[b]))
    return _compact(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame(
        columns=[*ids, "band", "side", "y", "y2"])


#: Text columns of chart frames sent as Arrow dictionaries (categoricals): a run's name repeated
#: on each of 100 runs × 200 epochs × 5 lines was most of a 100-run overlay's 15 MB of data.
_LABELS = ("run", "name", "color", "layer", "line", "band")


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its label columns as categoricals and ``side`` as int8: the same values,
    a fraction of the bytes Streamlit serializes and the browser parses on every rerun."""
    out = {c: frame[c].astype("category") for c in _LABELS if c in frame.columns
           and frame[c].dtype != "category"}
    if "side" in frame.columns:
        out["side"] = frame["side"].astype(np.int8)
    return frame.assign(**out) if out else frame


def _points(wide: pd.DataFrame, cols: BandColumns) -> pd.DataFrame:
    """The columns of ``wide`` the hover points and the overlay's fill draw (one shared
    dataset: Streamlit names datasets by content, so both layers send it once)."""
    keep = [c for c in wide.columns if c in ("run", "name", "layer", "epoch", "bound", "seeds")
            or c in cols.levels.values()]
    return _compact(wide[keep])


def band_opacities(n: int) -> list[float]:
    """What the k-th of ``n`` nested bands looks like: 1 − (1 − BAND_OPACITY)^k, k = 1…n."""
    return [1 - (1 - BAND_OPACITY) ** k for k in range(1, n + 1)]


def _overlay_lines(wide: pd.DataFrame, cols: BandColumns) -> pd.DataFrame:
    """Lines of overlaid runs, long: ``run, name, color, epoch, line, side, y``.

    Per run: the median, both edges of the main band, min and max, and ±bound where finite.
    ``line`` names what a line shows (its legend entry), ``side`` tells its two edges apart.
    """
    # all a line needs; the layer too, for a chart whose layer picker filters the rows
    ids = [c for c in ("run", "name", "layer", "epoch") if c in wide.columns]
    parts = []
    if cols.median:
        parts.append(wide[ids].assign(line="median", side=0, y=wide[cols.median]))
    main = _main_band(cols.bands)
    if main:
        for side, col in enumerate((main.low, main.high)):
            parts.append(wide[ids].assign(line=main.label, side=side, y=wide[col]))
    outer = next((b for b in cols.bands if b.label == "min–max"), None)
    if outer and wide["name"].nunique() <= MANY_RUNS:
        for side, col in enumerate((outer.low, outer.high)):
            parts.append(wide[ids].assign(line="min–max", side=side, y=wide[col]))
    if "bound" in wide.columns and wide["bound"].notna().any():
        for side, sign in enumerate((1, -1)):
            parts.append(wide[ids].assign(line=bound_label(wide), side=side,
                                          y=sign * wide["bound"]))
    for k, (col, std) in enumerate(cols.spreads):  # seed groups
        for side, sign in enumerate((1, -1)):
            parts.append(wide[ids].assign(line=SPREAD, side=2 * k + side,
                                          y=wide[col] + sign * wide[std]))
    long = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[*ids, "line", "side", "y"])
    return _compact(long.dropna(subset=["y"]))


#: Above this many runs on one axis, min and max are left out (lines of 100 runs × 7 would be
#: both unreadable and most of the page's drawing time); side by side turns into an overlay.
MANY_RUNS = 12



def bound_symbol(wide: pd.DataFrame) -> str:
    """How the shown runs' bound on |w| is written, as the figures write it: "aπ/2" (WC), "a"
    (erf), or "bound" when the runs' bounds differ in kind."""
    if "bound_symbol" not in wide:
        return "bound"
    # unique(), not set(): iterating 100 runs × 200 epochs of strings one by one took ~8 ms,
    # and a chart asks four times
    symbols = wide.loc[wide["bound"].notna(), "bound_symbol"].unique()
    return str(symbols[0]) if len(symbols) == 1 else "bound"


def bound_label(wide: pd.DataFrame) -> str:
    """The bound lines' legend entry, e.g. "±aπ/2 (bound)"."""
    return f"±{bound_symbol(wide)} (bound)"


SPREAD = "± std over seeds"


def line_names(wide: pd.DataFrame, cols: BandColumns, overlaid: bool) -> list[str]:
    """The line legend's entries for a whole chart (all panels share one line-style scale)."""
    names = ["median"] if cols.median else []
    main = _main_band(cols.bands)
    if overlaid and main:
        names.append(main.label)
    if overlaid and any(b.label == "min–max" for b in cols.bands) and wide["name"].nunique() <= MANY_RUNS:
        names.append("min–max")
    if "bound" in wide.columns and wide["bound"].notna().any():
        names.append(bound_label(wide))
    if wide[[std for _, std in cols.spreads]].notna().any().any():
        names.append(SPREAD)
    return names


def _line_style(order: list[str]) -> tuple[alt.StrokeDash, alt.StrokeWidth]:
    kind = {name: ("median" if name == "median" else "min–max" if name == "min–max"
                   else "bound" if "bound" in name else "spread" if name == SPREAD else "band")
            for name in order}
    dash = alt.StrokeDash("line:N", title=LINE_TITLE, sort=order, scale=alt.Scale(
        domain=order, range=[_DASH[kind[n]] for n in order]),
        legend=alt.Legend(orient="bottom", symbolType="stroke", symbolStrokeWidth=2,
                          symbolSize=400, labelLimit=300, columns=len(order) or 1,
                          columnPadding=18))
    width = alt.StrokeWidth("line:N", sort=order, legend=None, scale=alt.Scale(
        domain=order, range=[2.2 if kind[n] == "median" else 0.8 if kind[n] == "spread" else 1.1
                             for n in order]))
    return dash, width


def _tooltip(wide: pd.DataFrame, cols: BandColumns) -> list[alt.Tooltip]:
    tips = [alt.Tooltip("name:N", title="run"), alt.Tooltip("epoch:Q", format="~g")]
    tips += [alt.Tooltip(f"{col}:Q", title=f"q {q * 100:.6g} %", format=".5~g")
             for q, col in cols.levels.items()]
    if "bound" in wide.columns and wide["bound"].notna().any():
        tips.append(alt.Tooltip("bound:Q", title=bound_symbol(wide), format=".5~g"))
    if "seeds" in wide.columns:
        tips.append(alt.Tooltip("seeds:Q"))
    return tips


def _hover_points(wide: pd.DataFrame, cols: BandColumns, y: alt.Y, color: alt.Color,
                  name: str) -> alt.Chart:
    # Named per panel: panels of one concatenated chart need their own hover parameter.
    hover = alt.selection_point(fields=["epoch"], nearest=True, on="pointerover", empty=False,
                                clear="pointerout", name=f"hover_{name}")
    # The panel's epoch zoom sits on this layer too: Vega-Lite binds it to the shared x scale.
    return alt.Chart(_points(wide, cols)).mark_point(filled=True, size=30, clip=True).encode(
        x=_EPOCH, y=y, color=color, opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
        tooltip=_tooltip(wide, cols)).add_params(hover, _zoom(name))


def band_layers(wide: pd.DataFrame, cols: BandColumns, yscale: str = "linear", y_range=None,
                constant: float = 1e-3, overlaid: bool = False,
                y_title: str = "weight", panel: int = 0,
                styles: list[str] | None = None, whole: pd.DataFrame | None = None,
                pick: alt.Parameter | None = None,
                bounds: alt.Parameter | None = None) -> list[alt.Chart]:
    """The layers of one band panel: fills, lines and hover points, each with its own data.

    Args:
        wide: a wide quantile frame (:func:`wcviz.app.data.distributions`), any recorded levels.
        cols: its :class:`wcviz.report.frames.BandColumns` (:func:`wcviz.report.frames.band_columns`).
        yscale: "linear" or "symlog".
        y_range: (low, high) to zoom the y axis to, or None for the data's range.
        constant: the symlog scale's linear half-width.
        overlaid: several runs share the axis. Nested fills of several runs would merge into
            one blot, so each run keeps its hue as lines instead: the median, the main band's
            edges (with a faint fill), min and max dashed, the bound dotted; a line-style
            legend names each. Otherwise: every band as nested fills, a band legend.
        y_title: the y axis title ("weight" for w = Ψ(v), "v" for the raw parameter).
        panel: index of the panel in a concatenated chart (names its hover parameter).
        styles: the line legend's entries of the whole chart (:func:`line_names`); None: this
            panel's own.
        whole: the frame of the whole chart when ``wide`` is one panel's part: the colour
            scale names every run of the chart (panels' scales merge by domain, not by range).
        pick: a parameter holding a layer name (:func:`layer_picker`): ``wide`` holds several
            layers and each layer of the panel draws the picked one's rows.
        bounds: a boolean parameter (:func:`bound_switch`): false hides the bound lines, and
            the y axis fits the weights alone.
    """
    layers = _band_layers(wide, cols, yscale, y_range, constant, overlaid, y_title, panel, styles,
                          whole)
    if pick is not None:
        layers = [chart.transform_filter(alt.datum.layer == pick) for chart in layers]
    if bounds is not None:  # only the lines hold the bound (its legend entry names it)
        layers = [chart.transform_filter(f"{bounds.name} || indexof(datum.line, 'bound') < 0")
                  if getattr(chart.mark, "type", chart.mark) == "line" else chart
                  for chart in layers]
    return layers


def bound_switch(name: str = "bounds") -> alt.Parameter:
    """A boolean parameter bound to a check box in the page, on: whether the bound lines are
    drawn (a learnable run's ±2.2 would otherwise set the y range and squeeze the others)."""
    return alt.param(name=name, value=True, bind=alt.binding_checkbox(name="bound lines "))


def layer_picker(layers: list[str], name: str = "layer") -> alt.Parameter:
    """A parameter holding one of ``layers`` (the first), bound to a drop-down in the page:
    the layer picker of a chart that carries every layer's rows (the HTML report)."""
    return alt.param(name=name, value=layers[0] if layers else None,
                     bind=alt.binding_select(options=list(layers), name="layer "))


def _band_layers(wide, cols, yscale, y_range, constant, overlaid, y_title, panel, styles,
                 whole) -> list[alt.Chart]:
    styles = line_names(wide, cols, overlaid) if styles is None else styles
    y_scale = _y_scale(yscale, constant, y_range)
    # One legend definition on every layer: Vega-Lite drops a legend that some layers disable.
    color = plain = run_color(wide if whole is None else whole)
    axis = alt.Axis(values=symlog_ticks(wide, cols, y_range, constant), format="~g") \
        if yscale == "symlog" else alt.Undefined
    y = alt.Y("y:Q", scale=y_scale, title=y_title, axis=axis)
    hover_y = alt.Y(f"{cols.median}:Q" if cols.median else "y:Q", scale=y_scale, title=y_title,
                    axis=axis)
    dash, width = _line_style(styles)
    lines = _overlay_lines(wide, cols)
    lines = lines[lines["line"].isin(styles)]
    if overlaid:
        main = _main_band(cols.bands)
        out = []
        if main:
            out.append(alt.Chart(_points(wide, cols)).mark_area(opacity=0.1, clip=True).encode(
                x=_EPOCH, y=alt.Y(f"{main.low}:Q", scale=y_scale, title=y_title),
                y2=alt.Y2(f"{main.high}:Q"), color=plain))
        out.append(alt.Chart(lines).mark_line(clip=True).encode(
            x=_EPOCH, y=y, color=color, strokeDash=dash, strokeWidth=width,
            detail=alt.Detail("side:N")))
        return [*out, _hover_points(wide, cols, hover_y, plain, str(panel))]
    rings = _rings(wide, cols)
    labels = [b.label for b in cols.bands]
    fills = alt.Chart(rings).mark_area(clip=True).encode(
        x=_EPOCH, y=y, y2=alt.Y2("y2:Q"), color=color,
        opacity=alt.Opacity("band:N", sort=labels, title="band", scale=alt.Scale(
            domain=labels, range=band_opacities(len(labels))),
            legend=alt.Legend(orient="bottom", symbolType="square", labelLimit=300)),
        detail=alt.Detail("side:N"))
    out = [fills]
    if len(lines):
        out.append(alt.Chart(lines).mark_line(clip=True).encode(
            x=_EPOCH, y=y, color=plain, strokeDash=dash, strokeWidth=width,
            detail=alt.Detail("side:N")))
    return [*out, _hover_points(wide, cols, hover_y, plain, str(panel))]


def _zoom(panel: str) -> alt.Parameter:
    """Wheel zoom and drag pan of the epoch axis, one named parameter per panel."""
    return alt.selection_interval(bind="scales", encodings=["x"], name=f"zoom_{panel}")


def _plot_area_sized(chart):
    # Streamlit gives single-view charts autosize "fit": width/height would then include the
    # legend and axes, and a long legend squeezes the plot. "pad" keeps them the plot's size.
    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))


def band_chart(wide: pd.DataFrame, cols: BandColumns, *, layout: str = "side",
               yscale: str = "linear", y_range=None, width: int = 1000, height: int = 340,
               y_title: str = "weight", layers: list[str] | None = None,
               bound_box: bool = False) -> alt.TopLevelMixin:
    """Percentile bands of one layer over epochs for one or more runs.

    Args:
        wide: :func:`wcviz.app.data.distributions` frame (already cut to the epochs to show).
        cols: its :class:`wcviz.report.frames.BandColumns` (:func:`wcviz.report.frames.band_columns`).
        layout: "side" (one panel per run, shared axes) or "overlay" (all runs on one axis).
        yscale: "linear" or "symlog".
        y_range: (low, high) to zoom the y axis to, or None.
        width: total width in pixels (split between side-by-side panels).
        height: panel height in pixels.
        y_title: the y axis title.
        layers: ``wide`` holds these layers (e.g. :func:`wcviz.report.frames.all_quantiles`),
            and the chart carries a drop-down picking the one drawn (:func:`layer_picker`);
            None: ``wide`` holds one layer.
        bound_box: a check box in the page shows and hides the bound lines (:func:`bound_switch`),
            when ``wide`` has a finite bound (the dashboard has its own toggle).
    """
    constant = symlog_constant(wide, cols)
    pick = layer_picker(layers) if layers else None
    has_bound = "bound" in wide.columns and bool(wide["bound"].notna().any())
    bounds = bound_switch() if bound_box and has_bound else None
    params = [p for p in (pick, bounds) if p is not None]
    runs = list(dict.fromkeys(wide["name"])) if len(wide) else []
    if layout == "side" and 1 < len(runs) <= MANY_RUNS:
        ncol = min(len(runs), 3)
        panel_w = max(240, int(width / ncol) - 40)
        styles = line_names(wide, cols, overlaid=False)
        panels = [alt.layer(*band_layers(wide[wide["name"] == name], cols, yscale, y_range,
                                         constant, y_title=y_title, panel=i, styles=styles,
                                         whole=wide, pick=pick, bounds=bounds)).properties(
            width=panel_w, height=height, title=name)
            for i, name in enumerate(runs)]
        rows = [alt.hconcat(*panels[i:i + ncol]) for i in range(0, len(panels), ncol)]
        chart = alt.vconcat(*rows) if len(rows) > 1 else rows[0]
        chart = chart.resolve_scale(y="shared", x="shared", color="shared", strokeDash="shared")
        return chart.add_params(*params) if params else chart
    drawn = band_layers(wide, cols, yscale, y_range, constant, overlaid=len(runs) > 1,
                        y_title=y_title, pick=pick, bounds=bounds)
    chart = alt.layer(*drawn).properties(width=width, height=height)
    return _plot_area_sized(chart.add_params(*params) if params else chart)


def small_multiples(wide: pd.DataFrame, cols: BandColumns, *, yscale: str = "linear",
                    columns: int = 3, width: int = 900, height: int = 150,
                    y_title: str = "weight") -> alt.TopLevelMixin:
    """Every layer's bands over epochs, one panel per layer in model order, runs overlaid.

    Panels share the page width (``columns`` of them in ``width`` px). Each panel has its own
    y axis: layers differ in weight scale by orders of magnitude. ``cols``: the frame's
    :class:`wcviz.report.frames.BandColumns`.
    """
    constant = symlog_constant(wide, cols)
    order = list(dict.fromkeys(wide.sort_values("depth", kind="stable")["layer"])) if len(wide) else []
    columns = max(1, min(columns, len(order) or 1))
    panel_w = max(200, int(width / columns) - 50)
    overlaid = len(set(wide["name"])) > 1 if len(wide) else False
    styles = line_names(wide, cols, overlaid)
    panels = [alt.layer(*band_layers(wide[wide["layer"] == name], cols, yscale, None, constant,
                                     overlaid=overlaid, y_title=y_title, panel=i,
                                     styles=styles, whole=wide)).properties(
        width=panel_w, height=height, title=alt.TitleParams(name, fontSize=11))
        for i, name in enumerate(order)]
    rows = [alt.hconcat(*panels[i:i + columns]) for i in range(0, len(panels), columns)]
    if not rows:
        return alt.Chart(wide).mark_point()
    return alt.vconcat(*rows).resolve_scale(color="shared", strokeDash="shared", opacity="shared")


def _spread(frame: pd.DataFrame, value: str, fmt: str) -> tuple[pd.DataFrame, list[alt.Tooltip]]:
    """A chart's data and the tooltips of its ``value``.

    A frame of seed groups (it has ``std``, :func:`wcviz.app.data.fold_metrics` and the like) gets
    ``lo``/``hi`` = mean ∓ std (the mean alone for one seed), and tooltips for the mean, the
    std over seeds and the seed count; any other frame is returned as it is, with ``value``'s.
    """
    if "std" not in frame.columns:
        return frame, [alt.Tooltip(f"{value}:Q", format=fmt)]
    std = frame["std"].fillna(0)
    tips = [alt.Tooltip(f"{value}:Q", title="mean over seeds", format=fmt),
            alt.Tooltip("std:Q", title="std over seeds", format=fmt), alt.Tooltip("seeds:Q")]
    return frame.assign(lo=frame[value] - std, hi=frame[value] + std), tips


def _with_band(line: alt.Chart, frame: pd.DataFrame, data_: pd.DataFrame, x,
               y: alt.Y) -> alt.Chart | alt.LayerChart:
    """``line`` (a chart without data) drawn from ``data_`` (:func:`_spread`'s); for seed groups
    (``frame`` has ``std``) with each group's ± std band under its mean, on ``lo``–``hi``."""
    if "std" not in frame.columns:
        return line.properties(data=data_)
    band = alt.Chart().mark_area(opacity=0.2).encode(
        x=x, y=alt.Y(**{**y.to_dict(), "field": "lo"}), y2="hi:Q", color=run_color(frame))
    return alt.layer(band, line, data=data_)


#: The near-zero charts' y axis: a fraction shown in percent.
_NEAR_ZERO_TITLE = "fraction near zero"


def near_zero_over_epochs(frame: pd.DataFrame, *, width: int = 1000, height: int = 300) -> alt.TopLevelMixin:
    """Near-zero fraction over epochs: one line per run (frame: run, name, epoch, fraction), or
    per seed group: its mean, with a ± std band when the frame has ``std``."""
    data_, tips = _spread(frame, "fraction", ".3%")
    y = alt.Y("fraction:Q", title=_NEAR_ZERO_TITLE, axis=alt.Axis(format="%"))
    line = alt.Chart().mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=_EPOCH, y=y, color=run_color(frame),
        tooltip=[alt.Tooltip("name:N", title="run"), "layer:N", alt.Tooltip("epoch:Q", format="~g"),
                 *tips])
    return _plot_area_sized(_with_band(line, frame, data_, _EPOCH, y).properties(
        width=width, height=height).interactive(bind_y=False))


def near_zero_by_depth(frame: pd.DataFrame, *, width: int = 1000, height: int = 300) -> alt.TopLevelMixin:
    """Near-zero fraction by layer at one epoch, layers named on x in model order; seed groups
    as in :func:`near_zero_over_epochs`."""
    order = list(dict.fromkeys(frame.sort_values("depth", kind="stable")["layer"])) if len(frame) else []
    data_, tips = _spread(frame, "fraction", ".3%")
    x = alt.X("layer:N", title="layer (model order)", sort=order,
              axis=alt.Axis(labelAngle=-40, labelLimit=160))
    y = alt.Y("fraction:Q", title=_NEAR_ZERO_TITLE, axis=alt.Axis(format="%"))
    line = alt.Chart().mark_line(point=alt.OverlayMarkDef(size=30)).encode(
        x=x, y=y, color=run_color(frame),
        tooltip=[alt.Tooltip("name:N", title="run"), "layer:N", "depth:Q",
                 alt.Tooltip("epoch:Q", format="~g"), *tips])
    return _plot_area_sized(_with_band(line, frame, data_, x, y).properties(width=width, height=height))


def compander_chart(frame: pd.DataFrame, *, width: int = 440, height: int = 240) -> alt.TopLevelMixin:
    """a and b per layer over epochs: rows a/b, one column per run, one named colour per layer."""
    long = frame.melt(id_vars=["run", "name", "epoch", "layer", "depth"], value_vars=["a", "b"],
                      var_name="parameter", value_name="value").dropna(subset=["value"])
    order = list(dict.fromkeys(frame.sort_values("depth", kind="stable")["layer"])) if len(frame) else []
    return alt.Chart(long).mark_line().encode(
        x=_EPOCH, y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("layer:N", sort=order, title="layer (model order)",
                        scale=alt.Scale(scheme="category20" if len(order) > 10 else "tableau10"),
                        legend=alt.Legend(columns=1 if len(order) <= 20 else 2, labelLimit=220)),
        tooltip=[alt.Tooltip("name:N", title="run"), "layer:N", "parameter:N",
                 alt.Tooltip("epoch:Q", format="~g"), alt.Tooltip("value:Q", format=".5~g")],
    ).properties(width=width, height=height).facet(
        row=alt.Row("parameter:N", title=None),
        column=alt.Column("name:N", title=None, header=alt.Header(labelLimit=width))).resolve_scale(
        y="independent")


#: Split rows of the metrics grid, in the order training produces them.
SPLITS = ("train", "val", "test")


def metrics_chart(frame: pd.DataFrame, *, width: int = 440, height: int = 180) -> alt.TopLevelMixin:
    """Loss and accuracy curves: columns loss / accuracy in % (:func:`as_percent`), one row per split, colour = run (or seed
    group: its mean, with a ± std band when the frame has ``std``).

    One panel per (split, kind) instead of a line style per split: three splits × several runs
    on one axis overlapped, and the panel title says what each line is.
    """
    curves, tips = _spread(as_percent(frame[frame["kind"].isin(["loss", "acc"])]), "value",
                           ".5~g")
    splits = [s for s in SPLITS if s in set(curves["split"])]
    y = alt.Y("value:Q", title=None, scale=alt.Scale(zero=False))
    line = alt.Chart().mark_line(point=alt.OverlayMarkDef(size=15)).encode(
        x=_EPOCH, y=y, color=run_color(frame),
        tooltip=[alt.Tooltip("name:N", title="run"), "metric:N", alt.Tooltip("epoch:Q", format="~g"),
                 *tips])
    return _with_band(line, frame, curves, _EPOCH, y).properties(width=width, height=height).facet(
        row=alt.Row("split:N", title=None, sort=splits),
        column=alt.Column("kind:N", title=None, sort=["loss", ACC_PERCENT])).resolve_scale(
        y="independent")


#: The accuracy panels' title: accuracy is drawn in percent, as every page and figure writes it.
ACC_PERCENT = "acc (%)"


def as_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """A metrics frame with its accuracy rows in percent (``kind`` "acc" becomes
    :data:`ACC_PERCENT`): a run's accuracy metric whose values all lie within [0, 1] is a
    fraction (:func:`wcviz.report.analysis.as_percent`'s rule), its value and std × 100."""
    acc = frame["kind"] == "acc"
    if not acc.any():
        return frame
    keys = [frame["run"], frame["metric"]]
    fraction = frame["value"].where(acc).groupby(keys).transform("max") <= 1.0
    scale = np.where(acc & fraction, 100.0, 1.0)
    out = {"value": frame["value"] * scale, "kind": frame["kind"].where(~acc, ACC_PERCENT)}
    if "std" in frame.columns:
        out["std"] = frame["std"] * scale
    return frame.assign(**out)


#: d3 formats of the sweep heatmaps' colour-bar labels (accuracy in %: one decimal).
LEGEND_FORMATS = {"best_val_test_acc": ".1f"}


def sweep_heatmap(cells: pd.DataFrame, metric: str, base: float, *, size: int = 300) -> alt.LayerChart:
    """One summary of a sweep over (a, b): mean over seeds per cell, written in it.

    Hover shows the seed count, the std over seeds and the runs; the accuracy's colours diverge
    around the baseline's value ``base``. The ``cell`` point selection (fields a, b) lets a
    click select the cell's runs.
    """
    cell = alt.selection_point(fields=["a", "b"], name="cell", on="click", toggle="event.shiftKey",
                               empty=False)  # nothing clicked: no cell outlined
    scale = alt.Scale(scheme="viridis")
    if metric == "best_val_test_acc" and np.isfinite(base):
        scale = alt.Scale(scheme="redblue", domainMid=float(base))
    title = sweep.SWEEP_METRICS[metric]
    x = alt.X("a:O", title="a", axis=alt.Axis(labelAngle=0))
    y = alt.Y("b:O", title="b", sort="descending")
    fmt = ".2f" if metric == "best_val_test_acc" else ".3g"
    tips = [alt.Tooltip("a:Q"), alt.Tooltip("b:Q"), alt.Tooltip(f"{metric}:Q", title="mean", format=fmt),
            alt.Tooltip(f"{metric}_std:Q", title="std over seeds", format=".3g"),
            alt.Tooltip(f"{metric}_n:Q", title="seeds"), alt.Tooltip("runs:N")]
    # the colour bar's labels rounded as a reader compares them (98.3, not 98.328691)
    bar = alt.Legend(orient="bottom", gradientLength=size - 40, format=LEGEND_FORMATS.get(metric, ".2~g"))
    rect = alt.Chart(cells).mark_rect().encode(
        x=x, y=y, color=alt.Color(f"{metric}:Q", title=None, scale=scale, legend=bar),
        stroke=alt.condition(cell, alt.value("black"), alt.value(None)),
        strokeWidth=alt.condition(cell, alt.value(2.5), alt.value(0)),
        tooltip=tips).add_params(cell)
    text = alt.Chart(cells).mark_text(fontSize=11).encode(
        x=x, y=y, text=alt.Text(f"{metric}:Q", format=fmt), tooltip=tips)
    subtitle = f"baseline {base:{fmt}}" if np.isfinite(base) else "no baseline run"
    return alt.layer(rect, text).properties(
        width=size, height=size, title=alt.TitleParams(title, subtitle=subtitle))
