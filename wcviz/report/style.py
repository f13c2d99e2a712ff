"""One figure style for every wcviz plot: paper sizes, a colour-blind-safe palette, font embedding.

Everything that decides how a figure looks or how it is written lives here, so the paper
figures (:mod:`wcviz.report.plots`), ``wcviz figures`` and the dashboard's export agree:

* :data:`PALETTE`: the Okabe–Ito palette, distinguishable under the common colour-vision
  deficiencies and in greyscale by lightness; :data:`BASELINE_COLOR`, :data:`WC_COLOR` and
  :data:`LEARNABLE_COLOR` fix the colours of the paper's comparison in every figure.
* :data:`ONE_COLUMN` / :data:`TWO_COLUMN`: widths in inches of a one- and a two-column figure
  of a two-column paper (IEEE: 3.5 in and 7.16 in); :func:`figsize` turns them into sizes.
* :data:`RC`: matplotlib settings. Vector output keeps text as TrueType (``pdf.fonttype`` 42,
  never Type 3 bitmaps, which journals reject) and SVG text as real text; PNG at 300 dpi; no
  LaTeX install needed (``text.usetex`` off, mathtext for symbols).

Use :func:`paper_style` as a context manager, or :func:`styled` as a decorator on a function
that draws.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from wcviz.extras import require

# Before the import below: without matplotlib, one clear line instead of a traceback.
require("figures", needed_by="wcviz.report.style")

import matplotlib as mpl

from wcviz.report.palette import METHOD_COLORS, PALETTE

BASELINE_COLOR = METHOD_COLORS["none"]
WC_COLOR = METHOD_COLORS["arctan"]
LEARNABLE_COLOR = METHOD_COLORS["arctan+learnable"]
#: Neutral grey for references (the initial distribution, the bound aπ/2).
REFERENCE_COLOR = "#555555"
#: Sequential, perceptually uniform and colour-blind-safe map for "layer depth".
DEPTH_CMAP = "viridis"

#: Figure widths in inches: one column and the full text width of a two-column paper.
ONE_COLUMN = 3.5
TWO_COLUMN = 7.16
#: Raster resolution for PNG (dots per inch).
DPI = 300
#: Default height of one row of panels, inches.
ROW_HEIGHT = 2.2

#: Scale of seaborn's "paper" context (0.8 x its "notebook" sizes), kept for the sizes below.
_PAPER = 0.8

#: The base look: seaborn's ``ticks`` style and ``paper`` context (seaborn 0.13), written out as
#: plain matplotlib settings so that figures need no seaborn. Settings that :data:`RC`
#: overrides are left out, and so is seaborn's ``image.cmap`` ("rocket", registered by seaborn):
#: every wcviz image names its colormap.
BASE: dict[str, object] = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": ".15",
    "axes.labelcolor": ".15",
    "axes.axisbelow": True,
    "axes.linewidth": 1.25 * _PAPER,
    "axes.spines.left": True,
    "axes.spines.bottom": True,
    "text.color": ".15",
    "grid.color": ".8",
    "grid.linestyle": "-",
    "grid.linewidth": 1 * _PAPER,
    "lines.solid_capstyle": "round",
    "lines.markersize": 6 * _PAPER,
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 1 * _PAPER,
    "xtick.direction": "out",
    "ytick.direction": "out",
    "xtick.color": ".15",
    "ytick.color": ".15",
    "xtick.top": False,
    "ytick.right": False,
    "xtick.bottom": True,
    "ytick.left": True,
    "xtick.major.width": 1.25 * _PAPER,
    "ytick.major.width": 1.25 * _PAPER,
    "xtick.minor.width": 1 * _PAPER,
    "ytick.minor.width": 1 * _PAPER,
    "xtick.major.size": 6 * _PAPER,
    "ytick.major.size": 6 * _PAPER,
    "xtick.minor.size": 4 * _PAPER,
    "ytick.minor.size": 4 * _PAPER,
    "legend.title_fontsize": 12 * _PAPER,
}

#: Matplotlib settings applied on top of :data:`BASE`.
RC: dict[str, object] = {
    "pdf.fonttype": 42,  # TrueType, embedded: selectable text, no Type 3 fonts
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # SVG text stays text (editable, searchable)
    "text.usetex": False,  # works without a LaTeX installation
    "mathtext.fontset": "dejavusans",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.2,
    "figure.dpi": 100,  # on screen; files use savefig.dpi
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "figure.constrained_layout.use": True,
}


def figsize(columns: int = 1, rows: int = 1, row_height: float = ROW_HEIGHT) -> tuple[float, float]:
    """Width and height in inches for a paper figure.

    Args:
        columns: 1 for one column (3.5 in), 2 for the full text width (7.16 in).
        rows: number of panel rows stacked vertically.
        row_height: height of one row of panels, inches.

    Returns:
        (width, height) in inches.
    """
    return (TWO_COLUMN if columns >= 2 else ONE_COLUMN), rows * row_height


def rc_params() -> dict[str, object]:
    """The full settings: :data:`BASE`, then :data:`RC`."""
    return {**BASE, **RC}


@contextmanager
def paper_style():
    """Context manager applying :func:`rc_params` (restored on exit)."""
    with mpl.rc_context(rc_params()):
        yield


def styled(func):
    """Decorator: run ``func`` inside :func:`paper_style`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with paper_style():
            return func(*args, **kwargs)

    return wrapper
