"""Per-layer statistics beyond the weights: gradients, update ratio, parametrization originals.

A :class:`~wcviz.record.recorder.Recorder` adds these optional variables
(:data:`wcviz.record.schema.OPTIONAL_LAYER_VARS`) to each record:

* ``update_ratio`` (always, unless ``update_ratio=False``): ‖w_t − w_prev‖₂ / ‖w_prev‖₂ between
  this record's weights and the previous record's of the same process (NaN at the first record,
  and at the first record after a resume). Exact, so it keeps a copy of every tracked weight on
  the weight's own device between records: **one model's worth of memory** (the tracked
  weights, in their dtype). ``update_ratio=False`` keeps no copy and stores nothing.
* ``original_quantile`` (any layer under :mod:`torch.nn.utils.parametrize`): the exact
  quantiles of each original tensor, by the parametrization's own names (``original`` for one
  tensor, ``original0``/``original1`` for weight norm's g and v). The rule for wcviz's own
  compander: ``v_quantile`` stays as it was (the stored tensor that has the weight's shape:
  v of the compander, weight norm's ``original1``, spectral norm's ``original``), and
  ``original_quantile`` lists every original of every parametrization, wcviz's included, so for
  a companded layer ``original_quantile.sel(original="original")`` equals ``v_quantile``.
* with ``gradients=True``:

  - ``grad_quantile``: exact quantiles of ∂L/∂w, the gradient with respect to the effective
    weight w. A plain layer's is ``weight.grad``. A parametrized layer's w is computed by its
    parametrization in each forward pass and has no ``.grad``: a hook on the parametrization's
    output keeps the sum of ∂L/∂w over the backward passes since the layer's stored tensor's
    gradient was last reset (``zero_grad``, either ``set_to_none``), i.e. the same accumulation
    window as ``.grad`` (gradient accumulation sums micro-batches). This costs one weight-sized
    buffer per parametrized layer.
  - ``grad_v_quantile``: exact quantiles of the stored tensor's gradient (∂L/∂v of a companded
    layer = ∂L/∂w · Ψ′(v); weight norm's ∂L/∂``original1``); NaN for plain layers.
  - ``grad_l2``: ‖∂L/∂w‖₂.

  A record reads the gradients present when it runs: record after ``backward`` and before
  ``zero_grad`` (a typical loop zeroes at the start of a step, so a record after the epoch sees
  the last step's gradients). No gradient present (never a backward, or ``zero_grad()``'s
  ``set_to_none``) stores NaN, not an error. ``.grad`` is what the record reads, so under
  DistributedDataParallel it is the all-reduced gradient, and under AMP's ``GradScaler`` it is
  unscaled once ``scaler.step`` (or ``scaler.unscale_``) ran. The hook of a parametrized layer
  sees each backward's own output gradient: pass ``grad_scaler=scaler`` to the Recorder so it
  divides by the loss scale of that backward; under DDP the hook's ∂L/∂w is rank 0's own
  (DDP averages the parameters' ``.grad``, i.e. ∂L/∂v, which ``grad_v_quantile`` shows).

Every quantile is :func:`wcviz.record.stats.exact_quantiles` (numpy's ``linear``), computed on
the tensor's device; one host transfer per record carries them all.
"""

from __future__ import annotations

import math
import re
import weakref
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils import parametrize

from wcviz.record import native
from wcviz.record import sharded as D
from wcviz.record.schema import GRADIENT_VARS
from wcviz.reparam.layers import Target

#: An original tensor's name in a ``ParametrizationList``: ``original`` or ``original<k>``.
_ORIGINAL = re.compile(r"original\d*$")


def originals(target: Target) -> dict[str, Tensor]:
    """The original tensors behind a parametrized ``target`` by name ({} for a plain one)."""
    if not parametrize.is_parametrized(target.module, target.attr):
        return {}
    plist = target.module.parametrizations[target.attr]
    found = {**plist._parameters, **plist._buffers}
    return {name: t for name, t in found.items() if t is not None and _ORIGINAL.match(name)}


