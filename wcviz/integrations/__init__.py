"""Callbacks that record a model's weights from a framework's own training loop.

* :mod:`wcviz.integrations.lightning`: ``WcvizCallback`` for ``lightning.Trainer``.
* :mod:`wcviz.integrations.huggingface`: ``WcvizCallback`` for ``transformers.Trainer``.

Each module imports its framework (an optional extra: ``pip install 'wcviz[lightning]'``,
``'wcviz[transformers]'``); ``import wcviz`` imports neither.
"""
