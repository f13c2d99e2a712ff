"""The dashboard (app/) on real run stores: its data functions, and every page through AppTest.

Stores are written by the real code (``wcviz.record.store.RunStore``, ``wcviz.Recorder``) with chosen
values, so a test knows what each chart must contain. AppTest runs the app in-process, no server.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.colors
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from streamlit import dataframe_util
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from torch import nn

import wcviz
from wcviz.report import charts as app_charts
from wcviz.app import data, export
from wcviz.app.ui import md
from wcviz.record.stats import QUANTILES
from wcviz.record.store import RunStore

APP_MAIN = str(Path(data.__file__).with_name("main.py"))
SELECTED = "wcviz_selected_runs"  # wcviz.app.ui.SELECTED; repeated so a rename breaks this test loudly
LAYERS = ("conv1", "block.conv", "fc")
NUMEL = (54, 216, 40)
THRESHOLDS = ["abs=0.001", "abs=0.01", "rel=0.1"]
Z = np.array([-2.6, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.6])  # normal z of each quantile


def write_run(run_dir: Path, *, n_records: int, status: str = "finished", method: str = "none",
              learnable=None, seed: int = 0, scale: float = 0.1, acc0: float = 0.5,
              a: float = 0.5, b: float = 1.0, quantiles=QUANTILES, nz_shift=0.0) -> RunStore:
    """A run store of 3 layers with known values: layer i's weights ~ N(0, (scale·(i+1)·g)²).

    Epoch e has growth g = 1 + 0.1·e, near-zero fraction 0.01·(i+1) + 0.001·e + 0.1·k at
    threshold index k, plus ``nz_shift`` (one number, or one per layer), val_acc = acc0 + 0.05·e,
    test_acc = acc0 + 0.04·e, a = 0.5 + 0.01·e·(i+1) and b = 1 - 0.02·e for learnable runs.
    Plain runs (method "none") have no v (NaN), as recorded.
    """
    store = RunStore.create(
        run_dir, layers=LAYERS, layer_kinds=("Conv2d", "Conv2d", "Linear"), layer_numel=NUMEL,
        bin_edges=np.tile(np.linspace(-1, 1, 9), (len(LAYERS), 1)), thresholds=THRESHOLDS,
        quantiles=quantiles,
        attrs={"model": "tinynet", "dataset": "synthetic", "method": method, "seed": seed,
               "learnable": learnable, "a": a if method != "none" else None,
               "b": b if method != "none" else None})
    for epoch in range(n_records):
        append(store, epoch, scale=scale, acc0=acc0, learnable=learnable is not None,
               plain=method == "none", quantiles=quantiles, nz_shift=nz_shift)
    if status != "running":
        store.finish(status)
    return store


def append(store: RunStore, epoch: int, *, scale=0.1, acc0=0.5, learnable=False, plain=False,
           quantiles=QUANTILES, nz_shift=0.0) -> None:
    """Append epoch ``epoch`` with the values :func:`write_run` documents."""
    depth = np.arange(1, len(LAYERS) + 1)
    std = scale * depth * (1 + 0.1 * epoch)
    near = 0.01 * depth[:, None] + 0.001 * epoch + 0.0 * np.arange(len(THRESHOLDS))[None, :]
    near = near + 0.1 * np.arange(len(THRESHOLDS))[None, :] + np.reshape(nz_shift, (-1, 1))
    z = Z if tuple(quantiles) == tuple(QUANTILES) else norm_z(quantiles)
    stats = {"weight_quantile": std[:, None] * z[None, :], "near_zero_fraction": near,
             "v_quantile": np.full((len(LAYERS), len(z)), np.nan) if plain
             else 2 * std[:, None] * z[None, :]}
    if learnable:
        stats["a"] = 0.5 + 0.01 * epoch * depth
        stats["b"] = np.full(len(LAYERS), 1.0 - 0.02 * epoch)
    store.append(float(epoch), epoch * 10, stats,
                 {"train_loss": 2.0 - 0.1 * epoch, "val_loss": 2.1 - 0.1 * epoch,
                  "val_acc": acc0 + 0.05 * epoch, "test_acc": acc0 + 0.04 * epoch, "lr": 0.1})


def norm_z(quantiles) -> np.ndarray:
    """Normal z of each quantile level (±2.6 for min/max, as :data:`Z`)."""
    from scipy.stats import norm

    return np.clip(norm.ppf(np.asarray(quantiles, float)), -2.6, 2.6)


def recorder_run(run_dir: Path) -> None:
    """A run recorded by wcviz.Recorder from a real (tiny, learnable-WC) model, two epochs."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    wcviz.compand(model, "arctan", a=0.5, b=1.0, learnable="fine")
    with wcviz.Recorder(model, run_dir, {"lr": 0.1}, attrs={"model": "tiny", "dataset": "none",
                                                            "seed": 3}) as rec:
        rec.record(0, {"train_loss": 1.1})
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05)
        rec.record(1, {"train_loss": 0.9, "val_acc": 0.4})


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A runs root with finished, learnable, running, failed, recorder-made and broken runs."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "baseline", n_records=5, acc0=0.6)
    write_run(root / "wc", n_records=5, method="arctan", learnable="fine", scale=0.05, seed=1)
    write_run(root / "live", n_records=3, status="running", method="arctan")
    write_run(root / "crashed", n_records=2, status="failed")
    recorder_run(root / "sweep" / "recorded")
    (root / "half").mkdir()  # a run whose store was never written: config.json only
    (root / "half" / "config.json").write_text("{}")
    (root / "garbage" / "record.zarr").mkdir(parents=True)
    (root / "garbage" / "record.zarr" / "zarr.json").write_text("{not json")
    return root


def dashboard(monkeypatch, root) -> AppTest:
    """An AppTest of the entry script serving ``root``: ``wcviz dash`` starts ``streamlit run
    main.py -- ROOT``, which gives the script ``sys.argv == [main.py, ROOT]``."""
    monkeypatch.setattr(sys, "argv", [APP_MAIN, str(root)])
    return AppTest.from_file(APP_MAIN, default_timeout=60)


@pytest.fixture()
def app(root, monkeypatch):
    """An AppTest of the dashboard on the fixture root, after its first run."""
    at = dashboard(monkeypatch, root)
    at.run()
    assert not at.exception
    return at


def charts(at: AppTest) -> list[tuple[dict, pd.DataFrame]]:
    """Every Vega-Lite chart on the page: (spec, its data as one frame)."""
    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data)
                  for d in chart.proto.datasets]
        if chart.proto.data.data:
            frames.append(dataframe_util.convert_arrow_bytes_to_pandas_df(chart.proto.data.data))
        out.append((spec, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()))
    return out


def status_caption(at: AppTest) -> str:
    """The page's run-status line (``**run**: status, N records``)."""
    return next(c.value for c in at.caption if " records" in c.value)


def select(at: AppTest, *runs: str, page: str | None = None) -> AppTest:
    """Select ``runs`` in the sidebar, optionally switch to ``views/<page>.py``, and run."""
    at.multiselect(key=SELECTED).set_value(list(runs)).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------ data functions


def scan_of(root) -> data.Scan:
    return data.scan(data.runs_root(root))


def test_scan_lists_runs_problems_and_nested_ids(root):
    scan = scan_of(root)
    assert [r.run_id for r in scan.runs] == ["baseline", "crashed", "live", "sweep/recorded", "wc"]
    assert {r.run_id: r.status for r in scan.runs}["live"] == "running"
    assert {r.run_id: r.status for r in scan.runs}["crashed"] == "failed"
    assert {r.run_id: r.n_epochs for r in scan.runs} == {
        "baseline": 5, "crashed": 2, "live": 3, "sweep/recorded": 2, "wc": 5}
    assert sorted(Path(p.path).name for p in scan.problems) == ["garbage", "half"]
    assert all(p.error for p in scan.problems)


