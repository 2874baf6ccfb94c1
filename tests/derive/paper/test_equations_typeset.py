"""docs/equations.md (built by derive/paper/documents.py) compiles: every formula typeset with KaTeX.

The committed document is fresh (``python -m derive --check``), so its formulas are those of
the committed models (paper, He2, He3) and of the extra sections, among them the erf kernels
of the soft committee machine. The Markdown pages beside it are checked the same way.
"""

from pathlib import Path

import pytest
from tex_engine import ROOT, assert_typesets, markdown_formulas

from derive.algebra.render import PRECEDENCE
from derive.paper.documents import equations_markdown
from derive.paper.sections.kernel_equations import section as kernel_section

EQUATIONS = ROOT / "docs" / "equations.md"
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def test_every_formula_of_the_equations_document_typesets():
    formulas = markdown_formulas(EQUATIONS.read_text(encoding="utf-8"), "docs/equations.md")
    displays = [label for label in formulas if " display " in label]
    assert len(displays) >= 50  # five quantities per model, the right-hand sides and the sections
    assert_typesets(formulas)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_every_formula_of_the_markdown_pages_typesets(page: Path):
    formulas = markdown_formulas(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))
    if formulas:
        assert_typesets(formulas)


def test_the_document_states_the_grouping_of_superscripts_and_entrywise_products():
    # part of the document builder, so regenerating keeps it
    assert PRECEDENCE in equations_markdown((), "0", results=[])
    assert PRECEDENCE in EQUATIONS.read_text(encoding="utf-8")


def test_the_soft_committee_machine_kernels_typeset():
    # erf models have no index-free equations: their LaTeX is the kernels section, built here afresh
    _, markdown = kernel_section()
    formulas = markdown_formulas(markdown, "kernels section")
    assert any("I_2" in formula for formula in formulas.values())
    assert_typesets(formulas)


def test_markdown_formulas_finds_display_and_inline_math_outside_code():
    text = "a $x^{2}$ b `$not$`\n\n$$\\frac{1}{p}\n+ Q$$\n\n```\n$$code$$\n```\n$y$"
    formulas = markdown_formulas(text, "t")
    assert sorted(formulas.values()) == sorted(["x^{2}", "\\frac{1}{p}\n+ Q", "y"])
    assert [label.split(" ")[0] for label in formulas] == ["t:3", "t:1", "t:9"]
