# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    '7ffd72990ab754f6': 'paper',
    '2f6d8ba3e6bce4a5': 'he2',
    'fe201b0a059c9a3d': 'he3',
    '95d45344eb0bc4be': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    'b104fbcf11419eea': 'paper_tuples',
    '0f7f2d8635eec166': 'he2_tuples',
    'd184b3d9175b44bc': 'he3_tuples',
}
