# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'eac6ec542bfe282b': 'paper',
    '064ea37fa68f3b50': 'he2',
    '5eff0f32b3c63d32': 'he3',
}
