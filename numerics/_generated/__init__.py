# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'ee4357f189a2bd9c': 'paper',
    '9e3e4d3c4b6ac069': 'he2',
    'd62a17175a74b181': 'he3',
    'c3c18366155ba441': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    'a71ed5079226708b': 'paper_tuples',
    'f9d4a16a547b88e0': 'he2_tuples',
    '0f1a8a861b7fdf08': 'he3_tuples',
}
