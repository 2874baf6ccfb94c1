# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'eac6ec542bfe282b': 'paper',
    '064ea37fa68f3b50': 'he2',
    '5eff0f32b3c63d32': 'he3',
    '334f5fc01e582333': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '83f47dd83b268009': 'paper_tuples',
    '5bbabf42a2354426': 'he2_tuples',
    '07c9458d0d2e8b42': 'he3_tuples',
}
