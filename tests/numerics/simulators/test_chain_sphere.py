"""Spherical SGD and label flips in the exact overlap chain (``simulate(..., method="overlaps")``).

Pathwise: one block of steps equals weight-space SGD with the same inputs, renormalised after each step
or with the same labels flipped (1e-11). In law: the chain against the weight simulator at the same N
(means and variances, 5 standard errors; measured 2.2 / 1.4 on the sphere, 1.6 / 3.5 with flips, at
N = 100 and 200 replicas) and on the sphere against the ODE at N = 1000 (measured 1.0), each with a
power check that the renormalisation or the flips are seen (measured 9.6, 11.6 and 18).
"""

import numpy as np
import pytest
from sample_points import largest_z

import numerics
from derive.model.model import PAPER, Model
from numerics.core.activations import activation_functions
from numerics.core.validation import covariance
from numerics.runtime.registry import resolve
from numerics.simulators.chain_draws import FlipDraws
from numerics.simulators.chain_readouts import chain_risk
from numerics.simulators.chain_sphere import renormalise_overlaps
from numerics.simulators.chain_start import covariance_factor
from numerics.simulators.overlap_chain import StepKernel


def sign_model(flip: float) -> Model:
    return Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1",
                 teacher_readout="1", label_flip=str(flip))


def _block_inputs(W, W_star, X):
    """The chain's block representation of inputs X (n, N) for weights W, W_star (regular C)."""
    N = W.shape[1]
    C = covariance(W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N)
    basis = np.linalg.solve(covariance_factor(C), np.vstack([W, W_star]) / np.sqrt(N))  # orthonormal rows
    G = X @ basis.T
    orthogonal = X - G @ basis
    return C, np.hstack([G, np.linalg.cholesky(orthogonal @ orthogonal.T)])[None]


def _weight_sgd(W, W_star, X, signs, *, eta, batch, resolved, spherical):
    """Mini-batch SGD on the weights, labels times ``signs``, rows renormalised after each step if spherical."""
    N = W.shape[1]
    sigma, sigma_prime = activation_functions(resolved.module, "STUDENT")
    sigma_star, _ = activation_functions(resolved.module, "TEACHER")
    a, b = (float(v) for v in resolved.module.readouts(W.shape[0], W_star.shape[0]))
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    decay = 1.0 - eta * resolved.weight_decay / N
    for t in range(X.shape[0] // batch):
        step = np.zeros_like(W)
        for i in range(t * batch, (t + 1) * batch):
            lam, nu = W @ X[i] / np.sqrt(N), W_star @ X[i] / np.sqrt(N)
            y = signs[i] * b * sigma_star(nu).sum()
            step += np.outer((y - a * sigma(lam).sum()) * a * sigma_prime(lam), X[i]) * eta / (np.sqrt(N) * batch)
        W = decay * W + step
        if spherical:
            W = W * norms / np.linalg.norm(W, axis=1, keepdims=True)
    return W


@pytest.mark.parametrize(("model", "batch", "spherical", "flip"), [
    (PAPER.with_weight_decay(0.3), 1, True, 0.0), (PAPER, 3, True, 0.0), (sign_model(0.3), 2, False, 0.3),
    (sign_model(0.3), 1, True, 0.3),
])
def test_a_block_equals_weight_space_sgd(model, batch, spherical, flip):
    N, p, k, eta, steps = 30, 2, 2, 0.4, 5
    resolved = resolve(model, sizes=(p, k))
    rng = np.random.default_rng(5)
    W, W_star = rng.standard_normal((p, N)), rng.standard_normal((k, N))
    X = rng.standard_normal((steps * batch, N))
    signs = np.where(rng.random(steps * batch) < flip, -1.0, 1.0)
    C, inputs = _block_inputs(W, W_star, X)
    state = C[None].copy()
    norms = np.diagonal(C[:p, :p])[None].copy() if spherical else None
    StepKernel(resolved, eta, N, p, k, batch, sphere_norms=norms).advance(state, inputs, None, signs[None])
    W1 = _weight_sgd(W, W_star, X, signs, eta=eta, batch=batch, resolved=resolved, spherical=spherical)
    np.testing.assert_allclose(state[0, :p, :p], W1 @ W1.T / N, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(state[0, :p, p:], W1 @ W_star.T / N, rtol=1e-11, atol=1e-12)


def test_renormalise_overlaps_scales_the_students():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1, 3, 5))
    Q, R = A[:, :2] @ np.swapaxes(A[:, :2], 1, 2), A[:, :2] @ np.swapaxes(A[:, 2:], 1, 2)
    scaled = A[:, :2] / np.linalg.norm(A[:, :2], axis=-1, keepdims=True) * np.sqrt([[[2.0], [0.5]]])
    renormalise_overlaps(Q, R, np.array([[2.0, 0.5]]))
    np.testing.assert_allclose(Q, scaled @ np.swapaxes(scaled, 1, 2), rtol=1e-13)
    np.testing.assert_allclose(R, scaled @ np.swapaxes(A[:, 2:], 1, 2), rtol=1e-13)


