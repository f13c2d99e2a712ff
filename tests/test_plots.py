"""wcviz.report.plots and wcviz.report.style on small real run stores: drawn values equal stored values."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import _fixture_runs as fx  # noqa: E402
import wcviz  # noqa: E402
from wcviz.report import plots  # noqa: E402
from wcviz.report.bands import band_label, band_pairs  # noqa: E402
from wcviz.errors import WcvizError  # noqa: E402
from wcviz.report.palette import METHOD_COLORS, run_colors  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Baseline, WC, learnable WC and three baseline seeds, written once, read back from disk."""
    root = tmp_path_factory.mktemp("runs")
    paths = {"base": fx.baseline_run(root / "base"), "wc": fx.wc_run(root / "wc"),
             "learn": fx.learnable_run(root / "learn"),
             "seeds": fx.seed_group(root / "seeds", "baseline")}
    out = {"paths": paths}
    for key, value in paths.items():
        out[key] = [wcviz.open_run(p) for p in value] if isinstance(value, list) else wcviz.open_run(value)
    return out


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def stored(ds, layer, q):
    """The stored q-quantile curve of a layer, selected by label."""
    return np.asarray(ds.weight_quantile.sel(layer=layer, quantile=q).values, dtype=float)


def bands(ax) -> dict[str, PolyCollection]:
    return {c.get_gid(): c for c in ax.collections if (c.get_gid() or "").startswith("band:")}


def lines(ax, gid) -> list:
    return [ln for ln in ax.get_lines() if ln.get_gid() == gid]


def assert_band_edges(coll: PolyCollection, x, lower, upper):
    """The polygon's vertices are exactly the points (x, lower) and (x, upper)."""
    verts = np.concatenate([p.vertices for p in coll.get_paths()])
    got = {(round(float(a), 9), round(float(b), 9)) for a, b in verts}
    want = {(round(float(a), 9), round(float(b), 9)) for a, b in zip(x, lower)}
    want |= {(round(float(a), 9), round(float(b), 9)) for a, b in zip(x, upper)}
    assert got == want


def assert_bands_match(ax, ds, layer):
    """One band per symmetric pair of the store's levels, edges = the stored curves; every
    recorded level but the median is the edge of a band."""
    x = ds.epoch.values.astype(float)
    drawn = bands(ax)
    pairs = band_pairs(ds)
    assert set(drawn) == {f"band:{lo:g}:{hi:g}" for lo, hi in pairs}
    assert {q for pair in pairs for q in pair} | {0.5} == set(ds["quantile"].values.tolist())
    for lo, hi in pairs:
        assert_band_edges(drawn[f"band:{lo:g}:{hi:g}"], x, stored(ds, layer, lo), stored(ds, layer, hi))
    (median,) = lines(ax, "median")
    np.testing.assert_array_equal(median.get_xdata(), x)
    np.testing.assert_array_equal(median.get_ydata(), stored(ds, layer, 0.5))


@pytest.mark.parametrize("layer", [None, "layer2.conv"])
def test_band_plot_edges_equal_stored_quantiles(runs, layer):
    fig = plots.band_plot(runs["base"], layer)
    assert_bands_match(fig.axes[0], runs["base"], layer or fx.LAYERS[0])


def test_band_plot_from_path_and_symlog(runs):
    fig = plots.band_plot(runs["paths"]["wc"], "fc", yscale="symlog")
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog"
    assert ax.yaxis.get_transform().linthresh == pytest.approx(0.1)  # initial std 0.1 of fc
    assert "linear within ±0.1" in ax.get_ylabel()
    assert_bands_match(ax, runs["wc"], "fc")
    # WC's bound ±aπ/2 is drawn per epoch.
    bound = sorted(lines(ax, "bound"), key=lambda ln: ln.get_ydata()[0])
    np.testing.assert_allclose(bound[1].get_ydata(), 0.8 * np.pi / 2)
    np.testing.assert_allclose(bound[0].get_ydata(), -0.8 * np.pi / 2)


