"""Progress on stderr while a command reads many runs (``figures``, ``compare``, ``export`` on
a root take seconds to minutes): one line per run, rewritten in place on a terminal. Plain
text, no tqdm (the light install has none); stdout stays the command's output."""

from __future__ import annotations

import sys


def reading(i: int, n: int, path) -> None:
    """Report that run ``i`` (1-based) of ``n`` is being read. Nothing for a single run."""
    if n < 2:
        return
    line = f"reading run {i}/{n}: {path}"
    stream = sys.stderr
    if stream.isatty():  # one line, rewritten; cleared after the last run
        stream.write(f"\r\033[K{line}" if i < n else "\r\033[K")
    else:
        stream.write(line + "\n")
    stream.flush()
