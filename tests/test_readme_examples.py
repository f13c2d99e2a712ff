"""The README's framework examples run exactly as shown (each in a fresh process)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import wcviz
from _engines import framework

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> dict[str, str]:
    """name -> code of every ```python block right after a ``<!-- readme-example: NAME -->``."""
    pattern = r"<!-- readme-example: (\w+) -->\n```python\n(.*?)```"
    return dict(re.findall(pattern, README.read_text(), flags=re.S))


def test_examples_are_there_and_short():
    found = examples()
    assert sorted(found) == ["huggingface", "lightning", "timm"]
    assert all(len(code.strip().splitlines()) <= 10 for code in found.values())


@pytest.mark.slow
@pytest.mark.parametrize("name,package,layer", [
    ("lightning", "lightning", "layer"),
    ("huggingface", "transformers", "transformer.h.0.attn.c_attn"),
    ("timm", "timm", "conv1"),
])
def test_example_runs_as_shown(name, package, layer, tmp_path):
    framework(package)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", examples()[name]], cwd=tmp_path, text=True,
                          capture_output=True, timeout=600,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next((tmp_path / "runs").iterdir())
    ds = wcviz.open_run(run)
    assert ds.attrs["status"] == "finished" and ds.sizes["epoch"] >= 3
    assert layer in ds.layer.values.tolist()
