"""The house: the layers of wcviz import only downward, nothing imports in a cycle, every
package is installed, and a user's own ``training/`` or ``app/`` folder never shadows ours."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Repository folder -> the installed package it is (pyproject's package-dir).
FOLDERS = {"wcviz": "wcviz", "training": "wcviz.training", "app": "wcviz.app"}
#: Layer of each package, bottom up: a module imports from its own layer or lower ones.
LAYERS = {
    "wcviz.errors": 0,
    "wcviz.extras": 0,
    "wcviz.reparam": 1,
    "wcviz.record": 2,
    "wcviz.report": 3,
    "wcviz.integrations": 4,
    "wcviz.cli": 5,
    "wcviz.training": 6,
    "wcviz.app": 6,
}


def _modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the three folders."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported wcviz module, inside a function?) for every import of one module, the
    imports inside functions included."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                # `from pkg import sub` imports the submodule pkg.sub
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                           for a in child.names]
            found.extend((t, nested) for t in targets if t.split(".")[0] in ("wcviz", "training", "app"))
            visit(child, nested)

    visit(tree, False)
    return found


def _layer(module: str) -> int | None:
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None  # the wcviz package's own __init__ / __main__ (the public facade)


def test_every_module_imports_its_layer_or_below():
    wrong = []
    for name, path in MODULES.items():
        mine = _layer(name)
        for target, in_function in _imports(name, path):
            if target.split(".")[0] in ("training", "app"):
                wrong.append(f"{name} imports {target} (import wcviz.{target} instead)")
                continue
            theirs = _layer(target)
            if mine is None or theirs is None or theirs <= mine:
                continue
            # the CLI starts the training and dashboard packages inside the command that runs them
            if name.startswith("wcviz.cli") and theirs == 6 and in_function:
                continue
            wrong.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {name: {t for t, _ in _imports(name, path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    # A package's __init__ re-exporting its own submodules is no cycle of concepts.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    cycles, state = [], {}

    def walk(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_pyproject_lists_every_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {package: folder for folder, package in FOLDERS.items()}
    on_disk = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert sorted(config["packages"]) == sorted(on_disk)


def test_each_package_says_what_it_holds_and_may_import():
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name.count(".") == 1 and name not in (
                "wcviz.training", "wcviz.app"):
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "May import" in doc, f"{name}'s docstring does not say what it may import"


def _shadowing_folder(tmp_path: Path) -> Path:
    """A working folder whose own training/ and app/ packages raise when imported."""
    for name in ("training", "app"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise RuntimeError('the user\\'s own {name}/ was imported')\n")
    return tmp_path


def _wcviz(cwd: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wcviz", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", ["train", "demo", "dash", "sweep", "reproduce"])
def test_help_ignores_a_users_own_training_and_app_folders(tmp_path, command):
    out = _wcviz(_shadowing_folder(tmp_path), command, "--help")
    assert out.returncode == 0, out.stderr
    assert "imported" not in out.stderr and f"usage: wcviz {command}" in out.stdout


@pytest.mark.slow
def test_a_run_ignores_a_users_own_training_and_app_folders(tmp_path):
    cwd = _shadowing_folder(tmp_path)
    out = _wcviz(cwd, "train", "--preset", "digits-cnn", "--epochs", "1", "--runs", "runs",
                 "--run-id", "r", "--no-progress", timeout=600)
    assert out.returncode == 0, out.stderr
    import wcviz

    ds = wcviz.open_run(cwd / "runs" / "r")
    assert ds.attrs["status"] == "finished" and ds.sizes["epoch"] == 2  # init + one epoch


def test_public_api_and_report_modules_are_attributes_of_wcviz():
    code = ("import wcviz, sys\n"
            "names = ['compand', 'bake', 'build_optimizer', 'Recorder', 'open_run', 'open_runs',\n"
            "         'WcvizError']\n"
            "assert all(callable(getattr(wcviz, n)) for n in names)\n"
            "assert callable(wcviz.plots.band_plot) and callable(wcviz.analysis.run_label)\n"
            "assert wcviz.plots is sys.modules['wcviz.report.plots']\n"
            "assert {'plots', 'Recorder'} <= set(dir(wcviz))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
