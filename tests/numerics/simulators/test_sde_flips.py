"""simulate_sde with label flips against the exact overlap chain (replica means, 5 standard errors).

An erf committee (and an erf student learning a sign teacher) with labels
flipped with probability 0.3, at N = 500 and 80 replicas: the SDE's replica means of every overlap
agree with the chain's (measured 0.6 standard errors at dalpha = 0.02; the Euler bias shows at
dalpha = 0.04 with a few hundred replicas), and the chain without flips is told apart (measured 79).
Variances are not compared here: the sign teacher's covariance is the leading order in eta, whose one-step
variance differs from the chain's by O(eta); the erf committee's includes the eta**3 and eta**4 parts
(tests/numerics/noise/test_erf_higher_orders.py, docs/finite_n.md).
"""

import numpy as np
import pytest
from sample_points import largest_z

import numerics
from derive.model.model import Model

ERF = Model(student_activation="erf(x/sqrt(2))", teacher_activation="erf(x/sqrt(2))", student_readout="1",
            teacher_readout="1")


def test_sde_with_label_flips_against_the_overlap_chain():
    N, replicas, alpha, eta, flip = 500, 80, 2.0, 0.4, 0.3
    Q0, R0, T = np.eye(1), np.array([[0.3]]), np.eye(1)
    record = [0.0, 1.0, alpha]
    flipped = ERF.with_label_flip(flip)
    kwargs = dict(N=N, p=1, k=1, eta=eta, alpha_max=alpha, replicas=replicas, seed=1, record=record,
                  progress=False, method="overlaps", Q0=Q0, R0=R0)
    chain = numerics.simulate(model=flipped, **kwargs)
    sde = numerics.simulate_sde(Q0, R0, T, eta=eta, model=flipped, N=N, alpha_max=alpha, replicas=replicas, seed=2,
                                record=record, dalpha=0.02, progress=False)
    assert largest_z(chain, sde)[0] < 5
    # the risk is the mixture over flipped labels, as the ODE's
    np.testing.assert_allclose(sde.risk[:, -1], numerics.risk(sde.Q[:, -1], sde.R[:, -1], T, model=flipped),
                               rtol=1e-12)
    # power: the chain without flips is told apart
    clean = numerics.simulate(model=ERF, **kwargs)
    assert largest_z(clean, sde)[0] > 5


def test_sde_with_a_sign_teacher_against_the_overlap_chain():
    # the sign teacher's covariance is the closed form's limit (numerics/kernels/erf_increments.py)
    sign = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                 teacher_readout="1", label_flip="0.1")
    N, replicas, alpha, eta = 500, 80, 2.0, 0.4
    Q0, R0, T = np.eye(1), np.array([[0.3]]), np.eye(1)
    record = [0.0, 1.0, alpha]
    chain = numerics.simulate(model=sign, N=N, p=1, k=1, eta=eta, alpha_max=alpha, replicas=replicas, seed=1,
                              record=record, progress=False, method="overlaps", Q0=Q0, R0=R0)
    sde = numerics.simulate_sde(Q0, R0, T, eta=eta, model=sign, N=N, alpha_max=alpha, replicas=replicas, seed=2,
                                record=record, dalpha=0.02, progress=False)
    assert largest_z(chain, sde)[0] < 5


def test_sde_refuses_a_sign_teacher_with_a_trained_readout():
    sign = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                 teacher_readout="1", label_flip="0.1")
    with pytest.raises(ValueError, match="sign teacher with a trained readout is not derived"):
        numerics.simulate_sde(np.eye(1), np.zeros((1, 1)), np.eye(1), eta=0.5, eta_a=0.1, a=np.ones(1), model=sign,
                              N=100, alpha_max=1, progress=False)
