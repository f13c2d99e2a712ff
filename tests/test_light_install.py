"""The light install: ``pip install wcviz`` (no extra) companders, records and reads runs, and
each command or module that needs an extra says which one in one line.

Every extra is made unimportable in child processes by a ``sys.meta_path`` finder installed from
a ``sitecustomize.py`` on ``PYTHONPATH`` (so ``python -m wcviz`` and its own children get it too).
In a venv made with ``pip install -e .`` alone the same tests run against the real absence.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from wcviz.extras import EXTRAS, MissingExtra, require

ROOT = Path(__file__).resolve().parents[1]

#: What `pip install wcviz` installs: what compand, Recorder and open_run need.
CORE = {"torch", "numpy", "zarr", "google-crc32c", "xarray"}

#: Top-level modules of every extra (and of the test/docs tools), blocked in the children.
BLOCKED = ("matplotlib", "seaborn", "scipy", "streamlit", "altair", "vl_convert", "mlflow",
           "sqlalchemy", "alembic",
           "sklearn", "torchvision",
           "tqdm", "lightning", "transformers", "timm", "tensorboard", "pyarrow", "submitit",
           "mnist1d", "selenium", "mkdocs")

# Every finder of ``sys.meta_path`` is wrapped to find nothing of an extra: ``find_spec`` answers
# None and ``import`` raises ModuleNotFoundError, exactly as when it is not installed. (A finder
# that raises from ``find_spec`` is not the same: torch._dynamo probes optional modules with
# ``importlib.util.find_spec`` and expects None for absent ones.)
SITECUSTOMIZE = f"""
import sys

BLOCKED = {BLOCKED!r}


class BlockExtras:
    \"\"\"A finder that finds what ``finder`` finds, except the modules of an extra.\"\"\"

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, name):  # invalidate_caches, find_distributions...
        return getattr(self.finder, name)


sys.meta_path[:] = [BlockExtras(finder) for finder in sys.meta_path]
"""

#: The core, used for real with every extra blocked: compand, record 2 epochs, read them back.
CORE_SCRIPT = r"""
import importlib, json, sys
import numpy as np
import torch
from torch import nn

import wcviz
from wcviz.extras import MissingExtra

run = sys.argv[1]
torch.manual_seed(0)
model = wcviz.compand(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)), method="arctan")
opt = wcviz.build_optimizer(model, "adam", lr=0.05)
x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
with wcviz.Recorder(model, run, attrs={"method": "arctan"}) as rec:
    rec.record(0)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    rec.record(1, metrics={"train_loss": loss.item()})