def test_fig3_two_panels_share_y(runs):
    fig = plots.paper_fig3(runs["base"], runs["wc"])
    left, right = fig.axes[:2]
    assert left.get_shared_y_axes().joined(left, right)
    assert_bands_match(left, runs["base"], "conv1")
    assert_bands_match(right, runs["wc"], "conv1")
    assert not lines(left, "bound") and len(lines(right, "bound")) == 2
    assert "baseline" in left.get_title() and "a=0.8, b=0.5" in right.get_title()
    # shared y covers the baseline's large weights
    assert left.get_ylim()[1] >= stored(runs["base"], "conv1", 1.0).max()


def test_fig4_zooms_both_panels(runs):
    fig = plots.paper_fig4(runs["base"], runs["wc"], "conv1", zoom=0.5)
    for ax in fig.axes[:2]:
        assert ax.get_ylim() == pytest.approx((-0.5, 0.5))
    default = plots.paper_fig4(runs["base"], runs["wc"], "conv1")
    top = float(runs["wc"].weight_absmax.sel(layer="conv1").max())  # 0.9·aπ/2 ≈ 1.131
    assert plots.nice_ceil(1.05 * top) == pytest.approx(1.2)
    assert default.axes[0].get_ylim() == pytest.approx((-1.2, 1.2))
    assert [plots.nice_ceil(x) for x in (0.587, 0.8, 1.0, 1.31, 7.2, 0.0123)] == \
        pytest.approx([0.6, 0.8, 1.0, 1.5, 8.0, 0.015])


def test_overlay_draws_each_run_in_its_colour(runs):
    fig = plots.overlay_bands([runs["base"], runs["wc"]], "layer1.conv")
    ax = fig.axes[0]
    medians = lines(ax, "median")
    assert len(medians) == 2 and medians[0].get_color() != medians[1].get_color()
    for med, ds in zip(medians, (runs["base"], runs["wc"])):
        np.testing.assert_array_equal(med.get_ydata(), stored(ds, "layer1.conv", 0.5))
    assert len(bands(ax)) == len(band_pairs(runs["base"]))  # same gids, drawn twice
    assert sum(1 for c in ax.collections if (c.get_gid() or "").startswith("band:")) == 8


def test_layer_grid_one_panel_per_layer(runs):
    fig = plots.layer_grid(runs["base"], ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == list(fx.LAYERS)
    for ax, layer in zip(visible, fx.LAYERS):
        assert_bands_match(ax, runs["base"], layer)


def test_layer_grid_two_runs_side_by_side(runs):
    fig = plots.layer_grid(runs["base"], runs["wc"], layers=["conv1", "fc"])
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == [
        "(a) baseline: conv1", "(b) WC a=0.8, b=0.5: conv1", "(a) baseline: fc", "(b) WC a=0.8, b=0.5: fc"]
    for i, (layer, ds) in enumerate([("conv1", runs["base"]), ("conv1", runs["wc"]),
                                     ("fc", runs["base"]), ("fc", runs["wc"])]):
        assert_bands_match(fig.axes[i], ds, layer)
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])


def test_grid_layers_spread_over_depth():
    names = [f"l{i}" for i in range(20)]
    assert plots.grid_layers(names[:5]) == names[:5]
    picked = plots.grid_layers(names, most=5)
    assert picked == ["l0", "l5", "l10", "l14", "l19"]


def test_unknown_layer_lists_the_layers(runs):
    with pytest.raises(WcvizError, match="no layer 'conv9'.*conv1, layer1.conv, layer2.conv, fc"):
        plots.band_plot(runs["base"], "conv9")
    with pytest.raises(WcvizError, match="its layers are"):
        plots.paper_fig3(runs["base"], runs["wc"], "nope")


