"""Metric names as users write them, and the run-store variables that hold them.

``rec.record(1, {"val/acc": 0.5, "lr-SGD": 0.1, "epoch": 1.0, "a": 2})`` must neither fail nor
clash with the schema (``epoch`` is the record axis, ``a`` the per-layer scale). A metric whose
name is an identifier the store does not use (``train_loss``, ``grad_norm``) is stored under
its own name, as always; any other goes into a variable ``metric_<name with non-word
characters as _>`` (``metric_val_acc``, ``metric_epoch``), whose attribute ``metric`` keeps
the user's name. Readers ask by the user's name::

    ds = wcviz.open_run("runs/x")
    metric_names(ds)            # ["train_loss", ..., "val/acc", "epoch", "a"]
    metric(ds, "val/acc")       # the (epoch) DataArray

In the store, the schema's metrics (:data:`METRICS`) are (epoch) variables of their own; every
other metric is a column of one (epoch, metric) table, :data:`TABLE`, whose attribute
:data:`TABLE_NAMES` lists the users' names in column order (stores of schema version 1 gave
each its own variable instead). :func:`wcviz.record.reader.open_run` gives each column back as
the variable named above, so both layouts read the same.

The figures and tables ask for the schema's names (``val_acc``, ``test_loss``); a run that
logged them under a framework's names (``val/acc``, ``eval_loss``) answers with those
(:func:`resolve`).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Iterable, Mapping, Sequence

import numpy as np

from wcviz.errors import WcvizError

#: The name of THE accuracy result, test accuracy at the best-validation epoch
#: (:func:`wcviz.report.analysis.best_val_test_acc`), everywhere: runs-table column, summary key,
#: store attribute and recorded metric of ``wcviz.training.loop``.
BEST_ACC = "best_val_test_acc"

#: Attribute of a metric variable holding the user's name when it differs from the variable's.
METRIC_ATTR = "metric"
#: Prefix of variables holding metrics whose names cannot be variable names.
PREFIX = "metric_"
#: Longest metric name (characters): a name is kept in its variable's attributes, which
#: every reader parses; a longer one is a mistake (a value passed as a name).
MAX_NAME = 1000
#: Longest variable name: it names the variable's folder (and a temporary ``.<name>.<pid>.
#: creating`` beside it), which file systems bound to 255 bytes. Longer names are shortened
#: with a hash; the variable's ``metric`` attribute keeps the user's name.
MAX_VARIABLE = 120
#: The (epoch, metric) variable holding every metric outside :data:`METRICS`, one column each:
#: a record writes a few chunk files for any number of metrics, where a variable per metric
#: was a file per metric (2,000 metrics: 0.5 s a record, the file system's create and rename).
TABLE = "metric_values"
#: The table's second dimension.
TABLE_DIM = "metric"
#: Attribute of :data:`TABLE`: the users' metric names, in column order (columns beyond it
#: are free).
TABLE_NAMES = "metric_names"
#: Names never free for a metric: the record axis, dimensions without a variable, the table.
RESERVED = frozenset({"epoch", "step", "bin_edge", "layer", "quantile", "threshold", "bin",
                      TABLE_DIM, TABLE})


def best_val_index(epochs, val_acc, test_acc) -> int | None:
    """Index of the best-validation epoch: the argmax of ``val_acc`` over trained epochs
    (epoch ≥ 1; epoch 0 is the untrained network) with finite validation and test accuracy,
    the first on ties; None when there is none. The one rule (training loop and analysis).

    It lives here, beside :data:`BEST_ACC`, and not in :mod:`wcviz.report.analysis`: the training
    processes use it, and they must not import pandas (pandas 3 loads pyarrow, whose native
    threads a DDP worker has no use for at exit)."""
    val, test = np.asarray(val_acc, dtype=float), np.asarray(test_acc, dtype=float)
    ok = np.isfinite(val) & np.isfinite(test) & (np.asarray(epochs, dtype=float) >= 1)
    if not ok.any():
        return None
    return int(np.argmax(np.where(ok, val, -np.inf)))


#: Metrics with a fixed place in the run-store schema (NaN where not measured). Other metric
#: names get their own (epoch) variable on first use (:func:`variable_for`).
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
           "epoch_seconds")

#: Split prefixes as frameworks write them, and the split they mean.
SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "eval": "val",
          "test": "test"}
#: Kind names as frameworks write them, and the kind they mean.
KINDS = {"acc": "acc", "accuracy": "acc", "loss": "loss"}


def split_kind(name: str) -> tuple[str, str]:
    """(split, kind) of a metric name: ``"val/acc"``, ``"eval_loss"`` and ``"val_acc"`` give
    ("val", "acc") / ("val", "loss"); names without a split prefix give ("", name)."""
    match = re.fullmatch(r"([A-Za-z]+)[_/\-.](.+)", name)
    if match and match.group(1).lower() in SPLITS:
        rest = match.group(2)
        return SPLITS[match.group(1).lower()], KINDS.get(rest.lower(), rest)
    return "", name


def variable_for(name: str, metrics: Mapping[str, str], used: Iterable[str]) -> str:
    """The store variable for metric ``name``.

    Args:
        name: the user's metric name.
        metrics: user name -> variable of the metrics the store already holds.
        used: every variable and dimension name in the store.
    """
    if name in metrics:
        return metrics[name]
    check_name(name)
    used = set(used) | RESERVED
    if name.isidentifier() and name not in used and len(name) <= MAX_VARIABLE:
        return name
    base = PREFIX + (re.sub(r"\W", "_", name) or "_")
    if len(base) > MAX_VARIABLE:  # a folder name: its length is bounded (255 bytes)
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        base = f"{base[:MAX_VARIABLE - 9]}_{digest}"
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}_{n}", n + 1
    return candidate


def check_name(name) -> str:
    """``name`` when it can be a metric name (a text of 1 to :data:`MAX_NAME` characters).

    Raises:
        WcvizError: it cannot (one line naming it).
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise WcvizError(f"a metric name must be a text of 1 to {MAX_NAME} characters, got "
                         f"{short_repr(name)}; shorten it")
    return name


