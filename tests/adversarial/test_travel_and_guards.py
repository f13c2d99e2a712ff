"""Adversarial cases: silently wrong training or labels (issue 19, items 7-12).

The compander's settings travel with the weights, an optimizer follows ``bake``, the optimizer
guard survives ``copy.deepcopy`` and warns about torch's weight decay, a wrapped model is
labelled by what it wraps, a resume with another model is refused, and the Hugging Face
example trains with the paper's optimizer.
"""

import copy
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import wcviz
from wcviz.errors import WcvizError
from wcviz.reparam.compander import compander_of
from _engines import framework

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _net(width=6):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, width), nn.Tanh(), nn.Linear(width, 3))


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)


def _step(model, opt, seed=0):
    x, y = _batch(seed)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _saved(model) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    return buf


# ------------------------------------------------------------------ 7: settings travel

@pytest.mark.parametrize("saved,loading,shown", [
    (dict(method="arctan", a=0.5, b=0.3), dict(method="arctan", a=1.0, b=1.0),
     r"arctan a=0\.5 b=0\.3, this model is companded with arctan a=1 b=1"),
    (dict(method="arctan", a=1.0, b=1.0), dict(method="erf", a=1.0, b=1.0),
     r"arctan a=1 b=1.*erf a=1 b=1"),
    (dict(method="powerprop", alpha=2.0), dict(method="powerprop", alpha=3.0),
     r"powerprop alpha=2.*powerprop alpha=3"),
    (dict(method="arctan", learnable="fine"), dict(method="arctan", a=1.0, b=1.0),
     r"arctan learnable=fine.*arctan a=1 b=1"),
])
def test_a_state_dict_does_not_load_into_other_compander_settings(saved, loading, shown):
    source = wcviz.compand(_net(), **saved)
    target = wcviz.compand(_net(), **loading)
    state = torch.load(_saved(source), weights_only=True)  # as training/checkpoint.py loads
    with pytest.raises(WcvizError, match=f"^cannot load the state_dict of layer '0': it was "
                                         f"saved companded with {shown}; compand with the same "
                                         "settings before loading$"):
        target.load_state_dict(state, strict=True)


def test_the_same_settings_load_and_compute_the_same_function_after_dtype_changes():
    source = wcviz.compand(_net(), "arctan", a=0.5, b=0.3)
    target = wcviz.compand(_net(), "arctan", a=0.5, b=0.3).half().float()  # settings unmoved
    target.load_state_dict(torch.load(_saved(source), weights_only=True), strict=True)
    x = _batch()[0]
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


def test_a_state_dict_saved_before_settings_travelled_still_loads():
    source = wcviz.compand(_net(), "arctan", a=0.5, b=0.3)
    old = {k: v for k, v in source.state_dict().items() if not k.endswith("_extra_state")}
    target = wcviz.compand(_net(), "arctan", a=0.5, b=0.3)
    target.load_state_dict(old, strict=True)  # what an older wcviz saved: no settings in it
    x = _batch()[0]
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


# ------------------------------------------------------------------ 8: optimizer after bake

@pytest.mark.parametrize("name,make_torch", [
    ("adam", lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.1)),
    ("adamw", lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)),
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1)),
])
@pytest.mark.parametrize("learnable", [None, "fine"])
def test_an_optimizer_built_before_bake_then_steps_as_torch_does(name, make_torch, learnable):
    model = wcviz.compand(_net(), "arctan", 2.0, 1.0, learnable=learnable)
    lr = 0.1 if name == "sgd" else 1e-2
    opt = wcviz.build_optimizer(model, name, lr, weight_decay=0.1)
    wcviz.bake(model)
    twin = copy.deepcopy(model)
    ref = make_torch(twin.parameters())
    for seed in range(4):
        _step(model, opt, seed)
        _step(twin, ref, seed)
    for (pname, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=pname)


# ------------------------------------------------------------------ 9: guard survives deepcopy

