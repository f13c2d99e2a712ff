"""Gradients, update ratio and parametrization originals in a record, each compared with numpy
on the tensors themselves (wcviz.record.gradients)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import orthogonal, spectral_norm, weight_norm

import wcviz
from _engines import framework as framework_
from wcviz.errors import WcvizError
from wcviz.record.schema import OPTIONAL_LAYER_VARS


def _model():
    """Plain, weight-normed, spectral-normed, orthogonal and companded Linear layers."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 3))
    wcviz.compand(model, "arctan", a=0.5, b=0.3, include=["8"])
    weight_norm(model[2])
    spectral_norm(model[4])
    orthogonal(model[6])
    return model


def _backward(model, x, y, captured: dict | None = None):
    """One forward/backward; ``captured`` (layer index -> list) gets each layer's ∂L/∂w of
    this pass, taken from the effective weight itself (cached once and ``retain_grad``)."""
    plain_before = {i: (model[i].weight.grad.clone() if model[i].weight.grad is not None
                        else 0.0) for i in (0, 2, 4, 6, 8) if not parametrize.is_parametrized(model[i])}
    with parametrize.cached():
        weights = {}
        for i in (0, 2, 4, 6, 8):
            w = model[i].weight
            if w.grad_fn is not None:
                w.retain_grad()
            weights[i] = w
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    if captured is not None:
        for i, w in weights.items():
            grad = w.grad if w.grad_fn is not None else model[i].weight.grad - plain_before[i]
            captured.setdefault(i, []).append(grad.detach().clone())


