"""The run colours every wcviz view shares, with no plotting import.

Kept apart from :mod:`wcviz.report.style` (which loads matplotlib) so the dashboard can
colour its charts exactly like the exported figures without paying for those imports.

One rule (:func:`run_colors`): a run is coloured by its method (baseline blue, WC vermillion,
learnable WC green, other methods the next palette colours in order of appearance); a second
run of a method already shown takes the first palette colour no method in the set claims, so
runs stay told apart.
"""

from __future__ import annotations

from typing import Sequence

from wcviz.report.analysis import run_kind

#: Okabe & Ito (2008) colour-blind-safe palette, in the order plots use it.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
)

#: The colour of each method kind (:func:`wcviz.report.analysis.run_kind`) in every figure and chart.
METHOD_COLORS: dict[str, str] = {"none": PALETTE[0], "arctan": PALETTE[1],
                                 "arctan+learnable": PALETTE[2]}


def _kind_colors(kinds: Sequence[str]) -> dict[str, str]:
    """Each kind's own colour: fixed ones first, then free palette colours in order of appearance."""
    colors = {k: METHOD_COLORS[k] for k in kinds if k in METHOD_COLORS}
    free = iter([c for c in PALETTE if c not in METHOD_COLORS.values()])
    for kind in dict.fromkeys(kinds):
        if kind not in colors:
            colors[kind] = next(free, PALETTE[len(colors) % len(PALETTE)])
    return colors


def run_colors(runs: Sequence) -> list[str]:
    """The colour of each run of ``runs`` (Datasets, in order), by method (module docstring).

    The first run of each method gets the method's colour; later runs of the same method get
    palette colours that no method in ``runs`` claims (cycling once the palette is spent).
    """
    kinds = [run_kind(ds) for ds in runs]
    own = _kind_colors(kinds)
    spare = [c for c in PALETTE if c not in own.values()] or list(PALETTE)
    seen: set[str] = set()
    out = []
    for kind in kinds:
        if kind in seen:
            out.append(spare[(len(out) - len(seen)) % len(spare)])
        else:
            seen.add(kind)
            out.append(own[kind])
    return out


def run_color(ds, runs: Sequence) -> str:
    """The colour of run ``ds`` among ``runs`` (see :func:`run_colors`); ``ds`` is matched by
    identity, else by its ``run_id`` attribute.

    Raises:
        ValueError: ``ds`` is not one of ``runs``.
    """
    runs = list(runs)
    index = next((i for i, r in enumerate(runs) if r is ds), None)
    if index is None:
        rid = ds.attrs.get("run_id")
        index = next((i for i, r in enumerate(runs) if rid is not None and r.attrs.get("run_id") == rid), None)
    if index is None:
        raise ValueError("run_color: the run is not among the given runs; pass the runs shown together")
    return run_colors(runs)[index]
