# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'ac3ab877a1eeac8b': 'paper',
    '8b005dafa299195b': 'he2',
    '059aeda454f9fc7c': 'he3',
}
