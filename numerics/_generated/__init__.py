# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'eac6ec542bfe282b': 'paper',
    '064ea37fa68f3b50': 'he2',
    '5eff0f32b3c63d32': 'he3',
    '19b775948eaab60b': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '48ef01cd73598925': 'paper_tuples',
    'd6750d34344b1030': 'he2_tuples',
    '08034e12f9d6e5c2': 'he3_tuples',
}
