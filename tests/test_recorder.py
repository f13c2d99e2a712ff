"""Recorder on plain and companded tiny models: what a record holds, resume, bad input."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
import zarr
from torch import nn

import wcviz
from wcviz.reparam.compander import compander_of, raw_weight
from wcviz.errors import WcvizError
from wcviz.record.stats import QUANTILES


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def _step(model, opt, lr_batch=8):
    x = torch.randn(lr_batch, 3, 6, 6)
    loss = nn.functional.cross_entropy(model(x), torch.randint(0, 5, (lr_batch,)))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def _quantiles(t):
    return np.quantile(t.detach().numpy().ravel(), QUANTILES)


def test_three_line_recording_of_a_training_loop(tmp_path):
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = wcviz.Recorder(model, tmp_path / "run", config={"lr": 0.1})
    rec.record(0)
    for epoch in range(1, 3):
        loss = _step(model, opt)
        rec.record(epoch, {"train_loss": loss, "lr": 0.1})
    rec.finish()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 1, 2]
    assert ds.layer.values.tolist() == ["0", "3"]
    assert ds.layer_kind.values.tolist() == ["Conv2d", "Linear"]
    assert ds.layer_numel.values.tolist() == [108, 320]
    assert ds.attrs["method"] == "none" and ds.attrs["status"] == "finished"
    assert math.isnan(ds.train_loss.values[0]) and ds.train_loss.values[2] == pytest.approx(loss.item())
    np.testing.assert_allclose(ds.weight_quantile.isel(epoch=-1, layer=1), _quantiles(model[3].weight),
                               rtol=2e-7)
    assert np.isnan(ds.v_quantile.values).all() and np.isnan(ds.a.values).all()
    assert (ds.weight_nonfinite.values == 0).all()


def test_companded_record_holds_w_v_a_b(tmp_path):
    model = wcviz.compand(tiny(), "arctan", a=0.8, b=0.5)
    rec = wcviz.Recorder(model, tmp_path / "wc")
    rec.record(0)
    ds = wcviz.open_run(tmp_path / "wc").isel(epoch=0)
    for i, module in enumerate((model[0], model[3])):
        w, v = module.weight, raw_weight(module)
        np.testing.assert_allclose(ds.weight_quantile[i], _quantiles(w), rtol=2e-7)
        np.testing.assert_allclose(ds.v_quantile[i], _quantiles(v), rtol=2e-7)
        # Ψ is increasing, so the extreme weights are Ψ of the extreme raw values
        vq = ds.v_quantile[i].values
        psi_ends = 0.8 * np.arctan(vq[[0, -1]] / 0.5)
        np.testing.assert_allclose(ds.weight_quantile[i].values[[0, -1]], psi_ends, rtol=1e-5)
    assert ds.a.values.tolist() == [0.8, 0.8] and ds.b.values.tolist() == [0.5, 0.5]
    attrs = wcviz.open_run(tmp_path / "wc").attrs
    assert (attrs["method"], attrs["a"], attrs["b"], attrs["learnable"]) == ("arctan", 0.8, 0.5, None)
    # bounded compander: the histogram range is capped at a·π/2
    half = ds.bin_edges.values[:, -1]
    absmax = [float(m.weight.detach().abs().max()) for m in (model[0], model[3])]
    np.testing.assert_allclose(half, np.minimum(4 * np.array(absmax), 0.8 * math.pi / 2))


@pytest.mark.parametrize("learnable", ["fine", "coarse"])
def test_learnable_a_b_change_and_are_recorded(tmp_path, learnable):
    model = wcviz.compand(tiny(), "arctan", a=0.5, b=1.0, learnable=learnable)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rec = wcviz.Recorder(model, tmp_path / "run")
    rec.record(0)
    for epoch in range(1, 4):
        _step(model, opt)
        rec.record(epoch)
    ds = wcviz.open_run(tmp_path / "run")
    current = [compander_of(m).scalar_params() for m in (model[0], model[3])]
    np.testing.assert_allclose(ds.a.isel(epoch=-1), [c["a"] for c in current], rtol=1e-6)
    np.testing.assert_allclose(ds.b.isel(epoch=-1), [c["b"] for c in current], rtol=1e-6)
    assert (ds.a.isel(epoch=0) == 0.5).all() and (ds.b.isel(epoch=0) == 1.0).all()
    assert (ds.a.isel(epoch=-1) != 0.5).all()  # they moved, and the store shows it
    assert np.all(np.abs(np.diff(ds.b.values, axis=0)) > 0)
    if learnable == "coarse":
        assert ds.a.values[:, 0].tolist() == ds.a.values[:, 1].tolist()
    assert ds.attrs["learnable"] == learnable
    np.testing.assert_allclose(ds.weight_quantile.isel(epoch=-1, layer=0),
                               _quantiles(model[0].weight), rtol=2e-7)


def test_weightnorm_records_direction(tmp_path):
    model = wcviz.compand(tiny(), "weightnorm")
    wcviz.Recorder(model, tmp_path / "run").record(0)
    ds = wcviz.open_run(tmp_path / "run").isel(epoch=0)
    np.testing.assert_allclose(ds.v_quantile[0], _quantiles(raw_weight(model[0])), rtol=2e-7)
    assert np.isnan(ds.a.values).all()


def test_relative_thresholds_use_std_at_creation(tmp_path):
    model = tiny()
    std0 = model[0].weight.detach().numpy().std()
    rec = wcviz.Recorder(model, tmp_path / "run", thresholds=["abs=0.05", "rel=0.5"])
    with torch.no_grad():
        model[0].weight.mul_(3.0)  # later records keep the epoch-0 cutoff
    rec.record(0)
    ds = wcviz.open_run(tmp_path / "run")
    w = np.abs(model[0].weight.detach().numpy())
    frac = ds.near_zero_fraction.sel(layer="0").isel(epoch=0)
    assert frac.sel(threshold="abs=0.05").item() == np.mean(w < 0.05)
    assert frac.sel(threshold="rel=0.5").item() == np.mean(w < np.float32(0.5 * std0))
    assert ds.weight_std_init.values[0] == pytest.approx(std0, rel=1e-6)
    assert ds.threshold_kind.values.tolist() == ["abs", "rel"]


def test_scale_free_thresholds_follow_each_record(tmp_path):
    model = tiny()
    rec = wcviz.Recorder(model, tmp_path / "run", thresholds=["rel=0.5", "std=0.5", "med=0.5"])
    rec.record(0)
    with torch.no_grad():
        model[0].weight.mul_(3.0)  # same shape, three times the scale
    rec.record(1)
    frac = wcviz.open_run(tmp_path / "run").near_zero_fraction.sel(layer="0")
    assert frac.sel(threshold="rel=0.5", epoch=1).item() < frac.sel(threshold="rel=0.5", epoch=0).item()
    for label in ("std=0.5", "med=0.5"):  # scale-free: unchanged by the growth
        assert frac.sel(threshold=label, epoch=1).item() == frac.sel(threshold=label, epoch=0).item()
    w = np.abs(model[0].weight.detach().numpy())
    assert frac.sel(threshold="med=0.5", epoch=1).item() == np.mean(w < np.float32(0.5 * np.median(w)))


def test_default_thresholds_hold_every_kind(tmp_path):
    wcviz.Recorder(tiny(), tmp_path / "run").record(0)
    kinds = set(wcviz.open_run(tmp_path / "run").threshold_kind.values.tolist())
    assert kinds == {"abs", "rel", "std", "med"}


def test_sub_epoch_records_and_extra_metrics(tmp_path):
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = wcviz.Recorder(model, tmp_path / "run")
    rec.record(0, step=0)
    for step in range(1, 5):
        loss = _step(model, opt)
        rec.record(step / 4, {"train_loss": loss, "grad_norm": torch.tensor(1.5)}, step=step)
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 0.25, 0.5, 0.75, 1.0]
    assert ds.step.values.tolist() == [0, 1, 2, 3, 4]
    assert ds.grad_norm.values[1:].tolist() == [1.5] * 4
    assert rec.next_epoch == 2 and rec.n_records == 5


def test_nonfinite_weight_is_recorded_and_flagged(tmp_path):
    model = tiny()
    rec = wcviz.Recorder(model, tmp_path / "run")
    rec.record(0)
    with torch.no_grad():
        model[3].weight[0, :3] = torch.tensor([math.nan, math.inf, -math.inf])
    with pytest.warns(RuntimeWarning, match="non-finite weights.*layer\\(s\\) 3"):
        assert rec.record(1)
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.weight_nonfinite.values.tolist() == [[0, 0], [0, 3]]
    assert np.isnan(ds.weight_quantile.values[1, 1]).all()
    assert not np.isnan(ds.weight_quantile.values[1, 0]).any()  # other layers unaffected
    assert ds.sizes["epoch"] == 2


def test_context_manager_marks_failed_and_reraises(tmp_path):
    with pytest.raises(KeyError):
        with wcviz.Recorder(tiny(), tmp_path / "run") as rec:
            rec.record(0)
            raise KeyError("boom")
    assert wcviz.open_run(tmp_path / "run").attrs["status"] == "failed"
    with pytest.raises(WcvizError, match="finished"):
        rec.record(1)


def test_resume_continues_without_gap_or_duplicate(tmp_path):
    cfg = {"lr": 0.1, "epochs": 4}
    model = tiny()
    rec = wcviz.Recorder(model, tmp_path / "run", config=cfg, attrs={"seed": 7})
    for epoch in range(2):
        rec.record(epoch, {"train_loss": float(epoch)})
    del rec  # its process ends (a second live writer of the run is refused)
    # a new process: same config, resume
    rec2 = wcviz.Recorder(model, tmp_path / "run", config=cfg, resume=True)
    assert rec2.next_epoch == 2 and rec2.n_records == 2
    with pytest.warns(RuntimeWarning, match="already recorded"):
        assert rec2.record(1) is False  # replayed epoch: skipped, not duplicated
    for epoch in range(rec2.next_epoch, 4):
        rec2.record(epoch, {"train_loss": float(epoch)})
    rec2.finish()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 1, 2, 3]
    assert ds.train_loss.values.tolist() == [0, 1, 2, 3]
    assert ds.attrs["seed"] == 7 and ds.attrs["status"] == "finished"
    # resuming a finished run reopens it as running
    wcviz.Recorder(model, tmp_path / "run", resume=True)
    assert wcviz.open_run(tmp_path / "run").attrs["status"] == "running"


def _refused_resume_leaves_a_released_run_as_it_was(model, run):
    # a stamp from long ago: a refused resume that re-stamped the release would show at once
    zarr.open_group(run / "record.zarr", mode="r+").update_attributes(
        {"released": "2000-01-01T00:00:00+00:00"})
    before = (run / "record.zarr" / "zarr.json").read_text()
    with pytest.raises(WcvizError, match="tracked layers differ"):
        wcviz.Recorder(model, run, layers=["0"], resume=True)
    assert (run / "record.zarr" / "zarr.json").read_text() == before


def test_resume_checks(tmp_path):
    model = tiny()
    wcviz.Recorder(model, tmp_path / "run", config={"lr": 0.1}).record(0)
    before = (tmp_path / "run" / "record.zarr" / "zarr.json").read_text()
    with pytest.raises(WcvizError, match=r"config differs.* in lr \(0.1 -> 0.2\)"):
        wcviz.Recorder(model, tmp_path / "run", config={"lr": 0.2}, resume=True)
    with pytest.raises(WcvizError, match="tracked layers differ"):
        wcviz.Recorder(model, tmp_path / "run", layers=["0"], resume=True)
    with pytest.raises(WcvizError, match="already exists"):
        wcviz.Recorder(model, tmp_path / "run", config={"lr": 0.1})
    assert (tmp_path / "run" / "record.zarr" / "zarr.json").read_text() == before
    with pytest.raises(WcvizError, match="no run store"):
        wcviz.Recorder(model, tmp_path / "other", resume=True)
    _refused_resume_leaves_a_released_run_as_it_was(model, tmp_path / "run")
    with pytest.raises(WcvizError, match="not both"):
        wcviz.Recorder(model, tmp_path / "run", resume=True, overwrite=True)
    rec = wcviz.Recorder(model, tmp_path / "run", config={"lr": 0.3}, overwrite=True)
    assert rec.n_records == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {"lr": 0.3}


def test_layer_selection_and_bad_layers(tmp_path):
    model = tiny()
    rec = wcviz.Recorder(model, tmp_path / "a", layers=["3"])
    rec.record(0)
    assert wcviz.open_run(tmp_path / "a").layer.values.tolist() == ["3"]
    with pytest.raises(WcvizError, match="unknown layer"):
        wcviz.Recorder(model, tmp_path / "b", layers=["fc"])
    with pytest.raises(WcvizError, match="no weight"):
        wcviz.Recorder(model, tmp_path / "c", layers=["1"])
    with pytest.raises(WcvizError, match="no Conv1d/2d/3d, Linear, attention"):
        wcviz.Recorder(nn.Sequential(nn.ReLU()), tmp_path / "d")
    with pytest.raises(WcvizError, match="must be a number"):
        rec.record(1, {"train_loss": "low"})
    with pytest.raises(WcvizError, match="bins"):
        wcviz.Recorder(model, tmp_path / "e", bins=0)
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec.record(1, {"train_loss": None})  # None metric is "not measured"


def test_unwritable_run_dir(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WcvizError, match="cannot create the run store"):
        wcviz.Recorder(tiny(), tmp_path / "file" / "run")
    assert (tmp_path / "file").read_text() == "not a folder"


def test_many_small_layers_record_as_each_alone(tmp_path):
    """Small layers are summarised together (one vectorised pass), big ones one by one: every
    row equals the layer's own summary, v quantiles and a, b of companded layers included."""
    from wcviz.record import stats as S

    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(3, 2) for _ in range(30)], nn.Linear(300, 300))
    wcviz.compand(model, "arctan", a=1.0, b=0.6, learnable="fine")
    rec = wcviz.Recorder(model, tmp_path / "run")
    out = rec.compute()
    names = rec.store.layers
    for i, name in enumerate(names):
        module = model[int(name)]
        w, v = module.weight.detach(), raw_weight(module, "weight").detach()
        alone = S.SummaryLayout(len(QUANTILES), len(rec.store.thresholds), rec.store.n_bins) \
            .unpack(S.weight_summary(w, QUANTILES, rec._cutoffs[i], rec._ranges[i],
                                     rec.store.n_bins).numpy())
        for key in ("weight_quantile", "near_zero_fraction", "weight_histogram", "weight_std",
                    "weight_l2", "weight_participation"):
            np.testing.assert_array_equal(out[key][i], alone[key], err_msg=f"{key} {name}")
        np.testing.assert_array_equal(out["v_quantile"][i], S.exact_quantiles(v).numpy())
        params = compander_of(module, "weight").params()
        assert [out["a"][i], out["b"][i]] == [torch.as_tensor(params[k]).item() for k in "ab"]
    assert sum(S.batchable(model[int(n)].weight) for n in names) == 30  # both paths ran


