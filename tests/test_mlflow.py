"""``wcviz export --format mlflow``: runs into a real local MLflow store (SQLite), read back with
MLflow's own ``MlflowClient``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import wcviz
from _cli import one_error_line
from _engines import framework
from _fixture_runs import LAYERS, baseline_run, learnable_run, wc_run
from wcviz.cli import main
from wcviz.extras import installed
from wcviz.record.metrics import metric_variables
from wcviz.integrations.mlflow import flat_params, key, quantile_key, tracking_uri


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    framework("mlflow")
    framework("sqlalchemy")
    tmp = tmp_path_factory.mktemp("mlflow")
    root = tmp / "runs"
    baseline_run(root / "base", config={"optimizer": {"name": "sgd", "lr": 0.1}})
    wc_run(root / "wc")
    learnable_run(root / "learn")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    assert main(["export", str(root), "--format", "mlflow", "--out", uri]) == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wcviz")
    runs = {r.data.tags["wcviz.run_id"]: r for r in client.search_runs([experiment.experiment_id])}
    return root, uri, client, experiment, runs


@pytest.mark.slow
def test_every_run_reads_back_from_mlflow(exported):
    root, _, client, _, runs = exported
    assert set(runs) == {"base", "wc", "learn"}
    learn = runs["learn"]
    ds = wcviz.open_run(root / "learn").load()
    steps = [int(s) for s in ds["step"].values]
    # the median of every layer, per recorded step
    for j, layer in enumerate(LAYERS):
        history = client.get_metric_history(learn.info.run_id, f"weights/{layer}/q50")
        assert [m.step for m in history] == steps
        np.testing.assert_allclose([m.value for m in history],
                                   ds["weight_quantile"].sel(quantile=0.5).values[:, j], rtol=1e-12)
    for q in ds["quantile"].values:
        assert f"weights/fc/{quantile_key(q)}" in learn.data.metrics
    a = client.get_metric_history(learn.info.run_id, "a/fc")
    np.testing.assert_allclose([m.value for m in a], ds["a"].values[:, -1])
    near = client.get_metric_history(learn.info.run_id, "near_zero/rel_0.1/conv1")
    np.testing.assert_allclose([m.value for m in near],
                               ds["near_zero_fraction"].sel(threshold="rel=0.1").values[:, 0])
    val = client.get_metric_history(learn.info.run_id, "val_acc")
    np.testing.assert_allclose([m.value for m in val], ds[metric_variables(ds)["val_acc"]].values)
    assert "a/fc" not in runs["base"].data.metrics  # a plain run has no a, b
    # params from the config, nested keys dotted; the run's name and state
    assert runs["base"].data.params["optimizer.lr"] == "0.1"
    assert (learn.data.params["method"], learn.data.params["a"]) == ("arctan", "0.5")
    assert learn.data.tags["mlflow.runName"].startswith("learnable WC")
    assert learn.info.status == "FINISHED"
    artifacts = {f.path for f in client.list_artifacts(learn.info.run_id)}
    assert "config.json" in artifacts
    assert (root.parent / "mlruns").is_dir()  # beside the database, not in the current folder
    if installed("matplotlib"):  # with the [figures] extra: the run's paper-style figures
        assert "figures" in artifacts and any(f.path.endswith(".png") for f in client.list_artifacts(learn.info.run_id, "figures"))
    got = client.download_artifacts(learn.info.run_id, "config.json", str(root.parent))
    assert json.loads(Path(got).read_text())["b"] == 1.0


@pytest.mark.slow
def test_a_second_export_duplicates_nothing(exported, capsys):
    root, uri, client, experiment, _ = exported
    assert main(["export", str(root), "--format", "mlflow", "--out", uri]) == 0
    assert capsys.readouterr().err.count("already in MLflow experiment 'wcviz'") == 3
    assert len(client.search_runs([experiment.experiment_id])) == 3


def test_mlflow_keys_and_uris(tmp_path):
    assert key("near_zero", "abs=0.001", "layer1.0.conv") == "near_zero/abs_0.001/layer1.0.conv"
    assert [quantile_key(q) for q in (0, 0.1587, 0.5, 1)] == ["q0", "q15.87", "q50", "q100"]
    assert tracking_uri(str(tmp_path / "m.db")) == f"sqlite:///{tmp_path / 'm.db'}"
    assert tracking_uri("http://host:5000") == "http://host:5000"
    assert tracking_uri(str(tmp_path)) == tmp_path.as_uri()
    assert flat_params({"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "name": "x"}) == {
        "opt.lr": "0.1", "opt.betas": "[0.9, 0.99]", "name": "x"}


def test_mlflow_bad_input(tmp_path, capsys):
    learnable_run(tmp_path / "learn")
    assert main(["export", str(tmp_path / "learn"), "--format", "mlflow"]) == 2
    assert "--format mlflow needs --out TRACKING_URI" in one_error_line(capsys)
    inside = tmp_path / "learn" / "mlflow.db"
    assert main(["export", str(tmp_path / "learn"), "--format", "mlflow", "--out", str(inside)]) == 2
    assert "would write inside the run" in one_error_line(capsys)
