"""Config identity: the canonical JSON of a run's config and the one definition of "same config"
(resume, and the train/sweep/demo run states)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from wcviz.errors import WcvizError
from wcviz.record.runfolder import (
    CONFIG_NAME,
    CONFLICT,
    DONE,
    FINISHED,
    NEW,
    RESUME,
    STORE_NAME,
    read_summary,
    store_path,
)
from wcviz.record.schema import read_root_attrs


def json_safe(value):
    """Attribute values as JSON: NaN/inf become None (zarr attributes are JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return json_safe(value.item())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def config_json(config: dict | None) -> str:
    """The canonical JSON text of a config (sorted keys), used for storing and comparing.

    Paths are stored as strings; any other value JSON cannot hold is refused (its ``str()``
    could differ between processes, e.g. an address, and then no resume would match).

    Raises:
        WcvizError: a value that is not JSON (nor a path).
    """
    try:
        return json.dumps(json_safe(config or {}), sort_keys=True, default=_path_text)
    except (TypeError, ValueError) as err:
        raise WcvizError(f"config is not JSON-serializable ({err}); pass plain values") from None


def _path_text(value) -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} value {value!r:.60} is not JSON")


def _as_config(config) -> dict:
    """A config dict or config JSON text as the plain dict its canonical JSON reads back as."""
    if isinstance(config, str):
        try:
            config = json.loads(config or "{}")
        except ValueError:
            return {"<unreadable config>": config}
    return json.loads(config_json(config))


def config_changes(new, old) -> str:
    """How config ``new`` differs from ``old`` (dicts or config JSON texts), for an error
    message: the first differing top-level keys with both values; "" when they are the same.

    The one definition of "same config" (resume, the train/sweep/demo run states): configs are
    compared as their canonical JSON (:func:`config_json`), so key order and tuple/list do not
    count.
    """
    new, old = _as_config(new), _as_config(old)
    if not isinstance(new, dict) or not isinstance(old, dict):
        return "" if new == old else "its value"
    keys = sorted(k for k in set(new) | set(old) if new.get(k, ...) != old.get(k, ...))
    return ", ".join(f"{k} ({old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r})"
                     for k in keys[:5]) + (" ..." if len(keys) > 5 else "")


def same_config(a, b) -> bool:
    """Whether two configs (dicts or config JSON texts) are the same (:func:`config_changes`)."""
    return not config_changes(a, b)




def run_state(run_dir: Path, recipe: dict) -> str:
    """The :data:`~wcviz.record.runfolder.RUN_STATES` word for ``run_dir`` and config ``recipe``:
    NEW (no store), DONE (finished, same config), RESUME (started, same config) or CONFLICT."""
    if not (Path(run_dir) / STORE_NAME).exists():
        return NEW
    if not same_config(stored_config(run_dir), recipe):
        return CONFLICT
    if read_summary(run_dir).get("status") == FINISHED:
        return DONE
    return RESUME


def stored_config(run_dir: Path):
    """The run's recorded config: ``config.json``, else the copy in the store's attributes
    (a lost or garbled config.json is no reason to call the run another config's).

    Raises:
        WcvizError: neither copy can be read.
    """
    try:
        return json.loads((Path(run_dir) / CONFIG_NAME).read_text())
    except (OSError, ValueError) as err:
        problem = f"{CONFIG_NAME} is unreadable ({type(err).__name__})"
    try:
        return json.loads(read_root_attrs(store_path(run_dir)).get("config") or "null")
    except (WcvizError, ValueError) as err:
        raise WcvizError(f"run {run_dir} is damaged: {problem} and its store too ({err}); "
                         "pass --overwrite to start it again, or choose another --run-id") from None
