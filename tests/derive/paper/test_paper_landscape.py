"""Symbolic Hessian sign counts and the plateau's negative-to-null ratio (derive/paper/landscape.py).

Checked against the numerical closed forms of numerics/analyses/closed_forms.py at several sizes.
"""

import pytest
import sympy as sp

from derive.model.model import k, p
from derive.paper.landscape import N as N_SYM
from derive.paper.landscape import counts as symbolic_counts
from derive.paper.landscape import plateau_ratio
from derive.paper.landscape import r as R_SYM
from numerics.analyses.closed_forms import plateau_negative_null_ratio, predicted_counts, predicted_spectrum
from numerics.analyses.stationary_points import POINT_NAMES


def test_symbolic_counts_equal_the_numerical_closed_forms():
    table = symbolic_counts()
    for N_, p_, k_ in [(20, 3, 2), (50, 5, 3), (30, 4, 4), (25, 2, 2)]:
        values = {N_SYM: N_, p: p_, k: k_}
        for name in POINT_NAMES:
            for rank in ([1, p_] if name == "plateau" else [None]):
                expected = predicted_counts(name, N_, p_, k_, rank=rank)
                subs = values | {R_SYM: rank if rank is not None else p_}
                got = {sign: int(table[name][sign].subs(subs)) for sign in expected}
                assert got == expected, (name, N_, p_, k_, rank)


def test_plateau_ratio_and_its_large_N_behaviour():
    ratio, leading = plateau_ratio()
    for N_, p_, k_ in [(100, 4, 2), (1000, 7, 3)]:
        value = float(ratio.subs({N_SYM: N_, p: p_, k: k_}))
        assert value == pytest.approx(plateau_negative_null_ratio(N_, p_, k_), rel=1e-12)
        assert value == pytest.approx(2 * k_ / (2 * N_ - p_ - 2 * k_ - 1), rel=1e-12)
    assert sp.simplify(leading - k / N_SYM) == 0
    # grows with p at fixed N, k
    ratios = [plateau_negative_null_ratio(100, p_, 2) for p_ in range(1, 20)]
    assert all(b > a for a, b in zip(ratios, ratios[1:]))


@pytest.mark.parametrize(("N_", "p_", "k_"), [(12, 3, 2), (20, 5, 3), (9, 2, 2), (40, 4, 1), (17, 6, 4)])
def test_symbolic_spectra_equal_the_numerical_closed_forms(N_, p_, k_):
    """derive's sympy tables (the equations) and numerics' exact-fraction tables are one source: same numbers."""
    from derive.model.hessian_spectra import aligned_norm as shared_aligned_norm
    from derive.paper.landscape import aligned_norm, spectra

    assert sp.simplify(aligned_norm() - shared_aligned_norm(k)) == 0
    for name, pairs in spectra().items():
        if name == "aligned" and k_ == 1:
            continue  # one teacher: the aligned point is a zero-error point (numerics redirects)
        for rank in (range(1, p_ + 1) if name == "plateau" else [None]):
            if name == "zero_error" and p_ < k_:
                continue
            subs = {N_SYM: N_, p: p_, k: k_, R_SYM: rank if rank is not None else p_}
            merged: dict[sp.Rational, int] = {}
            for value, multiplicity in pairs:
                key = sp.Rational(value.subs(subs))
                merged[key] = merged.get(key, 0) + int(multiplicity.subs(subs))
            expected = [(float(v / N_), m) for v, m in sorted(merged.items()) if m > 0]
            assert predicted_spectrum(name, N_, p_, k_, rank=rank) == expected, (name, rank)