def test_runs_root_must_exist(tmp_path):
    with pytest.raises(wcviz.WcvizError, match="not a directory"):
        data.runs_root(tmp_path / "missing")


def test_runs_root_is_the_entry_scripts_one_argument(tmp_path, monkeypatch):
    assert data.root_argument([str(tmp_path)]) == str(tmp_path)
    assert data.root_argument([]) == "runs"  # where `wcviz demo` writes
    with pytest.raises(wcviz.WcvizError, match=r"one RUNS_ROOT, not 2 arguments"):
        data.root_argument(["a", "b"])
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WCVIZ_RUNS_ROOT", str(tmp_path / "ignored"))  # the old channel: unread
    assert data.runs_root(data.root_argument([])) == tmp_path.resolve() / "runs"


def test_runs_outside_the_root_are_not_read(root, tmp_path):
    outside = tmp_path / "elsewhere" / "record.zarr"
    outside.mkdir(parents=True)
    (outside / "zarr.json").write_text("{not json")  # reading it would list a "corrupt" store
    inner = tmp_path / "root"
    (inner / "group").mkdir(parents=True)
    (inner / "link").symlink_to(root / "baseline", target_is_directory=True)
    (inner / "group" / "deep").symlink_to(outside.parent, target_is_directory=True)
    write_run(inner / "group" / "own", n_records=1)
    (inner / "alias").symlink_to(inner / "group" / "own", target_is_directory=True)
    (inner / "smuggled").mkdir()  # a real folder inside whose store is a link out of the root
    (inner / "smuggled" / "record.zarr").symlink_to(root / "baseline" / "record.zarr",
                                                    target_is_directory=True)
    scan = scan_of(inner)
    assert [r.run_id for r in scan.runs] == ["group/own"]  # its alias inside the root: same run
    assert [(Path(p.path).name, p.error) for p in scan.problems] == [
        ("deep", "resolves outside the runs root; not read"),
        ("link", "resolves outside the runs root; not read"),
        ("smuggled", "its record.zarr resolves outside the runs root; not read")]


def test_distributions_frame_holds_the_stored_quantiles(root):
    runs = scan_of(root).by_id()
    wide = data.distributions([runs["baseline"], runs["wc"]], "block.conv")
    assert list(wide["run"].unique()) == ["baseline", "wc"]
    base = wide[wide["run"] == "baseline"]
    np.testing.assert_array_equal(base["epoch"], np.arange(5.0))
    stored = wcviz.open_run(root / "baseline")["weight_quantile"].sel(layer="block.conv").values
    np.testing.assert_allclose(base[list(data.quantile_columns(wide).values())].to_numpy(), stored)
    # epoch 4 of layer 2: std = 0.1 · 2 · 1.4, the median column is the middle z = 0
    assert base.iloc[4][data.quantile_columns(wide)[0.8413]] == pytest.approx(0.28)
    tidy = data.tidy_quantiles(wide)
    assert len(tidy) == len(wide) * len(QUANTILES)
    assert set(tidy["quantile"]) == set(QUANTILES)


def test_distributions_checks_each_store_then_reads_all_runs_in_one_pass(tmp_path, monkeypatch):
    for i in range(3):
        write_run(tmp_path / f"r{i}", n_records=2, seed=i)
    runs = list(data.scan(tmp_path).runs)
    events = []  # ("walk", run) of each confinement check, ("read", runs) of each pass
    arrays = []  # the arrays each pass reads
    read, walk = data.read_arrays_each, data.store_entries
    monkeypatch.setattr(data, "read_arrays_each", lambda reads: events.append(
        ("read", [Path(r.path).name for r in reads])) or arrays.append(
        {r.names for r in reads}) or read(reads))
    monkeypatch.setattr(data, "store_entries", lambda store: events.append(
        ("walk", Path(store).parent.name)) or walk(store))
    every = ["r0", "r1", "r2"]
    checks = [("walk", name) for name in every]
    data.distributions(runs, "fc")  # cold: the names and levels, then the layer
    assert events == [*checks, ("read", every), *checks, ("read", every)]
    # the layer's own values the second time: names, levels and epochs are read once
    assert arrays == [{("layer", "quantile", "epoch")}, {("weight_quantile",)}]
    events.clear()
    wide = data.distributions(runs, "conv1")  # names known: one check of each, one pass
    assert events == [*checks, ("read", every)]
    events.clear()
    assert data.distributions(runs, "conv1").equals(wide) and events == []  # nothing read
    assert list(wide["run"].unique()) == every


def test_distributions_of_a_listing_keep_to_the_records_its_names_were_read_with(tmp_path):
    """A running store that commits between the page's two reads: the layer's values are cut
    to the epochs read with its names (committed records never change), not misaligned."""
    store = write_run(tmp_path / "live", n_records=3, status="running")
    run = data.scan(tmp_path).runs[0]
    assert data.layers(run) == list(LAYERS)  # names, levels, epochs 0-2
    append(store, 3)  # record 3 committed before the layer is read, same listing
    wide = data.distributions([run], "fc")
    assert wide["epoch"].tolist() == [0.0, 1.0, 2.0]
    stored = wcviz.open_run(tmp_path / "live")["weight_quantile"].sel(layer="fc").values[:3]
    np.testing.assert_array_equal(wide[list(data.quantile_columns(wide).values())].to_numpy(),
                                  stored)
    assert data.distributions(data.scan(tmp_path).runs, "fc")["epoch"].max() == 3.0


def test_a_page_run_checks_each_store_once_and_the_next_run_again(tmp_path, monkeypatch):
    write_run(tmp_path / "outside", n_records=2, seed=4242)
    root = tmp_path / "root"
    for name in ("ok", "tricked"):
        write_run(root / name, n_records=2)
    runs = list(data.scan(root).runs)
    walked = []
    walk = data.store_entries
    monkeypatch.setattr(data, "store_entries", lambda store: walked.append(
        Path(store).parent.name) or walk(store))
    with data.page_checks():  # a page: the names, then two layers
        data.distributions(runs, "fc")
        data.distributions(runs, "conv1")
    assert sorted(walked) == ["ok", "tricked"]
    chunk = root / "tricked" / "record.zarr" / "weight_quantile" / "c" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(tmp_path / "outside" / "record.zarr" / "weight_quantile" / "c" / "0" / "0"
                     / "0")
    errors: list[str] = []
    with data.page_checks():  # the next run of the page: checked again before its first read
        wide = data.distributions(runs, "block.conv", errors=errors)
    assert set(wide["run"]) == {"ok"} and len(errors) == 1 and "is a symlink" in errors[0]
    with pytest.raises(wcviz.WcvizError, match="is a symlink"):  # outside a page: every read
        data.distributions(runs, "block.conv")


def test_the_page_refuses_a_store_swapped_for_a_link_since_its_last_run(tmp_path, monkeypatch):
    write_run(tmp_path / "outside", n_records=2, seed=4242)
    root = tmp_path / "root"
    for name in ("ok", "tricked"):
        write_run(root / name, n_records=2)
    at = dashboard(monkeypatch, root)
    at.run()
    select(at, "ok", "tricked", page="distributions")
    assert set(charts(at)[0][1]["run"]) == {"ok", "tricked"} and not at.error
    chunk = root / "tricked" / "record.zarr" / "weight_quantile" / "c" / "0" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(tmp_path / "outside" / "record.zarr" / "weight_quantile" / "c" / "0" / "0"
                     / "0")
    at.selectbox(key="dist_layer").set_value("fc").run()  # a layer not read yet
    assert any("tricked" in e.value and "symlink" in e.value for e in at.error)
    assert set(charts(at)[0][1]["run"]) == {"ok"}


