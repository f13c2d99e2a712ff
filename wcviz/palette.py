"""The run colours every wcviz view shares, with no plotting import.

Kept apart from :mod:`wcviz.style` (which loads matplotlib and seaborn) so the dashboard can
colour its charts exactly like the exported figures without paying for those imports.
"""

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
