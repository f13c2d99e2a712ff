"""Suite-wide settings: CPU only, headless plotting, deterministic seeds."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # before any matplotlib import: no display here
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the suite is CPU only, even on a GPU box

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Each test starts from the same torch RNG state."""
    torch.manual_seed(0)
    yield
