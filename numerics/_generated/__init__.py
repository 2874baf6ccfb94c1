# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'c6bf21e503d174f6': 'paper',
    'f886de85a3eadfbb': 'he2',
    'b47b0f81ef34fe40': 'he3',
    '63ddaa0d2739cfe3': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '3d4651564b142a6f': 'paper_tuples',
    '411c019bcf16c42a': 'he2_tuples',
    'f263873fe04a1fc6': 'he3_tuples',
}
