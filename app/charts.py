"""Interactive Altair (Vega-Lite) charts of the dashboard, built from :mod:`app.data` frames.

Charts hold no logic about stores: give them a tidy frame, get a chart. Hovering shows exact
values, the mouse wheel zooms the epoch axis and dragging pans it.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from app import data
# The figures' palette from its light module (wcviz.style would load matplotlib and seaborn).
from wcviz.palette import PALETTE

#: Fill opacity of the nested percentile bands, widest (min–max) first: inner bands darker.
BAND_OPACITY = (0.12, 0.2, 0.3, 0.45)

_RUN_LEGEND = alt.Legend(title="run", orient="bottom", columns=3, labelLimit=400, symbolOpacity=1)
_EPOCH = alt.X("epoch:Q", title="epoch", axis=alt.Axis(format="~g"))


def run_color(frame: pd.DataFrame) -> alt.Color:
    """Colour by run in order of appearance, from the palette of :mod:`wcviz.plots`' figures.

    The same run keeps its colour on every page (frames list runs in selection order) and in
    the exported figures' palette (Okabe–Ito: readable under colour-vision deficiencies).
    """
    runs = list(dict.fromkeys(frame["run"])) if len(frame) else []
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(runs))]
    return alt.Color("run:N", legend=_RUN_LEGEND, scale=alt.Scale(domain=runs, range=colours))


def symlog_constant(wide: pd.DataFrame) -> float:
    """Linear half-width of the symlog y scale: a tenth of the typical ±1σ half-width.

    Weights live on very different scales per layer (about 1e-3 to 1), so a fixed constant
    would make symlog either linear or meaningless; a tenth of the spread keeps the bulk of the
    distribution linear and compresses the tails logarithmically.
    """
    lo, hi = data.quantile_columns()[0.1587], data.quantile_columns()[0.8413]
    spread = np.nanmedian((wide[hi] - wide[lo]).to_numpy(float) / 2) if len(wide) else np.nan
    return float(spread / 10) if np.isfinite(spread) and spread > 0 else 1e-3


def _y_scale(yscale: str, constant: float, y_range: tuple[float, float] | None) -> alt.Scale:
    kw = {"domain": list(y_range), "clamp": True} if y_range else {"zero": False}
    if yscale == "symlog":
        return alt.Scale(type="symlog", constant=constant, **kw)
    return alt.Scale(type="linear", **kw)


def _tooltip(columns: dict[float, str]) -> list[alt.Tooltip]:
    tips = [alt.Tooltip("run:N"), alt.Tooltip("layer:N"), alt.Tooltip("epoch:Q", format="~g")]
    return tips + [alt.Tooltip(f"{col}:Q", title=f"q {q * 100:g} %", format=".5~g")
                   for q, col in columns.items()]


def band_layers(color: alt.Color, yscale: str = "linear", y_range=None, constant: float = 1e-3,
                overlaid: bool = False) -> list[alt.Chart]:
    """The layers of one band panel (areas, median, hover points) on a shared wide frame.

    Args:
        color: the run colour encoding (:func:`run_color`).
        yscale: "linear" or "symlog".
        y_range: (low, high) to zoom the y axis to, or None for the data's range.
        constant: the symlog scale's linear half-width.
        overlaid: several runs share the axis: four nested fills per run would merge into one
            blot, so draw the ±1σ band filled and min/max as dashed lines instead.
    """
    x = _EPOCH
    y_scale = _y_scale(yscale, constant, y_range)
    base = alt.Chart()

    def y(col: str, **kw) -> alt.Y:
        return alt.Y(f"{col}:Q", scale=y_scale, title="weight", **kw)

    all_bands = data.bands()
    if overlaid:
        (_, lo_min, hi_max), (_, lo, hi) = all_bands[0], all_bands[2]
        areas = [base.mark_area(opacity=0.25, clip=True).encode(x=x, y=y(lo), y2=alt.Y2(f"{hi}:Q"),
                                                                color=color)]
        areas += [base.mark_line(strokeWidth=0.8, strokeDash=[4, 3], clip=True).encode(
            x=x, y=y(col), color=color) for col in (lo_min, hi_max)]
    else:
        areas = [base.mark_area(opacity=op, clip=True).encode(x=x, y=y(lo), y2=alt.Y2(f"{hi}:Q"),
                                                              color=color)
                 for (_, lo, hi), op in zip(all_bands, BAND_OPACITY)]
    median = base.mark_line(strokeWidth=1.5, clip=True).encode(x=x, y=y(data.median_column()),
                                                               color=color)
    hover = alt.selection_point(fields=["epoch"], nearest=True, on="pointerover", empty=False,
                                clear="pointerout")
    points = base.mark_point(filled=True, size=30, clip=True).encode(
        x=x, y=y(data.median_column()), color=color,
        opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
        tooltip=_tooltip(data.quantile_columns())).add_params(hover)
    return [*areas, median, points]


def _plot_area_sized(chart):
    # Streamlit gives single-view charts autosize "fit": width/height would then include the
    # legend and axes, and a long legend squeezes the plot. "pad" keeps them the plot's size.
    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))


def band_chart(wide: pd.DataFrame, *, layout: str = "side", yscale: str = "linear",
               y_range=None, width: int = 820, height: int = 320) -> alt.TopLevelMixin:
    """Percentile bands of one layer over epochs for one or more runs.

    Args:
        wide: :func:`app.data.distributions` frame (already cut to the epochs to show).
        layout: "side" (one panel per run, shared axes) or "overlay" (all runs on one axis).
        yscale: "linear" or "symlog".
        y_range: (low, high) to zoom the y axis to, or None.
        width: total width in pixels (split between side-by-side panels).
        height: panel height in pixels.
    """
    constant = symlog_constant(wide)
    runs = list(dict.fromkeys(wide["run"])) if len(wide) else []
    overlaid = layout == "overlay" and len(runs) > 1
    layers = band_layers(run_color(wide), yscale, y_range, constant, overlaid=overlaid)
    # Wheel zoom / drag pan on the epoch axis; bound on the layer so facets share it.
    layered = alt.layer(*layers, data=wide).interactive(bind_y=False)
    if layout == "side" and len(runs) > 1:
        ncol = min(len(runs), 3)
        panel_w = max(200, int(width / ncol) - 30)
        return layered.properties(width=panel_w, height=height).facet(
            facet=alt.Facet("run:N", title=None, sort=runs), columns=ncol).resolve_scale(
            x="shared", y="shared")
    return _plot_area_sized(layered.properties(width=width, height=height))


def small_multiples(wide: pd.DataFrame, *, yscale: str = "linear", columns: int = 5,
                    panel: tuple[int, int] = (150, 90)) -> alt.TopLevelMixin:
    """Every layer's median and ±1σ band over epochs, one small panel per layer in model order.

    Runs are overlaid in each panel. Each panel has its own y axis: layers differ in weight
    scale by orders of magnitude.
    """
    constant = symlog_constant(wide)
    order = list(dict.fromkeys(wide.sort_values("depth", kind="stable")["layer"])) if len(wide) else []
    layers = band_layers(run_color(wide), yscale, None, constant, overlaid=True)
    return alt.layer(*layers, data=wide).properties(width=panel[0], height=panel[1]).facet(
        facet=alt.Facet("layer:N", title=None, sort=order, header=alt.Header(labelLimit=panel[0])),
        columns=columns).resolve_scale(y="independent")


def near_zero_over_epochs(frame: pd.DataFrame, *, width: int = 820, height: int = 300) -> alt.Chart:
    """Near-zero fraction over epochs: one line per run (frame: run, epoch, layer, fraction)."""
    return _plot_area_sized(alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=_EPOCH, y=alt.Y("fraction:Q", title="fraction near zero"),
        color=run_color(frame),
        tooltip=["run:N", "layer:N", alt.Tooltip("epoch:Q", format="~g"),
                 alt.Tooltip("fraction:Q", format=".5~g")],
    ).properties(width=width, height=height).interactive(bind_y=False))


def near_zero_by_depth(frame: pd.DataFrame, *, width: int = 820, height: int = 300) -> alt.Chart:
    """Near-zero fraction by layer depth at one epoch (frame: run, depth, layer, fraction)."""
    return _plot_area_sized(alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=30)).encode(
        x=alt.X("depth:Q", title="layer depth (0 = first layer)", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("fraction:Q", title="fraction near zero"),
        color=run_color(frame),
        tooltip=["run:N", "layer:N", "depth:Q", alt.Tooltip("epoch:Q", format="~g"),
                 alt.Tooltip("fraction:Q", format=".5~g")],
    ).properties(width=width, height=height))


def compander_chart(frame: pd.DataFrame, *, width: int = 380, height: int = 220) -> alt.TopLevelMixin:
    """a and b per layer over epochs: rows a/b, one column per run, lines coloured by depth."""
    long = frame.melt(id_vars=["run", "epoch", "layer", "depth"], value_vars=["a", "b"],
                      var_name="parameter", value_name="value").dropna(subset=["value"])
    return alt.Chart(long).mark_line().encode(
        x=_EPOCH, y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("depth:Q", scale=alt.Scale(scheme="viridis"), title="layer depth"),
        detail="layer:N",
        tooltip=["run:N", "layer:N", "parameter:N", alt.Tooltip("epoch:Q", format="~g"),
                 alt.Tooltip("value:Q", format=".5~g")],
    ).properties(width=width, height=height).facet(
        row=alt.Row("parameter:N", title=None), column=alt.Column("run:N", title=None)).resolve_scale(
        y="independent")


def metrics_chart(frame: pd.DataFrame, *, width: int = 380, height: int = 260) -> alt.TopLevelMixin:
    """Loss and accuracy curves: one panel per kind, colour = run, dash = split."""
    curves = frame[frame["kind"].isin(["loss", "acc"])]
    return alt.Chart(curves).mark_line(point=alt.OverlayMarkDef(size=15)).encode(
        x=_EPOCH, y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=run_color(frame),
        strokeDash=alt.StrokeDash("split:N", sort=["train", "val", "test"]),
        tooltip=["run:N", "metric:N", alt.Tooltip("epoch:Q", format="~g"),
                 alt.Tooltip("value:Q", format=".5~g")],
    ).properties(width=width, height=height).facet(
        column=alt.Column("kind:N", title=None, sort=["loss", "acc"])).resolve_scale(y="independent")
