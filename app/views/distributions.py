"""Distributions page: percentile bands of one layer over epochs, and small multiples of all layers."""

import streamlit as st

from wcviz.report import charts
from wcviz.app import data, export, ui

st.title("Distributions")
st.caption("Side by side: the percentile bands each run recorded (by default min–max and a "
           "normal's ±1.5σ, ±1σ, ±0.5σ), nested, and the median. Overlaid: each run in its own "
           "colour as lines (median, the ±1σ band's edges, min and max dashed). Dotted: the bound "
           "on |w| (±aπ/2 for WC, ±a for erf). Mouse wheel zooms the epochs, dragging pans, hovering "
           "shows exact values.")
scan = ui.page_scan()
runs = ui.require_selection(scan, light=True)

names = list(dict.fromkeys(name for r in runs for name in data.layers(r)))  # model order
top = st.columns([4, 2, 2, 2])
choices = names
if len(names) > data.MAX_LAYER_CHOICES:  # a list of 10^6 names stalls the page: search it
    found = top[0].text_input("Find a layer by name", key="dist_layer_find",
                              placeholder=f"{len(names):,} layers: type part of a name")
    choices = data.layer_choices(names, found) or data.layer_choices(names)
    top[0].caption(f"{len(names):,} layers; the list offers the first {len(choices):,} "
                   f"{'matching' if found else 'in model order'} (at most "
                   f"{data.MAX_LAYER_CHOICES:,}).")
layer = top[0].selectbox("Layer (model order)", choices, key="dist_layer")
view = top[1].radio("Runs", ["side by side", "overlaid"], key="dist_layout", horizontal=True)
yscale = top[2].radio("y scale", ["linear", "symlog"], key="dist_yscale", horizontal=True)
variable = top[3].radio("Quantity", ["w = Ψ(v)", "raw v"], key="dist_variable", horizontal=True,
                        help="Quantiles of the weights the network uses, or of the raw parameter v "
                             "(NaN for plain layers).")
variable, y_title = ("weight_quantile", "weight w") if variable.startswith("w") else ("v_quantile", "v")
toggles = st.columns([4, 6])
all_layers = toggles[0].toggle("Small multiples: all layers", key="dist_all")
# A learnable run's bound (e.g. ±2.2) can set the y range and squeeze the other runs' bands.
show_bound = toggles[1].toggle("Bound lines (±aπ/2, ±a)", value=True, key="dist_bound",
                               help="Off: the y axis fits the weights alone.")


def _bound_shown(wide):
    """``wide`` as drawn: without the bound lines when they are switched off (display only)."""
    return wide if show_bound or "bound" not in wide.columns else wide.assign(bound=float("nan"))


def _zoom(wide):
    """Epoch range and optional y range controls; returns (cut frame, y range or None)."""
    epochs = sorted(set(wide["epoch"]))
    lo, hi = (float(epochs[0]), float(epochs[-1])) if epochs else (0.0, 0.0)
    cols = st.columns([3, 3])
    lo, hi = ui.range_slider(cols[0], "Epochs", lo, hi, key="dist_epochs", format="%g")
    wide = wide[(wide["epoch"] >= lo) & (wide["epoch"] <= hi)]
    y_range = None
    values = wide[list(data.quantile_columns(wide).values())].to_numpy(float)
    finite = values[values == values]
    if finite.size and finite.max() > finite.min() and cols[1].toggle("Zoom y", key="dist_zoom_y"):
        ymin, ymax = float(finite.min()), float(finite.max())
        y_range = ui.range_slider(cols[1], "y range", ymin, ymax, key="dist_yrange", format="%.4g")
    return wide, y_range


def _drop_runs_without_v(wide):
    """Raw v: plain layers have no v (w is the parameter); say so instead of a blank panel."""
    if variable != "v_quantile":
        return wide
    none = data.without_values(wide)
    if none:
        shown = dict(zip(wide["run"], wide["name"]))
        st.info("No raw v for " + ", ".join(ui.md(f"{shown[r]} ({r})") for r in none) + ": its layer is "
                "not companded, the weights w are the parameter itself. Choose w = Ψ(v) to see it.")
    return wide[~wide["run"].isin(none)]


def single_layer(fresh):
    errors: list[str] = []
    wide = data.distributions(fresh, layer, variable, errors=errors)
    for line in errors:
        st.error(ui.md(line))
    fresh = [r for r in fresh if not any(e.startswith(f"{r.run_id}: ") for e in errors)]
    if ui.grouped():
        wide = data.fold_quantiles(wide, [r for r in fresh if layer in data.layers(r)])
    missing = [r.run_id for r in fresh if layer not in data.layers(r)]
    if missing:
        st.warning(ui.md(f"Layer {layer!r} is not recorded in: {', '.join(missing)}"))
    wide = _drop_runs_without_v(wide)
    if wide.empty:
        return
    wide, y_range = _zoom(wide)
    layout = "side" if view == "side by side" else "overlay"
    if layout == "side" and wide["run"].nunique() > charts.MANY_RUNS:
        st.caption(f"{wide['run'].nunique()} runs: overlaid (side by side shows up to "
                   f"{charts.MANY_RUNS} panels); select fewer runs for panels.")
        layout = "overlay"
    chart = charts.band_chart(_bound_shown(wide), data.band_columns(wide), layout=layout, yscale=yscale,
                              y_range=y_range, y_title=y_title)
    st.altair_chart(chart, width="content", key="dist_chart")
    st.caption(ui.status_line(fresh))
    shown = [r for r in fresh if layer in data.layers(r)]
    epochs = (float(wide["epoch"].min()), float(wide["epoch"].max())) if len(wide) else None
    figure = None if variable != "weight_quantile" or not shown else (
        lambda: export.bands_figure(shown, layer, layout=layout, yscale=yscale, y_range=y_range,
                                    epochs=epochs))
    if ui.grouped() and figure is not None:
        by_id = {r.run_id: r for r in shown}
        groups = [[by_id[i] for i in g.run_ids] for g in data.seed_groups(shown)]
        figure = lambda: export.seed_bands_figure(groups, layer, yscale=yscale)  # noqa: E731
    ui.downloads(f"bands_{layer}", lambda: data.tidy_quantiles(wide), figure, key="dist_export")


def every_layer(fresh):
    errors: list[str] = []
    wide = data.all_layers(fresh, variable, errors=errors)
    for line in errors:
        st.error(ui.md(line))
    if ui.grouped():
        wide = data.fold_quantiles(wide, fresh)
    wide = _drop_runs_without_v(wide)
    if wide.empty:
        return
    deepest = max(len(data.layers(r)) for r in fresh)
    if deepest > data.MAX_PANELS:
        st.caption(f"{data.MAX_PANELS} of {deepest:,} layers drawn, spread evenly over depth "
                   "(the first and the last included); choose one layer above to see any other.")
    st.altair_chart(charts.small_multiples(_bound_shown(wide), data.band_columns(wide), yscale=yscale,
                                           y_title=y_title), width="content", key="dist_multiples")
    st.caption(ui.status_line(fresh))
    figure = None if variable != "weight_quantile" else (
        lambda: export.layer_grid_figure(fresh, yscale=yscale))
    if len(fresh) > 2:
        st.caption("The figure export shows the first two selected runs.")
    ui.downloads("bands_all_layers", lambda: data.tidy_quantiles(wide), figure,
                 key="dist_all_export")


ui.live(runs, every_layer if all_layers else single_layer, light=True)
