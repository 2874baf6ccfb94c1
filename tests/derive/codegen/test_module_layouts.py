"""The two layouts of a generated model module (derive/codegen/module.py) give the same numbers.

The compact layout, which the numerics generate on first use for large models, plans the
costly sum once (in ``rhs_terms``) and prints ``all_terms`` from it; the full layout is what
the committed modules use. Dense student polynomials of degree 2 to 5 are generated in both
layouts and every function is compared at random, singular and nearly singular points,
unbatched and batched (degree 6 costs about ten seconds more in the full layout: its compact
module is checked against an exact quadrature in tests/numerics/runtime/test_every_model.py).
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import sympy as sp
from sample_points import random_point

from derive.algebra.matrix_expr import canonical_text
from derive.codegen.module import COMPACT_FROM_TERMS, generate_module, resolve_layout
from derive.model.model import HE3, Model
from derive.quantities.ode import QUANTITY_NAMES, derive_quantities

#: Dense students of degree 2 to 5 (the bench's first-use models), teacher x**2 + x.
DENSE_STUDENTS = {
    2: "x**2 - x/3 + 1",
    3: "-x**3/2 + 2*x**2 - x",
    4: "x**4/5 - x**3 + 3*x/4 - 1/2",
    5: "x**5/7 + x**4/3 - 2*x**2 + x",
}


def _load(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def _function_source(source: str, name: str) -> str:
    return source.split(f"\ndef {name}(")[1].split("\ndef ")[0]


def _calls(module: types.ModuleType, Q, R, T) -> dict[str, tuple]:
    def outputs(value):
        return value if isinstance(value, tuple) else (value,)

    return {
        "first_order_terms": outputs(module.first_order_terms(Q, R, T)),
        "all_terms": outputs(module.all_terms(Q, R, T)),
        "rhs_terms": outputs(module.rhs_terms(Q, R, T, 0.3, 0.09, 0.009)),
        "residual_risk": outputs(module.residual_risk(Q, R, T)),
    }


@pytest.mark.parametrize("degree", sorted(DENSE_STUDENTS))
def test_compact_layout_equals_full_layout(degree):
    model = Model(student_activation=DENSE_STUDENTS[degree], teacher_activation="x**2 + x")
    full = generate_module(model, "full").source
    compact = generate_module(model, "compact").source
    assert "def noise_terms(" in compact and "def noise_terms(" not in full
    # the ODE's function is planned and printed the same way in both layouts
    assert _function_source(compact, "rhs_terms") == _function_source(full, "rhs_terms")
    full_module, compact_module = _load(full, f"full_{degree}"), _load(compact, f"compact_{degree}")
    rng = np.random.default_rng(degree)
    points = [random_point(3, 2, rng, kind) for kind in ("random", "singular", "near")]
    batch = tuple(np.stack([point[i] for point in points]) for i in range(3))
    for Q, R, T in points + [batch]:
        want, got = _calls(full_module, Q, R, T), _calls(compact_module, Q, R, T)
        for name in want:
            for w, g in zip(want[name], got[name]):
                scale = max(1e-300, float(np.max(np.abs(w))))
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * scale, err_msg=f"{name}, degree {degree}")


def test_the_comparison_can_fail():
    """A model with one coefficient changed by 1e-6 is told apart at the same tolerance."""
    base = Model(student_activation=DENSE_STUDENTS[3], teacher_activation="x**2 + x")
    moved = Model(student_activation="-x**3/2 + 2*x**2 - 1000001*x/1000000", teacher_activation="x**2 + x")
    Q, R, T = random_point(3, 2, np.random.default_rng(0))
    want = _load(generate_module(base, "full").source, "base").all_terms(Q, R, T)
    got = _load(generate_module(moved, "compact").source, "moved").all_terms(Q, R, T)
    assert not all(np.allclose(g, w, rtol=1e-12, atol=0) for g, w in zip(got, want))


def test_auto_layout_is_compact_only_for_large_diffusion_sums():
    small = derive_quantities(Model(student_activation=DENSE_STUDENTS[3], teacher_activation="x**2 + x")).as_dict()
    large = derive_quantities(Model(student_activation=DENSE_STUDENTS[5], teacher_activation="x**2 + x")).as_dict()
    assert len(sp.Add.make_args(small["diffusion_Q"])) < COMPACT_FROM_TERMS <= len(
        sp.Add.make_args(large["diffusion_Q"])
    )
    assert resolve_layout("auto", small) == "full"
    assert resolve_layout("auto", large) == "compact"
    assert resolve_layout("full", large) == "full"
    assert resolve_layout("compact", small) == "compact"
    with pytest.raises(ValueError, match="unknown module layout 'dense'"):
        resolve_layout("dense", small)


def test_canonical_text_is_sympy_srepr_of_each_term():
    derived = derive_quantities(HE3).as_dict()
    for name in QUANTITY_NAMES:
        terms = sp.Add.make_args(derived[name])
        assert canonical_text(derived[name]) == " + ".join(sorted(sp.srepr(term) for term in terms))
    with_float = sp.Float(0.5, 3) * sp.Symbol("Q") + sp.Float(0.5, 30) * sp.Symbol("R")
    assert canonical_text(with_float) == " + ".join(sorted(sp.srepr(t) for t in sp.Add.make_args(with_float)))
