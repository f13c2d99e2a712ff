"""The framework callbacks and timm, trained for real on CPU with tiny models and a few steps."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import wcviz
from wcviz.record.metrics import metric, metric_names
from _engines import framework


def test_import_wcviz_imports_no_framework():
    code = ("import sys, wcviz, wcviz.integrations; "
            "print([m for m in ('lightning', 'transformers', 'timm', 'tensorboard', 'pyarrow') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ Lightning

def _lightning_module(fail_at_epoch=None):
    L = framework("lightning")

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            if self.current_epoch == fail_at_epoch:
                raise RuntimeError("boom")
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val/acc", (self(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return wcviz.build_optimizer(self, "sgd", lr=0.1)

    return L, Tiny()


def _loader(n=16):
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(n, 2, 6, generator=g),
                                          torch.randint(0, 3, (n,), generator=g))
    return torch.utils.data.DataLoader(data, batch_size=4)


def _trainer(L, tmp_path, callback, epochs=2):
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=tmp_path, callbacks=[callback])


def test_lightning_callback_records_epochs_steps_and_logged_metrics(tmp_path):
    from wcviz.integrations.lightning import WcvizCallback

    L, module = _lightning_module()
    wcviz.compand(module, "arctan", a=1.0, b=0.5, learnable="fine")
    callback = WcvizCallback(tmp_path / "run", every_n_steps=2, config={"lr": 0.1})
    _trainer(L, tmp_path, callback).fit(module, _loader(), _loader(8))
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "finished" and ds.attrs["method"] == "arctan"
    assert ds.epoch.values.tolist() == [0, 0.5, 1, 1.5, 2]  # 4 batches a epoch, every 2 steps
    assert ds.step.values.tolist() == [0, 2, 4, 6, 8]
    assert ds.layer.values.tolist() == ["net.0", "net.3"]
    assert {"val/acc", "train_loss"} <= set(metric_names(ds))
    val_acc = metric(ds, "val/acc").values
    assert np.isnan(val_acc[0]) and np.isfinite(val_acc[[2, 4]]).all()
    assert ds.a.sel(layer="net.0").values[-1] != 1.0  # learnable a trained and recorded


def test_lightning_step_records_follow_optimizer_steps_under_accumulation(tmp_path):
    from wcviz.integrations.lightning import WcvizCallback

    L, module = _lightning_module()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        accumulate_grad_batches=2,
                        callbacks=[WcvizCallback(tmp_path / "run", every_n_steps=1)])
    trainer.fit(module, _loader())  # 4 batches: optimizer steps after batches 2 and 4
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.epoch.values.tolist() == [0, 0.5, 1] and ds.step.values.tolist() == [0, 1, 2]


def test_lightning_fit_that_raises_marks_the_run_failed(tmp_path):
    from wcviz.integrations.lightning import WcvizCallback

    L, module = _lightning_module(fail_at_epoch=1)
    with pytest.raises(RuntimeError, match="boom"):
        _trainer(L, tmp_path, WcvizCallback(tmp_path / "run")).fit(module, _loader())
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "failed" and ds.epoch.values.tolist() == [0, 1]


# ------------------------------------------------------------------ Hugging Face Trainer

def _gpt2(transformers):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2,
                                     n_head=2)
    return config, transformers.GPT2LMHeadModel(config)


def _token_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, 40, (n, 12), generator=g)]


def test_hf_trainer_callback_records_companded_gpt2(tmp_path):
    transformers = framework("transformers")
    framework("accelerate")
    from wcviz.integrations.huggingface import WcvizCallback

    config, model = _gpt2(transformers)
    with pytest.warns(UserWarning, match=r"lm_head\.weight \(tied to transformer\.wte\.weight"):
        wcviz.compand(model, "arctan", a=1.0, b=0.5, learnable="fine")
    args = transformers.TrainingArguments(
        tmp_path / "out", num_train_epochs=2, per_device_train_batch_size=4, logging_steps=1,
        eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = transformers.Trainer(
        model, args, train_dataset=_token_data(16, 0), eval_dataset=_token_data(8, 1),
        optimizers=(wcviz.build_optimizer(model, "adamw", lr=1e-3), None),
        callbacks=[WcvizCallback(tmp_path / "run", every_n_steps=2)])
    trainer.train()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "finished"
    assert ds.epoch.values.tolist() == [0, 0.5, 1, 1.5, 2]
    kinds = dict(zip(ds.layer.values.tolist(), ds.layer_kind.values.tolist()))
    assert kinds["transformer.h.0.attn.c_attn"] == "Conv1D"  # Q/K/V of GPT-2's attention
    assert kinds["transformer.h.1.attn.c_proj"] == "Conv1D" and "lm_head" in kinds
    assert np.isfinite(ds.a.sel(layer="transformer.h.0.attn.c_attn").values).all()
    names = set(metric_names(ds))
    assert {"loss", "eval_loss", "epoch", "learning_rate"} <= names
    assert np.isfinite(metric(ds, "eval_loss").values[[2, 4]]).all()
    assert metric(ds, "epoch").values[2] == 1.0  # the Trainer's own "epoch", not the axis
    ids = _token_data(1, 2)[0]["input_ids"][None]
    trained = model.eval()(ids).logits
    plain = transformers.GPT2LMHeadModel(config).eval()
    plain.load_state_dict(wcviz.bake(model).state_dict(), strict=True)
    torch.testing.assert_close(plain(ids).logits, trained, rtol=1e-5, atol=1e-5)


def test_hf_training_that_raises_inside_the_callbacks_with_marks_the_run_failed(tmp_path):
    transformers = framework("transformers")
    framework("accelerate")
    from wcviz.integrations.huggingface import WcvizCallback

    class Boom(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("boom")

    _, model = _gpt2(transformers)
    args = transformers.TrainingArguments(
        tmp_path / "out", num_train_epochs=2, per_device_train_batch_size=4, logging_steps=1,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
    callback = WcvizCallback(tmp_path / "run", every_n_steps=2)
    trainer = transformers.Trainer(model, args, train_dataset=_token_data(16, 0),
                                   callbacks=[callback, Boom()])
    with pytest.raises(RuntimeError, match="boom"), callback:
        trainer.train()
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.attrs["status"] == "failed" and ds.epoch.values.tolist() == [0, 0.5]


# ------------------------------------------------------------------ timm

@pytest.mark.slow
def test_timm_model_compands_trains_records_and_bakes(tmp_path):
    timm = framework("timm")
    torch.manual_seed(0)
    model = wcviz.compand(timm.create_model("resnet18", pretrained=False, num_classes=5))
    opt = wcviz.build_optimizer(model, "sgd", lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    with wcviz.Recorder(model, tmp_path / "run", threads=1) as rec:
        rec.record(0)
        for step in range(1, 3):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(), loss.backward(), opt.step()
            rec.record(step, {"train_loss": loss})
    ds = wcviz.open_run(tmp_path / "run")
    assert ds.sizes["layer"] == 21 and ds.layer.values[0] == "conv1"  # 20 convs + fc
    assert ds.epoch.values.tolist() == [0, 1, 2]
    model.eval()
    out = model(x)
    plain = timm.create_model("resnet18", pretrained=False, num_classes=5).eval()
    plain.load_state_dict(wcviz.bake(model).state_dict(), strict=True)
    torch.testing.assert_close(plain(x), out, rtol=1e-4, atol=1e-5)
