"""The derived-equations document (derive/paper/documents.py): its parts in order, the digest of the
extra sections, and the committed docs/equations.md holds every model section as printed."""

import importlib

import pytest

from derive.generate import EQUATIONS_DOC, ROOT
from derive.model.model import COMMITTED_MODELS, HE2, PAPER
from derive.paper.documents import SECTION_MODULES, TITLES, equations_markdown, model_section, sections_digest
from derive.quantities.ode import QUANTITY_NAMES

RESULTS = [("first canonical", "## First extra section\n"), ("second canonical", "## Second extra section\n")]


def test_a_model_section_names_the_model_and_every_quantity():
    text = model_section(PAPER)
    assert text.startswith(f"## Model `{PAPER.name}`")
    assert [name for name in QUANTITY_NAMES if f"$${TITLES[name]} = " in text] == list(QUANTITY_NAMES)


def test_the_document_is_intro_models_sections_and_digest_in_order():
    text = equations_markdown((PAPER, HE2), digest="abc123", results=RESULTS)
    assert text.startswith("# Derived equations")
    positions = [text.index(part) for part in (f"## Model `{PAPER.name}`", f"## Model `{HE2.name}`",
                                               "## First extra section", "## Second extra section")]
    assert positions == sorted(positions)
    assert text.endswith("<!-- digest: abc123 -->\n")


def test_the_digest_follows_the_canonical_text_only():
    digest = sections_digest(RESULTS)
    assert len(digest) == 8
    assert sections_digest([(c, "other markdown") for c, _ in RESULTS]) == digest
    assert sections_digest([("changed", m) for _, m in RESULTS]) != digest


@pytest.mark.parametrize("name", SECTION_MODULES)
def test_every_section_module_defines_a_section(name):
    assert callable(importlib.import_module(name).section)


def test_the_committed_document_holds_every_model_section():
    committed = (ROOT / EQUATIONS_DOC).read_text()
    for model in COMMITTED_MODELS:
        assert model_section(model) in committed, model.name