def test_near_zero_over_epochs_is_the_weighted_network_fraction(runs):
    fig = plots.near_zero_over_epochs([runs["base"], runs["wc"]], "rel=0.1")
    got = [ln.get_ydata() for ln in fig.axes[0].get_lines()]
    for y, ds in zip(got, (runs["base"], runs["wc"])):
        frac = ds.near_zero_fraction.sel(threshold="rel=0.1").values  # (epoch, layer)
        numel = np.asarray(fx.NUMEL, float)
        np.testing.assert_allclose(y, 100 * (frac * numel).sum(1) / numel.sum())
    one = plots.near_zero_over_epochs([runs["base"]], 0.01, layer="fc")
    np.testing.assert_allclose(one.axes[0].get_lines()[0].get_ydata(),
                               100 * runs["base"].near_zero_fraction.sel(threshold="abs=0.01", layer="fc").values)


def test_near_zero_layer_mean_is_drawn_dashed_beside_the_weighted(runs):
    fig = plots.near_zero_over_epochs([runs["base"]], "rel=0.1", how="both")
    (mean,) = lines(fig.axes[0], "layer-mean")
    frac = runs["base"].near_zero_fraction.sel(threshold="rel=0.1").values
    np.testing.assert_allclose(mean.get_ydata(), 100 * frac.mean(1))
    assert mean.get_linestyle() == "--"


def test_near_zero_measures_has_a_panel_per_threshold(runs):
    fig = plots.near_zero_measures([runs["base"], runs["wc"]])
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == len(fx.THRESHOLDS)
    assert [ax.get_title() for ax in shown] == ["|w| < 0.001", "|w| < 0.01", "|w| < 0.1·σ₀", "|w| < 0.5·σ₀"]


def test_near_zero_by_layer_last_epoch(runs):
    fig = plots.near_zero_by_layer([runs["base"], runs["wc"]], "abs=0.01")
    ax = fig.axes[0]
    (init,) = lines(ax, "init")
    np.testing.assert_allclose(init.get_ydata(), 100 * runs["base"].near_zero_fraction.sel(threshold="abs=0.01").isel(epoch=0).values)
    drawn = [ln for ln in ax.get_lines() if ln.get_gid() != "init"]
    for ln, ds in zip(drawn, (runs["base"], runs["wc"])):
        np.testing.assert_array_equal(ln.get_xdata(), np.arange(len(fx.LAYERS)))
        np.testing.assert_allclose(ln.get_ydata(), 100 * ds.near_zero_fraction.sel(threshold="abs=0.01").isel(epoch=-1).values)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(fx.LAYERS)


def test_unknown_threshold_lists_the_thresholds(runs):
    with pytest.raises(WcvizError, match="abs=0.001, abs=0.01, rel=0.1, rel=0.5"):
        plots.near_zero_over_epochs([runs["base"]], "rel=0.3")


def test_ab_trajectories_equal_stored_a_b(runs):
    fig = plots.ab_trajectories(runs["learn"])
    ax_a, ax_b = fig.axes[:2]
    for layer in fx.LAYERS:
        (la,) = lines(ax_a, f"a:{layer}")
        (lb,) = lines(ax_b, f"b:{layer}")
        np.testing.assert_allclose(la.get_ydata(), runs["learn"].a.sel(layer=layer).values)
        np.testing.assert_allclose(lb.get_ydata(), runs["learn"].b.sel(layer=layer).values)
    assert lines(ax_a, "a:fc")[0].get_linestyle() == "--"  # the linear layer stands out
    with pytest.raises(WcvizError, match="recorded no a, b"):
        plots.ab_trajectories(runs["base"])