def _data(n=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


LAYERS = {"0": 0, "2": 2, "4": 4, "6": 6, "8": 8}


def _q(tensor, q):
    """numpy's quantiles of a tensor's values, in float64 (what a record stores)."""
    return np.quantile(np.asarray(tensor, dtype=np.float64), q)


def _check_grads(ds, k, model, grads_w, q):
    for name, i in LAYERS.items():
        j = list(ds.layer.values).index(name)
        g = grads_w[i].numpy()
        np.testing.assert_array_equal(ds.grad_quantile.values[k, j], _q(g, q), err_msg=name)
        np.testing.assert_allclose(ds.grad_l2.values[k, j], np.linalg.norm(g.astype(np.float64)),
                                   rtol=1e-12, err_msg=name)
        stored = model[i].parametrizations.weight if parametrize.is_parametrized(model[i]) \
            else None
        if stored is None:
            assert np.isnan(ds.grad_v_quantile.values[k, j]).all()
        else:
            v = stored.original if hasattr(stored, "original") else stored.original1
            np.testing.assert_array_equal(ds.grad_v_quantile.values[k, j],
                                          _q(v.grad.numpy(), q))


def test_gradient_statistics_equal_numpy_for_plain_and_parametrized_layers(tmp_path):
    model = _model()
    rec = wcviz.Recorder(model, tmp_path / "r", gradients=True)
    rec.record(0)  # before any backward: no gradient, NaN (not an error)
    captured = {}
    _backward(model, *_data(), captured)
    rec.record(1)
    ds = wcviz.open_run(tmp_path / "r")
    q = ds["quantile"].values
    assert np.isnan(ds.grad_quantile.values[0]).all() and np.isnan(ds.grad_l2.values[0]).all()
    _check_grads(ds, 1, model, {i: c[-1] for i, c in captured.items()}, q)


def test_gradient_accumulation_over_four_micro_batches_and_set_to_none(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = wcviz.Recorder(model, tmp_path / "r", gradients=True)
    captured = {}
    for k in range(4):
        _backward(model, *_data(seed=k), captured)
    rec.record(0)
    summed = {i: torch.stack(c).sum(0) for i, c in captured.items()}
    opt.step()
    opt.zero_grad(set_to_none=False)  # zeroed in place: a new window starts
    captured = {}
    _backward(model, *_data(seed=9), captured)
    rec.record(1)
    ds = wcviz.open_run(tmp_path / "r")
    q = ds["quantile"].values
    # the accumulated ∂L/∂w: the sum over the micro-batches, up to float32 summation order
    for name, i in LAYERS.items():
        np.testing.assert_allclose(ds.grad_quantile.values[0, int(list(ds.layer.values)
                                                                  .index(name))],
                                   _q(summed[i].numpy(), q), rtol=1e-5, atol=1e-7)
    _check_grads(ds, 1, model, {i: c[-1] for i, c in captured.items()}, q)
    opt.zero_grad()  # set_to_none: no gradient present
    rec.record(2)
    ds = wcviz.open_run(tmp_path / "r")
    for var in ("grad_quantile", "grad_v_quantile", "grad_l2"):
        assert np.isnan(ds[var].values[2]).all(), var


def test_update_ratio_and_originals_equal_numpy(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rec = wcviz.Recorder(model, tmp_path / "r")
    before = [model[i].weight.detach().double().numpy().copy() for i in LAYERS.values()]
    rec.record(0)
    _backward(model, *_data())
    opt.step()
    model.eval()  # spectral norm's power iteration: no update outside training
    after = [model[i].weight.detach().double().numpy().copy() for i in LAYERS.values()]
    rec.record(1)
    ds = wcviz.open_run(tmp_path / "r")
    assert "grad_quantile" not in ds  # gradients are off by default
    assert np.isnan(ds.update_ratio.values[0]).all()
    layers = list(ds.layer.values)
    q = ds["quantile"].values
    for (name, i), w0, w1 in zip(LAYERS.items(), before, after):
        j = layers.index(name)
        np.testing.assert_allclose(ds.update_ratio.values[1, j],
                                   np.linalg.norm(w1 - w0) / np.linalg.norm(w0), rtol=1e-6)
    assert list(ds.original.values) == ["original", "original0", "original1"]
    for name, i in LAYERS.items():
        j = layers.index(name)
        found = {}
        if parametrize.is_parametrized(model[i]):
            plist = model[i].parametrizations.weight
            found = {n: p for n, p in plist.named_parameters(recurse=False)}
        for o, oname in enumerate(ds.original.values):
            got = ds.original_quantile.values[1, j, o]
            if oname in found:
                np.testing.assert_array_equal(got, _q(found[oname].detach().numpy(), q))
            else:
                assert np.isnan(got).all()
    # weight_norm: g and v by torch's names; the compander's v is both v_quantile and original
    wn = model[2].parametrizations.weight
    assert wn.original0.shape == (8, 1) and wn.original1.shape == (8, 8)
    j = layers.index("8")
    np.testing.assert_array_equal(ds.v_quantile.values[1, j],
                                  ds.original_quantile.sel(original="original").values[1, j])


def test_update_ratio_from_the_kept_copy_equals_a_fresh_difference_bit_for_bit(tmp_path):
    """Plain layers' ratios come from the kept copy, overwritten in place each record (no new
    tensor); the same model recorded by the allocating path gives the same bits, record after
    record, so the copy always holds the previous record's weights."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    kept = wcviz.Recorder(model, tmp_path / "kept")
    fresh = wcviz.Recorder(model, tmp_path / "fresh")
    copies = [model[i].weight.detach().clone() for i in LAYERS.values()]
    for epoch in range(5):
        if epoch:
            model.train()
            _backward(model, *_data(seed=epoch))
            opt.step()
            opt.zero_grad()
        model.eval()  # spectral norm's power iteration: the two records see the same weights
        kept.record(epoch)
        fresh._extra._copies.clear()  # every record through the allocating path
        fresh.record(epoch)
    assert kept._extra._copies == {0}  # the plain layer; Ψ(v) of the others is a fresh tensor
    # the copy is the last record's weights, not the difference it held for a moment
    assert torch.equal(kept._extra._previous[0], model[0].weight.detach())
    assert not torch.equal(copies[0], model[0].weight)  # and the weights did move
    for rec in (kept, fresh):
        rec.finish()
    one, two = (wcviz.open_run(tmp_path / r).update_ratio.values for r in ("kept", "fresh"))
    np.testing.assert_array_equal(one, two)
    assert np.isfinite(one[1:]).all()


def test_update_ratio_off_keeps_no_copy_and_stores_no_variable(tmp_path):
    model = nn.Linear(4, 4)
    rec = wcviz.Recorder(model, tmp_path / "r", update_ratio=False)
    rec.record(0)
    rec.record(1)
    assert rec._extra._previous == [None]
    ds = wcviz.open_run(tmp_path / "r")
    assert not set(OPTIONAL_LAYER_VARS) & set(ds.data_vars)
    assert "original" not in ds.coords  # no parametrized layer


def test_companded_layer_under_bf16_autocast_on_cpu(tmp_path):
    torch.manual_seed(0)
    model = wcviz.compand(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)),
                          "arctan", a=0.5, b=0.3)
    rec = wcviz.Recorder(model, tmp_path / "r", gradients=True)
    x, y = _data()
    with parametrize.cached():
        ws = [model[0].weight, model[2].weight]
        for w in ws:
            w.retain_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    rec.record(0)
    ds = wcviz.open_run(tmp_path / "r")
    q = ds["quantile"].values
    for j, (i, w) in enumerate(zip((0, 2), ws)):
        assert w.grad.dtype == torch.float32
        np.testing.assert_array_equal(ds.grad_quantile.values[0, j], _q(w.grad.numpy(), q))
        v = model[i].parametrizations.weight.original
        np.testing.assert_array_equal(ds.grad_v_quantile.values[0, j],
                                      _q(v.grad.numpy(), q))


def test_grad_scaler_records_unscaled_gradients(tmp_path):
    torch.manual_seed(0)
    model = wcviz.compand(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), "arctan")
    plain = nn.Linear(6, 3)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    rec = wcviz.Recorder(model, tmp_path / "r", gradients=True, grad_scaler=scaler)
    x, y = _data()
    with parametrize.cached():
        w = model[0].weight
        w.retain_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()  # the reference, unscaled
    reference = w.grad.detach().clone()
    model.zero_grad()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler.scale(nn.functional.cross_entropy(model(x), y)).backward()
    scaler.step(opt)  # unscales .grad in place
    scaler.update()
    rec.record(0)
    ds = wcviz.open_run(tmp_path / "r")
    np.testing.assert_allclose(ds.grad_quantile.values[0, 0],
                               _q(reference.numpy(), ds["quantile"].values), rtol=1e-6)
    del plain


def test_resuming_an_older_store_adds_the_new_variables(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    rec = wcviz.Recorder(model, tmp_path / "r", update_ratio=False)
    rec.record(0)
    rec.finish()  # a store without any optional variable, like one written before them
    rec = wcviz.Recorder(model, tmp_path / "r", resume=True, gradients=True)
    model(torch.randn(3, 4)).sum().backward()
    rec.record(1)
    rec.finish()
    ds = wcviz.open_run(tmp_path / "r")
    assert np.isnan(ds.grad_quantile.values[0]).all()
    np.testing.assert_array_equal(ds.grad_quantile.values[1, 1],
                                  _q(model[1].weight.grad.numpy(), ds["quantile"].values))
    assert np.isnan(ds.update_ratio.values).all()  # first record of this process


def test_resume_with_other_originals_is_refused(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4))
    weight_norm(model[0])
    wcviz.Recorder(model, tmp_path / "r").finish()
    other = nn.Sequential(nn.Linear(4, 4))
    spectral_norm(other[0])
    with pytest.raises(WcvizError, match="originals"):
        wcviz.Recorder(other, tmp_path / "r", resume=True)
    wcviz.Recorder(model, tmp_path / "r", resume=True).finish()  # the lock was released


@pytest.mark.slow
def test_two_process_gloo_ddp_records_the_all_reduced_gradients(tmp_path):
    script = Path(__file__).with_name("_ddp_grads.py")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ds = wcviz.open_run(tmp_path / "run")
    q = ds["quantile"].values
    reduced = np.load(tmp_path / "reduced.npz")
    local = np.load(tmp_path / "local0.npz")
    # the plain layer: ∂L/∂w averaged over both ranks (not rank 0's own)
    np.testing.assert_array_equal(ds.grad_quantile.values[0, 1], _q(reduced["plain"], q))
    assert not np.allclose(reduced["plain"], local["plain"])
    # the companded layer: ∂L/∂v averaged (grad_v); its ∂L/∂w is rank 0's own (documented)
    np.testing.assert_array_equal(ds.grad_v_quantile.values[0, 0], _q(reduced["v"], q))
    np.testing.assert_array_equal(ds.grad_quantile.values[0, 0], _q(local["w"], q))


@pytest.fixture(scope="module")
def grad_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "g"
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with wcviz.Recorder(model, path, gradients=True, bins=8) as rec:
        for step in (1, 2):
            opt.zero_grad()
            _backward(model, *_data(seed=step))
            opt.step()
            rec.record(step, step=step)
    return path


def test_exports_carry_the_new_variables(grad_run, tmp_path):
    import pandas as pd
    import xarray as xr
    from wcviz.cli import main

    framework_("pyarrow")
    ds = wcviz.open_run(grad_run)
    for fmt, suffix in (("csv", "csv"), ("parquet", "parquet")):
        out = tmp_path / f"t.{suffix}"
        assert main(["export", str(grad_run), "--format", fmt, "--out", str(out)]) == 0
        table = pd.read_csv(out, dtype={"layer": str}) if fmt == "csv" else pd.read_parquet(out)
        row = table[(table.statistic == "grad_quantile@0.5") & (table.layer == "2") &
                    (table.epoch == 2)]
        assert row.value.tolist() == [ds.grad_quantile.sel(layer="2", quantile=0.5).values[1]]
        row = table[(table.statistic == "original_quantile@original0@1") & (table.layer == "2")]
        assert row.value.tolist() == ds.original_quantile.sel(
            layer="2", original="original0", quantile=1.0).values.tolist()
        assert (table.statistic == "update_ratio").sum() == 5  # the first record's are NaN
        assert (table.statistic == "grad_l2").sum() == 10
    nc = tmp_path / "t.nc"
    assert main(["export", str(grad_run), "--format", "netcdf", "--out", str(nc)]) == 0
    with xr.open_dataset(nc) as back:  # the same long form as a netCDF table
        table = back.to_dataframe()
    stat = table.statistic.astype(str)
    rows = table[(stat == "original_quantile@original1@0.5") & (table.layer.astype(str) == "2")]
    assert rows.value.tolist() == ds.original_quantile.sel(
        layer="2", original="original1", quantile=0.5).values.tolist()
    assert (stat == "grad_v_quantile@0").sum() == 2 * 4  # 4 parametrized layers
    accumulator = framework_("tensorboard.backend.event_processing.event_accumulator")
    assert main(["export", str(grad_run), "--format", "tensorboard", "--out",
                 str(tmp_path / "tb")]) == 0
    acc = accumulator.EventAccumulator(str(tmp_path / "tb" / "g"), size_guidance={"scalars": 0})
    acc.Reload()
    np.testing.assert_allclose([e.value for e in acc.Scalars("grad_l2/4")],
                               ds.grad_l2.sel(layer="4").values, rtol=1e-6)
    np.testing.assert_allclose([e.value for e in acc.Scalars("grad_quantile/0.5/8")],
                               ds.grad_quantile.sel(layer="8", quantile=0.5).values, rtol=1e-6)
    assert [e.step for e in acc.Scalars("update_ratio/0")] == [2]  # NaN is not written


@pytest.mark.slow
def test_hf_callback_records_the_gradients_of_the_step_before_the_record(tmp_path):
    transformers = framework_("transformers")
    framework_("accelerate")
    from test_integrations import _gpt2, _token_data
    from wcviz.integrations.huggingface import WcvizCallback

    _, model = _gpt2(transformers)
    seen = []

    class Grab(transformers.TrainerCallback):  # the reference: the grad before zero_grad
        def on_optimizer_step(self, args, state, control, **kwargs):
            seen.append(model.transformer.h[0].mlp.c_fc.weight.grad.detach().clone())

    args = transformers.TrainingArguments(
        tmp_path / "out", num_train_epochs=2, per_device_train_batch_size=4, logging_steps=1,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = transformers.Trainer(
        model, args, train_dataset=_token_data(16, 0),
        callbacks=[WcvizCallback(tmp_path / "run", every_n_steps=3, gradients=True), Grab()])
    trainer.train()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.step.values.tolist() == [0, 3, 4, 6, 8]
    q = ds["quantile"].values
    assert np.isnan(ds.grad_quantile.values[0]).all()  # before training: no gradient
    layer = list(ds.layer.values).index("transformer.h.0.mlp.c_fc")
    for k, step in enumerate(ds.step.values[1:], start=1):
        np.testing.assert_array_equal(ds.grad_quantile.values[k, layer], _q(seen[step - 1], q))
    assert model.transformer.h[0].mlp.c_fc.weight.grad is None  # the Trainer zeroed them


@pytest.mark.slow
def test_lightning_callback_records_the_last_steps_gradients(tmp_path):
    from test_integrations import _lightning_module, _loader, _trainer
    from wcviz.integrations.lightning import WcvizCallback

    L, module = _lightning_module()
    seen = []

    class Grab(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append(pl_module.net[3].weight.grad.detach().clone())

    trainer = _trainer(L, tmp_path, WcvizCallback(tmp_path / "run", gradients=True), epochs=2)
    trainer.callbacks.append(Grab())
    trainer.fit(module, _loader(), _loader(8))
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 1, 2]
    q = ds["quantile"].values
    for k, last in ((1, 3), (2, 7)):  # 4 batches an epoch: the epoch's last step
        np.testing.assert_array_equal(ds.grad_quantile.sel(layer="net.3").values[k],
                                      _q(seen[last], q))
    assert np.isfinite(ds.update_ratio.values[1:]).all()


@pytest.mark.slow
def test_train_cli_records_gradients_when_set(tmp_path):
    from wcviz.cli import main

    common = ["train", "--preset", "digits-cnn", "--method", "wc", "--epochs", "1",
              "--device", "cpu", "--no-progress", "--runs"]
    assert main([*common, str(tmp_path / "on"), "--set", "record_gradients=true"]) == 0
    assert main([*common, str(tmp_path / "off")]) == 0
    run = "digits-cnn_wc_a0.5_b0.3_s0"
    on, off = wcviz.open_run(tmp_path / "on" / run), wcviz.open_run(tmp_path / "off" / run)
    assert np.isnan(on.grad_quantile.values[0]).all()  # at init, before any backward
    assert np.isfinite(on.grad_quantile.values[1]).all()
    assert np.isfinite(on.grad_v_quantile.values[1]).all() and (on.grad_l2.values[1] > 0).all()
    assert "grad_quantile" not in off and np.isfinite(off.update_ratio.values[1]).all()
    # recording gradients changes nothing else
    np.testing.assert_array_equal(on.weight_quantile.values, off.weight_quantile.values)
    assert on.attrs["config"] == off.attrs["config"]  # an execution option, not the recipe


def test_plots_show_histograms_gradient_bands_and_update_ratio(grad_run, tmp_path):
    framework_("matplotlib")
    from wcviz import plots

    ds = wcviz.open_run(grad_run)
    fig = plots.histogram_heatmap([ds, ds], "4")
    meshes = [a for ax in fig.axes for a in ax.collections if a.get_gid() == "heatmap"]
    assert len(meshes) == 2  # runs side by side
    np.testing.assert_allclose(meshes[0].get_array().reshape(8, 2).T,
                               np.log10(1 + ds.weight_histogram.sel(layer="4").values))
    fig = plots.histogram_ridgelines(ds, "4")
    gids = [c.get_gid() for c in fig.axes[0].collections]
    assert gids == ["ridge:1", "ridge:2"]
    fig = plots.gradient_bands(ds, "2")
    median = [ln for ln in fig.axes[1].lines if ln.get_gid() == "median"][0]
    np.testing.assert_array_equal(median.get_ydata(),
                                  ds.grad_quantile.sel(layer="2", quantile=0.5).values)
    fig = plots.update_ratio_plot(ds)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    ref = [ln for ln in ax.lines if ln.get_gid() == "reference"][0]
    assert list(ref.get_ydata()) == [1e-3, 1e-3]
    line = [ln for ln in ax.lines if ln.get_gid() == "ratio:6"][0]
    np.testing.assert_array_equal(line.get_ydata(), ds.update_ratio.sel(layer="6").values)
    plain = tmp_path / "plain"
    wcviz.Recorder(nn.Linear(2, 2), plain, update_ratio=False).record(0)
    with pytest.raises(WcvizError, match="gradients=True"):
        plots.gradient_bands(plain)
    with pytest.raises(WcvizError, match="update_ratio"):
        plots.update_ratio_plot(plain)


@pytest.fixture()
def hist_app(grad_run, tmp_path, monkeypatch):
    framework_("streamlit")
    import shutil

    from test_app import dashboard, write_run as fixture_run

    root = tmp_path / "runs"
    shutil.copytree(grad_run, root / "grads")
    fixture_run(root / "older", n_records=3)  # a store without gradients or update ratio
    at = dashboard(monkeypatch, root)
    at.run()
    assert not at.exception
    return at


def test_histograms_page_shows_each_view_with_the_recorded_values(hist_app, grad_run):
    from test_app import charts, select
    from wcviz.app.ui import SELECTED

    at = select(hist_app, "grads", page="histograms")
    at.selectbox(key="hist_layer").set_value("4").run()
    ds = wcviz.open_run(grad_run)
    [(spec, frame)] = charts(at)  # heatmap
    assert spec["spec"]["mark"]["type"] == "rect"
    got = frame.sort_values(["epoch", "lo"])["count"].to_numpy().reshape(2, 8)
    np.testing.assert_array_equal(got, ds.weight_histogram.sel(layer="4").values)
    texts = [str(e.value).strip("`") for e in [*at.markdown, *at.code, *at.json, *at.text]]
    assert "None" not in texts  # no stray value written by Streamlit's magic
    at.radio(key="hist_view").set_value("ridgelines").run()
    [(spec, frame)] = charts(at)
    assert spec["spec"]["mark"]["type"] == "area" and sorted(frame.epoch.unique()) == [1, 2]
    assert frame[frame.epoch == 1].base.unique().tolist() == [0.0]  # the first record on top
    at.radio(key="hist_view").set_value("gradients").run()
    [(spec, frame)] = charts(at)
    grads = frame[frame.quantity == "gradient ∂L/∂w"]
    np.testing.assert_array_equal(grads.groupby("epoch")["median"].first().to_numpy(),
                                  ds.grad_quantile.sel(layer="4", quantile=0.5).values)
    at.radio(key="hist_view").set_value("update ratio").run()
    [(spec, frame)] = charts(at)
    layers = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
              for layer in spec["layer"]]
    assert layers == ["line", "rule"]
    assert spec["layer"][0]["encoding"]["y"]["scale"]["type"] == "log"
    got = frame.dropna(subset=["layer"]).set_index("layer").loc["6", "ratio"]
    assert float(np.ravel(got)[0]) == ds.update_ratio.sel(layer="6").values[1]
    # a store recorded without them: named, not an error
    at.multiselect(key=SELECTED).set_value(["older"]).run()
    assert not at.exception
    assert any("no update ratio recorded" in i.value for i in at.info)
    at.radio(key="hist_view").set_value("heatmap").run()
    assert len(charts(at)) == 1


@pytest.mark.slow
def test_torch_compile_model_records_its_gradients(tmp_path):
    torch.manual_seed(0)
    build = lambda: wcviz.compand(nn.Sequential(nn.Linear(6, 8), nn.Tanh(),  # noqa: E731
                                                nn.Linear(8, 3)), "arctan", include=["0"])
    model, eager = build(), build()
    eager.load_state_dict(model.state_dict())
    rec = wcviz.Recorder(model, tmp_path / "r", gradients=True)
    x, y = _data()
    nn.functional.cross_entropy(torch.compile(model)(x), y).backward()
    rec.record(0)
    ds = wcviz.open_run(tmp_path / "r")
    q = ds["quantile"].values
    v = model[0].parametrizations.weight.original
    np.testing.assert_array_equal(ds.grad_quantile.values[0, 1], _q(model[2].weight.grad, q))
    np.testing.assert_array_equal(ds.grad_v_quantile.values[0, 0], _q(v.grad, q))
    with parametrize.cached():  # ∂L/∂w of the compiled graph vs eager: kernels round apart
        w = eager[0].weight
        w.retain_grad()
        nn.functional.cross_entropy(eager(x), y).backward()
    np.testing.assert_allclose(ds.grad_quantile.values[0, 0], _q(w.grad, q), rtol=1e-5,
                               atol=1e-8)
