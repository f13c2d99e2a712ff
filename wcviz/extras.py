"""The optional extras of ``pip install wcviz``: which packages each one brings, and one clear
error when a part of wcviz needs an extra that is not installed.

``pip install wcviz`` brings only what :func:`wcviz.compand`, :class:`wcviz.Recorder` and
:func:`wcviz.open_run` need (torch, numpy, zarr, xarray, google-crc32c). Everything else is an
extra, declared in ``pyproject.toml``; :data:`EXTRAS` names the modules each extra makes
importable: the one place that maps a package to its extra. A command or module that needs one
calls :func:`require` first, with an extra or one module of an extra::

    require("dash", needed_by="the dashboard")
    # without streamlit: MissingExtra("the dashboard needs streamlit, which is not installed;
    #                                  pip install 'wcviz[dash]'")
    require("sklearn", needed_by="the digits dataset")  # missing: pip install 'wcviz[train]'

:class:`MissingExtra` is a :class:`~wcviz.errors.WcvizError` (the CLI prints it as one line and
exits with status 2) and a :class:`ModuleNotFoundError` (library code that tries an optional
import with ``except ImportError`` keeps working; ``err.name`` is the missing module).

Like :mod:`wcviz.errors`, this module sits below every layer and imports nothing of wcviz else.
"""

from __future__ import annotations

import importlib.util

from wcviz.errors import WcvizError

#: extra -> the top-level modules it makes importable that wcviz imports (pyproject.toml lists
#: the distributions and their versions; ``tests/test_light_install.py`` checks the two agree).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torchvision", "sklearn", "tqdm"),
    "figures": ("matplotlib",),
    # The dashboard draws its figure downloads with wcviz.report.plots (matplotlib).
    "dash": ("streamlit", "altair", "matplotlib"),
    "stats": ("scipy",),
    # `wcviz report`: one self-contained HTML file (Altair's charts, the JS bundle inlined).
    "report": ("altair", "vl_convert"),
    # MLflow's client; its SQLite store needs sqlalchemy and alembic, which mlflow-skinny leaves out.
    "mlflow": ("mlflow", "sqlalchemy", "alembic"),
    "lightning": ("lightning",),
    "transformers": ("transformers", "accelerate"),
    "timm": ("timm",),
    "tensorboard": ("tensorboard",),
    "pyarrow": ("pyarrow",),
    "slurm": ("submitit",),
    "mnist1d": ("mnist1d",),
    "docs": ("mkdocs", "material", "mkdocstrings"),
}


class MissingExtra(WcvizError, ModuleNotFoundError):
    """An optional package is not installed; the message names the extra that brings it.

    Attributes:
        name: the first missing module (as :class:`ModuleNotFoundError` has it).
        extras: the extras to install.
    """

    def __init__(self, message: str, name: str, extras: tuple[str, ...]):
        super().__init__(message)
        self.msg = message
        self.name = name
        self.extras = extras


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it, or a half-removed package
        return False


def extra_of(module: str) -> str:
    """The first extra of :data:`EXTRAS` that brings ``module`` (``"sklearn"`` -> ``"train"``)."""
    for extra, modules in EXTRAS.items():
        if module in modules:
            return extra
    raise KeyError(f"{module!r} is in no extra of wcviz; add it to wcviz.extras.EXTRAS")


def require(*names: str, needed_by: str) -> None:
    """Raise :class:`MissingExtra` unless everything ``names`` stands for is installed.

    Args:
        names: extras of :data:`EXTRAS` (``"dash"``: all its modules), or single modules that
            one of them brings (``"sklearn"``: only that module, its extra named in the message).
        needed_by: what needs them, as the start of the message (``"the dashboard"``).

    Raises:
        MissingExtra: "<needed_by> needs <modules>, which <is/are> not installed;
            pip install 'wcviz[<the extras to install>]'".
    """
    lacking: dict[str, list[str]] = {}  # extra -> its missing modules (two names may share one)
    for n in names:
        modules = EXTRAS[n] if n in EXTRAS else (n,)
        extra = n if n in EXTRAS else extra_of(n)
        lacking.setdefault(extra, []).extend(m for m in modules if not installed(m))
    missing = list(dict.fromkeys(m for modules in lacking.values() for m in modules))
    if not missing:
        return
    to_install = tuple(e for e, modules in lacking.items() if modules)
    verb = "is" if len(missing) == 1 else "are"
    raise MissingExtra(f"{needed_by} needs {', '.join(missing)}, which {verb} not installed; "
                       f"pip install 'wcviz[{','.join(to_install)}]'", missing[0], to_install)