def original_names(targets: Sequence[Target]) -> list[str]:
    """The ``original`` coordinate: every original name of the targets, sorted (``original``
    first, then ``original0``, ``original1``, ...)."""
    names = {n for t in targets for n in originals(t)}
    return sorted(names, key=lambda n: (len(n), n))


def _grad_token(tensor: Tensor):
    """Identity and version of ``tensor.grad`` (None when absent): changes when the gradient
    is reset (set to None, replaced, or zeroed in place)."""
    grad = tensor.grad
    return None if grad is None else (weakref.ref(grad), grad._version)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a[0]() is not None and a[0]() is b[0]() and a[1] == b[1]


class _WeightGrad:
    """Keeps ∂L/∂w of one parametrized tensor, summed over the backward passes since its stored
    tensor's gradient was last reset."""

    def __init__(self, target: Target, scaler=None):
        self.stored = target.stored()
        self.scaler = scaler
        self.total: Tensor | None = None  # the weight-sized buffer (one per parametrized layer)
        self._pending = False  # a backward added to ``total`` but v's .grad is not updated yet
        self._synced = None  # v's grad token right after the last accumulation
        plist = target.module.parametrizations[target.attr]
        self._handles = [plist.register_forward_hook(self._on_forward)]
        if self.stored.requires_grad:
            self._handles.append(
                self.stored.register_post_accumulate_grad_hook(self._on_accumulated))

    def _on_forward(self, module, inputs, output) -> None:
        if torch.is_grad_enabled() and isinstance(output, Tensor) and output.requires_grad:
            output.register_hook(self._on_grad)

    def _on_grad(self, grad: Tensor) -> None:
        if not self._pending and not _same(_grad_token(self.stored), self._synced):
            self.total = None  # v's gradient was reset since the last backward: a new window
        grad = grad.detach()
        scale = self._scale()
        if scale is not None:
            grad = grad / scale
        self.total = grad.clone() if self.total is None else self.total.add_(grad)
        self._pending = True

    def _scale(self):
        scaler = self.scaler
        if scaler is None or not scaler.is_enabled():
            return None
        scale = getattr(scaler, "_scale", None)  # the device tensor: no host sync per backward
        return scale if isinstance(scale, Tensor) else scaler.get_scale()

    def _on_accumulated(self, param: Tensor) -> None:
        self._synced = _grad_token(param)
        self._pending = False

    def current(self) -> Tensor | None:
        """∂L/∂w of the current window, or None when v has no gradient."""
        if self.stored.grad is None:
            return None
        return self.total

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class ExtraStats:
    """The optional per-layer statistics of a record (see the module docstring).

    Args:
        targets: the recorder's tracked tensors.
        gradients: record ``grad_quantile``, ``grad_v_quantile``, ``grad_l2``.
        update_ratio: record ``update_ratio`` (keeps a copy of the tracked weights).
        grad_scaler: a ``torch.amp.GradScaler`` whose scale parametrized layers' ∂L/∂w is
            divided by.
    """

    def __init__(self, targets: Sequence[Target], gradients: bool = False,
                 update_ratio: bool = True, grad_scaler=None):
        self.targets = list(targets)
        self.gradients = bool(gradients)
        self.update_ratio = bool(update_ratio)
        #: the ``original`` coordinate ([] when no tracked layer is parametrized)
        self.originals = original_names(self.targets)
        self._weight_grads = {}
        if self.gradients:
            self._weight_grads = {i: _WeightGrad(t, grad_scaler) for i, t in
                                  enumerate(self.targets)
                                  if parametrize.is_parametrized(t.module, t.attr)}
        self._previous: list[Tensor | None] = [None] * len(self.targets)
        #: layers whose previous weight is this tracker's own copy (free to overwrite)
        self._copies: set[int] = set()
        self._previous_l2 = np.full(len(self.targets), np.nan)  # ‖w_prev‖ per layer
        self._held: list | None = None  # (∂L/∂w, ∂L/∂v) per layer, kept by :meth:`hold`

    @property
    def names(self) -> list[str]:
        """The optional variables these statistics fill, in schema order."""
        out = ["update_ratio"] if self.update_ratio else []
        out += list(GRADIENT_VARS) if self.gradients else []
        return out + (["original_quantile"] if self.originals else [])

    def compute(self, quantiles: Sequence[float], names: Sequence[str] | None = None,
                weight_l2: np.ndarray | None = None, run=None) -> dict[str, np.ndarray]:
        """This record's statistics, keyed by variable, shaped (layer[, original], quantile).

        ``weight_l2``: this record's ‖w‖ per layer (the recorder's ``weight_l2``), kept as the
        next update ratio's denominator (computed here when not given). ``run(fn, jobs)``:
        how the (layer index, target) jobs are mapped (the recorder's threads; in this
        thread when None).
        """
        names = self.names if names is None else list(names)
        if not names:
            return {}
        nq, no = len(quantiles), len(self.originals)
        with torch.no_grad():
            jobs = list(enumerate(self.targets))
            one = lambda job: self._layer_vector(job[0], job[1], quantiles)  # noqa: E731
            vectors = run(one, jobs) if run is not None else [one(job) for job in jobs]
            device = vectors[0].device
            host = torch.stack([v.to(device) for v in vectors]).cpu().numpy()
        cuts = np.cumsum([0, nq, nq, 1, 1, no * nq])
        out = {"grad_quantile": host[:, cuts[0]:cuts[1]],
               "grad_v_quantile": host[:, cuts[1]:cuts[2]], "grad_l2": host[:, cuts[2]],
               "update_ratio": self._ratios(host[:, cuts[3]], weight_l2),
               "original_quantile": host[:, cuts[4]:cuts[5]].reshape(len(vectors), no, nq)}
        return {name: out[name] for name in names}

    def _layer_vector(self, i: int, target: Target, quantiles) -> Tensor:
        """[grad quantiles, grad-v quantiles, grad L2, update ratio, original quantiles]."""
        current = target.tensor()
        weight = current.detach()
        device = weight.device
        nq = len(quantiles)
        parts = []
        if self.gradients:
            grad, raw = self._grads(i, target)
            parts += [_quantiles(grad, quantiles, device), _quantiles(raw, quantiles, device),
                      _l2(grad, device)]
        else:
            parts += [_nan(2 * nq + 1, device)]
        owned = not isinstance(current, torch.nn.Parameter)  # Ψ(v): a fresh tensor, no copy
        parts.append(self._ratio(i, weight, owned) if self.update_ratio else _nan(1, device))
        found = originals(target)
        parts += [_quantiles(found.get(name), quantiles, device) for name in self.originals]
        return torch.cat([p.to(device=device, dtype=torch.float64) for p in parts])

    def hold(self) -> None:
        """Keep references to the current gradients for the next records (until
        :meth:`release`): for loops that zero the gradients before the record is due."""
        if self.gradients:
            self._held = [self._grads(i, t) for i, t in enumerate(self.targets)]

    def release(self) -> None:
        """Drop the held gradients (records read ``.grad`` again)."""
        self._held = None

    def _grads(self, i: int, target: Target) -> tuple[Tensor | None, Tensor | None]:
        """(∂L/∂w, ∂L/∂v) of a layer: held, or read now (∂L/∂v None for a plain layer)."""
        if self._held is not None:
            return self._held[i]
        raw = target.stored().grad if i in self._weight_grads else None
        return self._weight_grad(i, target), raw

    def _weight_grad(self, i: int, target: Target) -> Tensor | None:
        if i in self._weight_grads:
            return self._weight_grads[i].current()
        return target.stored().grad

    def _ratio(self, i: int, weight: Tensor, owned: bool = False) -> Tensor:
        """‖w − w_prev‖ (the difference in the weight's dtype, the norm accumulated in
        float64); keeps this record's weight for the next one (a copy unless ``owned``)."""
        prev = self._previous[i]
        if (i in self._copies and not owned and prev.shape == weight.shape
                and prev.dtype == weight.dtype and prev.device == weight.device
                and not D.is_dtensor(weight) and not D.is_dtensor(prev)):
            # In the kept copy: no tensor of the weight's size is allocated a record (the
            # page faults of fresh ones cost more than the arithmetic). prev − w is exactly
            # −(w − prev), rounding being symmetric, so the norm is bit for bit the same.
            if _fused(prev, weight):
                return _diff_norm(prev, weight, keep=True)
            norm = D.l2_norm(prev.sub_(weight))
            prev.copy_(weight)
            return norm
        self._keep(i, weight, owned)
        if prev is None or prev.shape != weight.shape:
            return _nan(1, weight.device)
        if _fused(prev, weight):  # the same sum as the kept copy's path, bit for bit
            return _diff_norm(prev, weight, keep=False)
        if D.is_dtensor(weight) != D.is_dtensor(prev):
            # FSDP2 leaves a root's parameters whole after an evaluation forward: compare whole
            # tensors then (every rank is in the same state, so each gathers alike)
            weight, prev = _whole(weight), _whole(prev)
        return D.l2_norm(weight - prev.to(weight.device))  # DTensors: from the shards

    def _keep(self, i: int, weight: Tensor, owned: bool) -> None:
        """Keep ``weight`` as layer ``i``'s previous one: itself when ``owned`` (a fresh Ψ(v)
        nobody else writes), else a copy of this tracker's own, which later records overwrite."""
        self._previous[i] = weight if owned else weight.clone()
        (self._copies.discard if owned else self._copies.add)(i)

    def prime(self, weight_l2: np.ndarray) -> None:
        """Take the current weights, whose norms are ``weight_l2``, as the previous record's
        (a run resumed from the checkpoint of its last record): the next update ratio is then
        measured from them, as in a run never interrupted."""
        if not self.update_ratio:
            return
        for i, target in enumerate(self.targets):
            current = target.tensor()
            weight = current.detach()
            self._keep(i, weight, owned=not isinstance(current, torch.nn.Parameter))
        self._previous_l2 = np.asarray(weight_l2, dtype=np.float64).copy()

    def _ratios(self, diffs: np.ndarray, weight_l2: np.ndarray | None) -> np.ndarray:
        """‖w − w_prev‖ / ‖w_prev‖ per layer; keeps this record's ‖w‖ for the next record."""
        if weight_l2 is None:
            weight_l2 = np.array([float(torch.linalg.vector_norm(t.tensor().detach(),
                                                                 dtype=torch.float64))
                                  for t in self.targets])
        with np.errstate(divide="ignore", invalid="ignore"):
            out = diffs / self._previous_l2
        self._previous_l2 = np.asarray(weight_l2, dtype=np.float64).copy()
        return out

    def close(self) -> None:
        """Remove the gradient hooks and drop the kept weights."""
        for tracker in self._weight_grads.values():
            tracker.remove()
        self._weight_grads = {}
        self._previous = [None] * len(self.targets)
        self._copies.clear()
        self._previous_l2 = np.full(len(self.targets), np.nan)
        self._held = None