def test_flips_are_reproducible_and_have_their_probability():
    def signs(seed):
        streams = [np.random.default_rng(seed + i) for i in range(2)]
        return np.concatenate(list(FlipDraws(streams, [16] * 40 + [5], 0.25)), axis=1)

    first = signs(0)
    np.testing.assert_array_equal(first, signs(0))
    assert first.shape == (2, 645) and set(np.unique(first)) == {-1.0, 1.0}
    n = first.size
    assert abs(np.mean(first < 0) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)


def test_spherical_chain_against_the_weight_simulator_and_the_ode():
    N, p, k, eta, alpha, replicas = 100, 2, 1, 0.5, 1.5, 200
    record = [0.0, 0.5, alpha]
    rng = np.random.default_rng(1)
    Q0 = np.array([[1.0, 0.2], [0.2, 0.8]])
    R0 = np.array([[0.4], [-0.3]])
    kwargs = dict(N=N, p=p, k=k, eta=eta, alpha_max=alpha, replicas=replicas, record=record, progress=False,
                  spherical=True)
    chain = numerics.simulate(seed=2, method="overlaps", Q0=Q0, R0=R0, batch_size=2, **kwargs)
    # the norms stay at the start to rounding
    norms = np.diagonal(chain.Q[:, -1], axis1=-2, axis2=-1)
    np.testing.assert_allclose(norms, np.broadcast_to([1.0, 0.8], (replicas, 2)), rtol=1e-13)
    full = _weights_at(Q0, R0, N, replicas, rng)
    weights = numerics.simulate(seed=3, W0=full[0], W_star=full[1], batch_size=2, **kwargs)
    z_mean, z_var = largest_z(weights, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    free = numerics.simulate(seed=2, method="overlaps", Q0=Q0, R0=R0, batch_size=2, **{**kwargs, "spherical": False})
    assert largest_z(weights, free)[0] > 5  # power: the renormalisation is seen
    # the ODE on the sphere (N = 1000, replica means of R within 5 standard errors); power: the free ODE
    big = numerics.simulate(seed=4, method="overlaps", Q0=Q0, R0=R0, **{**kwargs, "N": 1000, "replicas": 40})

    def z_to_ode(spherical):
        ode = numerics.integrate(Q0, R0, np.eye(1), eta=eta, spherical=spherical, alpha_max=alpha, alpha_eval=record)
        difference = (big.R[:, -1] - ode.R[-1]).reshape(40, -1)
        return np.max(np.abs(difference.mean(0)) / (difference.std(0, ddof=1) / np.sqrt(40)))

    assert z_to_ode(True) < 5
    assert z_to_ode(False) > 5


def _weights_at(Q0, R0, N, replicas, rng):
    """Student and teacher weights (replicas, ., N) with overlaps exactly Q0, R0 and T = I."""
    C = covariance(Q0, R0, np.eye(R0.shape[1]))
    factor = covariance_factor(C[None])[0]
    frames = np.linalg.qr(rng.standard_normal((replicas, N, C.shape[0])))[0]  # orthonormal columns
    V = np.sqrt(N) * factor @ np.swapaxes(frames, 1, 2)
    p = Q0.shape[0]
    return V[:, :p], V[:, p:]


def test_label_flips_in_the_chain_against_the_weight_simulator_and_the_ode():
    N, p, k, eta, alpha, replicas, flip = 100, 2, 2, 0.5, 2.0, 200, 0.2
    record = [0.0, 1.0, alpha]
    kwargs = dict(N=N, p=p, k=k, eta=eta, alpha_max=alpha, replicas=replicas, record=record, progress=False)
    chain = numerics.simulate(seed=2, method="overlaps", model=sign_model(flip), **kwargs)
    weights = numerics.simulate(seed=3, model=sign_model(flip), **kwargs)
    z_mean, z_var = largest_z(weights, chain)
    assert z_mean < 5 and z_var < 5, (z_mean, z_var)
    clean = numerics.simulate(seed=2, method="overlaps", model=sign_model(0), **kwargs)
    assert largest_z(weights, clean)[0] > 5  # power: the flips are seen
    # the risk is the mixture over flipped labels, as the ODE's
    np.testing.assert_allclose(chain.risk[:, 0], numerics.risk(chain.Q[:, 0], chain.R[:, 0], chain.T,
                                                               model=sign_model(flip)), rtol=1e-12)
    risk, a = chain_risk(numerics.RunSettings(eta=eta, model=sign_model(flip)), resolve(sign_model(flip)), None,
                         chain.Q, chain.R, chain.T)
    np.testing.assert_array_equal(risk, chain.risk)
    assert a is None