def test_a_page_lists_the_root_once_per_run(tmp_path, monkeypatch):
    """The live fragment's first draw uses the entry script's listing (100 runs: 30-70 ms)."""
    write_run(tmp_path / "a", n_records=2)
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    select(at, "a", page="distributions")
    listed = []
    scan = data.scan
    monkeypatch.setattr(data, "scan", lambda root: listed.append(root) or scan(root))
    at.run()
    assert not at.exception and len(listed) == 1 and charts(at)


def test_dashboard_names_and_colours_runs_as_the_figures_do(root):
    from wcviz.report import charts
    from wcviz.report import plots

    runs = scan_of(root).by_id()
    chosen = [runs["wc"], runs["baseline"], runs["live"]]  # selection order is not method order
    wide = data.distributions(chosen, "fc")
    scale = charts.run_color(wide).to_dict()["scale"]
    dash = dict(zip(scale["domain"], scale["range"]))
    fig = plots.overlay_bands([data.dataset(r) for r in chosen], "fc")
    drawn = {}
    for line in fig.axes[0].lines:
        if line.get_label() in dash:
            drawn.setdefault(line.get_label(), matplotlib.colors.to_hex(line.get_color()))
    assert drawn and {k: v.lower() for k, v in drawn.items()} == {
        k: dash[k].lower() for k in drawn}  # every run the figure names has the chart's colour
    assert dash["baseline"] != dash[data.names(chosen)["wc"]]
    assert "arctan" not in " ".join(dash)  # WC, as figures and tables call it


def test_store_with_its_own_quantile_set_draws_its_own_bands(tmp_path, monkeypatch):
    levels = (0, .05, .25, .5, .75, .95, 1)
    write_run(tmp_path / "seven", n_records=3, quantiles=levels)
    write_run(tmp_path / "nine", n_records=3)
    runs = scan_of(tmp_path).by_id()
    wide = data.distributions([runs["seven"]], "fc")
    assert list(data.quantile_columns(wide)) == pytest.approx(levels)
    assert [b[0] for b in data.bands(wide)] == ["min–max", "5–95 %", "25–75 %"]
    both = data.distributions([runs["seven"], runs["nine"]], "fc")  # two quantile sets at once
    assert len(data.tidy_quantiles(both)) == 3 * 7 + 3 * 9
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    select(at, "seven", page="distributions")
    (spec, frame), = charts(at)
    assert set(frame["band"].dropna()) == {"min–max", "5–95 %", "25–75 %"}
    select(at, "seven", "nine")
    at.radio(key="dist_layout").set_value("overlaid").run()
    assert not at.exception and len(charts(at)) == 1


def test_near_zero_overall_weights_layers_by_size(root):
    runs = scan_of(root).by_id()
    frame = data.near_zero([runs["baseline"]])
    overall = data.near_zero_overall(frame[frame["threshold"] == "abs=0.01"])
    at0 = overall[overall["epoch"] == 0]["fraction"].item()
    per_layer = 0.01 * np.arange(1, 4) + 0.1  # threshold index 1
    assert at0 == pytest.approx(np.average(per_layer, weights=NUMEL))
    assert data.thresholds([runs["baseline"]]) == THRESHOLDS
    # a layer without a fraction makes the network's NaN (wcviz.record.measures.network_fraction),
    # not the other layers' fraction diluted by its size
    gap = frame.copy()
    gap.loc[(gap["epoch"] == 0) & (gap["layer"] == "fc"), "fraction"] = np.nan
    both = data.near_zero_overall(gap[gap["threshold"] == "abs=0.01"]).set_index("epoch")
    assert np.isnan(both.loc[0, "fraction"]) and np.isfinite(both.loc[1, "fraction"])


def test_compander_frame_only_for_learned_values(root):
    runs = scan_of(root).by_id()
    frame = data.compander([runs["wc"], runs["baseline"]])
    assert set(frame["run"]) == {"wc"}  # the baseline's a, b are NaN: no rows
    last_fc = frame[(frame["epoch"] == 4) & (frame["layer"] == "fc")].iloc[0]
    assert (last_fc["a"], last_fc["b"]) == pytest.approx((0.5 + 0.04 * 3, 1.0 - 0.08))
    assert data.is_learnable(runs["wc"]) and not data.is_learnable(runs["baseline"])
    assert data.is_learnable(runs["sweep/recorded"])  # Recorder took it from compand_info


def test_runs_table_and_filters(root):
    table = data.runs_table(scan_of(root))
    row = table.set_index("run").loc["baseline"]
    # test acc at best val, in %: val_acc peaks at the last epoch 4, test_acc = 0.6 + 0.04·4
    assert (row["best_val_test_acc"], row["best_val_epoch"], row["last_epoch"]) == pytest.approx(
        (76.0, 4.0, 4.0))
    best = wcviz.report.analysis.best_val_test_acc(wcviz.open_run(root / "baseline"))[1] * 100
    assert row["best_val_test_acc"] == pytest.approx(best)  # the one definition
    assert row["status"] == "finished" and row["name"] == "baseline"
    assert table.set_index("run").loc["wc", "method"] == "learnable WC"
    assert table.set_index("run").loc["live", "method"] == "WC"
    assert (row["learnable"], row["method"]) == ("", "baseline") and np.isnan(row["a"])
    assert table.set_index("run").loc["wc", "learnable"] == "fine"
    assert list(data.filter_table(table, "learnable WC")["run"]) == ["sweep/recorded", "wc"]
    assert list(data.filter_table(table, status=["failed"])["run"]) == ["crashed"]
    plain_done = data.filter_table(table, "", method=["baseline"], status=["finished"])
    assert list(plain_done["run"]) == ["baseline"]


def test_cache_follows_commits(tmp_path):
    store = write_run(tmp_path / "run", n_records=2, status="running")
    run = scan_of(tmp_path).runs[0]
    assert data.distributions([run], "fc")["epoch"].tolist() == [0.0, 1.0]
    append(store, 2)
    assert data.distributions([run], "fc")["epoch"].tolist() == [0.0, 1.0]  # same listing: cached
    fresh = scan_of(tmp_path).runs[0]
    assert fresh.n_epochs == 3
    assert data.distributions([fresh], "fc")["epoch"].tolist() == [0.0, 1.0, 2.0]


def test_unknown_layer_is_a_clear_error(root):
    run = scan_of(root).by_id()["baseline"]
    with pytest.raises(wcviz.WcvizError, match="no layer 'nope'"):
        data.layer_quantiles(run, "nope")


def test_csv_export_round_trips(root):
    run = scan_of(root).by_id()["baseline"]
    tidy = data.tidy_quantiles(data.distributions([run], "fc"))
    back = pd.read_csv(__import__("io").BytesIO(export.csv_bytes(tidy)))
    pd.testing.assert_frame_equal(back, tidy, check_dtype=False)


# ------------------------------------------------------------------ pages (AppTest)


def test_runs_page_lists_runs_and_broken_stores(app):
    tables = {tuple(t.value.columns)[:2]: t.value for t in app.dataframe}
    runs = tables[("run", "name")]
    assert list(runs["run"]) == ["baseline", "crashed", "live", "sweep/recorded", "wc"]
    assert dict(zip(runs["run"], runs["status"]))["crashed"] == "failed"
    problems = tables[("path", "error")]
    assert sorted(Path(p).name for p in problems["path"]) == ["garbage", "half"]
    assert problems["error"].str.len().min() > 10


