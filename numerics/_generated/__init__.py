# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'ee4357f189a2bd9c': 'paper',
    '9e3e4d3c4b6ac069': 'he2',
    'd62a17175a74b181': 'he3',
    '2b26dbdbc52251cd': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '20936cccc1449536': 'paper_tuples',
    '2a979e84d8b2ebd1': 'he2_tuples',
    '479a7783fa813aa1': 'he3_tuples',
}
