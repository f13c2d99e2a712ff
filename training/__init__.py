"""training: the paper's models, datasets and recipes, and a resumable, DDP-ready loop.

* :mod:`wcviz.training.models`: the model zoo (``MODELS``, ``build_model``).
* :mod:`wcviz.training.datasets`: CIFAR-10/100, TinyImageNet, ImageNet, the built-in digits, synthetic data.
* :mod:`wcviz.training.presets`: one table with a preset per experiment of the paper (``RunConfig``).
* :mod:`wcviz.training.loop`: build, train one epoch, evaluate, checkpoint; records through ``wcviz.Recorder``.
* :mod:`wcviz.training.loader`, :mod:`wcviz.training.checkpoint`, :mod:`wcviz.training.distributed`: batches
  (DataLoader or on-device), full-state checkpoints, torchrun/DDP set-up.
* :mod:`wcviz.training.sweep`, :mod:`wcviz.training.demo`: grids of runs and the offline
  demo (run-folder names and states: :mod:`wcviz.record.runfolder`, :mod:`wcviz.record.config`).
* :mod:`wcviz.training.allocator`: a CPU run keeps the memory it frees (no page faults each step).
* :mod:`wcviz.training.cli`: ``wcviz train``, ``wcviz sweep``, ``wcviz demo``; ``python -m wcviz.training``
  is ``wcviz train`` (what torchrun starts).
"""
