"""Facts defined once and shared: "same config?", metric values as floats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from wcviz.record.config import run_state
from wcviz.errors import WcvizError
from wcviz.record.metrics import metric_float
from wcviz.record.config import config_changes, config_json, same_config


def test_same_config_ignores_key_order_and_tuple_vs_list():
    a = {"epochs": 2, "milestones": (3, 5), "lr": 0.1}
    assert same_config(a, {"lr": 0.1, "milestones": [3, 5], "epochs": 2})
    assert same_config(a, json.dumps(a))  # a dict and a JSON text of it
    assert same_config(config_json(a), a)
    assert not same_config(a, {**a, "lr": 0.2})
    assert config_changes({**a, "lr": 0.2}, a) == "lr (0.1 -> 0.2)"
    assert same_config({"x": math.nan}, {"x": None})  # NaN is stored as null
    assert same_config('{"x": NaN, "m": [1, 2]}', {"m": (1, 2), "x": None})  # text canonicalised too
    assert not same_config("not json", a)


def test_run_state_uses_the_same_rule(tmp_path):
    run = tmp_path / "run"
    (run / "record.zarr").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"milestones": [3, 5], "epochs": 2}))
    assert run_state(run, {"epochs": 2, "milestones": (3, 5)}) == "resume"
    assert run_state(run, {"epochs": 3, "milestones": (3, 5)}) == "conflict"


@pytest.mark.parametrize("value,want", [(1, 1.0), (0.5, 0.5), (None, math.nan),
                                        (np.float32(0.25), 0.25), (torch.tensor(0.75), 0.75),
                                        (torch.tensor([2.0], requires_grad=True), 2.0), ("3", 3.0)])
def test_metric_float_accepts_numbers_and_scalars(value, want):
    got = metric_float("m", value)
    assert got == want or (math.isnan(got) and math.isnan(want))


@pytest.mark.parametrize("value", ["high", [1, 2], torch.ones(2), {"a": 1}])
def test_metric_float_refuses_non_numbers_by_name(value):
    with pytest.raises(WcvizError, match="metric 'val_acc' must be a number"):
        metric_float("val_acc", value)
