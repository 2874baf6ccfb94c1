# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'c6bf21e503d174f6': 'paper',
    'f886de85a3eadfbb': 'he2',
    'b47b0f81ef34fe40': 'he3',
}
