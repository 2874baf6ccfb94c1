""":class:`~numerics.results.persist.IntegrationResult`, the result every solver returns, and its netCDF
files (encoding, atomic writes, loading).
"""
