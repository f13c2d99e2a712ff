"""training: the paper's models, datasets and recipes, and a resumable, DDP-ready loop.

* :mod:`training.models`: the model zoo (``MODELS``, ``build_model``).
* :mod:`training.datasets`: CIFAR-10/100, TinyImageNet, ImageNet, the built-in digits, synthetic data.
* :mod:`training.presets`: one table with a preset per experiment of the paper (``RunConfig``).
* :mod:`training.loop`: build, train one epoch, evaluate, checkpoint; records through ``wcviz.Recorder``.
* :mod:`training.loader`, :mod:`training.checkpoint`, :mod:`training.distributed`: batches
  (DataLoader or on-device), full-state checkpoints, torchrun/DDP set-up.
* :mod:`training.sweep`, :mod:`training.demo`, :mod:`training.rundirs`: grids of runs, the
  offline demo, run-folder state.
* :mod:`training.cli`: ``wcviz train``, ``wcviz sweep``, ``wcviz demo``; ``python -m training``
  is ``wcviz train`` (what torchrun starts).
"""
