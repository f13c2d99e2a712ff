"""The run-store schema: its version, the variables every store holds and their dimensions,
and the root attributes a reader checks first. The one source of truth of the layout that
:mod:`wcviz.record.store` writes and :mod:`wcviz.record.reader` reads."""

from __future__ import annotations

import json
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.record.metrics import METRICS, TABLE, TABLE_DIM
from wcviz.record.runfolder import STORE_NAME

#: The version this wcviz writes. 2: metrics outside :data:`METRICS` are columns of one table
#: (:data:`wcviz.record.metrics.TABLE`); 1: each had a variable of its own.
SCHEMA_VERSION = 2
#: The versions this wcviz reads (and resumes, each in its own layout).
READ_VERSIONS = (1, 2)

#: Columns per chunk of the metric table, and the block by which it grows.
METRIC_BLOCK = 256

#: Rows per chunk along ``epoch``, and the block by which the epoch axis grows.
EPOCH_CHUNK = 128

#: Per-layer variables: name -> dims after ``epoch``. The single source of truth of the schema.
LAYER_VARS: dict[str, tuple[str, ...]] = {
    "weight_quantile": ("layer", "quantile"),
    "near_zero_fraction": ("layer", "threshold"),
    "weight_histogram": ("layer", "bin"),
    "weight_mean": ("layer",),
    "weight_std": ("layer",),
    "weight_absmax": ("layer",),
    "weight_l2": ("layer",),
    "weight_participation": ("layer",),
    "weight_nonfinite": ("layer",),  # count of NaN/±inf weights (0 normally)
    "v_quantile": ("layer", "quantile"),
    "a": ("layer",),
    "b": ("layer",),
}

#: Per-layer variables a store holds only when its recorder made them (stores written before
#: them, or with ``gradients=False``, lack them): name -> dims after ``epoch``. Their meaning is
#: in :mod:`wcviz.record.gradients`.
OPTIONAL_LAYER_VARS: dict[str, tuple[str, ...]] = {
    "update_ratio": ("layer",),  # ‖w_t − w_prev‖ / ‖w_prev‖ since the previous record
    "grad_quantile": ("layer", "quantile"),  # exact quantiles of ∂L/∂w
    "grad_v_quantile": ("layer", "quantile"),  # exact quantiles of ∂L/∂v (parametrized layers)
    "grad_l2": ("layer",),  # ‖∂L/∂w‖₂
    "original_quantile": ("layer", "original", "quantile"),  # each parametrization original
}
#: The optional variables a recorder makes with ``gradients=True``.
GRADIENT_VARS = ("grad_quantile", "grad_v_quantile", "grad_l2")


def layer_var_dims(name: str) -> tuple[str, ...] | None:
    """The dims (after ``epoch``) of per-layer variable ``name``, required or optional."""
    return LAYER_VARS.get(name, OPTIONAL_LAYER_VARS.get(name))


#: Non-index coordinates, listed in every data variable's CF ``coordinates`` attribute so that
#: xarray opens them as coordinates.
AUX_COORDS = ("step", "layer_kind", "layer_numel", "threshold_kind", "threshold_value",
              "bin_edges", "weight_std_init")


#: Root attribute (true) of a store whose writer writes every chunk, all-NaN ones too; without
#: it, all-NaN chunks of metric arrays created on first use may be absent (an older writer
#: skipped them: :func:`wcviz.record.integrity.may_lack_chunks`).
COMPLETE_CHUNKS = "complete_chunks"

#: Every variable and coordinate a valid store has (checked when opening).
REQUIRED = ("epoch", "layer", "quantile", "threshold", "bin", *AUX_COORDS, *LAYER_VARS, *METRICS)

#: Dimensions of the coordinates and static arrays (what the writer creates besides LAYER_VARS
#: and the metrics, which are ``("epoch",)``).
STATIC_DIMS: dict[str, tuple[str, ...]] = {
    "epoch": ("epoch",), "step": ("epoch",),
    "layer": ("layer",), "layer_kind": ("layer",), "layer_numel": ("layer",),
    "weight_std_init": ("layer",), "quantile": ("quantile",), "threshold": ("threshold",),
    "threshold_kind": ("threshold",), "threshold_value": ("threshold",), "bin": ("bin",),
    "bin_edges": ("layer", "bin_edge"),
}

#: Largest size of each dimension a reader accepts: far above any model (a GPT-2 has about
#: 150 weight layers), small enough that no crafted store's shape makes a reader allocate
#: gigabytes. ``bin_edge`` is ``bin`` + 1.
MAX_SIZES = {"layer": 2 ** 20, "quantile": 4096, "threshold": 4096, "bin": 2 ** 16,
             "bin_edge": 2 ** 16 + 1, "original": 4096, TABLE_DIM: 2 ** 16}
#: Largest ``epoch_chunk`` (rows per chunk along epoch) a reader accepts.
MAX_EPOCH_CHUNK = 2 ** 16
#: Most elements one chunk may hold (2**28 float64 = 2 GiB decoded): a backstop on what one
#: read can allocate, whatever the shape.
MAX_CHUNK_ELEMENTS = 2 ** 28


def expected_dims(name: str) -> tuple[str, ...] | None:
    """The dimensions the schema gives array ``name``; None for an array it does not know
    (a newer optional variable: its shape is still checked against the sizes and caps)."""
    if name in STATIC_DIMS:
        return STATIC_DIMS[name]
    if name in LAYER_VARS or name in OPTIONAL_LAYER_VARS:
        return ("epoch", *layer_var_dims(name))
    if name == "original":
        return ("original",)
    if name in METRICS:
        return ("epoch",)
    if name == TABLE:
        return ("epoch", TABLE_DIM)
    return None


def epoch_chunk_of(attrs: dict) -> int:
    """Rows per chunk along epoch of a store (its ``epoch_chunk`` attribute; stores written
    before it existed used :data:`EPOCH_CHUNK`)."""
    value = attrs.get("epoch_chunk") or EPOCH_CHUNK
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else -1

def read_root_attrs(store: Path) -> dict:
    """The root attributes of a store from its ``zarr.json`` (no array is read).

    Raises:
        WcvizError: not a run store, corrupt, or another schema version.
    """
    meta = store / "zarr.json"
    if not store.exists():
        raise WcvizError(f"no run store at {store}; pass a run directory that holds "
                         f"{STORE_NAME} (made by wcviz.Recorder)")
    try:
        doc = json.loads(meta.read_text())
    except FileNotFoundError:
        raise WcvizError(f"{store} is not a Zarr store (no zarr.json); pass a run directory "
                         f"made by wcviz.Recorder") from None
    except (OSError, ValueError) as err:
        raise WcvizError(f"corrupt run store {store}: unreadable zarr.json ({err})") from None
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    if not isinstance(attrs, dict) or "schema_version" not in attrs:
        raise WcvizError(f"{store} is a Zarr store but not a wcviz run store "
                         f"(no schema_version attribute)")
    version = attrs["schema_version"]
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise WcvizError(f"{store} has run-store schema version {version!r}; this wcviz reads "
                         f"versions {', '.join(map(str, READ_VERSIONS))}; use the wcviz that "
                         f"wrote it")
    if not isinstance(attrs.get("n_committed"), int) or attrs["n_committed"] < 0:
        raise WcvizError(f"corrupt run store {store}: bad n_committed attribute")
    return attrs


