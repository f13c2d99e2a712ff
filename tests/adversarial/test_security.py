"""Adversarial cases: code execution through data files, reads outside the dashboard's root,
and the dashboard server's options (issue 10)."""

import os
import pickle

import numpy as np
import pytest

from test_datasets import _write_cifar10
from wcviz.training.datasets import load_data
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


# ---------------------------------------------------------------- dashboard confinement

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from wcviz.app import data  # noqa: E402
from test_app import charts, dashboard, select, write_run  # noqa: E402


def _outside_store(tmp_path) -> Path:
    """A foreign store outside the root with tell-tale attributes and data."""
    write_run(tmp_path / "outside" / "secret", n_records=2, seed=4242).finish()
    return tmp_path / "outside" / "secret" / "record.zarr"


def _first_chunk(array: Path) -> Path:
    return min(p for p in (array / "c").rglob("*") if p.is_file())


def _symlink_root_meta(run, outside):
    meta = run / "record.zarr" / "zarr.json"
    meta.unlink()
    meta.symlink_to(outside / "zarr.json")


def _symlink_array(run, outside):
    import shutil

    shutil.rmtree(run / "record.zarr" / "val_acc")
    (run / "record.zarr" / "val_acc").symlink_to(outside / "val_acc", target_is_directory=True)


def _symlink_chunk(run, outside):
    chunk = _first_chunk(run / "record.zarr" / "val_acc")
    chunk.unlink()
    chunk.symlink_to(_first_chunk(outside / "val_acc"))


def _hardlink_chunk(run, outside):
    chunk = _first_chunk(run / "record.zarr" / "val_acc")
    chunk.unlink()
    os.link(_first_chunk(outside / "val_acc"), chunk)


TRICKS = {"symlinked zarr.json": (_symlink_root_meta, "is a symlink"),
          "symlinked array folder": (_symlink_array, "is a symlink"),
          "symlinked chunk": (_symlink_chunk, "is a symlink"),
          "hard-linked chunk": (_hardlink_chunk, "2 hard links")}


@pytest.mark.parametrize("trick", list(TRICKS))
def test_dashboard_reads_no_file_outside_its_root(tmp_path, trick):
    outside = _outside_store(tmp_path)
    root = tmp_path / "root"
    write_run(root / "ok", n_records=2).finish()
    write_run(root / "tricked", n_records=2).finish()
    damage, match = TRICKS[trick]
    damage(root / "tricked", outside)
    scan = data.scan(root)
    listed = scan.by_id()
    assert "ok" in listed and data.dataset(listed["ok"]) is not None
    if "tricked" in listed:  # listed from its own zarr.json: the open refuses the links
        assert dict(listed["tricked"].attrs).get("seed") != 4242
        with pytest.raises(WcvizError, match=match):
            data.dataset(listed["tricked"])
    else:  # its attributes were a link: not listed, reported
        assert any(match in p.error for p in scan.problems)
    assert not data.filter_table(data.runs_table(scan, accuracy=False), "4242").size


def test_dashboard_page_shows_the_tricked_run_as_a_line_and_the_healthy_chart(tmp_path,
                                                                            monkeypatch):
    outside = _outside_store(tmp_path)
    root = tmp_path / "root"
    write_run(root / "ok", n_records=2).finish()
    write_run(root / "tricked", n_records=2).finish()
    _symlink_chunk(root / "tricked", outside)
    at = dashboard(monkeypatch, root)
    at.run()
    select(at, "ok", "tricked", page="metrics")
    assert any("tricked" in e.value and "symlink" in e.value for e in at.error)
    assert set(charts(at)[0][1]["run"]) == {"ok"}


# ---------------------------------------------------------------- dashboard server options


def _upgrade(port: int, host: str, origin: str) -> str:
    """The status line of a WebSocket upgrade to Streamlit's stream with these headers."""
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        return conn.recv(4096).decode("latin1").split("\r\n", 1)[0]


@pytest.mark.slow
def test_dash_server_refuses_a_rebound_host_name(tmp_path):
    from _cli import free_port
    from test_dash_e2e import _stop, _wait_healthy

    write_run(tmp_path / "runs" / "ok", n_records=2).finish()
    port, log = free_port(), tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "wcviz", "dash", str(tmp_path / "runs"),
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_healthy(f"http://localhost:{port}", proc, log)
        evil = "rebind.attacker.test"
        assert " 101 " not in _upgrade(port, f"{evil}:{port}", f"http://{evil}:{port}")
        assert " 101 " in _upgrade(port, f"localhost:{port}", f"http://localhost:{port}")
    finally:
        _stop(proc)


def test_dash_command_line_has_the_safe_server_options(tmp_path):
    from wcviz.cli import dash

    cmd = dash.streamlit_command(dash.app_entry(), tmp_path, "localhost", 8765, ["dash.example"])
    assert {"--client.showErrorDetails=none", "--server.enableXsrfProtection=true",
            "--server.enableCORS=true", "--server.allowedHosts=localhost",
            "--server.allowedHosts=dash.example"} <= set(cmd)
    assert not any(c.startswith("--server.allowedHosts=rebind") for c in cmd)
