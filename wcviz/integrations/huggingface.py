"""``WcvizCallback`` for the Hugging Face ``transformers.Trainer``.

::

    model = wcviz.compand(GPT2LMHeadModel(config))      # optional: companded weights
    with WcvizCallback("runs/gpt2") as callback:        # a raise marks the run failed
        Trainer(model, args, train_dataset=data, callbacks=[callback]).train()

Epoch 0 is recorded when training begins, then every ``every_n_epochs`` epochs and, with
``every_n_steps``, every that many optimizer steps (at fractional epochs ``state.epoch``). A
record's metrics are the numbers the Trainer logged since the previous record (``on_log``:
``loss``, ``learning_rate``, ``grad_norm``, ``epoch``...; ``on_evaluate``: ``eval_loss``...),
under the Trainer's own names. The Trainer evaluates after its ``on_epoch_end``, so an epoch's
record is written once that evaluation is in (or at the next step, or when training ends);
the weights do not change in between. When the Trainer saves a checkpoint with no evaluation
before it, the record is written at once, before the checkpoint: a run killed after that
checkpoint and resumed from it has every epoch. The run is marked finished when training
ends. Only the world process zero writes; every process runs the callback, so a model sharded
with FSDP2 (DTensor parameters) is recorded exactly from its shards.

With ``gradients=True`` (passed on to the Recorder) the records hold the gradients of the
optimizer step before them: the Trainer zeroes the gradients right after ``optimizer.step()``,
so the callback holds references to them from ``on_optimizer_step`` until the next step begins
(no copy; they are dropped before the next backward pass).

The Trainer has no exception event: train inside ``with callback:`` so that a run whose
training raises is marked failed. Without it the run stays "running" until its process ends
(``wcviz inspect`` then calls it interrupted).
"""

from __future__ import annotations

from wcviz.extras import require

# Before the import below: without transformers, one clear line instead of a traceback.
require("transformers", needed_by="wcviz.integrations.huggingface")

from transformers import TrainerCallback

from wcviz.integrations._common import RecordingSettings, is_whole, scalar_metrics
from wcviz.record.recorder import Recorder
from wcviz.record.runfolder import FAILED, FINISHED


class WcvizCallback(RecordingSettings, TrainerCallback):
    """Record the weights of the model a ``transformers.Trainer`` trains into ``path``.

    Args:
        path: the run directory (``path/record.zarr``).
        every_n_epochs: record after every this many epochs (None: only at steps).
        every_n_steps: also record every this many optimizer steps (None: epochs only).
        **recorder_kwargs: passed to :class:`wcviz.Recorder` (``config``, ``layers``,
            ``gradients=True``, ``update_ratio``, ...).
    """

    def __init__(self, path, every_n_epochs: int | None = 1, every_n_steps: int | None = None,
                 **recorder_kwargs):
        super().__init__(path, every_n_epochs, every_n_steps, **recorder_kwargs)
        self._metrics: dict[str, float] = {}
        self._due: tuple[float, int] | None = None  # an epoch end waiting for its evaluation

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        # On every process: the Recorder writes on global rank 0 only, and a sharded (FSDP2)
        # model's statistics need every rank's shards.
        self.recorder = Recorder(model, self.path, **self.recorder_kwargs)
        if self.recorder.last_epoch is None:
            self.recorder.record(0, step=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._metrics.update(scalar_metrics(logs))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._metrics.update(scalar_metrics(metrics))
        self._flush()

    def on_step_begin(self, args, state, control, **kwargs):
        self._flush()
        if self.recorder is not None:
            self.recorder.release_gradients()

    def on_optimizer_step(self, args, state, control, **kwargs):
        """After ``optimizer.step()``, before the Trainer zeroes the gradients."""
        if self.recorder is not None and self.recorder_kwargs.get("gradients"):
            self.recorder.hold_gradients()

    def on_step_end(self, args, state, control, **kwargs):
        if self.recorder is None:
            return
        if is_whole(state.epoch) and self.epoch_due(round(state.epoch)):
            # the epoch's last step: recorded with its evaluation, or before a checkpoint
            # the Trainer writes at this step (it saves before its on_epoch_end)
            self._epoch_ends(state, control)
            return
        n = self.every_n_steps
        if n and not state.global_step % n:
            self._record(float(state.epoch), state.global_step)

    def on_epoch_end(self, args, state, control, **kwargs):
        epoch = float(state.epoch)
        if self.recorder is not None and is_whole(epoch) and self.epoch_due(round(epoch)):
            self._epoch_ends(state, control)

    def _epoch_ends(self, state, control) -> None:
        """Hold the epoch's record for the evaluation the Trainer runs next; record it now if a
        checkpoint comes first (the flags are the Trainer's, set by its DefaultFlowCallback,
        which runs before this callback)."""
        if self._due is None:
            self._due = (float(round(state.epoch)), state.global_step)
        if control.should_save and not control.should_evaluate:
            self._flush()

    def on_train_end(self, args, state, control, **kwargs):
        self._flush()
        if self.recorder is not None:
            self.recorder.release_gradients()
            self.recorder.finish(FINISHED)

    def __enter__(self) -> "WcvizCallback":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        """``with callback: trainer.train()``: a raise marks the run failed (and propagates)."""
        if exc_type is not None and self.recorder is not None:
            self.recorder.finish(FAILED)
        return False

    def _flush(self) -> None:
        if self._due is not None:
            epoch, step = self._due
            self._due = None
            self._record(epoch, step)

    def _record(self, epoch: float, step: int) -> None:
        if self.record_new(epoch, self._metrics, step):
            self._metrics = {}
