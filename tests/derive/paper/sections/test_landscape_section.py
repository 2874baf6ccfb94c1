"""The landscape section states the spectra, counts and degrees of freedom of derive.paper.landscape."""

import pytest
import sympy as sp

from derive.paper.landscape import aligned_norm, counts, degrees_of_freedom, plateau_ratio, spectra
from derive.paper.sections.landscape import section


@pytest.fixture(scope="module")
def stated():
    return section()


def test_canonical_text_lists_every_result_in_order(stated):
    canonical, _ = stated
    ratio, leading = plateau_ratio()
    expressivity, manifold = degrees_of_freedom()
    expected = [sp.srepr(x) for x in (aligned_norm(), ratio, leading, expressivity, manifold)]
    expected += [f"{pt}:{sp.srepr(v)}:{sp.srepr(m)}" for pt, pairs in spectra().items() for v, m in pairs]
    expected += [f"{pt}:{s}:{sp.srepr(n)}" for pt, c in counts().items() for s, n in c.items()]
    assert canonical.split("|") == expected


def test_markdown_has_one_table_row_per_eigenvalue_and_the_counts(stated):
    _, markdown = stated
    assert markdown.startswith("## Hessian spectra at the stationary points")
    for point, pairs in spectra().items():
        for value, multiplicity in pairs:
            assert f"| ${sp.latex(value)}$ | ${sp.latex(multiplicity)}$ |" in markdown, (point, value)
        row = " | ".join(f"${sp.latex(counts()[point][s])}$" for s in ("negative", "null", "positive"))
        assert f"| {row} |" in markdown, point
    assert markdown.count("| N x eigenvalue | multiplicity |") == len(spectra())


def test_markdown_states_the_aligned_norm_and_the_plateau_ratio(stated):
    _, markdown = stated
    ratio, leading = plateau_ratio()
    expressivity, manifold = degrees_of_freedom()
    assert sp.latex(aligned_norm()) in markdown
    assert sp.latex(ratio) in markdown and sp.latex(leading) in markdown
    assert sp.latex(expressivity) in markdown and sp.latex(manifold) in markdown
