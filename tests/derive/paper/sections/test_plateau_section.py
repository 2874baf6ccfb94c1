"""The plateau section states norm learning, the linearised plateau and the escape of derive.paper.plateau."""

import pytest
import sympy as sp

from derive.model.model import PAPER
from derive.paper.plateau import LINEARISATION_FIELDS, norm_learning, plateau_linearisation
from derive.paper.sections.plateau import COEFFICIENT_SYMBOLS, section


@pytest.fixture(scope="module")
def stated():
    return section()


def test_every_linearisation_coefficient_has_a_symbol():
    assert set(COEFFICIENT_SYMBOLS) == set(LINEARISATION_FIELDS)
    assert len(set(COEFFICIENT_SYMBOLS.values())) == len(COEFFICIENT_SYMBOLS)


def test_canonical_text_starts_with_norm_learning_then_the_linearisation(stated):
    canonical, _ = stated
    norm = norm_learning(PAPER, True)
    linearisation = plateau_linearisation(PAPER, True)
    expected = [sp.srepr(x) for x in (norm.rate, norm.fixed_point, *norm.eigenvalues)]
    expected += [sp.srepr(getattr(linearisation, f)) for f in LINEARISATION_FIELDS]
    assert canonical.split("|")[: len(expected)] == expected


def test_markdown_states_each_coefficient_of_the_finite_eta_linearisation(stated):
    _, markdown = stated
    assert markdown.startswith("## Plateau and escape (paper model, T = I)")
    linearisation = plateau_linearisation(PAPER, True)
    for field in LINEARISATION_FIELDS:
        assert f"$${COEFFICIENT_SYMBOLS[field]} = {sp.latex(getattr(linearisation, field))}$$" in markdown, field
