"""Real engines the tests need: skipped with the reason on a machine without them, a failure
where CI requires them (it installs every one, so a missing engine there is a broken install).

    WCVIZ_REQUIRE_BROWSER=1      Debian's chromium + chromium-driver (tests/test_dash_e2e.py)
    WCVIZ_REQUIRE_SLURM=1        Debian's slurm-wlm + munge (tests/test_slurm.py)
    WCVIZ_REQUIRE_FRAMEWORKS=1   the '[test]' extra's frameworks: lightning, transformers,
                                 timm, tensorboard, pyarrow, submitit, mnist1d
"""

from __future__ import annotations

import importlib
import os

import pytest


def unavailable(reason: str, require_var: str):
    """Skip the calling test with ``reason``, or fail it when ``require_var`` is "1"."""
    if os.environ.get(require_var) == "1":
        pytest.fail(f"{reason} ({require_var}=1)")
    pytest.skip(reason)


def framework(module: str):
    """Import an optional framework module for a test (see the module docstring)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        unavailable(f"needs {module} (pip install -e '.[test]'): {err}", "WCVIZ_REQUIRE_FRAMEWORKS")
