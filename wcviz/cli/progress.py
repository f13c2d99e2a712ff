"""Progress on stderr while a command reads many runs (``figures``, ``compare``, ``export`` on
a root take seconds to minutes): on a terminal, one line rewritten in place per run and
cleared at the end, so that nothing of it is left in the output. Plain text, no tqdm (the
light install has none); stdout stays the command's output."""

from __future__ import annotations

import sys

_shown = False  # a progress line is on the terminal now


def reading(i: int, n: int, path) -> None:
    """Report that run ``i`` (1-based) of ``n`` is being read (nothing for a single run, or
    when stderr is no terminal: a log or pipe gets no progress lines)."""
    global _shown
    if n < 2 or not sys.stderr.isatty():
        return
    if i < n:
        sys.stderr.write(f"\r\033[Kreading run {i}/{n}: {path}")
        _shown = True
    else:
        sys.stderr.write(f"\r\033[Kreading run {i}/{n}: {path}\r\033[K")
        _shown = False
    sys.stderr.flush()


def clear() -> None:
    """Erase a progress line still shown (before an error line is printed)."""
    global _shown
    if _shown:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
        _shown = False