def wait_prefetched(runs) -> None:
    """Block until the app's background thread has opened ``runs`` (it is a daemon pool)."""
    import time

    for _ in range(600):
        if data.prefetch(runs) == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the prefetch thread did not open the runs within 60 s")


def test_runs_page_fills_in_accuracy_read_in_the_background(app, root):
    wait_prefetched(scan_of(root).runs)
    app.run()
    runs = [t.value for t in app.dataframe if "model" in t.value.columns][0].set_index("run")
    assert runs.loc["baseline", "best_val_test_acc"] == pytest.approx(76.0)
    assert runs.loc["wc", "best_val_test_acc"] == pytest.approx(66.0)
    assert runs.loc["crashed", "last_epoch"] == 1.0
    assert not any("Reading epochs" in c.value for c in app.caption)


def test_runs_table_ready_mode_leaves_unread_runs_blank(tmp_path):
    write_run(tmp_path / "fresh", n_records=2)
    scan = scan_of(tmp_path)
    blank = data.runs_table(scan, accuracy="ready")  # nothing opened this store yet
    assert blank["best_val_test_acc"].isna().all() and list(blank["run"]) == ["fresh"]
    wait_prefetched(scan.runs)
    assert data.is_ready(scan.runs[0])
    assert data.runs_table(scan, accuracy="ready")["best_val_test_acc"].tolist() == pytest.approx([54.0])


def test_runs_page_shows_missing_cells_empty_not_none(tmp_path, monkeypatch):
    """A run still being read has no accuracy yet: its cells read empty, not Streamlit's
    default literal "None" (issue 22), while the table's data keeps numbers (NaN)."""
    write_run(tmp_path / "fresh", n_records=2)
    (tmp_path / "garbage" / "record.zarr").mkdir(parents=True)  # the problems table too
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    assert not at.exception
    tables = {t.key or "problems": t for t in at.dataframe}
    runs = next(t for k, t in tables.items() if k.startswith("runs_table"))
    assert pd.api.types.is_float_dtype(runs.value["best_val_test_acc"])
    for table in tables.values():  # a missing value draws as this text in the browser
        assert table.proto.HasField("placeholder") and table.proto.placeholder == ""


def test_runs_page_filter_narrows_the_table(app):
    app.text_input(key="runs_filter").set_value("WC").run()
    shown = [t.value for t in app.dataframe if "model" in t.value.columns][0]
    assert list(shown["run"]) == ["live", "sweep/recorded", "wc"]


def test_selection_shows_as_selected_rows(app):
    select(app, "wc", "baseline")
    table = next(t for t in app.dataframe if t.key and t.key.startswith("runs_table"))
    assert sorted(json.loads(table.proto.selection_default)["selection"]["rows"]) == [0, 4]


@pytest.mark.parametrize("page", ["distributions", "near_zero", "compander", "metrics"])
def test_pages_without_selection_ask_for_one(app, page):
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception
    assert "No run selected" in app.info[0].value


@pytest.mark.parametrize("page, n_charts", [("distributions", 1), ("near_zero", 2),
                                            ("compander", 1), ("metrics", 1)])
def test_every_page_renders_every_kind_of_run(app, page, n_charts):
    select(app, "baseline", "wc", "live", "crashed", "sweep/recorded", page=page)
    assert len(charts(app)) == n_charts
    assert not app.error
    shown = set(charts(app)[0][1]["run"])
    if page == "distributions":  # the recorded model's layers are "0" and "3", not conv1
        assert shown == {"baseline", "wc", "live", "crashed"}
        assert "sweep/recorded" in app.warning[0].value
    elif page != "compander":
        assert shown == {"baseline", "wc", "live", "crashed", "sweep/recorded"}
    else:  # only runs that learn a, b
        assert set(charts(app)[0][1]["run"]) == {"wc", "sweep/recorded"}


def test_selection_and_layer_change_the_band_chart(app):
    select(app, "baseline", page="distributions")
    (spec, frame), = charts(app)
    assert set(frame["run"]) == {"baseline"} and set(frame["layer"].dropna()) == {"conv1"}
    assert "hconcat" not in spec  # one run: a single panel

    select(app, "baseline", "wc")
    (spec, frame), = charts(app)
    assert set(frame["run"]) == {"baseline", "wc"}
    assert [p["title"] for p in spec["hconcat"]] == ["baseline", "learnable WC (init a=0.5, b=1)"]

    app.selectbox(key="dist_layer").set_value("fc").run()
    (_, frame), = charts(app)
    assert set(frame["layer"].dropna()) == {"fc"}
    top = data.quantile_columns(frame)[1.0]
    fc = frame[(frame["run"] == "baseline") & (frame["epoch"] == 0)].dropna(subset=[top]).iloc[0]
    assert fc[top] == pytest.approx(0.3 * 2.6)

    app.radio(key="dist_layout").set_value("overlaid").run()
    (spec, _), = charts(app)
    assert "hconcat" not in spec and "layer" in spec


def test_symlog_zoom_and_small_multiples(app):
    select(app, "baseline", "wc", page="distributions")
    app.radio(key="dist_yscale").set_value("symlog").run()
    spec_text = json.dumps(charts(app)[0][0])
    assert '"symlog"' in spec_text
    app.slider(key="dist_epochs").set_value((1.0, 3.0)).run()
    (_, frame), = charts(app)
    assert sorted(set(frame["epoch"])) == [1.0, 2.0, 3.0]

    app.toggle(key="dist_all").set_value(True).run()
    assert not app.exception
    (spec, frame), = charts(app)
    assert set(frame["layer"].dropna()) == set(LAYERS)
    assert [p["title"]["text"] for row in spec["vconcat"] for p in row["hconcat"]] == list(LAYERS)


def test_near_zero_threshold_and_layer_choice(app):
    select(app, "baseline", page="near_zero")
    app.selectbox(key="nz_threshold").set_value("abs=0.001").run()
    app.selectbox(key="nz_layer").set_value("fc").run()
    over, depth = charts(app)
    assert over[1]["fraction"].tolist() == pytest.approx([0.03 + 0.001 * e for e in range(5)])
    assert depth[1].sort_values("depth")["fraction"].tolist() == pytest.approx(
        [0.01 * d + 0.004 for d in (1, 2, 3)])  # last epoch by default


def test_broken_store_of_a_listed_run_is_an_error_line(tmp_path, monkeypatch):
    write_run(tmp_path / "ok", n_records=2)
    write_run(tmp_path / "damaged", n_records=2)
    (tmp_path / "damaged" / "record.zarr" / "weight_quantile" / "zarr.json").write_text("{")
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    select(at, "ok", "damaged", page="distributions")
    assert any("damaged" in e.value for e in at.error)
    assert set(charts(at)[0][1]["run"]) == {"ok"}


def test_running_store_shows_its_new_epoch_on_the_next_run(tmp_path, monkeypatch):
    store = write_run(tmp_path / "live", n_records=3, status="running")
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    select(at, "live", page="distributions")
    assert charts(at)[0][1]["epoch"].max() == 2.0
    assert "running, 3 records" in status_caption(at)

    append(store, 3)
    at.run()
    assert charts(at)[0][1]["epoch"].max() == 3.0  # the epoch range followed the new end
    assert "running, 4 records" in status_caption(at)

    store.finish("finished")
    at.run()
    assert "finished, 4 records" in status_caption(at)


# ------------------------------------------------------------------ export


