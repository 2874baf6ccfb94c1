""":class:`~numerics.results.persist.IntegrationResult`, the result every solver returns, the
:class:`~numerics.results.settings.RunSettings` it carries, and their netCDF files (encoding,
atomic writes, loading).
"""
