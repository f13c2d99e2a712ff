"""The run store: schema, raw xarray reading, crash safety (real SIGKILL), concurrent reads,
resume, list_runs/open_runs, and every bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import wcviz
from wcviz.errors import WcvizError
from wcviz.record.stats import QUANTILES
from wcviz.record.integrity import check_store
from wcviz.record.metrics import METRICS, metric, metric_names
from wcviz.record.reader import (ArrayRead, list_runs, open_run, open_runs, read_arrays,
                                 read_arrays_each)
from wcviz.record.runfolder import STORE_NAME
from wcviz.record.schema import LAYER_VARS, SCHEMA_VERSION
from wcviz.record.store import RunStore

WRITER = Path(__file__).with_name("_record_writer.py")
LAYERS = ["conv1", "layer1.0.conv1", "fc"]


def _create(run_dir, **kw):
    n = len(LAYERS)
    args = dict(layers=LAYERS, layer_kinds=["Conv2d", "Conv2d", "Linear"],
                layer_numel=[27, 90, 30], bin_edges=np.tile(np.linspace(-1, 1, 6), (n, 1)),
                thresholds=["abs=0.01", "rel=0.1"], attrs={"model": "toy", "seed": 3},
                config={"lr": 0.1, "epochs": 5}, weight_std_init=[0.1, 0.2, 0.3])
    args.update(kw)
    return RunStore.create(run_dir, **args)


def _stats(e):
    n = len(LAYERS)
    return {"weight_quantile": np.tile(np.linspace(-1, 1, len(QUANTILES)), (n, 1)) * (e + 1),
            "weight_mean": np.arange(n) + e, "weight_histogram": np.full((n, 5), e)}


# ---------------------------------------------------------------- schema and raw layout


def test_schema_read_by_plain_xarray(tmp_path):
    store = _create(tmp_path / "run", epoch_chunk=4)
    for e in range(6):  # crosses one grow (4 -> 8 rows)
        store.append(e * 0.5, e * 10, _stats(e), {"train_loss": 1.0 / (e + 1), "grad_norm": 2.0})
    raw = xr.open_zarr(tmp_path / "run" / "record.zarr", consolidated=False)
    for name, dims in LAYER_VARS.items():
        assert raw[name].dims == ("epoch", *dims)
    for name in METRICS:
        assert raw[name].dims == ("epoch",)
    # other metrics: columns of one table, named by its attribute
    assert raw.metric_values.dims == ("epoch", "metric")
    assert raw.metric_values.attrs["metric_names"] == ["grad_norm"]
    assert raw.metric_values.values[:6, 0].tolist() == [2.0] * 6
    for coord in ("epoch", "step", "layer", "layer_kind", "layer_numel", "quantile", "threshold",
                  "threshold_kind", "threshold_value", "bin_edges"):
        assert coord in raw.coords, coord
    assert raw.attrs["n_committed"] == 6 and raw.attrs["schema_version"] == SCHEMA_VERSION
    # preallocated rows beyond the committed ones are NaN, epoch included
    assert raw.sizes["epoch"] == 8
    assert np.isnan(raw.epoch.values[6:]).all() and np.isnan(raw.weight_mean.values[6:]).all()
    assert list(raw.layer.values) == LAYERS


def test_open_run_slices_and_labels(tmp_path):
    store = _create(tmp_path / "run")
    for e in range(3):
        store.append(e, e * 7, _stats(e), {"val_acc": 0.5 + e / 10})
    store.finish()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.sizes["epoch"] == 3 and list(ds.epoch.values) == [0, 1, 2]
    assert ds.step.dtype == np.int64 and list(ds.step.values) == [0, 7, 14]
    assert ds.attrs["status"] == "finished" and ds.attrs["run_id"] == "run"
    assert json.loads(ds.attrs["config"]) == {"epochs": 5, "lr": 0.1}
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"epochs": 5, "lr": 0.1}
    near = ds.near_zero_fraction.sel(threshold="rel=0.1")
    assert near.dims == ("epoch", "layer")
    assert ds.threshold_kind.values.tolist() == ["abs", "rel"]
    np.testing.assert_array_equal(ds.weight_mean.sel(layer="fc").values, [2, 3, 4])
    assert np.isnan(ds.v_quantile.values).all()  # not given -> NaN
    np.testing.assert_allclose(ds.val_acc.values, [0.5, 0.6, 0.7])
    assert np.isnan(ds.train_loss.values).all()
    assert ds.weight_std_init.values.tolist() == [0.1, 0.2, 0.3]
    # the record.zarr path works as well
    assert wcviz.open_run(tmp_path / "run" / "record.zarr").sizes["epoch"] == 3


def test_store_is_compact(tmp_path):
    """Files grow with epoch chunks, not epochs: one chunk file per variable per block."""
    n = 5
    store = RunStore.create(tmp_path / "big", layers=[f"l{i}" for i in range(n)],
                            layer_kinds=["Conv2d"] * n, layer_numel=[100] * n,
                            bin_edges=np.tile(np.linspace(-1, 1, 82), (n, 1)),
                            thresholds=["abs=0.001", "rel=0.1"], epoch_chunk=8)
    row = {"weight_quantile": np.zeros((n, len(QUANTILES)))}
    for e in range(20):  # 3 blocks of 8
        store.append(e, e, row, {"train_loss": 1.0})
    root = tmp_path / "big" / "record.zarr"
    chunks = {d.name: sum(p.is_file() for p in (d / "c").rglob("*")) for d in root.iterdir()
              if d.is_dir() and (d / "c").exists()}
    assert chunks["weight_quantile"] == chunks["epoch"] == chunks["train_loss"] == 3
    assert max(chunks.values()) == 3  # all-NaN chunks are not even written
    files = [p for p in (tmp_path / "big").rglob("*") if p.is_file()]
    assert len(files) < 120, len(files)


# ---------------------------------------------------------------- crash safety (real SIGKILL)
# Writers are real processes killed with SIGKILL: forked children of the test process (cheap:
# torch is already imported) and one fresh interpreter.


class _Child:
    """A forked writer process running ``_record_writer.run``; its lines come through a pipe."""

    def __init__(self, run_dir, **kw):
        import _record_writer  # noqa: PLC0415 - the helper beside this file

        read_fd, write_fd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # child: never return into pytest
            code = 1
            try:
                os.close(read_fd)
                out = os.fdopen(write_fd, "w", buffering=1)
                _record_writer.run(run_dir, say=lambda t: print(t, file=out, flush=True), **kw)
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        self.lines = os.fdopen(read_fd)

    def readline(self) -> str:
        return self.lines.readline().strip()

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> tuple[int, str]:
        """(exit status or -signal, everything it printed)."""
        rest = self.lines.read()
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]
        self.lines.close()
        status = self.status
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return code, rest

    status = None

    def running(self) -> bool:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self.status = status
        return not pid


sys.path.insert(0, str(WRITER.parent))


def _check_whole_records(run_dir, total=None):
    """Open the store; every committed record must be whole and consecutive from epoch 0."""
    ds = wcviz.open_run(run_dir).load()
    n = ds.sizes["epoch"]
    np.testing.assert_array_equal(ds.epoch.values, np.arange(n))
    np.testing.assert_array_equal(ds.train_loss.values, 10.0 * np.arange(n))
    np.testing.assert_array_equal(ds.step.values, 3 * np.arange(n))
    if n:
        absmax = ds.weight_absmax.values
        np.testing.assert_allclose(absmax / absmax[:1], np.outer(1 + np.arange(n), [1, 1]),
                                   rtol=1e-6)
        assert not np.isnan(ds.weight_quantile.values).any()
        assert (ds.weight_histogram.sum("bin").values == ds.layer_numel.values).all()
    if total is not None:
        assert n == total
    return n


@pytest.mark.parametrize("kill", [{"die_at_resize": 2}, {"die_at_resize": 26},
                                  {"die_at_write": 5}, {"die_at_write": 60}])
def test_kill_mid_grow_or_mid_record_then_resume(tmp_path, kill):
    """SIGKILL inside a grow (2nd array resized of ~25) or inside a record's row writes."""
    run = tmp_path / "run"
    code, out = _Child(run, epochs=12, chunk=4, **kill).wait()
    assert code == -signal.SIGKILL, out
    n = _check_whole_records(run)
    assert n == out.count("committed")  # the record being written when killed is not visible
    assert list_runs(tmp_path)[0][0].status == "running"
    RunStore.open(run)  # what a resume does first: the raw store is NaN past the commit again
    raw = xr.open_zarr(run / "record.zarr", consolidated=False)
    for name, var in raw.data_vars.items():
        assert np.isnan(var.values[n:]).all(), name
    assert np.isnan(raw.epoch.values[n:]).all() and raw.sizes["epoch"] % 4 == 0
    code, out = _Child(run, epochs=12, chunk=4, resume=True).wait()
    assert code == 0 and out.split()[2] == f"{n + 1}", out  # continues at the next record
    _check_whole_records(run, total=12)
    assert open_run(run).attrs["status"] == "finished"


