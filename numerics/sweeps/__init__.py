"""Parameter sweeps on any executor (local processes, threads, a dask cluster), stored per point.

Layers inside the package, top down: ``api`` (:func:`~numerics.sweeps.api.sweep`, task names) >
``tasks`` (the built-in tasks) > ``engine`` (executors and the run loop; it runs a callable and
knows no task) > ``layout`` (the grid and the combined dataset) > ``store`` (one file per point).
``learning_rate`` (the learning-rate scan of Fig. 2) runs on top of them.
"""
