"""The fluctuations section: the term counts of derive.quantities.increments and one signed example block."""

import pytest

from derive.model.model import HE2, HE3, PAPER
from derive.paper.sections.increments import section
from derive.quantities.increments import MOMENT_NAMES, derive_moments, fluctuation_result_hash
from derive.quantities.network_tables import network_count


@pytest.fixture(scope="module")
def stated():
    return section()


def test_canonical_text_is_the_fluctuation_hashes_of_the_three_models(stated):
    canonical, _ = stated
    assert canonical.split("|") == [fluctuation_result_hash(model) for model in (PAPER, HE2, HE3)]


def test_each_average_has_a_row_with_its_term_and_network_counts(stated):
    _, markdown = stated
    assert markdown.startswith("## Fluctuations: covariance of one step's increments (finite N)")
    paper, he2, networks = derive_moments(PAPER), derive_moments(HE2), network_count(HE3)
    for name in MOMENT_NAMES:
        row = f"| `{name}` | {len(paper[name])} | {len(he2[name])} | {networks[name]} |"
        assert row in markdown.splitlines(), name


def test_fluctuation_lines_carry_their_sign_and_bracket_sums(stated):
    # "&+ -a + b\, X" read as "-a + bX"; each line is now "&+ (sum)\, X" or "&- term\, X"
    _, markdown = stated
    block = markdown[markdown.index(r"\begin{aligned}") : markdown.index(r"\end{aligned}")]
    assert "&+ -" not in block and "&+ - " not in block
    lines = block.split(r" \\")[1:]
    assert len(lines) == len(derive_moments(PAPER)["NN"]) - 1
    for line in lines:
        line = line.strip()
        assert line.startswith(("&+ ", "&- ")), line
        coefficient = line[3:].split(r"\, ")[0]
        if line.startswith("&- "):
            assert " + " not in coefficient and " - " not in coefficient, line