def test_metrics_curves_in_percent(runs):
    fig = plots.metrics_curves([runs["base"], runs["wc"]])
    loss_ax, acc_ax = fig.axes[:2]
    labels = ["baseline", "WC a=0.8, b=0.5"]
    for ds, name in zip((runs["base"], runs["wc"]), labels):
        (acc,) = lines(acc_ax, f"test_acc:{name}")
        np.testing.assert_allclose(acc.get_ydata(), 100 * ds.test_acc.values)
        (loss,) = lines(loss_ax, f"train_loss:{name}")
        np.testing.assert_allclose(loss.get_ydata(), ds.train_loss.values)
    assert "%" in acc_ax.get_ylabel() and "nats" in loss_ax.get_ylabel()


def test_seed_bands_are_seed_means(runs):
    seeds = runs["seeds"]
    fig = plots.seed_bands(seeds, "conv1")
    ax = fig.axes[0]
    x = seeds[0].epoch.values.astype(float)
    for lo, hi in band_pairs(seeds[0]):
        mean_lo = np.mean([stored(ds, "conv1", lo) for ds in seeds], axis=0)
        mean_hi = np.mean([stored(ds, "conv1", hi) for ds in seeds], axis=0)
        assert_band_edges(bands(ax)[f"band:{lo:g}:{hi:g}"], x, mean_lo, mean_hi)
    upper = max(lines(ax, "spread:0.5"), key=lambda ln: ln.get_ydata().sum())
    med = np.array([stored(ds, "conv1", 0.5) for ds in seeds])
    np.testing.assert_allclose(upper.get_ydata(), med.mean(0) + med.std(0, ddof=1))


NZ_SHIFTS = (0.0, 0.03, 0.08)  # per-seed offset of the near-zero level: the seeds differ


@pytest.fixture(scope="module")
def nz_seeds(tmp_path_factory):
    """Three seeds of one baseline whose near-zero fractions differ, read back from disk."""
    root = tmp_path_factory.mktemp("nz_seeds")
    return [wcviz.open_run(fx.write_run(
        root / f"s{seed}", seed=seed, n_epochs=4, scales=lambda e: fx.INIT_SCALE,
        near_zero=lambda e, k=shift: fx._nz(fx.INIT_NZ * (1 + 0.2 * e) + k)))
        for seed, shift in enumerate(NZ_SHIFTS)]


def group_artists(ax):
    """Each seed group's mean line and ± std band (gids "mean:<group>", "std:<group>")."""
    means = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("mean:")]
    spreads = [c for c in ax.collections if (c.get_gid() or "").startswith("std:")]
    return means, spreads


def test_seed_near_zero_is_the_seed_mean_of_each_runs_network_fraction(nz_seeds, runs):
    fig = plots.seed_near_zero(nz_seeds + [runs["wc"]], "rel=0.1")
    ax = fig.axes[0]
    means, spreads = group_artists(ax)
    assert len(means) == len(spreads) == 2  # the three seeds are one group, WC the other
    numel = np.asarray(fx.NUMEL, float)
    frac = np.array([100 * (ds.near_zero_fraction.sel(threshold="rel=0.1").values * numel).sum(1)
                     / numel.sum() for ds in nz_seeds])  # (seed, epoch): size-weighted per run
    np.testing.assert_allclose(means[0].get_ydata(), frac.mean(0))
    x = nz_seeds[0].epoch.values.astype(float)
    sd = frac.std(0, ddof=1)
    assert_band_edges(spreads[0], x, frac.mean(0) - sd, frac.mean(0) + sd)
    assert ax.get_ylabel() == plots.NEAR_ZERO_LABEL and "mean ± std over seeds" in ax.get_title()
    fc = plots.seed_near_zero(nz_seeds, 0.01, layer="fc").axes[0]
    stored_fc = np.array([100 * ds.near_zero_fraction.sel(threshold="abs=0.01", layer="fc").values
                          for ds in nz_seeds])
    np.testing.assert_allclose(group_artists(fc)[0][0].get_ydata(), stored_fc.mean(0))