def table_variables(names: Sequence[str], used: Iterable[str]) -> dict[str, str]:
    """User name -> variable of each column of :data:`TABLE` (``names``, in column order):
    the variable a metric of that name had in a store of schema version 1, given ``used``,
    every other variable and dimension name of the store."""
    taken, out = set(used), {}
    for name in names:
        out[name] = variable_for(name, out, taken)
        taken.add(out[name])
    return out


def user_name(var_name: str, attrs: Mapping) -> str:
    """The user's name of the metric stored in variable ``var_name`` with attributes ``attrs``."""
    return str(attrs.get(METRIC_ATTR, var_name))


def metric_variables(ds) -> dict[str, str]:
    """User metric name -> variable, for every per-epoch metric of an opened run, in order."""
    return {user_name(var, ds[var].attrs): var
            for var, arr in ds.data_vars.items() if arr.dims == ("epoch",)}


def metric_names(ds) -> list[str]:
    """The metric names of an opened run as the user wrote them (schema metrics first)."""
    return list(metric_variables(ds))


def metric_variable(ds, name: str) -> str | None:
    """The variable holding metric ``name`` (the user's name) in ``ds``, or None."""
    return metric_variables(ds).get(name)


def resolve(ds, name: str) -> str | None:
    """The variable to read for metric ``name``: its own, unless ``name`` is a schema metric
    (:data:`METRICS`, e.g. ``val_acc``) the run never measured and the run logged
    the same split and kind under another name (``val/acc``, ``eval_accuracy``): then that one.
    None when the run has neither."""
    import numpy as np

    variables = metric_variables(ds)
    var = variables.get(name)
    if name not in METRICS or (var is not None and np.isfinite(ds[var].values).any()):
        return var
    wanted = split_kind(name)
    for other, other_var in variables.items():
        if other != name and split_kind(other) == wanted and np.isfinite(ds[other_var].values).any():
            return other_var
    return var


def metric(ds, name: str):
    """Metric ``name`` (as the user wrote it) of an opened run as an (epoch) DataArray
    (named after its variable; its ``metric`` attribute, if any, holds ``name``).

    Raises:
        KeyError: the run has no such metric (the message lists those it has).
    """
    var = metric_variable(ds, name)
    if var is None:
        raise KeyError(f"run has no metric {name!r}; it has: {', '.join(metric_names(ds))}")
    return ds[var]


def metric_float(name: str, value) -> float:
    """A metric value as a float: numbers, numpy and torch scalars (``.item()``); None is NaN.

    The one validation of metric values (Recorder and store).

    Raises:
        WcvizError: the value is not a number (names the metric).
    """
    if value is None:
        return math.nan
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        try:
            value = value.item()  # a one-element tensor or array; more elements fail below
        except (ValueError, RuntimeError):
            pass
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise WcvizError(f"metric {short_repr(name)} must be a number, got "
                         f"{short_repr(value)}") from None


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a message stays one readable line
    (a 1 MB string passed as a metric is named by its start and length)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
