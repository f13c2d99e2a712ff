"""``WcvizCallback`` for Lightning: records the LightningModule's weights during ``fit``.

::

    model = wcviz.compand(MyLightningModule())          # optional: companded weights
    trainer = L.Trainer(max_epochs=10, callbacks=[WcvizCallback("runs/lit")])
    trainer.fit(model)

Epoch 0 is recorded at fit start (the network before any step), then every ``every_n_epochs``
training epochs (after that epoch's validation) with ``trainer.callback_metrics`` as metrics,
under the names the module logged (``"val/acc"``, ``"train_loss_epoch"``); with
``every_n_steps`` also every that many optimizer steps, at fractional epochs. The run is marked
finished when ``fit`` ends and failed when it raises. Only global rank 0 writes; every rank
runs the callback, so a module sharded with FSDP2 (``fully_shard`` in ``configure_model``, as
Lightning's ``ModelParallelStrategy`` does) is recorded exactly from its shards.
"""

from __future__ import annotations

from wcviz.extras import require

# Before the import below: without lightning, one clear line instead of a traceback.
require("lightning", needed_by="wcviz.integrations.lightning")

from lightning.pytorch.callbacks import Callback

from wcviz.integrations._common import RecordingSettings, scalar_metrics
from wcviz.record.recorder import Recorder
from wcviz.record.runfolder import FAILED, FINISHED


class WcvizCallback(RecordingSettings, Callback):
    """Record the weights of the trained LightningModule into the run store ``path``.

    Args:
        path: the run directory (``path/record.zarr``).
        every_n_epochs: record after every this many training epochs (None: only at steps).
        every_n_steps: also record every this many optimizer steps (None: epochs only).
        **recorder_kwargs: passed to :class:`wcviz.Recorder` (``config``, ``layers``,
            ``resume``, ``overwrite``, ``attrs``, ``thresholds``, ``gradients=True``, ...).
            A record holds the gradients of the last optimizer step before it: Lightning sets
            them to None before validation, so the callback holds references to the epoch's
            last gradients (no copy) from its last training batch until the epoch's record.
    """

    def __init__(self, path, every_n_epochs: int | None = 1, every_n_steps: int | None = None,
                 **recorder_kwargs):
        super().__init__(path, every_n_epochs, every_n_steps, **recorder_kwargs)
        self._last_step = -1  # the optimizer step of the last step record

    def on_fit_start(self, trainer, pl_module) -> None:
        # On every rank: the Recorder writes on global rank 0 only, and a sharded (FSDP2)
        # module's statistics need every rank's shards.
        self.recorder = Recorder(pl_module, self.path, **self.recorder_kwargs)
        self._last_step = trainer.global_step
        if self.recorder.last_epoch is None:  # a resumed run already has its epoch 0
            self.recorder.record(0, step=trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n, batches = self.every_n_steps, trainer.num_training_batches
        if self.recorder is not None and self.recorder_kwargs.get("gradients") and \
                batch_idx + 1 >= batches and self.epoch_due(trainer.current_epoch + 1):
            self.recorder.hold_gradients()  # validation sets them to None before the record
        if self.recorder is None or not n or trainer.global_step % n:
            return
        if trainer.global_step == self._last_step:  # gradient accumulation: no new step
            return
        self._last_step = trainer.global_step
        if batch_idx + 1 >= batches:  # the epoch's end: recorded by on_train_epoch_end
            return
        epoch = trainer.current_epoch + (batch_idx + 1) / batches
        self._record(trainer, epoch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if self.recorder is not None and self.epoch_due(epoch):
            self._record(trainer, epoch)
            self.recorder.release_gradients()

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.finish(FINISHED)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.recorder is not None:
            self.recorder.finish(FAILED)

    def _record(self, trainer, epoch: float) -> None:
        self.record_new(epoch, scalar_metrics(trainer.callback_metrics), trainer.global_step)
