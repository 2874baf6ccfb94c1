"""Orbits of labelled multigraphs (derive/gauss/orbits.py) against the plain labelled enumeration."""

from __future__ import annotations

from collections import Counter

import pytest


@pytest.mark.parametrize("residuals", [0, 1, 2, 3])
def test_residual_orbits_cover_every_labelled_multigraph(residuals):
    """Orbit sizes from the pruned enumeration == counts of the unpruned one (every vertex distinguishable)."""
    from derive.gauss.orbits import canonical, residual_orbits
    from derive.gauss.vertex import multigraphs

    allowed_free = [frozenset({0, 2}), frozenset({1}), frozenset({0, 2}), frozenset({1, 3})]
    allowed_residual = frozenset({1, 2, 3})
    labelled = Counter(
        canonical(graph, 4, residuals)[0] for graph in multigraphs(allowed_free + [allowed_residual] * residuals)
    )
    assert residual_orbits(allowed_free, allowed_residual, residuals) == dict(labelled)
    assert sum(labelled.values()) > 0
