"""The functions of a generated module (derive/codegen/functions.py): names, parameters, outputs and
shapes, read back from the committed paper module."""

import inspect

import numpy as np
import pytest
from sample_points import random_point

from derive.codegen.functions import C_DIFFUSION, C_DRIFT, C_NOISE, FUNCTIONS, OUTPUT_SHAPES
from derive.quantities.ode import QUANTITY_NAMES
from numerics._generated import paper

P, K = 3, 2
SIZES = {"p": P, "k": K, "1": 1}


def test_specs_name_known_quantities_and_shapes():
    names = [spec.name for spec in FUNCTIONS]
    assert len(names) == len(set(names))
    for spec in FUNCTIONS:
        for output, combination in spec.outputs:
            assert output in OUTPUT_SHAPES
            for _, quantity in combination:
                assert quantity in QUANTITY_NAMES
                assert OUTPUT_SHAPES[quantity] == OUTPUT_SHAPES[output]  # a sum of one shape
        symbols = {str(s) for _, combination in spec.outputs for c, _ in combination for s in c.free_symbols}
        assert symbols == set(spec.parameters)


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.name)
def test_the_generated_functions_follow_their_specs(spec):
    function = getattr(paper, spec.name)
    assert list(inspect.signature(function).parameters)[3:] == list(spec.parameters)
    Q, R, T = random_point(P, K, np.random.default_rng(0))
    outputs = function(Q, R, T, *[0.5] * len(spec.parameters))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    assert len(outputs) == len(spec.outputs)
    for (name, _), value in zip(spec.outputs, outputs):
        shape = tuple(SIZES[str(d)] for d in OUTPUT_SHAPES[name])
        allowed = {shape, ()} if name == "residual_risk" else {shape}  # the risk may come as a scalar
        assert np.shape(value) in allowed, name


def test_rhs_terms_is_the_documented_combination_of_all_terms():
    assert {str(C_DRIFT), str(C_DIFFUSION), str(C_NOISE)} == {"c_drift", "c_diffusion", "c_noise"}
    Q, R, T = random_point(P, K, np.random.default_rng(1))
    drift_Q, drift_R, diffusion_Q, noise_Q = paper.all_terms(Q, R, T)
    dQ, dR = paper.rhs_terms(Q, R, T, 0.3, 0.09, 0.05)
    np.testing.assert_allclose(dQ, 0.3 * drift_Q + 0.09 * diffusion_Q + 0.05 * noise_Q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dR, 0.3 * drift_R, rtol=1e-12, atol=1e-14)
    first_Q, first_R = paper.first_order_terms(Q, R, T)
    np.testing.assert_allclose(first_Q, drift_Q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(first_R, drift_R, rtol=1e-12, atol=1e-14)