FIGURES = {
    "bands side by side": lambda r: export.bands_figure([r["baseline"], r["wc"]], "fc"),
    "bands overlaid": lambda r: export.bands_figure([r["baseline"], r["wc"]], "conv1",
                                                    layout="overlay", yscale="symlog"),
    "small multiples": lambda r: export.layer_grid_figure([r["baseline"], r["wc"], r["live"]]),
    "near zero": lambda r: export.near_zero_figure([r["baseline"], r["wc"]], "abs=0.01", "fc"),
    "near zero by depth": lambda r: export.near_zero_depth_figure([r["baseline"]], "rel=0.1", 2.0),
    "compander": lambda r: export.compander_figure(r["wc"]),
    "metrics": lambda r: export.metrics_figure([r["baseline"], r["crashed"]]),
    "seed groups' bands": lambda r: export.seed_bands_figure([[r["baseline"], r["crashed"]],
                                                              [r["wc"]]], "fc"),
    "seed groups' metrics": lambda r: export.seed_metrics_figure([r["baseline"], r["crashed"]]),
    "seed groups' near zero": lambda r: export.seed_near_zero_figure([r["baseline"], r["crashed"],
                                                                       r["wc"]], "abs=0.01"),
    "seed groups' near zero by depth": lambda r: export.seed_near_zero_depth_figure(
        [r["baseline"], r["crashed"]], "rel=0.1", 1.0),
    "sweep": lambda r: export.sweep_figure(data.sweep_rows([r["wc"], r["live"], r["baseline"]])),
}
MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


@pytest.mark.parametrize("view, fmt", [(v, list(MAGIC)[i % 3]) for i, v in enumerate(FIGURES)])
def test_every_view_exports_through_wcviz_plots(root, view, fmt):
    runs = scan_of(root).by_id()  # each format is covered by several views: one each is enough
    assert export.figure_bytes(FIGURES[view](runs), fmt).startswith(MAGIC[fmt])


def test_exported_vector_files_keep_text_as_truetype(root):
    runs = scan_of(root).by_id()
    pdf = export.figure_bytes(export.bands_figure([runs["baseline"]], "fc"), "pdf")
    assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # embedded TrueType, as save_figure
    svg = export.figure_bytes(export.bands_figure([runs["baseline"]], "fc"), "svg")
    assert b"<text" in svg  # text stays text


def test_near_zero_depth_export_uses_the_epoch_value_in_each_run(root):
    runs = scan_of(root).by_id()  # "baseline" has epochs 0..4, "live" 0..2
    fig = export.near_zero_depth_figure([runs["baseline"], runs["live"]], "rel=0.1", 4.0)
    labels = [line.get_label() for line in fig.axes[0].lines if line.get_gid() != "init"]
    assert any("(epoch 4)" in label for label in labels)  # the baseline at the chosen epoch
    assert any("(epoch 2)" in label for label in labels)  # the live run at its last record
    fig = export.near_zero_depth_figure([runs["baseline"], runs["live"]], "rel=0.1", 1.0)
    labels = [line.get_label() for line in fig.axes[0].lines if line.get_gid() != "init"]
    assert sum("(epoch 1)" in label for label in labels) == 2


def test_exported_bands_keep_the_zoom_of_the_view(root):
    runs = scan_of(root).by_id()
    fig = export.bands_figure([runs["baseline"]], "fc", y_range=(-0.1, 0.1), epochs=(1.0, 3.0))
    ax = fig.axes[0]
    assert ax.get_ylim() == pytest.approx((-0.1, 0.1))
    xs = np.concatenate([line.get_xdata() for line in ax.lines])
    assert (xs.min(), xs.max()) == (1.0, 3.0)
    with pytest.raises(wcviz.WcvizError, match="unknown export format"):
        export.figure_bytes(fig, "jpeg")


@pytest.mark.parametrize("page", ["distributions", "near_zero", "compander", "metrics"])
def test_pages_offer_figure_and_csv_downloads(app, page):
    select(app, "baseline", "wc", page=page)
    labels = [b.label for b in app.get("download_button")]
    assert "Figure (PNG)" in labels and "Data (CSV)" in labels
    fmt_key = next(s.key for s in app.selectbox if s.key.endswith("_fmt"))
    app.selectbox(key=fmt_key).set_value("svg").run()
    assert "Figure (SVG)" in [b.label for b in app.get("download_button")]


def test_bound_is_named_as_each_method_writes_it(tmp_path):
    write_run(tmp_path / "erf", n_records=3, method="erf", a=0.5, b=1.0)
    write_run(tmp_path / "wc", n_records=3, method="arctan", a=0.5, b=1.0)
    runs = {r.run_id: r for r in scan_of(tmp_path).runs}

    def wide(*ids):
        return pd.concat([data.layer_quantiles(runs[i], "conv1").assign(name=i) for i in ids],
                         ignore_index=True)

    erf = wide("erf")
    np.testing.assert_allclose(erf["bound"], 0.5)  # erf's bound on |w| is a, not aπ/2
    def line_names(frame):
        return app_charts.line_names(frame, data.band_columns(frame), overlaid=True)

    assert line_names(erf)[-1] == "±a (bound)"
    assert set(app_charts._overlay_lines(erf, data.band_columns(erf))["line"]) >= {"±a (bound)"}
    assert line_names(wide("wc"))[-1] == "±aπ/2 (bound)"
    assert line_names(wide("erf", "wc"))[-1] == "±bound (bound)"


