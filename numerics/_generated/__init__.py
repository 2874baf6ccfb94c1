# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    '2cb437872b0ce405': 'paper',
    '7129e17fc3caf1c0': 'he2',
    'b891beaf343b573a': 'he3',
}