def _whole(x: Tensor) -> Tensor:
    return x.full_tensor() if D.is_dtensor(x) else x


def _fused(prev: Tensor, weight: Tensor) -> bool:
    """Whether ‖prev − weight‖ takes the compiled pass: contiguous float32 CPU tensors of one
    shape (not DTensors), compiled passes on."""
    return (native.enabled() and prev.shape == weight.shape
            and all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous()
                    and not D.is_dtensor(t) for t in (prev, weight)))


def _diff_norm(prev: Tensor, weight: Tensor, keep: bool) -> Tensor:
    """‖prev − weight‖ as float64 (1,) from :func:`wcviz.record.native.diff_sq`; with
    ``keep`` prev is overwritten by weight in the same pass (one read of each, not three)."""
    total = native.diff_sq(prev.detach().numpy(), weight.detach().numpy(), keep)
    return torch.tensor([math.sqrt(total)], dtype=torch.float64)


def _nan(n: int, device) -> Tensor:
    return torch.full((n,), math.nan, dtype=torch.float64, device=device)


def _quantiles(x: Tensor | None, quantiles, device) -> Tensor:
    if x is None:
        return _nan(len(quantiles), device)
    return D.quantiles_of(x.detach(), quantiles).to(device)  # DTensors: from the shards


def _l2(x: Tensor | None, device) -> Tensor:
    if x is None:
        return _nan(1, device)
    return D.l2_norm(x).to(device)
