"""The metric table (schema 2): every metric outside the schema's eight is a column of one
(epoch, metric) array; ``open_run`` gives the same Dataset as schema 1's variable per metric."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

import wcviz
from wcviz.errors import WcvizError
from wcviz.record import store as store_module
from wcviz.record.integrity import check_store
from wcviz.record.metrics import metric, metric_names
from wcviz.record.schema import MAX_SIZES, METRIC_BLOCK, read_root_attrs
from wcviz.record.store import RunStore

LONG = "val/" + "x" * 296  # shortened to a hashed variable name
#: names that are schema variables, dimensions, the table itself, or not identifiers
TRICKY = ["val/acc", "weight_mean", "epoch", "metric", "metric_values", "metric_val_acc",
          "grad_norm", "train_loss", "bad name", LONG]


def _store(run_dir, version=2, epoch_chunk=4):
    return RunStore.create(run_dir, layers=["fc"], layer_kinds=["Linear"], layer_numel=[12],
                           bin_edges=[np.linspace(-1, 1, 82)], thresholds=["abs=0.01"],
                           epoch_chunk=epoch_chunk, schema_version=version)


def _metrics(epoch: int) -> dict:
    """Some metrics every record, one rare (whole blocks of NaN), many new ones at record 6
    (the table widens by two blocks), a NaN and an infinity."""
    out = {name: epoch + i / 10 for i, name in enumerate(TRICKY)}
    if epoch % 5 == 1:
        out["rare"] = -float(epoch)
    if epoch >= 6:
        out.update((f"m/{i}", epoch * 1000.0 + i) for i in range(METRIC_BLOCK + 40))
    out["nan"], out["inf"] = float("nan"), float("inf")
    return out


def _dataset(run_dir):
    ds = wcviz.open_run(run_dir).load()
    return ds.drop_attrs(deep=False)


def test_both_layouts_open_to_the_same_dataset(tmp_path):
    runs = {v: tmp_path / f"schema{v}" for v in (1, 2)}
    for version, run_dir in runs.items():
        store = _store(run_dir, version)
        for epoch in range(11):  # three growth blocks of 4 records
            store.append(epoch, epoch, {}, _metrics(epoch))
        store.finish()
    assert not (runs[1] / "record.zarr" / "metric_values").exists()
    one, two = _dataset(runs[1]), _dataset(runs[2])
    xr.testing.assert_identical(one, two)  # names, attributes and values, NaN where absent
    assert metric(two, LONG).values.tolist() == [e + 0.9 for e in range(11)]
    assert metric(two, "weight_mean").name == "metric_weight_mean"
    assert np.isnan(two.weight_mean.values).all()  # the layer statistic is not the metric
    rare = metric(two, "rare").values
    assert np.flatnonzero(np.isfinite(rare)).tolist() == [1, 6]
    assert metric(two, f"m/{METRIC_BLOCK + 39}").values[6] == 6000.0 + METRIC_BLOCK + 39
    # the schema's eight (train_loss among them), the others, rare, nan, inf, m/*
    assert len(metric_names(two)) == 8 + len(TRICKY) - 1 + 3 + METRIC_BLOCK + 40
    check_store(runs[2] / "record.zarr")


def test_the_raw_table_names_its_columns(tmp_path):
    store = _store(tmp_path / "run", epoch_chunk=128)
    for epoch in range(3):
        store.append(epoch, None, {}, {"val/acc": epoch / 10, "train_loss": 1.0})
    raw = xr.open_zarr(tmp_path / "run" / "record.zarr", consolidated=False)
    names = raw.metric_values.attrs["metric_names"]
    assert names == ["val/acc"] and raw.sizes["metric"] == METRIC_BLOCK
    table = raw.metric_values[:3, :len(names)].assign_coords(metric=names)
    assert table.sel(metric="val/acc").values.tolist() == [0.0, 0.1, 0.2]
    assert raw.train_loss.values[:3].tolist() == [1.0] * 3  # the schema's metrics: variables


def test_widening_writes_every_chunk_of_the_new_columns_first(tmp_path):
    """The new column blocks hold a chunk file for every allocated record before the table's
    shape includes them: a kill after the resize leaves no missing chunk."""
    store = _store(tmp_path / "run")
    for epoch in range(10):  # 12 rows allocated: three chunks along epoch
        store.append(epoch, None, {}, {"a0": 1.0})
    table = tmp_path / "run" / "record.zarr" / "metric_values"
    store._widen(3 * METRIC_BLOCK)  # what a kill after the resize, before the names, leaves
    assert sorted(p.relative_to(table).as_posix() for p in table.glob("c/*/*")) == [
        f"c/{e}/{c}" for e in range(3) for c in range(3)]
    check_store(table.parent)
    ds = wcviz.open_run(tmp_path / "run")  # free columns are no metrics
    assert metric_names(ds)[8:] == ["a0"]
    store.append(10, None, {}, {f"n{i}": float(i) for i in range(METRIC_BLOCK + 1)})
    store.finish()
    ds = wcviz.open_run(tmp_path / "run")
    late = metric(ds, f"n{METRIC_BLOCK}").values
    assert np.isnan(late[:10]).all() and late[10] == METRIC_BLOCK
    assert json.loads((table / "zarr.json").read_text())["shape"] == [12, 3 * METRIC_BLOCK]


def test_a_resumed_store_keeps_its_columns_and_layout(tmp_path):
    for version in (1, 2):
        run = tmp_path / f"v{version}"
        store = _store(run, version)
        store.append(0, None, {}, {"val/acc": 0.5})
        store.release()
        store = RunStore.open(run)
        store.append(1, None, {}, {"val/acc": 0.6, "new": 1.0})
        store.finish()
        assert read_root_attrs(run / "record.zarr")["schema_version"] == version
        assert (run / "record.zarr" / "metric_values").exists() == (version == 2)
        ds = wcviz.open_run(run)
        assert metric(ds, "val/acc").values.tolist() == [0.5, 0.6]
        assert np.isnan(metric(ds, "new").values[0]) and metric(ds, "new").values[1] == 1.0


def test_too_many_metrics_is_one_line_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(MAX_SIZES, "metric", 300)
    store = _store(tmp_path / "run")
    store.append(0, None, {}, {f"m{i}": 1.0 for i in range(250)})
    before = (tmp_path / "run" / "record.zarr" / "metric_values" / "zarr.json").read_text()
    with pytest.raises(WcvizError, match=r"at most 300 metrics besides the schema's; this "
                                         r"record would make 301"):
        store.append(1, None, {}, {f"m{i}": 1.0 for i in range(301)})
    assert (tmp_path / "run" / "record.zarr" / "metric_values" / "zarr.json").read_text() == before
    assert wcviz.open_run(tmp_path / "run").sizes["epoch"] == 1


def test_a_bad_metric_name_in_a_record_names_nothing(tmp_path):
    store = _store(tmp_path / "run")
    with pytest.raises(WcvizError, match="a metric name must be a text"):
        store.append(0, None, {}, {"fine": 1.0, "": 2.0})
    assert store.columns == {}
    store.append(0, None, {}, {"fine": 1.0})
    assert metric_names(wcviz.open_run(tmp_path / "run"))[8:] == ["fine"]


@pytest.mark.parametrize("names", [None, "val/acc", [1, 2], ["a", "a"],
                                   [f"m{i}" for i in range(METRIC_BLOCK + 1)]])
def test_a_crafted_names_attribute_is_refused_in_one_line(tmp_path, names):
    store = _store(tmp_path / "run")
    store.append(0, None, {}, {"val/acc": 0.5})
    store.finish()
    meta = tmp_path / "run" / "record.zarr" / "metric_values" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["metric_names"] = names
    meta.write_text(json.dumps(doc))
    with pytest.raises(WcvizError, match=r"damaged run store .*'metric_values' has no valid "
                                         r"metric_names attribute"):
        wcviz.open_run(tmp_path / "run")


def test_a_record_of_many_metrics_writes_few_files(tmp_path, monkeypatch):
    """2,000 metrics: a record replaces a file per column block, not one per metric."""
    written = []
    real = store_module._replace_file
    monkeypatch.setattr(store_module, "_replace_file",
                        lambda path, data: (written.append(path), real(path, data)))
    store = _store(tmp_path / "run", epoch_chunk=128)
    values = {f"m/{i}": float(i) for i in range(2000)}
    store.append(0, None, {}, values)
    written.clear()
    store.append(1, None, {}, values)
    table = [p for p in written if p.parent.parent.parent.name == "metric_values"]
    assert len(table) == -(-2000 // METRIC_BLOCK) and len(written) < 30
