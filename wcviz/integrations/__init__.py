"""Callbacks that record a model's weights from a framework's own training loop.

* :mod:`wcviz.integrations.lightning`: ``WcvizCallback`` for ``lightning.Trainer``.
* :mod:`wcviz.integrations.huggingface`: ``WcvizCallback`` for ``transformers.Trainer``.
* :mod:`wcviz.integrations.tensorboard`: run stores written out as TensorBoard event files.

Each module imports its framework (an optional extra: ``pip install 'wcviz[lightning]'``,
``'wcviz[transformers]'``); ``import wcviz`` imports neither.

May import: every layer below (:mod:`wcviz.reparam`, :mod:`wcviz.record`, :mod:`wcviz.report`)
and its framework. Nothing from cli, training or app.
"""