@pytest.mark.parametrize("kill", [{"die_at_blank": 1}, {"die_at_blank": 2},
                                  {"die_at_names": True}])
def test_kill_while_the_metric_table_widens_then_resume(tmp_path, kill):
    """SIGKILL while record 5 widens the metric table by two column blocks: before or among
    the new blocks' all-NaN chunk files, or after the resize before the names."""
    import _record_writer  # noqa: PLC0415 - the helper beside this file

    run = tmp_path / "run"
    code, out = _Child(run, epochs=12, chunk=4, wide_at=5, **kill).wait()
    assert code == -signal.SIGKILL and out.count("committed") == 5, out
    assert _check_whole_records(run) == 5
    check_store(run / "record.zarr")
    assert "m/0" not in metric_names(open_run(run))  # the uncommitted record's new names
    code, out = _Child(run, epochs=12, chunk=4, resume=True, wide_at=5).wait()
    assert code == 0, out
    _check_whole_records(run, total=12)
    ds = open_run(run)
    last = metric(ds, f"m/{_record_writer.WIDE - 1}").values
    assert np.isnan(last[:5]).all()
    assert last[5:].tolist() == [1000.0 * e + _record_writer.WIDE - 1 for e in range(5, 12)]


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.15, 0.4])
def test_kill_at_a_moment(tmp_path, delay):
    run = tmp_path / "run"
    child = _Child(run, epochs=60, chunk=3)
    assert child.readline() == "ready"
    time.sleep(delay)
    child.kill()
    assert child.wait()[0] == -signal.SIGKILL
    exists = (run / "record.zarr").exists()  # killed while creating: no store at all
    if exists:
        _check_whole_records(run)
    assert [p.name for p in run.glob(".*creating")] in ([], [".record.zarr.%d.creating" % child.pid])
    code, out = _Child(run, epochs=8, chunk=3, resume=exists).wait()
    assert code == 0, out
    assert _check_whole_records(run) >= 8


