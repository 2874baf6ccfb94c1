"""Increment moments of erf networks (the per-tuple route): numerics/noise/tuple_fluctuations.py.

Checked against a Gauss-Hermite quadrature of the increments' definitions (erf is entire, so the
tensor rule converges geometrically: 1e-13 at the sizes used), against Monte Carlo of one SGD step
from weights, and through the SDE.
"""

from __future__ import annotations

import numpy as np
import pytest
from gauss_quadrature import gaussian_nodes
from numpy.polynomial import hermite_e
from scipy.special import erf

from derive.model.model import SCM
from numerics.noise.fluctuations import increment_covariance


def sigma(x):
    return erf(x / np.sqrt(2))


def sigma_prime(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def quadrature_covariance(Q, R, T, eta, *, a, b, delta=0.0, eta_a=None, nodes=40):
    """Leading-order covariance of ``q = eta (E_j l_l + E_l l_j)``, ``r = eta E_j n_r`` (and ``s``) by quadrature."""
    p, k = R.shape
    z, weights = gaussian_nodes(np.block([[Q, R], [R.T, T]]), nodes)
    xi, xi_weights = hermite_e.hermegauss(3)
    xi_weights = xi_weights / np.sqrt(2 * np.pi)
    lam, nu = z[:, :p], z[:, p:]
    residual = sigma(nu) @ b - sigma(lam) @ a
    parts = []
    for noise, noise_weight in zip(xi, xi_weights):
        E = a * sigma_prime(lam) * (residual + np.sqrt(delta) * noise)[:, None]
        q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :])
        r = eta * E[:, :, None] * nu[:, None, :]
        s = None if eta_a is None else eta_a * sigma(lam) * (residual + np.sqrt(delta) * noise)[:, None]
        parts.append((weights * noise_weight, q, r, s))
    w = np.concatenate([part[0] for part in parts])

    def stacked(i):
        return np.concatenate([part[i] for part in parts])

    q, r = stacked(1), stacked(2)

    def cov(x, y):
        xc, yc = x - np.einsum("n,n...->...", w, x), y - np.einsum("n,n...->...", w, y)
        return np.einsum("n,na,nb->ab", w, xc.reshape(len(w), -1), yc.reshape(len(w), -1)).reshape(
            x.shape[1:] + y.shape[1:])

    blocks = [cov(q, q), cov(q, r), cov(r, r)]
    if eta_a is not None:
        s = stacked(3)
        blocks += [cov(s, q), cov(s, r), cov(s, s)]
    return blocks
