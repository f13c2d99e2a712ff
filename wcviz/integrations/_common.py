"""What the framework callbacks share: their settings, picking scalar metrics and sub-epoch
timing."""

from __future__ import annotations

import math
from numbers import Real
from typing import TYPE_CHECKING

from wcviz.errors import WcvizError

if TYPE_CHECKING:
    from wcviz.record.recorder import Recorder


class RecordingSettings:
    """Where and how often a framework callback records (first base of each ``WcvizCallback``,
    before the framework's callback class); the :class:`~wcviz.Recorder` is made when
    training starts, on the process that writes."""

    def __init__(self, path, every_n_epochs: int | None = 1, every_n_steps: int | None = None,
                 **recorder_kwargs):
        check_every(every_n_epochs, every_n_steps)
        self.path = path
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.recorder_kwargs = recorder_kwargs
        self.recorder: Recorder | None = None

    def epoch_due(self, epoch: int) -> bool:
        """Whether the end of whole epoch ``epoch`` is recorded (every ``every_n_epochs``)."""
        return bool(self.every_n_epochs) and epoch % self.every_n_epochs == 0

    def record_new(self, epoch: float, metrics: dict[str, float], step: int) -> bool:
        """Record ``epoch`` unless the store holds it already (a resumed fit replays the
        epochs before its checkpoint); whether it recorded."""
        if self.recorder.last_epoch is not None and epoch <= self.recorder.last_epoch:
            return False
        self.recorder.record(epoch, metrics, step=step)
        return True


def scalar_metrics(values: dict | None) -> dict[str, float]:
    """The entries of a framework's metric dict that are single numbers, as floats.

    Frameworks mix in strings and other objects (HF logs hold none today, Lightning's
    ``callback_metrics`` only tensors); those are dropped rather than failing the fit.
    """
    out = {}
    for name, value in (values or {}).items():
        if hasattr(value, "numel") and hasattr(value, "item"):  # a tensor: one element only
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, Real) and not isinstance(value, bool):
            out[str(name)] = float(value)
    return out


def check_every(every_n_epochs: int | None, every_n_steps: int | None) -> None:
    """Reject record intervals that are not positive integers (None switches one off)."""
    for name, value in (("every_n_epochs", every_n_epochs), ("every_n_steps", every_n_steps)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise WcvizError(f"{name} must be a positive integer or None, got {value!r}")


def is_whole(epoch: float) -> bool:
    """Whether a (float) epoch count is a whole epoch, up to float rounding."""
    return math.isclose(epoch, round(epoch), abs_tol=1e-9)
