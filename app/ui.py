"""Streamlit pieces every page shares: the runs root, the run picker, live refresh, export.

The selected runs live in ``st.session_state[SELECTED]`` (the sidebar picker's key, drawn by the
entry script on every page), so a selection made on the Runs page carries to the other pages.
"""

from __future__ import annotations

import os
from typing import Callable

import pandas as pd
import streamlit as st

from wcviz.app import data, export
from wcviz.errors import WcvizError
from wcviz.record.runfolder import RUNNING

#: Session-state key of the selected run ids (the sidebar multiselect).
SELECTED = "wcviz_selected_runs"

#: Session-state key of the sidebar toggle that folds runs differing only in seed into groups.
GROUPS = "wcviz_seed_groups"

#: Key prefix of the Runs page's table (its key also encodes the rows shown and selected).
RUNS_TABLE = "runs_table"

#: Seconds between refreshes of a page's charts while one of its runs is still training.
LIVE_SECONDS = 3.0

_SCAN = "_wcviz_scan"  # session-state slot of the latest listing

#: The characters that can start Markdown: links and images, emphasis, code, HTML and
#: entities, tables, headings and lists, GFM's bare-address links (``https:``, ``www.``,
#: ``a@b.c``), Streamlit's own directives (``:red[...]``, ``:material/icon:``, emoji
#: ``:smile:``) and math (``$...$``). CommonMark reads a backslash before any of them as the
#: character itself; "/" and other harmless marks stay as they are, readable.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]<>()#+-.!|~:$&@")


def md(text) -> str:
    """``text`` as literal text inside Markdown that Streamlit renders (``st.caption``,
    ``st.error``, ``st.info``...): every character that could start Markdown escaped, line
    breaks and other control characters shown as spaces.

    Run names, paths, store attributes and error messages (which quote them) come from the
    runs root, that is from whoever wrote it: a folder named ``[Re-login](https://x)`` must
    show as those characters, not as a link, and ``![x](http://host/leak.png)`` must not make
    the browser fetch an image. Bare ``https://`` or ``www.`` addresses are no links either.
    """
    out = []
    for char in str(text):
        if char in _MARKDOWN_SPECIAL:
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def root(argv: list[str]):
    """The runs root named by the entry script's arguments ``argv`` (:func:`wcviz.app.data.root_argument`);
    a missing one stops the page with its one-line error."""
    try:
        return data.runs_root(data.root_argument(argv))
    except WcvizError as err:
        st.error(md(err))
        st.stop()


def current_scan(root) -> data.Scan:
    """A fresh listing of ``root`` (attributes only: cheap enough for every rerun)."""
    scan = data.scan(root)
    st.session_state[_SCAN] = scan
    return scan


def page_scan() -> data.Scan:
    """The listing the entry script made for this script run (pages share it, no re-listing)."""
    return st.session_state[_SCAN]


def _shown_root(root) -> str:
    """The root as the user likely typed it: relative to the working directory when inside it."""
    rel = os.path.relpath(root)
    return root.as_posix() if rel.startswith("..") else rel


def run_picker(scan: data.Scan) -> None:
    """The sidebar multiselect of runs; its value is the selection every page shows."""
    ids = [r.run_id for r in scan.runs]
    # Runs that disappeared from the root drop out of the selection instead of erroring.
    st.session_state[SELECTED] = [i for i in st.session_state.get(SELECTED, []) if i in ids]
    # Options read as the figures name runs ("WC a=0.5, b=0.3"; seed or folder added only where
    # two would read alike): folder names cut off their distinguishing tail in the narrow
    # sidebar. The value stays the run ids; the Runs page shows each name beside its folder.
    names = data.names(list(scan.runs))
    st.sidebar.multiselect("Runs", ids, key=SELECTED, placeholder="choose runs",
                           format_func=lambda rid: names.get(rid, rid),
                           help="The runs every page shows, named as in the figures (the Runs "
                                "page lists each name beside its folder); also selectable there.")
    st.sidebar.toggle("Fold seeds into groups", key=GROUPS,
                      help="Runs that differ only in seed as one: seed-mean bands, near-zero "
                           "fractions and metrics, with the spread over seeds (Distributions, "
                           "Near zero, Metrics).")
    running = sum(r.status == RUNNING for r in scan.runs)
    st.sidebar.caption(f"{md(_shown_root(scan.root))}  \n{len(ids)} runs ({running} running)"
                       + (f", {len(scan.problems)} unreadable" if scan.problems else ""))


def grouped() -> bool:
    """Whether the user folds seeds into groups (the sidebar toggle)."""
    return bool(st.session_state.get(GROUPS, False))


def selected(scan: data.Scan) -> list[data.Run]:
    """The selected runs as listed by ``scan``, in selection order."""
    by_id = scan.by_id()
    return [by_id[i] for i in st.session_state.get(SELECTED, []) if i in by_id]