def test_drawing_a_wc_runs_bound_does_not_import_torch(tmp_path):
    """Distributions' first chart cold (issue 22): importing torch for a WC run's bound aπ/2
    took about 2 s of the page; the bound and the whole page's data need no torch."""
    import subprocess

    write_run(tmp_path / "wc", n_records=3, method="arctan", a=0.5, b=1.0)
    write_run(tmp_path / "learnt", n_records=3, method="arctan", learnable="fine", seed=1)
    code = ("import sys\n"
            "from wcviz.app import data\n"
            f"runs = data.scan(data.runs_root({str(tmp_path)!r})).runs\n"
            "wide = data.distributions(list(runs), 'conv1')\n"
            "print(sorted(set(wide['bound'].round(6))), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    bounds, torch_imported = out.stdout.strip().rsplit(" ", 1)
    assert torch_imported == "False"
    assert str(round(0.5 * np.pi / 2, 6)) in bounds  # the fixed run's aπ/2 is still drawn


def test_charts_draw_by_the_columns_they_are_given(root):
    """The charts read no meaning out of column names: the same frame with its quantile
    columns renamed to names that say nothing, and a BandColumns naming them, draws the same."""
    run = scan_of(root).by_id()["wc"]
    wide = data.label_runs(data.layer_quantiles(run, "fc"), [run])
    cols = data.band_columns(wide)
    assert cols.median == data.median_column(wide) and len(cols.levels) == len(QUANTILES)
    assert [b.level for b in cols.bands] == pytest.approx([0.0, 0.0668, 0.1587, 0.3085])
    renamed = {c: f"col{i}" for i, c in enumerate(cols.levels.values())}
    other = wide.rename(columns=renamed)
    given = data.BandColumns({q: renamed[c] for q, c in cols.levels.items()},
                             tuple(b._replace(low=renamed[b.low], high=renamed[b.high])
                                   for b in cols.bands), renamed[cols.median])
    for overlaid in (False, True):
        assert app_charts.line_names(other, given, overlaid) == app_charts.line_names(
            wide, cols, overlaid)
    pd.testing.assert_frame_equal(app_charts._overlay_lines(other, given),
                                  app_charts._overlay_lines(wide, cols))
    pd.testing.assert_frame_equal(app_charts._rings(other, given), app_charts._rings(wide, cols))
    spec = json.dumps(app_charts.band_chart(other, given).to_dict())
    assert '"col4"' in spec and data.median_column(wide) not in spec  # hover y: the given median


def test_raw_v_view_labels_v_and_explains_runs_without_v(app):
    select(app, "baseline", "wc", page="distributions")
    app.radio(key="dist_variable").set_value("raw v").run()
    (spec, frame), = charts(app)
    assert set(frame["run"].dropna()) == {"wc"}  # the baseline has no v: not a blank panel
    assert frame[data.quantile_columns(frame)[1.0]].dropna().iloc[0] == pytest.approx(2 * 0.05 * 2.6)
    assert '"title": "v"' in json.dumps(spec)
    assert any("No raw v for baseline" in i.value for i in app.info)
    assert [b.label for b in app.get("download_button")] == ["Data (CSV)"]


def test_overlay_keeps_each_run_apart_and_draws_the_bound(app):
    select(app, "baseline", "wc", page="distributions")
    app.radio(key="dist_layout").set_value("overlaid").run()
    (spec, frame), = charts(app)
    text = json.dumps(spec)
    lines = frame.dropna(subset=["line"])
    assert {"median", "15.87–84.13 %", "min–max", "±aπ/2 (bound)"} <= set(lines["line"])
    bound = lines[lines["line"] == "±aπ/2 (bound)"]
    assert set(bound["run"]) == {"wc"}  # only the WC run has a bound: ±aπ/2 of its learnt a
    a = 0.5 + 0.01 * bound["epoch"]  # conv1's a at each epoch (write_run)
    np.testing.assert_allclose(bound["y"].abs(), a * np.pi / 2)
    assert (bound["y"] > 0).sum() == (bound["y"] < 0).sum() == 5
    assert '"title": "line"' in text and "strokeDash" in text  # a legend names each line
    scale = charts_run_scale(spec)
    assert len(set(scale["range"])) == 2  # one hue per run


def test_overlay_sends_the_fill_and_hover_data_once_with_labels_as_dictionaries(app):
    select(app, "baseline", "wc", page="distributions")
    app.radio(key="dist_layout").set_value("overlaid").run()
    chart, = app.get("vega_lite_chart")
    # fill and hover points share one dataset, the lines have the other (100 runs: 15 -> 4 MB)
    assert len(chart.proto.datasets) == 2
    for dataset in chart.proto.datasets:
        table = pa.ipc.open_stream(dataset.data.data).read_all()
        for name in ("run", "name", "line"):
            if name in table.column_names:
                assert pa.types.is_dictionary(table.schema.field(name).type), name


def charts_run_scale(spec) -> dict:
    """The colour scale of the run legend in a chart spec."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            color = node.get("color")
            if isinstance(color, dict) and color.get("field") == "name" and "scale" in color \
                    and "domain" in color["scale"] and color.get("legend") is not None:
                found.append(color["scale"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found[0]


def test_side_by_side_bands_have_a_band_legend_and_the_bound(app):
    select(app, "wc", page="distributions")
    (spec, frame), = charts(app)
    assert set(frame["band"].dropna()) == {"min–max", "6.68–93.32 %", "15.87–84.13 %",
                                           "30.85–69.15 %"}
    assert '"title": "band"' in json.dumps(spec)
    assert "±aπ/2 (bound)" in set(frame["line"].dropna())


def test_small_multiples_fill_the_page_width(app):
    select(app, "baseline", "wc", page="distributions")
    app.toggle(key="dist_all").set_value(True).run()
    (spec, _), = charts(app)
    widths = [p["width"] for row in spec["vconcat"] for p in row["hconcat"]]
    assert len(widths) == len(LAYERS) and min(widths) >= 250
    (_, frame), = charts(app)
    assert "±aπ/2 (bound)" in set(frame["line"].dropna())  # every layer's panel has the bound


def test_metrics_grid_names_each_split(app):
    select(app, "baseline", "wc", page="metrics")
    (spec, frame), = charts(app)
    assert spec["facet"]["row"]["field"] == "split" and spec["facet"]["column"]["field"] == "kind"
    assert "strokeDash" not in json.dumps(spec)  # no unexplained line styles


def test_near_zero_defaults_to_the_figures_threshold_and_names_layers(app):
    select(app, "baseline", page="near_zero")
    assert app.selectbox(key="nz_threshold").value == "rel=0.1"
    over, depth = charts(app)
    assert depth[0]["encoding"]["x"]["field"] == "layer"
    assert depth[0]["encoding"]["x"]["sort"] == list(LAYERS)


def test_compander_names_each_layer(app):
    select(app, "wc", page="compander")
    (spec, _), = charts(app)
    color = spec["spec"]["encoding"]["color"]
    assert color["field"] == "layer" and color["type"] == "nominal"


def test_empty_and_missing_roots_explain_themselves(tmp_path, monkeypatch):
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    assert not at.exception and "No runs under" in at.info[0].value
    at = dashboard(monkeypatch, tmp_path / "gone")
    at.run()
    assert not at.exception and "is not a directory" in at.error[0].value
    monkeypatch.setattr(sys, "argv", [APP_MAIN, str(tmp_path), "extra"])
    at = AppTest.from_file(APP_MAIN, default_timeout=60)
    at.run()
    # shown as text: its Markdown escaped (tests/adversarial/test_hostile_stores.py)
    assert not at.exception and md("one RUNS_ROOT, not 2 arguments") in at.error[0].value


# ------------------------------------------------------------------ sweeps


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory) -> Path:
    """A grid search: WC at a ∈ {0.5, 1} × b ∈ {0.6, 1}, two seeds each, and two baselines.

    acc0 = 0.5 + 0.1·a + 0.01·seed, so test acc at best val = 100·(acc0 + 0.04·3) %.
    """
    root = tmp_path_factory.mktemp("sweep")
    for seed in (0, 1):
        write_run(root / f"base-s{seed}", n_records=4, seed=seed, acc0=0.58 + 0.01 * seed)
        for a in (0.5, 1.0):
            for b in (0.6, 1.0):
                write_run(root / f"wc-a{a:g}-b{b:g}-s{seed}", n_records=4, method="arctan",
                          a=a, b=b, seed=seed, acc0=0.5 + 0.1 * a + 0.01 * seed)
    return root


def test_sweep_cells_fold_seeds_per_a_b(sweep_root):
    from wcviz.report import sweep

    rows = data.sweep_rows(list(scan_of(sweep_root).runs))
    cells = sweep.sweep_cells(rows).set_index(["a", "b"])
    assert len(cells) == 4 and set(cells["best_val_test_acc_n"]) == {2}
    assert cells.loc[(1.0, 0.6), "best_val_test_acc"] == pytest.approx(100 * (0.6 + 0.005 + 0.12))
    assert cells.loc[(1.0, 0.6), "best_val_test_acc_std"] == pytest.approx(np.std([60, 61], ddof=1))
    assert cells.loc[(0.5, 1.0), "runs"] == "wc-a0.5-b1-s0, wc-a0.5-b1-s1"
    # max|w| / (aπ/2) at the last epoch: fc's max = 0.1·3·1.3·2.6, bound = π/4 for a = 0.5
    assert cells.loc[(0.5, 1.0), "absmax_over_bound"] == pytest.approx(0.1 * 3 * 1.3 * 2.6 / (np.pi / 4))
    base = sweep.baseline_values(rows)
    assert base["best_val_test_acc"] == pytest.approx(100 * (0.585 + 0.12))


def test_sweeps_page_draws_heatmaps_and_a_click_selects_runs(sweep_root, monkeypatch):
    at = dashboard(monkeypatch, sweep_root)
    at.run()
    at.switch_page("views/sweeps.py").run()
    assert not at.exception, at.exception
    drawn = charts(at)
    assert len(drawn) == 3
    spec, frame = drawn[0]
    assert len(frame) == 4 and "domainMid" in json.dumps(spec)  # colours diverge at the baseline
    assert "baseline 70.50" in json.dumps(spec)
    assert any("Best (a, b)" in m.value and "a = 1" in m.value for m in at.markdown)
    # A click on the (a=1, b=0.6) cell, as the browser reports it, picks its two seeds (the
    # click itself is made in the browser test).
    from wcviz.report import sweep

    cells = sweep.sweep_cells(data.sweep_rows(list(scan_of(sweep_root).runs)))
    assert data.cell_runs(cells, [{"a": 1, "b": 0.6}]) == ["wc-a1-b0.6-s0", "wc-a1-b0.6-s1"]
    assert data.cell_runs(cells, []) == []


def test_sweeps_page_keeps_methods_apart(tmp_path, monkeypatch):
    # arsinh runs at the same (a, b) as arctan ones: one grid per method, picked on the page
    # (the figure download refuses a mix: wcviz.report.sweep.check_one_setup).
    for method, acc0 in (("arctan", 0.6), ("arsinh", 0.8)):
        for a in (0.5, 1.0):
            write_run(tmp_path / f"{method}-a{a:g}", n_records=4, method=method, a=a, b=0.6,
                      acc0=acc0)
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    at.switch_page("views/sweeps.py").run()
    assert not at.exception, at.exception
    assert [s.label for s in at.selectbox if s.label == "Method"] == ["Method"]
    spec, frame = charts(at)[0]
    assert len(frame) == 2  # the arctan cells only, not four rows over two cells
    assert any("Best (a, b)" in m.value and "72.00 %" in m.value for m in at.markdown)


def test_sweeps_page_shows_one_dataset_and_model_at_a_time(tmp_path, monkeypatch):
    import _fixture_runs as fx

    for dataset in ("digits", "mnist1d"):
        for a in (0.5, 1.0, 2.0):
            fx.wc_run(tmp_path / f"{dataset}-a{a:g}", a=a, dataset=dataset)
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    at.switch_page("views/sweeps.py").run()
    assert not at.exception, at.exception
    setup = at.selectbox(key="sweep_setup")
    assert setup.options == ["digits / tinynet", "mnist1d / tinynet"]
    def cell_runs():
        return " ".join(charts(at)[0][1]["runs"])

    assert len(charts(at)[0][1]) == 3 and "mnist1d" not in cell_runs()  # the first setup only
    setup.set_value(("mnist1d", "tinynet")).run()
    assert not at.exception and len(charts(at)[0][1]) == 3 and "digits" not in cell_runs()


@pytest.mark.slow
def test_figures_sweep_writes_the_heatmaps(sweep_root, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "figs"
    done = subprocess.run([sys.executable, "-m", "wcviz", "figures", str(sweep_root), "--sweep",
                           "--out", str(out), "--format", "png,svg"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "sweep_ab.png").read_bytes().startswith(b"\x89PNG")
    svg = (out / "sweep_ab.svg").read_text()
    assert "baseline" in svg and "test acc at best val" in svg
    from wcviz.report.plots.sweep import sweep_heatmaps
    from wcviz.report.sweep import sweep_table

    with pytest.raises(wcviz.WcvizError, match="no sweep to draw"):
        sweep_heatmaps(sweep_table([sweep_root / "base-s0"]))


# ------------------------------------------------------------------ seed groups


def test_seed_groups_fold_quantiles_and_metrics(sweep_root):
    runs = scan_of(sweep_root).by_id()
    chosen = [runs["wc-a1-b0.6-s0"], runs["wc-a1-b0.6-s1"], runs["base-s0"], runs["base-s1"]]
    groups = data.seed_groups(chosen)
    assert [g.run_ids for g in groups] == [("wc-a1-b0.6-s0", "wc-a1-b0.6-s1"), ("base-s0", "base-s1")]
    assert groups[0].name == "WC a=1, b=0.6 (mean of 2 seeds)"
    assert groups[0].color != groups[1].color
    wide = data.fold_quantiles(data.distributions(chosen, "fc"), chosen)
    assert set(wide["run"]) == {g.group_id for g in groups} and set(wide["seeds"]) == {2}
    median = data.median_column(wide)
    assert wide[f"sd_{median}"].fillna(0).abs().max() == pytest.approx(0)  # same weights per seed
    metrics = data.fold_metrics(data.metrics(chosen), chosen)
    acc = metrics[(metrics["metric"] == "val_acc") & (metrics["epoch"] == 0)].set_index("run")
    assert acc.loc[groups[1].group_id, "value"] == pytest.approx(0.585)
    assert acc.loc[groups[1].group_id, "std"] == pytest.approx(np.std([0.58, 0.59], ddof=1))


def test_seed_group_toggle_on_distributions_and_metrics(sweep_root, monkeypatch):
    at = dashboard(monkeypatch, sweep_root)
    at.run()
    select(at, "wc-a1-b0.6-s0", "wc-a1-b0.6-s1", "base-s0", "base-s1", page="distributions")
    at.toggle(key="wcviz_seed_groups").set_value(True).run()
    assert not at.exception, at.exception
    (spec, frame), = charts(at)
    assert len(spec["hconcat"]) == 2  # one panel per group, not per run
    assert "± std over seeds" in set(frame["line"].dropna())
    at.radio(key="dist_layout").set_value("overlaid").run()
    assert not at.exception
    at.switch_page("views/metrics.py").run()
    assert not at.exception
    (spec, frame), = charts(at)
    assert "std" in frame.columns and set(frame["seeds"].dropna()) == {2}
    assert "Figure (PNG)" in [b.label for b in at.get("download_button")]


# Near-zero offset per layer of each baseline seed: their fractions differ, and not by one
# factor over layers, so the spread of the size-weighted fraction is not the weighted spread.
NZ_SHIFTS = ((0.0, 0.0, 0.0), (0.02, 0.0, 0.01), (0.0, 0.05, 0.0))


@pytest.fixture(scope="module")
def nz_seed_root(tmp_path_factory) -> Path:
    """Three baseline seeds whose near-zero fractions differ by :data:`NZ_SHIFTS`, one WC run."""
    root = tmp_path_factory.mktemp("nz_seeds")
    for seed, shift in enumerate(NZ_SHIFTS):
        write_run(root / f"base-s{seed}", n_records=3, seed=seed, nz_shift=shift)
    write_run(root / "wc-s0", n_records=3, method="arctan", nz_shift=0.01)
    return root


def stored_near_zero(root: Path, run_id: str, threshold: str, layer: str | None = None) -> np.ndarray:
    """(epoch,) near-zero fraction read straight from a run's store: one layer's, or the
    whole network's (layers weighted by their size)."""
    frac = wcviz.open_run(root / run_id)["near_zero_fraction"].sel(threshold=threshold)
    if layer is not None:
        return frac.sel(layer=layer).values
    return (frac.transpose("epoch", "layer").values * NUMEL).sum(1) / sum(NUMEL)


def test_fold_near_zero_per_layer_and_whole_network(nz_seed_root):
    runs = list(scan_of(nz_seed_root).runs)
    base = [f"base-s{s}" for s in range(3)]
    frame = data.near_zero(runs)
    frame = frame[frame["threshold"] == "abs=0.01"]
    groups = data.seed_groups(runs)
    for folded, layer in ((data.fold_near_zero(frame, runs), "fc"),
                          (data.fold_near_zero(data.near_zero_overall(frame), runs), None)):
        one = folded[folded["layer"] == (layer or "all layers")].set_index(["run", "epoch"])
        seeds = np.array([stored_near_zero(nz_seed_root, r, "abs=0.01", layer) for r in base])
        mean = one.loc[groups[0].group_id, "fraction"].to_numpy()
        np.testing.assert_allclose(mean, seeds.mean(0))
        np.testing.assert_allclose(one.loc[groups[0].group_id, "std"], seeds.std(0, ddof=1))
        assert set(one.loc[groups[0].group_id, "seeds"]) == {3}
        wc = one.loc[groups[1].group_id]
        np.testing.assert_allclose(wc["fraction"],
                                   stored_near_zero(nz_seed_root, "wc-s0", "abs=0.01", layer))
        assert wc["std"].isna().all() and set(wc["seeds"]) == {1}  # one seed: no spread
    assert set(folded["name"]) == {g.name for g in groups}
    # weighting the folded layers instead would give another spread: the seeds' per-layer stds,
    # size-weighted, are not the std of their whole-network fractions
    per_layer = data.fold_near_zero(frame, runs)
    per_layer = per_layer[(per_layer["run"] == groups[0].group_id) & (per_layer["epoch"] == 0)]
    weighted_std = np.average(per_layer.sort_values("depth")["std"], weights=NUMEL)
    assert weighted_std != pytest.approx(one.loc[(groups[0].group_id, 0.0), "std"], rel=0.05)


def test_seed_depth_figure_takes_only_the_seeds_that_reached_the_epoch(root):
    """The by-depth export folds the seeds the chart folds: a seed short of the chosen epoch
    ("crashed", 2 records) is left out rather than drawn at its last record."""
    runs = scan_of(root).by_id()
    fig = export.seed_near_zero_depth_figure([runs["baseline"], runs["crashed"]], "abs=0.01", 3.0)
    mean, = [line for line in fig.axes[0].get_lines() if str(line.get_gid()).startswith("mean:")]
    stored = wcviz.open_run(root / "baseline")["near_zero_fraction"].sel(threshold="abs=0.01")
    np.testing.assert_allclose(mean.get_ydata(), 100 * stored.sel(epoch=3.0).values)
    assert "n=1, epoch 3" in mean.get_label()


@pytest.fixture()
def deferred(monkeypatch) -> dict:
    """What each deferred download of a page would send on a click, by its file id: the real
    :class:`MediaFileManager` registers the callable, this only keeps a handle on it (AppTest's
    media manager lives for one run)."""
    made = {}
    real = MediaFileManager.add_deferred

    def add(self, data_callable, *args, **kw):
        file_id = real(self, data_callable, *args, **kw)
        made[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add)
    return made


def download(at: AppTest, deferred: dict, key: str) -> bytes:
    """The bytes of the page's download button with widget key ``key``."""
    button = next(b for b in at.get("download_button") if b.proto.id.endswith(key))
    return deferred[button.proto.deferred_file_id]()


def test_seed_group_toggle_on_near_zero(nz_seed_root, monkeypatch, deferred):
    import io

    at = dashboard(monkeypatch, nz_seed_root)
    at.run()
    select(at, "base-s0", "base-s1", "base-s2", "wc-s0", page="near_zero")
    at.selectbox(key="nz_threshold").set_value("abs=0.01").run()
    at.toggle(key="wcviz_seed_groups").set_value(True).run()
    assert not at.exception, at.exception
    groups = data.seed_groups(list(scan_of(nz_seed_root).runs))
    seeds = [stored_near_zero(nz_seed_root, f"base-s{s}", "abs=0.01") for s in range(3)]
    (over_spec, over), (_, depth) = charts(at)
    assert [layer["mark"]["type"] for layer in over_spec["layer"]] == ["area", "line"]  # ± std band
    assert set(over["name"]) == {g.name for g in groups}  # one series per group, not per run
    base = over[over["run"] == groups[0].group_id].sort_values("epoch")
    np.testing.assert_allclose(base["fraction"], np.mean(seeds, 0))  # size-weighted per run first
    np.testing.assert_allclose(base["std"], np.std(seeds, 0, ddof=1))
    np.testing.assert_allclose(base["hi"] - base["lo"], 2 * np.std(seeds, 0, ddof=1))
    fc = depth[(depth["run"] == groups[0].group_id) & (depth["layer"] == "fc")]
    fc_seeds = [stored_near_zero(nz_seed_root, f"base-s{s}", "abs=0.01", "fc")[-1] for s in range(3)]
    assert fc["fraction"].item() == pytest.approx(np.mean(fc_seeds))  # the last epoch by default
    assert set(depth["seeds"].dropna()) == {1, 3}

    csv = pd.read_csv(io.BytesIO(download(at, deferred, "nz_export_csv")))
    assert len(csv) == 2 * 3 and {"fraction", "std", "seeds"} <= set(csv.columns)  # groups × epochs
    np.testing.assert_allclose(csv[csv["run"] == groups[0].group_id]["fraction"], np.mean(seeds, 0))
    csv = pd.read_csv(io.BytesIO(download(at, deferred, "nz_depth_export_csv")))
    assert len(csv) == 2 * len(LAYERS) and set(csv["run"]) == {g.group_id for g in groups}

    for key in ("nz_export", "nz_depth_export"):
        at.selectbox(key=f"{key}_fmt").set_value("svg").run()
        svg = download(at, deferred, f"{key}_fig").decode()
        assert svg.count('id="mean:') == 2 and svg.count('id="std:') == 2  # a line and a spread a group


def test_run_picker_shows_the_figures_names_and_keeps_run_ids(app, root):
    scan = scan_of(root)
    names = data.names(list(scan.runs))
    picker = app.multiselect(key=SELECTED)
    assert picker.options == [names[r.run_id] for r in scan.runs]
    assert "learnable WC (init a=0.5, b=1), seed 1 [wc]" in picker.options  # readable names
    select(app, "wc")
    assert app.multiselect(key=SELECTED).value == ["wc"]  # the value is still the run id


def test_distributions_bound_lines_switch_off(app):
    select(app, "baseline", "live", page="distributions")
    app.radio(key="dist_layout").set_value("overlaid").run()
    (_, frame), = charts(app)
    assert any("bound" in str(line) for line in frame["line"].dropna().unique())
    app.toggle(key="dist_bound").set_value(False).run()
    assert not app.exception
    (_, frame), = charts(app)
    assert not any("bound" in str(line) for line in frame["line"].dropna().unique())
    assert frame["bound"].isna().all()  # the y range follows the weights alone


def test_runs_page_shows_no_literal_none_and_fits_the_page(tmp_path, monkeypatch):
    write_run(tmp_path / "base", n_records=2)
    write_run(tmp_path / "wc", n_records=2, method="arctan")
    at = dashboard(monkeypatch, tmp_path)
    at.run()
    (table,) = [t for t in at.dataframe if "model" in t.value.columns]
    runs = table.value.set_index("run")
    assert runs.loc["base", "a"] == "" and runs.loc["base", "b"] == ""  # no literal "None"
    assert runs.loc["wc", "a"] == "0.5"  # a number as the figures write it
    # one model and dataset under the root: named in the caption, not a column of the table
    assert "model" not in table.proto.column_order and "dataset" not in table.proto.column_order
    assert any("model tinynet" in c.value and "dataset synthetic" in c.value for c in at.caption)