ds = wcviz.open_run(run)
assert ds.epoch.values.tolist() == [0.0, 1.0], ds.epoch.values
assert ds.layer.values.tolist() == ["0", "2"], ds.layer.values
for i, name in enumerate(["0", "2"]):
    w = model[int(name)].weight.detach().double().flatten()
    q = torch.quantile(w, torch.tensor(ds["quantile"].values, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ds["weight_quantile"].isel(epoch=1, layer=i).values, q, rtol=1e-5)
assert (ds["a"].values == 1.0).all() and (ds["b"].values == 1.0).all()
assert np.isnan(ds["train_loss"].values[0]) and ds["train_loss"].values[1] == loss.item()
assert ds.attrs["status"] == "finished"

# The parts that need an extra say which one; the core's analysis does not need one.
importlib.import_module("wcviz.report.analysis")
refused = {}
for module in ("wcviz.report.plots", "wcviz.report.style", "wcviz.report.claims",
               "wcviz.integrations.lightning", "wcviz.integrations.huggingface",
               "wcviz.training.loop", "wcviz.training.slurm"):
    try:
        importlib.import_module(module)
    except MissingExtra as err:
        assert isinstance(err, ModuleNotFoundError), type(err).__mro__
        refused[module] = str(err)
print(json.dumps({"modules": sorted(m.split(".")[0] for m in sys.modules), "refused": refused}))
"""


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory) -> dict:
    """Environment for a child process in which no extra can be imported."""
    folder = tmp_path_factory.mktemp("block_extras")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def core_run(blocked_env, tmp_path_factory):
    """The run the core script records without any extra, and what the script printed."""
    run = tmp_path_factory.mktemp("light") / "run"
    proc = subprocess.run([sys.executable, "-c", CORE_SCRIPT, str(run)], env=blocked_env,
                          capture_output=True, text=True, timeout=300, cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    return run, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_core_records_and_reads_without_any_extra(core_run):
    run, out = core_run
    assert (run / "record.zarr").is_dir()
    assert not set(out["modules"]) & set(BLOCKED)


@pytest.mark.slow
@pytest.mark.parametrize("module, extra", [
    ("wcviz.report.plots", "figures"), ("wcviz.report.style", "figures"),
    ("wcviz.report.claims", "stats"), ("wcviz.integrations.lightning", "lightning"),
    ("wcviz.integrations.huggingface", "transformers"), ("wcviz.training.loop", "train"),
    ("wcviz.training.slurm", "slurm"),
])
def test_module_needing_an_extra_names_it(core_run, module, extra):
    message = core_run[1]["refused"][module]
    assert message.startswith(f"{module} needs ")
    assert message.endswith(f"pip install 'wcviz[{extra}]'")


@pytest.mark.slow
def test_core_imports_no_extra_that_its_dependencies_do_not():
    """In the full install: wcviz's core loads no extra's module beyond what torch, zarr and
    xarray load on their own (torch.hub tries tqdm, for one)."""
    probe = ("import sys; {}; import torch, numpy, zarr, xarray, google_crc32c; {}; "
             "print(sorted({{m.split('.')[0] for m in sys.modules}} & set({!r})))")
    deps = subprocess.run([sys.executable, "-c", probe.format("pass", "pass", BLOCKED)],
                          capture_output=True, text=True, check=True).stdout
    core = subprocess.run(
        [sys.executable, "-c", probe.format("import wcviz", "wcviz.compand; wcviz.Recorder; "
                                            "wcviz.open_run; wcviz.build_optimizer", BLOCKED)],
        capture_output=True, text=True, check=True).stdout
    assert core == deps


def _wcviz(argv: list[str], env: dict, cwd: Path, **names) -> subprocess.CompletedProcess:
    """``python -m wcviz ARGV`` in ``cwd``, with ``{name}`` in ARGV replaced from ``names``."""
    return subprocess.run([sys.executable, "-m", "wcviz", *(a.format(**names) for a in argv)],
                          env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


# Each command checks its extra right after parsing its arguments, before it reads or writes
# anything: RUN below need not exist. `train` and `sweep` import torch first (presets, the plan;
# `sweep --dry-run` works without the extra), `export` reads the run before choosing its
# writer: those take seconds.
@pytest.mark.parametrize("argv, extra", [
    (["dash", "{tmp}"], "dash"),
    (["figures", "{tmp}/run", "--out", "{tmp}/figs"], "figures"),
    (["figures", "{tmp}/run", "--sweep", "--out", "{tmp}/figs"], "figures"),
    (["demo", "--runs", "{tmp}/runs"], "train,figures,stats"),
    (["reproduce", "digits", "--runs", "{tmp}/runs"], "train,figures,stats"),
    (["compare", "{tmp}"], "stats"),
    (["table", "{tmp}"], "stats"),
    (["report", "{tmp}", "--out", "{tmp}/r.html"], "report"),
    (["import", "tensorboard", "{tmp}", "--runs", "{tmp}/runs"], "tensorboard"),
    pytest.param(["train", "--preset", "digits-cnn", "--runs", "{tmp}/runs"], "train",
                 marks=pytest.mark.slow),
    pytest.param(["sweep", "--preset", "digits-cnn", "--grid", "a=1,2", "--runs", "{tmp}/runs"],
                 "train", marks=pytest.mark.slow),
    pytest.param(["export", "{run}", "--format", "parquet", "--out", "{tmp}/t.parquet"],
                 "pyarrow", marks=pytest.mark.slow),
    pytest.param(["export", "{run}", "--format", "tensorboard", "--out", "{tmp}/tb"],
                 "tensorboard", marks=pytest.mark.slow),
])
def test_command_without_its_extra_says_which(request, blocked_env, tmp_path, argv, extra):
    run = request.getfixturevalue("core_run")[0] if "{run}" in argv else None
    proc = _wcviz(argv, blocked_env, tmp_path, tmp=tmp_path, run=run)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"wcviz {argv[0]}: error: ")
    assert lines[0].endswith(f"pip install 'wcviz[{extra}]'")
    assert not any((tmp_path / "runs").glob("*"))  # refused before any run was written


@pytest.mark.parametrize("argv", [
    ["dash", "--help"], ["demo", "--help"], ["train", "--help"], ["figures", "--help"],
    pytest.param(["inspect", "{run}"], marks=pytest.mark.slow),
    pytest.param(["export", "{run}", "--format", "csv"], marks=pytest.mark.slow),
])
def test_help_and_core_commands_work_without_extras(request, blocked_env, tmp_path, argv):
    run = request.getfixturevalue("core_run")[0] if "{run}" in argv else None
    proc = _wcviz(argv, blocked_env, tmp_path, run=run)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


# ----------------------------------------------------------------------------- pyproject.toml

def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _expanded(extras: dict, extra: str) -> set[str]:
    """Distribution names an extra installs, through its ``wcviz[...]`` references."""
    names = set()
    for requirement in extras[extra]:
        if _name(requirement) == "wcviz":
            inner = re.search(r"\[(.*)\]", requirement).group(1)
            for other in inner.split(","):
                names |= _expanded(extras, other.strip())
        else:
            names.add(_name(requirement))
    return names


def test_dependencies_are_exactly_the_core():
    assert {_name(r) for r in _project()["dependencies"]} == CORE


def test_all_holds_every_extra_and_test_holds_all():
    extras = _project()["optional-dependencies"]
    every = {name for name in extras if name not in ("all", "test", "bench")}
    assert every == set(EXTRAS)
    assert _expanded(extras, "all") == set().union(*(_expanded(extras, e) for e in every))
    assert {"pytest", "selenium"} | _expanded(extras, "all") == _expanded(extras, "test")
    assert "seaborn" not in _expanded(extras, "all")


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_extras_modules_come_with_their_extra(extra):
    """Each module :data:`wcviz.extras.EXTRAS` names is installed by that extra's distributions
    or by what they require (altair comes with streamlit)."""
    extras = _project()["optional-dependencies"]
    declared = _expanded(extras, extra)
    owners = importlib.metadata.packages_distributions()
    for module in EXTRAS[extra]:
        if module not in owners:
            pytest.skip(f"{module} is not installed here (a light install)")
        dists = {d.lower() for d in owners[module]}
        if dists & declared:
            continue
        pulled = {_name(r) for d in declared for r in (importlib.metadata.requires(d) or [])
                  if "extra ==" not in r}
        assert dists & pulled, f"{module} ({dists}) comes with no distribution of [{extra}]"


def test_require_names_the_extras_to_install(monkeypatch):
    import wcviz.extras

    absent = ("sklearn", "streamlit", "scipy")
    monkeypatch.setattr(wcviz.extras, "installed", lambda m: m not in absent)
    require("figures", "tqdm", needed_by="this")  # installed: nothing raised
    with pytest.raises(MissingExtra, match=r"^the digits dataset needs sklearn, which is not "
                                           r"installed; pip install 'wcviz\[train\]'$") as err:
        require("sklearn", needed_by="the digits dataset")
    assert err.value.name == "sklearn" and err.value.extras == ("train",)
    with pytest.raises(MissingExtra, match=r"needs streamlit, scipy, which are not installed; "
                                           r"pip install 'wcviz\[dash,stats\]'$"):
        require("figures", "dash", "stats", needed_by="this")
    for names in (("sklearn", "tqdm"), ("tqdm", "sklearn"), ("train", "tqdm")):  # one extra twice
        with pytest.raises(MissingExtra, match=r"needs sklearn, which is not installed; "
                                               r"pip install 'wcviz\[train\]'$"):
            require(*names, needed_by="this")
    with pytest.raises(KeyError, match="no extra"):
        require("no_such_module", needed_by="this")
