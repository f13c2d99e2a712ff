"""The README and the docs site (docs/**/*.md): their Python code blocks run as shown, the names
they cite exist, the README stays a front page, and the site builds with ``mkdocs build --strict``.

Every ```python block of a page runs, in page order, each in a fresh process, all in one
temporary folder per page (so a block may read what an earlier block of its page wrote, e.g. a
run it recorded). Two HTML comments on the line right before a block change that:

    <!-- not run: REASON -->   the block needs what a test machine lacks (a cluster, several
                               processes, a GPU); it is counted, not run
    <!-- example: NAME -->     a framework example, run by ``test_framework_example_runs`` with
                               checks of its own (the README's three: ``readme-example: NAME``)

Any other comment right before a block is an error, so that a misspelt marker cannot skip a
block silently.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import pytest

import wcviz
from _engines import framework, unavailable

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
README_MAX_BYTES = 12_000
#: The README's two commands, exactly (``.ci/run`` runs the second one).
DEMO_COMMAND = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[all]' "
                "&& wcviz demo")
TEST_COMMAND = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' "
                "&& pytest")
#: Frameworks a block may import: missing, its page's test is skipped (a failure in CI).
FRAMEWORKS = ("lightning", "transformers", "timm", "tensorboard", "pyarrow", "submitit", "mnist1d")

MARK = re.compile(r"<!-- (?:(?P<kind>not run|example|readme-example): (?P<what>[^>]*?)) -->$")


@dataclass
class Block:
    page: Path
    line: int
    code: str
    not_run: str | None = None  # the reason
    example: str | None = None  # the name

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The ```python blocks of ``page`` with the marker on the line before each."""
    text, found = page.read_text(), []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.M | re.S):
        start = match.start()
        line = text.count("\n", 0, start) + 1
        before = text[:start].rstrip("\n").rsplit("\n", 1)[-1] if start else ""
        block = Block(page, line, match.group(1))
        if before.startswith("<!--"):
            mark = MARK.match(before)
            assert mark, f"{block}: unknown marker {before!r} (see tests/test_docs_examples.py)"
            if mark["kind"] == "not run":
                block.not_run = mark["what"]
            else:
                block.example = mark["what"]
        found.append(block)
    return found


ALL = [block for page in PAGES for block in blocks(page)]


def test_blocks_are_found_and_markers_are_spelt_right():
    """A parser or marker mistake shows here, not as a suite that runs nothing."""
    assert len(ALL) >= 15, [str(b) for b in ALL]
    not_run = [b for b in ALL if b.not_run]
    assert len(not_run) <= len(ALL) // 4, [str(b) for b in not_run]
    assert all(b.not_run.strip() for b in not_run), "a not-run block names its reason"
    text = "\n".join(page.read_text() for page in PAGES)
    # Every marker in the pages sits right before a block (a stray one means a missed block).
    markers = re.findall(r"<!-- (?:not run|example|readme-example):", text)
    assert len(markers) == sum(1 for b in ALL if b.not_run or b.example)


def test_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.encode()) <= README_MAX_BYTES, len(text.encode())
    assert DEMO_COMMAND in text and TEST_COMMAND in text
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text
    examples = {b.example: b for b in blocks(README) if b.example}
    assert sorted(examples) == ["compand", "read", "record"]
    assert all(len(b.code.strip().splitlines()) <= 10 for b in examples.values())


def test_ci_runs_the_readme_test_command():
    """``.ci/run`` installs what the README's test command installs and runs pytest."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test" in ci and re.search(r"\bpytest\b", ci)
    assert "mkdocs build --strict" in ci


def test_relative_links_of_the_readme_exist():
    for target in re.findall(r"\]\((?!https?://)([^)#\s]+)", README.read_text()):
        assert (ROOT / target).exists(), target


def _resolves(name: str) -> bool:
    """``wcviz.a.b.c``: a module, or an attribute of the longest importable prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


#: Names on the pages that look like Python but are not: the MLflow tags an export writes.
NOT_PYTHON = {"wcviz.path", "wcviz.run_id"}


def test_every_wcviz_name_on_the_pages_exists():
    """Module, function and constant names cited in the text are the code's names."""
    text = "\n".join(page.read_text() for page in PAGES)
    names = set(re.findall(r"\bwcviz(?:\.[A-Za-z_]\w*)+", text)) - NOT_PYTHON
    assert len(names) >= 20
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, missing


def test_file_paths_on_the_pages_exist():
    text = "\n".join(page.read_text() for page in PAGES)
    paths = set(re.findall(r"`((?:wcviz|training|app|benchmarks|tests)/[\w/]+\.py)`", text))
    assert paths, "the pages name source files"
    assert not [p for p in paths if not (ROOT / p).exists()]


def _env(home: Path) -> dict:
    return {"PYTHONPATH": str(ROOT), "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
            "HOME": str(home), "MPLBACKEND": "Agg"}


def _needs_frameworks(code: str) -> None:
    for module in re.findall(r"^\s*(?:import|from) (\w+)", code, flags=re.M):
        if module in FRAMEWORKS:
            framework(module)


RUN_PAGES = [page for page in PAGES
             if any(not (b.not_run or b.example) for b in blocks(page))
             or page == README]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run_as_shown(page, tmp_path):
    page_blocks = blocks(page)
    # The README's examples are its page's blocks: the later ones read what the first wrote.
    to_run = [b for b in page_blocks
              if not b.not_run and (page == README or not b.example)]
    for block in to_run:
        _needs_frameworks(block.code)
    for block in to_run:
        proc = subprocess.run([sys.executable, "-c", block.code], cwd=tmp_path, text=True,
                              capture_output=True, timeout=600, env=_env(tmp_path))
        assert proc.returncode == 0, f"{block} failed:\n{proc.stderr[-3000:]}"


FRAMEWORK_EXAMPLES = {b.example: b for b in ALL if b.example and b.page != README}


@pytest.mark.slow
@pytest.mark.parametrize("name,package,layer", [
    ("lightning", "lightning", "layer"),
    ("huggingface", "transformers", "transformer.h.0.attn.c_attn"),
    ("timm", "timm", "conv1"),
])
def test_framework_example_runs(name, package, layer, tmp_path):
    framework(package)
    proc = subprocess.run([sys.executable, "-c", FRAMEWORK_EXAMPLES[name].code], cwd=tmp_path,
                          text=True, capture_output=True, timeout=600, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = next((tmp_path / "runs").iterdir())
    ds = wcviz.open_run(run)
    assert ds.attrs["status"] == "finished" and ds.sizes["epoch"] >= 3
    assert layer in ds.layer.values.tolist()


def test_framework_examples_are_there_and_short():
    assert sorted(FRAMEWORK_EXAMPLES) == ["huggingface", "lightning", "timm"]
    assert all(len(b.code.strip().splitlines()) <= 10 for b in FRAMEWORK_EXAMPLES.values())


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: every link, anchor, page and API docstring resolves."""
    if shutil.which("mkdocs", path=os.path.dirname(sys.executable)) is None:
        unavailable("needs mkdocs, mkdocs-material and mkdocstrings[python] "
                    "(pip install -e '.[docs]')", "WCVIZ_REQUIRE_FRAMEWORKS")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, text=True, capture_output=True,
                          timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "api.html").read_text().count("compand") > 3
