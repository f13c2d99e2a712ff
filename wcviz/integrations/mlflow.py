"""Runs into MLflow: ``wcviz export ROOT --format mlflow --out TRACKING_URI`` (the ``[mlflow]``
extra: the MLflow client and its SQLite store, no server needed).

One MLflow run per wcviz run, in the experiment ``--experiment`` (default ``wcviz``), named by
the run's display label and tagged ``wcviz.path`` (its folder) and ``wcviz.run_id``:

* params: the run's config, nested keys joined with dots (``optimizer.lr``);
* metrics, as series over the recorded optimizer steps (the record index where a run did not
  record steps, as ``--format tensorboard`` does), under the names they were recorded with
  (``val/acc``), and the record's epoch as ``wcviz/epoch``;
* per layer: ``weights/<layer>/q<percent>`` for every recorded quantile (``q50`` the median,
  ``q0``/``q100`` min and max), ``near_zero/<threshold>/<layer>``, and ``a/<layer>``,
  ``b/<layer>`` for companded layers;
* artifacts: ``config.json`` and the run's paper-style figures under ``figures/`` (with the
  ``[figures]`` extra; PNG); a SQLite store keeps them in ``mlruns/`` beside its file.

MLflow keys take letters, digits and ``_ - . / space`` only: any other character of a layer,
threshold or metric name becomes ``_`` (``abs=0.001`` -> ``abs_0.001``). A run already exported
to the experiment (same ``wcviz.path``) is skipped, never duplicated or overwritten.

``TRACKING_URI`` is any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``), a
``.db`` file path (a SQLite store), or a folder (MLflow's file store, which MLflow keeps in
maintenance mode: prefer SQLite).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from wcviz.errors import WcvizError
from wcviz.extras import installed, require
from wcviz.integrations.tensorboard import steps_of
from wcviz.record.metrics import metric_variables

#: MLflow's cap on one ``log_batch`` call (metrics + params + tags).
BATCH = 1000
#: MLflow's longest param value (characters); longer config values are cut with "…".
PARAM_CHARS = 6000


def key(*parts: str) -> str:
    """An MLflow metric key of ``parts`` joined with ``/``, characters MLflow refuses as ``_``."""
    return "/".join(re.sub(r"[^\w\-. /]", "_", str(p)) for p in parts)


def quantile_key(q: float) -> str:
    """``q50`` for the median, ``q15.87`` for 0.1587, ``q0``/``q100`` for min and max."""
    return f"q{float(q) * 100:.6g}"


def tracking_uri(out: str) -> str:
    """The tracking URI ``--out`` names: a URI as given, a ``.db`` path as SQLite, a folder as
    a file store (its absolute ``file:`` URI)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", out) or out.startswith(("databricks", "file:")):
        return out
    path = Path(out).expanduser().absolute()
    if path.suffix == ".db":
        return f"sqlite:///{path}"
    return path.as_uri()