def test_only_big_layers_go_to_the_recorders_threads(tmp_path, monkeypatch):
    """A thread pool's hand-off costs more than a small layer's statistics (10,000 one-weight
    layers went from 0.46 s to 1.43 s a record through it): they stay in the recording
    thread, with the same results as the big layers computed in the pool."""
    from concurrent.futures import ThreadPoolExecutor
    from wcviz.record import recorder as R

    submitted = []
    real_submit = ThreadPoolExecutor.submit

    def counting_submit(self, fn, *args, **kwargs):
        if getattr(fn, "__qualname__", "").startswith("_spread."):  # (index, target) job
            submitted.append(args[0][1].name)
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", counting_submit)
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(3, 3) for _ in range(20)], nn.Linear(200, 100))
    rec = wcviz.Recorder(model, tmp_path / "r", threads=2)
    rec.record(0)
    rec.record(1)
    rec.finish()
    assert set(submitted) == {"20"}  # 20,000 weights ≥ _POOL_MIN; the 3 × 3 layers not
    assert R._POOL_MIN <= 20_000
    alone = wcviz.Recorder(model, tmp_path / "one", threads=1)
    alone.record(0)
    alone.record(1)
    alone.finish()
    for var in ("weight_quantile", "weight_histogram", "update_ratio"):
        np.testing.assert_array_equal(wcviz.open_run(tmp_path / "r")[var].values,
                                      wcviz.open_run(tmp_path / "one")[var].values)
