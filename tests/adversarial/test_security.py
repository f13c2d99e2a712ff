"""Adversarial cases: code execution through data files, reads outside the dashboard's root,
and the dashboard server's options (issue 10)."""

import os
import pickle

import numpy as np
import pytest

from tests.test_datasets import _write_cifar10
from training.datasets import load_data
from wcviz.errors import WcvizError


class _Payload:
    """Unpickling this calls os.system: what a crafted CIFAR batch would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["data_batch_1", "test_batch"])
def test_crafted_cifar_batch_runs_no_code(tmp_path, where):
    _write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    with open(tmp_path / "cifar-10-batches-py" / where, "wb") as fh:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1],
                     "x": _Payload(marker)}, fh)
    with pytest.raises(WcvizError, match=r"corrupt .*os.*system is not allowed"):
        load_data("cifar10", tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_real_format_batches_still_load(tmp_path, protocol):
    images, labels = _write_cifar10(tmp_path)
    base = tmp_path / "cifar-10-batches-py"
    for f in base.iterdir():  # rewritten with the protocol CIFAR's python-2 pickles use
        entry = pickle.loads(f.read_bytes())
        f.write_bytes(pickle.dumps(entry, protocol=protocol))
    data = load_data("cifar10", tmp_path, val_fraction=0.2, split_seed=1)
    assert len(data.train) + len(data.val) == len(labels)