def test_seed_near_zero_by_layer_is_the_seed_mean_per_layer(nz_seeds):
    fig = plots.seed_near_zero_by_layer(nz_seeds, "abs=0.01", epoch=2)
    ax = fig.axes[0]
    (mean,), (spread,) = group_artists(ax)
    frac = np.array([100 * ds.near_zero_fraction.sel(threshold="abs=0.01").isel(epoch=2).values
                     for ds in nz_seeds])  # (seed, layer)
    depth = np.arange(len(fx.LAYERS))
    np.testing.assert_array_equal(mean.get_xdata(), depth)
    np.testing.assert_allclose(mean.get_ydata(), frac.mean(0))
    sd = frac.std(0, ddof=1)
    assert_band_edges(spread, depth, frac.mean(0) - sd, frac.mean(0) + sd)
    (init,) = lines(ax, "init")
    np.testing.assert_allclose(init.get_ydata(), np.mean(
        [100 * ds.near_zero_fraction.sel(threshold="abs=0.01").isel(epoch=0).values for ds in nz_seeds], 0))
    assert "epoch 2" in mean.get_label() and "n=3" in mean.get_label()
    assert [t.get_text() for t in ax.get_xticklabels()] == list(fx.LAYERS)


def test_seed_metric_mean_and_spread(runs):
    fig = plots.seed_metric(runs["seeds"] + [runs["wc"]], "test_acc")
    ax = fig.axes[0]
    means = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("mean:")]
    assert len(means) == 2
    acc = np.array([100 * ds.test_acc.values for ds in runs["seeds"]])
    np.testing.assert_allclose(means[0].get_ydata(), acc.mean(0))
    std = [c for c in ax.collections if (c.get_gid() or "").startswith("std:")][0]
    x = runs["seeds"][0].epoch.values.astype(float)
    assert_band_edges(std, x, acc.mean(0) - acc.std(0, ddof=1), acc.mean(0) + acc.std(0, ddof=1))


def test_figures_are_paper_sized_and_leave_global_settings_alone(runs):
    """One-column (3.5 in) and two-column (7.16 in, IEEE) widths; the paper style applies
    while drawing only (font types and dpi are checked on the written files below)."""
    before = dict(matplotlib.rcParams)
    one = plots.band_plot(runs["base"], "conv1")
    two = plots.paper_fig3(runs["base"], runs["wc"])
    assert one.get_size_inches()[0] == pytest.approx(3.5)
    assert two.get_size_inches()[0] == pytest.approx(7.16)
    assert dict(matplotlib.rcParams) == before


def test_save_figure_writes_each_format(runs, tmp_path):
    fig = plots.paper_fig3(runs["base"], runs["wc"])
    paths = plots.save_figure(fig, tmp_path / "sub" / "fig3", formats=("pdf", "svg", "png"))
    assert [p.name for p in paths] == ["fig3.pdf", "fig3.svg", "fig3.png"]
    pdf, svg, png = (p.read_bytes() for p in paths)
    assert pdf.startswith(b"%PDF")
    assert b"<svg" in svg[:2000] and b"<text" in svg  # text kept as text (svg.fonttype none)
    assert png.startswith(b"\x89PNG")
    from PIL import Image

    with Image.open(paths[2]) as img:
        assert img.info["dpi"][0] == pytest.approx(300, abs=0.5)
    with pytest.raises(WcvizError, match="unknown figure format"):
        plots.save_figure(fig, tmp_path / "x", formats=("jpg",))


def test_pdf_embeds_truetype_not_type3(runs, tmp_path):
    fig = plots.near_zero_figure([runs["base"], runs["wc"]])
    (path,) = plots.save_figure(fig, tmp_path / "nz", formats=("pdf",))
    data = path.read_bytes()
    subtypes = set(re.findall(rb"/Subtype\s*/(\w+)", data)) - {b"Form", b"Image"}
    assert b"Type3" not in subtypes
    # TrueType glyphs, as simple fonts or (for π, σ, ₀) CID-keyed Type0/CIDFontType2 fonts
    assert subtypes and subtypes <= {b"TrueType", b"Type0", b"CIDFontType2"}
    assert b"/FontFile2" in data  # the embedded TrueType program