def test_kill_fresh_interpreter_then_resume(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(WRITER), str(run), "--epochs", "50",
                             "--chunk", "2"], stdout=subprocess.PIPE, text=True)
    for line in iter(proc.stdout.readline, ""):
        if line.strip() == "committed 3":
            break
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    n = _check_whole_records(run)
    assert n >= 3
    code, out = _Child(run, epochs=n + 2, chunk=2, resume=True).wait()
    assert code == 0, out
    _check_whole_records(run, total=n + 2)


def test_reader_polls_during_appends(tmp_path):
    run = tmp_path / "run"
    child = _Child(run, epochs=30, chunk=2, sleep=0.03)
    assert child.readline() == "ready"
    seen = []
    while child.running():
        if (run / "record.zarr").exists():
            seen.append(_check_whole_records(run))
        else:
            time.sleep(0.005)
    code, out = child.wait()
    assert code == 0, out
    assert seen == sorted(seen) and len(seen) >= 3 and len(set(seen)) >= 2
    assert _check_whole_records(run) == 30


# ---------------------------------------------------------------- list_runs / open_runs


def test_list_and_open_runs_with_good_running_and_broken(tmp_path):
    done = _create(tmp_path / "a_done")
    done.append(0, 0, _stats(0))
    done.finish()
    running = _create(tmp_path / "b_running")
    running.append(0, 0, _stats(0))
    running.append(1, 5, _stats(1))
    (tmp_path / "c_corrupt" / "record.zarr").mkdir(parents=True)
    (tmp_path / "c_corrupt" / "record.zarr" / "zarr.json").write_text("{not json")
    (tmp_path / "d_config_only").mkdir()
    (tmp_path / "d_config_only" / "config.json").write_text("{}")
    (tmp_path / "sweep" / "e_nested").mkdir(parents=True)
    _create(tmp_path / "sweep" / "e_nested")
    (tmp_path / "not_a_run").mkdir()
    runs, broken = list_runs(tmp_path)
    # a run's id is its path below the root (two sub-folders may hold runs of one name)
    assert [r.run_id for r in runs] == ["a_done", "b_running", "sweep/e_nested"]
    assert [r.status for r in runs] == ["finished", "running", "running"]
    assert [r.n_epochs for r in runs] == [1, 2, 0]
    assert runs[0].attrs["model"] == "toy"
    assert sorted(b.path.name for b in broken) == ["c_corrupt", "d_config_only"]
    assert "corrupt" in broken[0].error
    with pytest.warns(UserWarning) as caught:
        datasets = open_runs(tmp_path)
    messages = " ".join(str(w.message) for w in caught)
    assert "c_corrupt" in messages and "d_config_only" in messages
    assert [d.attrs["run_id"] for d in datasets] == ["a_done", "b_running", "sweep/e_nested"]
    assert [d.sizes["epoch"] for d in datasets] == [1, 2, 0]


