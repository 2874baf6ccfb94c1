# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'c65f9c7db47a869a': 'paper',
    '3d2d1f36d0e56307': 'he2',
    'ffaa45c40c9af43a': 'he3',
}
