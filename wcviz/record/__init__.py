"""Measuring weights and storing the measures: from a model to a run folder on disk.

* :mod:`wcviz.record.measures`: the formulas and the one quantile list and threshold grammar;
  :mod:`wcviz.record.stats`: exact per-layer statistics of a record (radix select, histograms);
  :mod:`wcviz.record.native`: their compiled float32 passes (``_kernels.c``, optional: numpy's
  path gives the same bits without a C compiler).
* :mod:`wcviz.record.metrics`: metric names as users write them, the schema's ``METRICS`` and
  the store variables that hold them.
* :mod:`wcviz.record.runfolder`: every file name of a run folder and the words for a run's
  state; run discovery. :mod:`wcviz.record.config`: config identity and a folder's run state.
* :mod:`wcviz.record.schema`: the store's variables and dimensions, and its root attributes.
* :mod:`wcviz.record.store`: the crash-safe writer (:class:`~wcviz.record.store.RunStore`);
  :mod:`wcviz.record.locks`: one writer per run; :mod:`wcviz.record.atomic`: atomic file writes.
* :mod:`wcviz.record.integrity`: checksums and confinement checks of a store's files.
* :mod:`wcviz.record.reader`: :func:`~wcviz.record.reader.open_run`,
  :func:`~wcviz.record.reader.open_runs`, ``list_runs`` and ``read_arrays``.
* :mod:`wcviz.record.gradients`: statistics beyond the weights (gradients, update ratio,
  parametrization originals); :mod:`wcviz.record.sharded`: exact statistics of DTensor
  (FSDP2) weights from their shards, by collectives.
* :mod:`wcviz.record.index`: the runs index of a root (``.wcviz-runs.json``), never trusted
  over a store.
* :mod:`wcviz.record.recorder`: :class:`~wcviz.record.recorder.Recorder`, model -> store.

May import: :mod:`wcviz.errors`, :mod:`wcviz.reparam`, torch, numpy, zarr, xarray,
google-crc32c (the core install). Nothing from report, integrations, cli, training or app.
"""