# ---------------------------------------------------------------- bad input


def test_existing_store_is_not_overwritten(tmp_path):
    store = _create(tmp_path / "run")
    store.append(0, 0, _stats(0))
    before = sorted(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    with pytest.raises(WcvizError, match="already exists.*resume=True"):
        _create(tmp_path / "run")
    after = sorted(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert before == after
    with pytest.raises(WcvizError, match="already open for writing"):
        _create(tmp_path / "run", overwrite=True)  # not while its writer is live
    store.finish()
    _create(tmp_path / "run", overwrite=True)
    assert wcviz.open_run(tmp_path / "run").sizes["epoch"] == 0


@pytest.mark.parametrize("setup,match", [
    (lambda p: None, "no run store"),
    (lambda p: (p / "record.zarr").mkdir(parents=True), "not a Zarr store"),
    (lambda p: _write(p / "record.zarr" / "zarr.json", '{"zarr_format": 3, "node_type": "group", "attributes": {}}'),
     "not a wcviz run store"),
    (lambda p: _write(p / "record.zarr" / "zarr.json", "\x00garbage"), "corrupt"),
])
def test_open_bad_paths(tmp_path, setup, match):
    setup(tmp_path / "run")
    with pytest.raises(WcvizError, match=match):
        open_run(tmp_path / "run")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _edit_attrs(run_dir, **changes):
    meta = Path(run_dir) / "record.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"].update(changes)
    meta.write_text(json.dumps(doc))


def test_other_schema_version(tmp_path):
    _create(tmp_path / "run")
    _edit_attrs(tmp_path / "run", schema_version=99)
    with pytest.raises(WcvizError, match="schema version 99"):
        open_run(tmp_path / "run")
    with pytest.raises(WcvizError, match="schema version 99"):
        RunStore.open(tmp_path / "run")
    assert "schema version 99" in list_runs(tmp_path)[1][0].error


@pytest.mark.filterwarnings("ignore:Object at layer is not recognized")  # zarr's own notice
def test_missing_array_is_corrupt(tmp_path):
    store = _create(tmp_path / "run")
    store.append(0, 0, _stats(0))
    for f in (tmp_path / "run" / "record.zarr" / "layer").rglob("*"):
        if f.is_file():
            f.unlink()
    with pytest.raises(WcvizError, match="corrupt"):
        open_run(tmp_path / "run")


@pytest.mark.parametrize("kwargs,match", [
    ({"layers": []}, "at least one layer"),
    ({"layers": ["a", "a", "b"]}, "distinct layer names"),
    ({"layer_numel": [1, 2]}, "one entry per layer"),
    ({"bin_edges": np.zeros((3, 4))}, "bin_edges must be increasing"),
    ({"thresholds": ["abs=0.1", "abs=0.1"]}, "distinct"),
    ({"thresholds": ["0.1"]}, "threshold"),
    ({"quantiles": (0.5, 0.1)}, "quantiles"),
    ({"config": {"f": object()}}, "config is not JSON-serializable"),
])
def test_create_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(WcvizError, match=match):
        _create(tmp_path / "run", **kwargs)
    assert not (tmp_path / "run" / "record.zarr").exists()


def test_paths_in_a_config_are_stored_as_text(tmp_path):
    _create(tmp_path / "run", config={"data_root": tmp_path / "data"})
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {
        "data_root": str(tmp_path / "data")}


def test_append_bad_arguments(tmp_path):
    store = _create(tmp_path / "run")
    store.append(1.0, 0, _stats(0))
    with pytest.raises(WcvizError, match="increasing epochs"):
        store.append(1.0, 0, _stats(0))
    with pytest.raises(WcvizError, match="finite"):
        store.append(float("nan"), 0, _stats(0))
    with pytest.raises(WcvizError, match="unknown statistic"):
        store.append(2, 0, {"weight_median": np.zeros(3)})
    with pytest.raises(WcvizError, match="shape"):
        store.append(2, 0, {"weight_mean": np.zeros(4)})
    with pytest.raises(WcvizError, match="must be a number"):
        store.append(2, 0, {}, {"bad name": "high"})
    with pytest.raises(WcvizError, match="status"):
        store.finish("done")
    assert open_run(tmp_path / "run").sizes["epoch"] == 1  # failed appends left no trace
    # any metric name is accepted; one that is a schema variable gets a variable of its own
    store.append(2, 0, {}, {"weight_mean": 1.0, "bad name": 2.0})
    ds = open_run(tmp_path / "run")
    assert np.isnan(ds.weight_mean.values[1]).all()
    assert ds.metric_weight_mean.values[1] == 1.0 and ds.metric_bad_name.attrs["metric"] == "bad name"


def test_list_runs_bad_root(tmp_path):
    with pytest.raises(WcvizError, match="not a directory"):
        list_runs(tmp_path / "missing")


def test_second_writer_process_is_refused(tmp_path):
    store = _create(tmp_path / "run")
    store.append(0, 0, _stats(0))

    def child_tries(path) -> int:
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                RunStore.open(path)
                code = 1  # opened: wrong
            except WcvizError as err:
                code = 0 if "another process" in str(err) else 2
            finally:
                os._exit(code)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    assert child_tries(tmp_path / "run") == 0
    with pytest.raises(WcvizError, match="already open for writing in this process"):
        RunStore.open(tmp_path / "run")  # a second writer object of this process is refused too
    store.finish()  # releases the run
    assert child_tries(tmp_path / "run") == 1
    assert open_run(tmp_path / "run").sizes["epoch"] == 1


def test_read_arrays_cuts_to_committed_records_and_one_layer(tmp_path):
    store = _create(tmp_path / "run", epoch_chunk=4)
    for e in range(5):  # 5 committed records of 8 allocated rows (two chunks)
        store.append(e, e * 10, _stats(e))
    names = ["weight_quantile", "epoch", "quantile", "layer"]
    got = read_arrays(tmp_path / "run", names, layer="fc")
    ds = open_run(tmp_path / "run")
    np.testing.assert_array_equal(got["weight_quantile"], ds["weight_quantile"].sel(layer="fc"))
    np.testing.assert_array_equal(got["epoch"], np.arange(5.0))
    assert list(got["layer"]) == LAYERS and got["quantile"].shape == (len(QUANTILES),)
    # the caller's layer names (a cache) stand in for the store's: same rows, no second read
    known = read_arrays(tmp_path / "run", names[:2], layer="fc", layers=LAYERS)
    np.testing.assert_array_equal(known["weight_quantile"], got["weight_quantile"])
    with pytest.raises(WcvizError, match="has no layer 'nope'"):
        read_arrays(tmp_path / "run", names, layer="nope")
    with pytest.raises(WcvizError, match="corrupt run store .*KeyError"):
        read_arrays(tmp_path / "run", ["no_such_array"])


def test_read_arrays_refuses_a_store_that_lost_a_chunk_it_reads(tmp_path):
    """The dashboard's fast path: a deleted chunk is damage named in one line, not NaN."""
    store = _create(tmp_path / "run", epoch_chunk=4)
    for e in range(6):  # records 0-3 in chunk 0, 4-5 in chunk 1
        store.append(e, e * 10, _stats(e))
    names = ["weight_quantile", "epoch"]
    before = read_arrays(tmp_path / "run", names, layer="fc")
    assert np.isfinite(before["weight_quantile"]).all()
    chunk = next((tmp_path / "run" / STORE_NAME / "weight_quantile").glob("c/1/*/*"))
    chunk.unlink()
    with pytest.raises(WcvizError, match=r"damaged run store .*array 'weight_quantile': chunk "
                                         r"file c/1/.* is gone"):
        read_arrays(tmp_path / "run", names, layer="fc")
    assert read_arrays(tmp_path / "run", ["epoch"])["epoch"].tolist() == list(range(6))


def test_read_arrays_each_reads_every_run_and_fails_a_damaged_one_alone(tmp_path):
    """Many runs in one pass: each slot holds what read_arrays gives (or raises) for its run."""
    for name in ("a", "b", "c"):
        store = _create(tmp_path / name, epoch_chunk=4)
        for e in range(5 if name != "b" else 3):
            store.append(e, e * 10, _stats(e + (name == "c")))
    next((tmp_path / "c" / STORE_NAME / "weight_quantile").glob("c/0/*/*")).unlink()
    names = ("weight_quantile", "epoch")
    reads = [ArrayRead(tmp_path / name, names, "fc", tuple(LAYERS)) for name in "abc"]
    a, b, c = read_arrays_each(reads)
    for got, name in ((a, "a"), (b, "b")):
        alone = read_arrays(tmp_path / name, list(names), layer="fc")
        assert got.keys() == alone.keys()
        for key in names:
            np.testing.assert_array_equal(got[key], alone[key])
    assert len(b["epoch"]) == 3  # its own committed records, not another run's
    assert isinstance(c, WcvizError) and "chunk file c/0" in str(c)
    assert read_arrays_each([]) == []


def test_read_arrays_reads_every_array_as_zarr_does(tmp_path):
    """The reader's own file reads (no worker thread a file) give zarr's values exactly."""
    import zarr

    store = _create(tmp_path / "run", epoch_chunk=4)
    for e in range(6):
        store.append(e, e * 10, _stats(e))
    group = zarr.open_group(tmp_path / "run" / STORE_NAME, mode="r", zarr_format=3)
    names = sorted(name for name, _ in group.arrays())
    got = read_arrays(tmp_path / "run", names)
    for name in names:
        array = group[name]
        want = array[:6] if array.metadata.dimension_names[0] == "epoch" else array[...]
        np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_read_arrays_refuses_a_record_count_its_arrays_do_not_hold(tmp_path):
    import zarr

    store = _create(tmp_path / "run", epoch_chunk=4)
    for e in range(6):  # 8 rows allocated
        store.append(e, e * 10, _stats(e))
    store.finish()
    zarr.open_group(tmp_path / "run" / STORE_NAME, mode="r+").attrs["n_committed"] = 20
    with pytest.raises(WcvizError, match=r"n_committed says 20 records but array 'weight_quantile' "
                                         r"holds 8 rows"):
        read_arrays(tmp_path / "run", ["weight_quantile"], layer="fc")


def test_wide_rows_get_smaller_chunks_and_read_back(tmp_path):
    """A record rewrites its chunk whole, so arrays with wide rows (many layers × bins) hold
    fewer records per chunk (a divisor of the growth block, within CHUNK_BYTES); records
    written through the store's chunk writer read back exactly, by plain xarray too."""
    from wcviz.record import store as store_module

    n, bins = 500, 81  # a histogram row of 324 kB: 2 records per chunk (3 do not divide 16)
    store = RunStore.create(tmp_path / "wide", layers=[f"l{i}" for i in range(n)],
                            layer_kinds=["Linear"] * n, layer_numel=[1] * n,
                            bin_edges=np.tile(np.linspace(-1, 1, bins + 1), (n, 1)),
                            thresholds=["abs=0.01"], epoch_chunk=16)
    hist_rows = store._arrays["weight_histogram"].chunks[0]
    assert hist_rows == 2 and store._arrays["train_loss"].chunks[0] == 16
    rng = np.random.default_rng(0)
    rows = [rng.integers(0, 5, (n, bins)).astype(float) for _ in range(20)]
    for e, row in enumerate(rows):  # 20 records: two growth blocks
        store.append(e, e, {"weight_histogram": row}, {"train_loss": e / 3, f"m/{e % 3}": e})
    raw = xr.open_zarr(tmp_path / "wide" / STORE_NAME, consolidated=False)
    np.testing.assert_array_equal(raw.weight_histogram.values[:20], np.stack(rows))
    np.testing.assert_array_equal(raw.train_loss.values[:20], np.arange(20) / 3)
    ds = open_run(tmp_path / "wide")
    assert ds.sizes["epoch"] == 20 and np.isnan(ds.weight_mean.values).all()
    m0 = [v for v in ds.data_vars if ds[v].attrs.get("metric") == "m/0"]
    np.testing.assert_array_equal(ds[m0[0]].values[:4], [0, np.nan, np.nan, 3])
    assert store_module.epoch_rows(128, 8) == 128 and store_module.epoch_rows(128, 10**7) == 1
