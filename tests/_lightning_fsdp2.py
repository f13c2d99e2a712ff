"""A Lightning fit with FSDP2 (``ModelParallelStrategy``, ``fully_shard`` in
``configure_model``) on 2 CPU processes, recorded by ``WcvizCallback`` (not a test itself).

    python tests/_lightning_fsdp2.py ROOT

Lightning starts the second process by running this script again. After the fit, the ranks
gather the final weights (for the test's comparison only) and rank 0 saves them to
``ROOT/final.npz``; the run is ``ROOT/run``.
"""

import os
import sys

import lightning as L
import numpy as np
import torch
from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn
from torch.distributed.fsdp import fully_shard

from wcviz.integrations.lightning import WcvizCallback


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 33), nn.ReLU(), nn.Linear(33, 2))  # uneven shards

    def configure_model(self):
        fully_shard(self.net, mesh=self.device_mesh["data_parallel"])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    root = sys.argv[1]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 5), torch.randint(0, 2, (32,)))
    model = Net()
    strategy = ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_epochs=2,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False,
                        callbacks=[WcvizCallback(os.path.join(root, "run"))])
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))
    final = {name: model.net[i].weight.detach().full_tensor().numpy().copy()
             for name, i in (("net.0", 0), ("net.2", 2))}
    if trainer.is_global_zero:
        np.savez(os.path.join(root, "final.npz"), **final)
