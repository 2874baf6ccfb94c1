import numpy as np

import numerics


def test_paper_model_runs():
    Q0, R0, T = numerics.initial_conditions(2, 1, N=100, seed=0)
    result = numerics.integrate(Q0, R0, T, eta=0.5, alpha_max=5)
    assert np.all(np.isfinite(result.risk))