@pytest.mark.slow
def test_write_paper_figures(runs, tmp_path):
    paths = runs["paths"]
    files = plots.write_paper_figures([paths["base"], paths["wc"], paths["learn"]], tmp_path,
                                      formats=("svg",))
    names = sorted(p.name for p in files)
    stems = ["ab_" + runs["learn"].attrs["run_id"], "fig3_bands_conv1", "fig4_bands_zoom_conv1",
             "layers_bands", "metrics", "near_zero", "near_zero_measures"]
    assert names == sorted(f"{s}.svg" for s in stems)
    assert all(p.stat().st_size > 1000 for p in files)
    only_base = plots.write_paper_figures([paths["base"]], tmp_path / "b", formats=("svg",), layer="fc")
    assert sorted(p.name for p in only_base) == sorted(
        [f"bands_{runs['base'].attrs['run_id']}_fc.svg", "metrics.svg", "near_zero.svg", "near_zero_measures.svg"])
    seeds = plots.write_paper_figures(paths["seeds"], tmp_path / "s", formats=("svg",))
    assert "seeds_test_acc.svg" in {p.name for p in seeds}


def test_recorder_run_bands(tmp_path):
    """A run recorded by wcviz.Recorder on a tiny trained model draws its stored quantiles."""
    import torch
    from torch import nn

    model = wcviz.compand(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 3)),
                          a=0.8, b=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 3, (16,))
    with wcviz.Recorder(model, tmp_path / "rec", attrs={"model": "tiny", "dataset": "noise", "seed": 0}) as rec:
        rec.record(0.0, {"train_loss": float("nan")})
        for epoch in range(1, 4):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.record(float(epoch), {"train_loss": loss.item()})
    ds = wcviz.open_run(tmp_path / "rec")
    layer = str(ds.layer.values[0])
    fig = plots.band_plot(ds)
    assert_bands_match(fig.axes[0], ds, layer)
    files = plots.write_paper_figures([tmp_path / "rec"], tmp_path / "figs", formats=("svg",))
    assert {p.name for p in files} >= {f"bands_{ds.attrs['run_id']}_{layer}.svg", "near_zero.svg"}


def test_erf_bound_is_a(tmp_path):
    path = fx.write_run(tmp_path / "erf", method="erf", a=0.8, b=0.5, n_epochs=3,
                        scales=lambda e: fx.INIT_SCALE, near_zero=lambda e: fx._nz(fx.INIT_NZ))
    fig = plots.band_plot(path, "conv1")
    ax = fig.axes[0]
    assert max(ln.get_ydata().max() for ln in lines(ax, "bound")) == pytest.approx(0.8)
    assert "a = 0.8" in [t.get_text() for t in ax.texts]
    assert "±a (bound on |w|)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_run_without_records_is_a_clear_error(tmp_path):
    from wcviz.record.store import RunStore

    RunStore.create(tmp_path / "empty", layers=list(fx.LAYERS), layer_kinds=list(fx.KINDS),
                    layer_numel=list(fx.NUMEL), bin_edges=fx._bin_edges(), thresholds=fx.THRESHOLDS)
    with pytest.raises(WcvizError, match="has no records yet"):
        plots.band_plot(tmp_path / "empty")
    with pytest.raises(WcvizError, match="has no records yet"):
        plots.near_zero_over_epochs([tmp_path / "empty"])


