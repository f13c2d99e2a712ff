"""What the command-line tests share: the small-run options, the one-line error check, a port."""

from __future__ import annotations

import socket

#: ``wcviz train`` options that keep a test run small and quiet.
TINY = ["--device", "cpu", "--no-progress", "--set", "batch_size=128"]


def one_error_line(capsys) -> str:
    """The command's stderr, asserted to be one line (an expected mistake: no traceback)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def free_port() -> int:
    """A TCP port on localhost that nothing listens on (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
