"""sup |Ψ| of the a·f(v/b) methods, without torch.

The bound on |w| (aπ/2 for arctan = WC, a for erf, none for arsinh) is all that readers of a
store need of a method: the dashboard draws it beside a WC run's bands. Kept apart from
:mod:`wcviz.reparam.psi` (whose maps are torch functions) so that drawing it does not import
torch (about 2 s on a busy 2-core machine: most of the Distributions page's first chart).
:data:`wcviz.reparam.psi.METHODS` takes its bounds from here.

May import: the standard library only.
"""

from __future__ import annotations

import math
from typing import Callable

#: sup |Ψ| of each a·f(v/b) method given a and b (``math.inf`` when unbounded).
SCALED_BOUNDS: dict[str, Callable[..., float]] = {
    "arctan": lambda a=1.0, b=1.0: a * math.pi / 2,
    "arsinh": lambda a=1.0, b=1.0: math.inf,
    "erf": lambda a=1.0, b=1.0: a,
}