@pytest.mark.parametrize("kind", ["near_zero", "metrics", "overlay"])
def test_every_figure_colours_runs_by_the_one_rule(runs, kind):
    """Lines and bands take wcviz.report.palette.run_colors: the method's colour, whatever the order."""
    chosen = [runs["learn"], runs["base"], runs["wc"]]
    if kind == "near_zero":
        fig = plots.near_zero_over_epochs(chosen)
        got = [ln.get_color() for ln in fig.axes[0].get_lines()]
    elif kind == "metrics":
        fig = plots.metrics_curves(chosen)
        got = [h.get_color() for h in fig.legends[0].legend_handles[:3]]
    else:
        fig = plots.overlay_bands(chosen, "conv1")
        got = [ln.get_color() for ln in lines(fig.axes[0], "median")]
    assert got == run_colors(chosen) == [METHOD_COLORS["arctan+learnable"], METHOD_COLORS["none"],
                                         METHOD_COLORS["arctan"]]


def test_seeds_of_one_method_get_distinct_colours(runs):
    fig = plots.near_zero_over_epochs(runs["seeds"])
    got = [ln.get_color() for ln in fig.axes[0].get_lines()]
    assert got[0] == METHOD_COLORS["none"] and len(set(got)) == len(got)


SEVEN = (0, .05, .25, .5, .75, .95, 1)


def _seven_level_run(path, a=None):
    """A run recorded by wcviz.Recorder with 7 quantile levels on a tiny (companded) model."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 3))
    if a is not None:
        model = wcviz.compand(model, a=a, b=0.5)
    with wcviz.Recorder(model, path, quantiles=SEVEN, attrs={"seed": 0}) as rec:
        for epoch in range(3):
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1.1)
            rec.record(float(epoch), {"train_loss": 1.0 / (1 + epoch)})
    return wcviz.open_run(path)


def test_seven_level_store_draws_its_own_bands(tmp_path):
    """Regression: a (0, .05, .25, .5, .75, .95, 1) store drew only the min–max band."""
    ds = _seven_level_run(tmp_path / "seven")
    layer = str(ds.layer.values[0])
    fig = plots.band_plot(ds, layer)
    assert_bands_match(fig.axes[0], ds, layer)
    assert len(bands(fig.axes[0])) == 3
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:3] == ["min–max", "5–95 %", "25–75 %"]
    seeds = plots.seed_bands([ds, ds], layer)
    assert set(bands(seeds.axes[0])) == {"band:0:1", "band:0.05:0.95", "band:0.25:0.75"}


def test_runs_with_different_level_sets_share_their_common_bands(tmp_path, runs):
    """Side by side, a 7-level and a 9-level run draw and explain the bands both recorded."""
    seven = _seven_level_run(tmp_path / "seven", a=0.8)
    base = _seven_level_run(tmp_path / "base")
    fig = plots.band_panels([base, seven])
    for ax in fig.axes:
        assert set(bands(ax)) == {"band:0:1", "band:0.05:0.95", "band:0.25:0.75"}
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["min–max", "5–95 %", "25–75 %"]
    # With a default (9-level) store only the min–max band is common to both.
    assert plots.shared_pairs([runs["base"], seven]) == [(0.0, 1.0)]
    files = plots.write_paper_figures([tmp_path / "base", tmp_path / "seven"], tmp_path / "figs",
                                      formats=("svg",))
    assert any(p.name.startswith("fig3_bands_") for p in files)
    assert band_label(0.05, 0.95) in (tmp_path / "figs" / files[0].name).read_text()


def test_near_zero_figure_legend_of_twelve_runs_fits_and_tells_runs_apart(tmp_path):
    runs = [wcviz.open_run(p).load() for p in
            fx.seed_group(tmp_path, "wc", seeds=range(6)) + fx.seed_group(tmp_path, "learnable", seeds=range(6))]
    fig = plots.near_zero_figure(runs)
    fig.canvas.draw()
    (legend,) = fig.legends
    assert legend.get_window_extent().width <= fig.bbox.width
    right = fig.axes[1]
    drawn = [(ln.get_color(), ln.get_marker()) for ln in right.get_lines() if ln.get_gid() != "init"]
    assert len(drawn) == 12 and len(set(drawn)) == 12  # no two runs alike
