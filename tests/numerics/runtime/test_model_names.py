"""Committed models by name (numerics/runtime/registry.py ``model_by_name``): every committed model, the soft
committee machine of the per-tuple modules included."""

import pytest

from derive.model.model import HE3, SCM
from numerics.runtime.registry import model_by_name


def test_every_committed_model_is_found_by_name():
    assert model_by_name("paper") is None
    assert model_by_name("he3") is HE3
    assert model_by_name("scm") is SCM


def test_an_unknown_name_lists_the_committed_ones():
    with pytest.raises(ValueError, match="unknown model 'foo'; choose from paper, he2, he3, scm"):
        model_by_name("foo")