def flat_params(config, prefix: str = "") -> dict[str, str]:
    """A config (dict) as MLflow params: nested keys joined with dots, values as text."""
    out: dict[str, str] = {}
    for name, value in (config or {}).items():
        name = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(flat_params(value, f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        out[key(name)] = text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 1] + "…"
    return out


def run_metrics(ds) -> list[tuple[str, float, int]]:
    """Every (key, value, step) of one opened run (module docstring); NaN values left out."""
    ds = ds.load()
    steps = [int(s) for s in steps_of(ds)]
    layers = [str(x) for x in ds["layer"].values]
    series: list[tuple[str, np.ndarray]] = [("wcviz/epoch", ds["epoch"].values)]
    series += [(key(name), ds[var].values) for name, var in metric_variables(ds).items()]
    quantiles = ds["weight_quantile"].values  # (epoch, layer, quantile)
    near = ds["near_zero_fraction"].values  # (epoch, layer, threshold)
    for j, layer in enumerate(layers):
        series += [(key("weights", layer, quantile_key(q)), quantiles[:, j, i])
                   for i, q in enumerate(ds["quantile"].values)]
        series += [(key("near_zero", t, layer), near[:, j, i])
                   for i, t in enumerate(ds["threshold"].values)]
        series += [(key(name, layer), ds[name].values[:, j]) for name in ("a", "b")]
    out = []
    for name, values in series:
        values = np.asarray(values, dtype=float)
        out += [(name, float(v), step) for v, step in zip(values, steps) if np.isfinite(v)]
    return out


def _client(uri: str):
    require("mlflow", needed_by="--format mlflow")
    if uri.startswith("file:"):  # a folder was asked for: MLflow's file store, by choice
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _experiment(client, name: str, uri: str) -> str:
    """The experiment's id, created where missing; a SQLite store's new experiment keeps its
    artifacts in ``mlruns/`` beside the database file (MLflow's default, ``./mlruns`` of the
    current folder, would scatter them wherever the command ran)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).absolute().parent / "mlruns").as_uri()
    return client.create_experiment(name, artifact_location=location)


def _exported(client, experiment_id: str, path: str) -> bool:
    quoted = path.replace("'", "\\'")
    return bool(client.search_runs([experiment_id], f"tags.`wcviz.path` = '{quoted}'",
                                   max_results=1))


def export_runs(datasets, out: str, *, experiment: str = "wcviz",
                figures: bool = True) -> tuple[list[str], list[str]]:
    """Export opened runs to the MLflow tracking store ``out`` (see the module docstring).

    Returns:
        The MLflow run ids written, and the wcviz run paths skipped as already exported.

    Raises:
        WcvizError: the store cannot be opened or written.
    """
    uri = tracking_uri(out)
    client = _client(uri)
    try:
        experiment_id = _experiment(client, experiment, uri)
    except Exception as err:  # noqa: BLE001 - MLflow raises many kinds; one line for the user
        raise WcvizError(f"cannot open the MLflow store {uri}: {str(err).splitlines()[0]}; pass "
                         "--out sqlite:///FILE.db, a folder, or a tracking server's URL") from None
    written, skipped = [], []
    for ds in datasets:
        path = str(ds.attrs.get("path", ds.attrs.get("run_id")))
        if _exported(client, experiment_id, path):
            skipped.append(path)
            continue
        written.append(export_run(client, experiment_id, ds, figures=figures))
    return written, skipped


def export_run(client, experiment_id: str, ds, *, figures: bool = True) -> str:
    """One opened run as one finished MLflow run; returns its MLflow run id."""
    from mlflow.entities import Metric, Param

    from wcviz.report.analysis import run_label

    attrs = ds.attrs
    tags = {"mlflow.runName": run_label(ds, with_seed=True),
            "wcviz.path": str(attrs.get("path", attrs.get("run_id"))),
            "wcviz.run_id": str(attrs.get("run_id")), "wcviz.status": str(attrs.get("status"))}
    run = client.create_run(experiment_id, tags=tags, run_name=tags["mlflow.runName"])
    rid = run.info.run_id
    try:
        config = json.loads(attrs.get("config") or "{}")
    except (TypeError, ValueError):
        config = {}
    params = [Param(k, v) for k, v in flat_params(config).items()]
    for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
        client.log_batch(rid, params=params[i:i + 100])
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, step) for k, v, step in run_metrics(ds)]
    for i in range(0, len(metrics), BATCH):
        client.log_batch(rid, metrics=metrics[i:i + BATCH])
    client.log_text(rid, json.dumps(config, indent=2, sort_keys=True), "config.json")
    if figures:
        _log_figures(client, rid, ds)
    client.set_tag(rid, "wcviz.records", str(ds.sizes["epoch"]))
    # MLflow's word for how a run ended: a failed run FAILED, a finished or still-running one
    # (exported as far as it was recorded) FINISHED
    client.set_terminated(rid, "FAILED" if attrs.get("status") == "failed" else "FINISHED")
    return rid


def _log_figures(client, rid: str, ds) -> None:
    """The run's paper-style figures (PNG) as artifacts under ``figures/`` ([figures] extra)."""
    if not installed("matplotlib"):
        return
    from wcviz.report.plots import write_paper_figures

    with tempfile.TemporaryDirectory() as tmp:
        for path in write_paper_figures([ds], tmp, formats=("png",)):
            client.log_artifact(rid, str(path), "figures")

