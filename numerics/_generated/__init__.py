# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.
"""Committed generated modules, keyed by the input hash of their model."""

COMMITTED = {
    'eac6ec542bfe282b': 'paper',
    '064ea37fa68f3b50': 'he2',
    '5eff0f32b3c63d32': 'he3',
    '9c5fbbea5b7c6fec': 'scm',
}

#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash
COMMITTED_TUPLES = {
    '5d2825d3bc20b281': 'paper_tuples',
    '9b1c0808eea21c9b': 'he2_tuples',
    '4c3567e4943a4db2': 'he3_tuples',
}
