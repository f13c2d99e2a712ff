"""Suite-wide settings: CPU only, headless plotting, deterministic seeds."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # before any matplotlib import: no display here
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the suite is CPU only, even on a GPU box
# The commands tested in this process would make it keep all freed memory (its malloc setting
# is process-wide: wcviz.training.allocator); tests/test_allocator.py tests that in children.
os.environ.setdefault("WCVIZ_MALLOC", "system")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Each test starts from the same torch RNG state."""
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny nets: a second thread gains nothing on them,
    and on a 2-core machine it competes with the subprocesses those tests start."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
