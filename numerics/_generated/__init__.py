# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'ee4357f189a2bd9c': 'paper',
    '9e3e4d3c4b6ac069': 'he2',
    'd62a17175a74b181': 'he3',
    'a8129a241ee51a00': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '7043344dc39dcdbd': 'paper_tuples',
    'ef658474a7a60721': 'he2_tuples',
    '2459f6ebbfad06de': 'he3_tuples',
}
