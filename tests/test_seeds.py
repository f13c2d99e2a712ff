"""wcviz.report.seeds: one folding rule over seeds, whatever holds the values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import _fixture_runs as fx
from wcviz.errors import WcvizError
from wcviz.report import analysis as an
from wcviz.report import seeds

#: (seed, epoch) values of one group, a NaN where seed 2 did not record epoch 1.
VALUES = np.array([[1.0, 2.0, 4.0], [2.0, 3.0, 5.0], [6.0, np.nan, 9.0]])


def test_the_three_containers_fold_alike():
    folded = seeds.fold(xr.DataArray(VALUES, dims=(seeds.SEED, "epoch")))
    frame = pd.DataFrame([{"run": f"r{s}", "epoch": e, "v": VALUES[s, e]}
                          for s in range(3) for e in range(3)])
    tidy = seeds.fold_frame(frame, {"r0": "g", "r1": "g", "r2": "g"}, ["epoch"], ["v"],
                            spread={"v": "std"})
    for e in range(3):
        column = VALUES[:, e][np.isfinite(VALUES[:, e])]
        mean, std = seeds.mean_std(column)
        assert mean == pytest.approx(np.mean(column)) and std == pytest.approx(np.std(column, ddof=1))
        assert float(folded["mean"][e]) == pytest.approx(mean) == tidy["v"][e]
        assert float(folded["std"][e]) == pytest.approx(std) == pytest.approx(tidy["std"][e])
        assert int(folded["seeds"][e]) == len(column) == tidy["seeds"][e]
    assert list(tidy["run"]) == ["g"] * 3


def test_one_seed_has_no_spread():
    one = seeds.fold(xr.DataArray(VALUES[:1], dims=(seeds.SEED, "epoch")))
    assert np.isnan(one["std"]).all() and (one["seeds"] == 1).all()
    assert np.isnan(seeds.mean_std([3.0])[1]) and np.isnan(seeds.mean_std([])).all()


def test_stack_keeps_the_shared_epochs(tmp_path):
    long, short = (an.as_dataset(fx.baseline_run(tmp_path / f"s{n}", seed=n, n_epochs=n))
                   for n in (6, 3))
    curves = seeds.stack([long, short], lambda ds: an.metric_values(ds, "test_acc"))
    assert curves.sizes == {seeds.SEED: 2, "epoch": 3}
    with pytest.raises(WcvizError, match="share no recorded epoch"):
        seeds.stack([long, long.isel(epoch=slice(0, 0))], lambda ds: an.epochs(ds))


def test_pairing_by_seed(tmp_path):
    base = fx.seed_group(tmp_path / "b", "baseline", seeds=(0, 1, 2))
    wc = fx.seed_group(tmp_path / "w", "wc", seeds=(1, 2, 5))
    paired, b, w, unpaired = seeds.pair_by_seed(base, wc)
    assert paired == [1, 2] and unpaired == [0, 5]
    assert [an.run_attr(ds, "seed") for ds in b + w] == [1, 2, 1, 2]
    assert seeds.repeated_seed([0, None, float("nan"), 1, 0]) == (0, 4)
    assert seeds.repeated_seed([None, None, 1]) is None