def test_the_guard_follows_a_deepcopy_of_a_companded_model():
    model = wcviz.compand(_net(), "arctan", 2.0, 1.0, learnable="fine")
    twin = copy.deepcopy(model)
    scales = {id(p) for p in compander_of(twin[0]).scale_parameters()}
    without_scales = torch.optim.SGD([p for p in twin.parameters() if id(p) not in scales], lr=0.1)
    with pytest.raises(WcvizError, match="learnable a, b of layer '0' are not in this optimizer"):
        _step(twin, without_scales)
    with pytest.warns(RuntimeWarning, match="without the paper's modified step"):
        _step(twin, torch.optim.Adam(twin.parameters(), lr=1e-2))
    opt = wcviz.build_optimizer(twin, "adam", 1e-2)  # and the paper's optimizer on it trains a
    a = compander_of(twin[0]).scale_parameters()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _step(twin, opt)
    assert a.item() != 2.0 and compander_of(model[0]).scale_parameters()[0].item() == 2.0


# ------------------------------------------------------------------ 10: torch SGD with decay

@pytest.mark.parametrize("learnable,what", [
    (None, "decays the stored v of layer '0' instead of w"),
    ("fine", "decays the learnable a, b of layer '0'"),
])
def test_torch_sgd_with_weight_decay_is_warned_once(learnable, what):
    model = wcviz.compand(_net(), "arctan", 2.0, 1.0, learnable=learnable)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1)
    with pytest.warns(RuntimeWarning, match=re.escape(what)) as caught:
        _step(model, opt)
    assert len([w for w in caught if "weight_decay" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _step(model, opt)  # once per optimizer
        _step(model, torch.optim.SGD(model.parameters(), lr=0.1))  # no decay: the paper's SGD


# ------------------------------------------------------------------ 11: wrapped models, resume

@pytest.mark.parametrize("wrap", [nn.DataParallel, lambda m: torch.compile(m, backend="eager")])
def test_a_wrapped_companded_model_is_labelled_by_what_it_wraps(wrap, tmp_path):
    model = wcviz.compand(_net(), "arctan", 0.5, 0.3)
    with wcviz.Recorder(wrap(model), tmp_path / "run") as rec:
        rec.record(0)
    attrs = wcviz.open_run(tmp_path / "run").attrs
    assert (attrs["method"], attrs["a"], attrs["b"]) == ("arctan", 0.5, 0.3)


def _recorded(tmp_path, model):
    with wcviz.Recorder(model, tmp_path / "run") as rec:
        rec.record(0)
    return tmp_path / "run"


def test_resume_with_a_wider_layer_is_refused(tmp_path):
    run = _recorded(tmp_path, _net(6))
    with pytest.raises(WcvizError, match=r"^cannot resume .*: layer '0' has 400 weights, the "
                                         r"stored run 24; use the same model or a new run dir"):
        wcviz.Recorder(_net(100), run, resume=True)
    assert wcviz.open_run(run).attrs["status"] == "finished"  # left as it was


def test_resume_with_another_method_is_refused(tmp_path):
    run = _recorded(tmp_path, _net())
    with pytest.raises(WcvizError, match=r"^cannot resume .*: the model's method is 'arctan', "
                                         r"the stored run's 'none'; use the same model"):
        wcviz.Recorder(wcviz.compand(_net(), "arctan"), run, resume=True)
    rec = wcviz.Recorder(_net(), run, resume=True)  # the same model resumes
    rec.finish()


# ------------------------------------------------------------------ 12: the Hugging Face example

def _example(page: Path, name: str) -> str:
    text = page.read_text()
    found = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert found, f"no example {name!r} in {page}"
    return found.group(1)


@pytest.mark.slow
def test_the_hugging_face_example_trains_with_the_paper_optimizer(tmp_path, monkeypatch):
    framework("transformers")
    framework("accelerate")
    code = _example(DOCS / "guide" / "frameworks.md", "huggingface")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, "frameworks.md", "exec"), {})
    assert not [w for w in caught if "modified step" in str(w.message)]
    ds = wcviz.open_run(tmp_path / "runs" / "gpt2")
    assert ds.attrs["status"] == "finished" and ds.attrs["method"] == "arctan"
    assert np.isfinite(ds.weight_std.values).all()
