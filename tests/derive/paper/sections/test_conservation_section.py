"""The conservation section states, per committed model, whether dR = A(Q) R + R B(T) (derive.paper.conservation)."""

import pytest
import sympy as sp

from derive.model.model import COMMITTED_MODELS, PAPER
from derive.paper.conservation import SylvesterForm, condition_ratio, dR_form, form_or_reason
from derive.paper.sections.conservation import section


@pytest.fixture(scope="module")
def stated():
    return section()


def test_canonical_text_starts_with_the_paper_form_and_its_condition_ratio(stated):
    canonical, _ = stated
    head = dR_form(PAPER).canonical() + "|" + sp.srepr(condition_ratio(PAPER)) + "|"
    assert canonical.startswith(head)


def test_each_committed_model_has_a_row_saying_whether_dR_has_the_form(stated):
    canonical, markdown = stated
    assert markdown.startswith(r"## Conservation of $\Omega")
    for model in COMMITTED_MODELS:
        form = form_or_reason(model)
        has_form = isinstance(form, SylvesterForm)
        row = next(line for line in markdown.splitlines() if line.startswith(f"| `{model.name}` |"))
        assert row.split(" | ")[1].startswith("yes" if has_form else "no:"), row
        stated_form = form.canonical() if has_form else sp.srepr(form.term)
        assert f"|{model.name}:{stated_form}|" in canonical, model.name
