"""Callbacks that record a model's weights from a framework's own training loop, and bridges to
other tools' stores.

* :mod:`wcviz.integrations.lightning`: ``WcvizCallback`` for ``lightning.Trainer``.
* :mod:`wcviz.integrations.huggingface`: ``WcvizCallback`` for ``transformers.Trainer``.
* :mod:`wcviz.integrations.tensorboard`: run stores written out as TensorBoard event files;
  :mod:`wcviz.integrations.tensorboard_import`: TensorBoard log dirs read in as run stores.
* :mod:`wcviz.integrations.mlflow`: run stores exported as MLflow runs.

Each module imports its framework (an optional extra: ``pip install 'wcviz[lightning]'``,
``'wcviz[transformers]'``); ``import wcviz`` imports neither.

May import: every layer below (:mod:`wcviz.reparam`, :mod:`wcviz.record`, :mod:`wcviz.report`)
and its framework. Nothing from cli, training or app.
"""
