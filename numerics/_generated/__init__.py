# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    '7ffd72990ab754f6': 'paper',
    '2f6d8ba3e6bce4a5': 'he2',
    'fe201b0a059c9a3d': 'he3',
    '5d7e4c155cce1cf9': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '2fd49b84c8ed5cfe': 'paper_tuples',
    'bde67d13bbe9a83b': 'he2_tuples',
    'bbfc1e81a88fd7ed': 'he3_tuples',
}
