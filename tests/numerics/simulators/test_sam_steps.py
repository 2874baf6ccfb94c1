"""Sharpness-aware steps in the weight simulator (``simulate(..., sam_radius=rho)``) against the exact ODE.

Each sample of a mini-batch ascends on its own (docs/model.md): the ODE divides the ``eta**2`` term by ``B``.
"""

from __future__ import annotations

import numpy as np
import pytest

import numerics


@pytest.mark.parametrize("batch_size", [1, 4])
def test_ode_against_the_weight_simulator(batch_size):
    # simulate(sam_radius=...) at N = 1000 against the ODE from each replica's own start (5 standard
    # errors); the plain ODE from the same starts is rejected. A small 2 a c rho eta = 0.05: a larger one
    # lets single samples with a large residual blow the weights up at this N (docs/variants.md)
    N, replicas, alpha, eta, rho = 1000, 24, 1.0, 0.1, 0.5
    run = numerics.simulate(eta=eta, sam_radius=rho, batch_size=batch_size, N=N, p=2, k=1, alpha_max=alpha,
                            replicas=replicas, seed=4 + batch_size, record=[0.0, alpha], progress=False)
    Q0 = (run.Q[:, 0] + np.swapaxes(run.Q[:, 0], 1, 2)) / 2

    def z_scores(radius):
        ode = numerics.integrate(Q0, run.R[:, 0], run.T, eta=eta, sam_radius=radius, batch_size=batch_size,
                                 alpha_max=alpha, alpha_eval=[0.0, alpha])
        rows = []
        for sim, theory in ((run.Q[:, -1], ode.Q[:, -1]), (run.R[:, -1], ode.R[:, -1])):
            difference = (sim - theory).reshape(replicas, -1)
            rows.append(difference.mean(0) / (difference.std(0, ddof=1) / np.sqrt(replicas)))
        return np.concatenate(rows)

    assert np.max(np.abs(z_scores(rho))) < 5
    assert np.max(np.abs(z_scores(0.0))) > 10
    assert run.settings.sam_radius == rho