def readable(runs: list[data.Run], light: bool = False) -> list[data.Run]:
    """The runs whose store opens; each one that does not gets an error line instead.

    ``light`` checks only that the layer names read (pages that read a few arrays themselves
    and report a failing one, see :func:`wcviz.app.data.distributions`); otherwise the Dataset opens.
    """
    if light:  # every store's names in one pass
        errors: list[str] = []
        good = data.load_layers(runs, errors)
        for line in errors:
            st.error(md(line))
        return good
    good = []
    for run in runs:
        try:
            data.dataset(run)
        except WcvizError as err:
            st.error(md(f"{run.run_id}: {err}"))
            continue
        good.append(run)
    return good


def require_selection(scan: data.Scan, light: bool = False) -> list[data.Run]:
    """The selected runs that open (:func:`readable`); if none, a hint and the page stops."""
    runs = selected(scan)
    if not runs:
        st.info("No run selected: pick runs in the sidebar or on the Runs page.")
        st.stop()
    runs = readable(runs, light)
    if not runs:
        st.stop()
    return runs


def status_line(runs: list[data.Run]) -> str:
    """One caption line per run: its status and committed records."""
    return "  \n".join(f"**{md(r.run_id)}**: {md(r.status)}, {r.n_epochs} records" for r in runs)


def live(runs: list[data.Run], body: Callable[[list[data.Run]], None], light: bool = False) -> None:
    """Draw ``body(fresh_runs)`` now and, while a run trains, again every :data:`LIVE_SECONDS`.

    Only this fragment reruns (``st.fragment(run_every=...)``): controls above it keep their
    state and the page does not reload. Each of its reruns lists the root again, so a run that
    committed a record gets a new cache key and its new epoch is read; when a run's status
    changes (it finished or failed) the whole page reruns once to stop polling. Its first draw,
    part of the page's run, uses the listing the entry script has just made.
    """
    ids = [r.run_id for r in runs]
    statuses = {r.run_id: r.status for r in runs}
    every = LIVE_SECONDS if RUNNING in statuses.values() else None
    listed = [page_scan()]  # this run's: listing the root again costs 30-70 ms for 100 runs

    @data.page_checks()  # its own reruns are page runs too (the first draw is the page's)
    def fragment() -> None:
        by_id = (listed.pop() if listed else current_scan(page_scan().root)).by_id()
        fresh = readable([by_id[i] for i in ids if i in by_id], light)
        if every is not None and {r.run_id: r.status for r in fresh} != statuses:
            st.rerun(scope="app")
        body(fresh)

    st.fragment(fragment, run_every=every)()


def downloads(name: str, frame: pd.DataFrame | Callable[[], pd.DataFrame],
              figure: Callable[[], object] | None, key: str) -> None:
    """Download buttons for the current view: a figure (PNG/PDF/SVG) and its data as CSV.

    Args:
        name: file stem of the downloads.
        frame: the tidy data shown, written as CSV; or a zero-argument callable returning it,
            called only when the button is clicked (the long form of 100 runs' quantiles
            took 0.1-0.2 s of every rerun).
        figure: zero-argument callable returning a matplotlib Figure of the view, drawn by
            :mod:`wcviz.report.plots` only when the button is clicked; None hides the figure button.
        key: widget-key prefix, unique per page section.
    """
    cols = st.columns([1, 2, 2, 3])
    fmt = cols[0].selectbox("format", list(export.FORMATS), key=f"{key}_fmt",
                            label_visibility="collapsed")
    if figure is not None:
        cols[1].download_button(f"Figure ({fmt.upper()})",
                                data=lambda: export.figure_bytes(figure(), fmt),
                                file_name=f"{name}.{fmt}", mime=export.FORMATS[fmt],
                                on_click="ignore", key=f"{key}_fig", icon=":material/image:")
    table = frame if callable(frame) else (lambda: frame)
    cols[2].download_button("Data (CSV)", data=lambda: export.csv_bytes(table()),
                            file_name=f"{name}.csv", mime="text/csv", on_click="ignore",
                            key=f"{key}_csv", icon=":material/table:")


def range_slider(container, label: str, lo: float, hi: float, key: str, **kw) -> tuple[float, float]:
    """A (low, high) slider over [lo, hi] that keeps following the end while data grows.

    A live run moves ``hi`` every record; a range left at the old end moves with it (so the new
    epoch shows), a range the user narrowed stays, clipped into the new bounds.
    """
    if hi <= lo:
        return lo, hi
    end_key = f"{key}__end"
    old = st.session_state.get(key)
    if old is not None:
        a, b = old
        if b >= st.session_state.get(end_key, hi):
            b = hi
        a, b = min(max(a, lo), hi), min(max(b, lo), hi)
        st.session_state[key] = (a, b) if a < b else (lo, hi)
    st.session_state[end_key] = hi
    return container.slider(label, lo, hi, value=None if old is not None else (lo, hi), key=key, **kw)
