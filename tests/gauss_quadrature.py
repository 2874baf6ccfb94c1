"""Exact Gaussian expectations by tensor Gauss-Hermite quadrature, written independently of derive/.

For ``z ~ N(0, C)`` write ``z = L g`` with ``g ~ N(0, I_r)`` and ``L = V sqrt(w)``
from the eigendecomposition of ``C`` (eigenvalues that are zero up to rounding are
dropped, so singular covariances need fewer dimensions, exactly). An ``n``-node
Gauss-Hermite rule integrates polynomials of degree ``2 n - 1`` in each variable
exactly, so the tensor rule is exact (up to rounding) for polynomial integrands of
total degree below ``2 n``.

The averages of docs/model.md are computed here from their definitions, with sympy
only used to read the activation coefficients and the readouts.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp
from numpy.polynomial import hermite_e

from derive.model.model import k as k_symbol
from derive.model.model import p as p_symbol
from derive.model.model import x


def gaussian_nodes(C: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z`` (n_points, d) and weights (n_points,) of an exact rule for ``N(0, C)``."""
    eigenvalues, vectors = np.linalg.eigh(C)
    scale = max(1.0, float(np.max(np.abs(eigenvalues))))
    if eigenvalues[0] < -1e-12 * scale:
        raise ValueError(f"covariance is not positive semi-definite (eigenvalue {eigenvalues[0]:.3g})")
    keep = eigenvalues > 1e-14 * scale
    factor = vectors[:, keep] * np.sqrt(eigenvalues[keep])
    nodes_1d, weights_1d = hermite_e.hermegauss(n_nodes)
    weights_1d = weights_1d / np.sqrt(2 * np.pi)
    rank = int(keep.sum())
    if rank == 0:
        return np.zeros((1, C.shape[0])), np.ones(1)
    grid = np.array(list(itertools.product(range(n_nodes), repeat=rank)))
    g = nodes_1d[grid]
    weights = np.prod(weights_1d[grid], axis=1)
    return g @ factor.T, weights


def polynomial(expr: sp.Expr) -> np.poly1d:
    """A polynomial in ``x`` as a NumPy ``poly1d``."""
    coefficients = [float(c) for c in sp.Poly(expr, x).all_coeffs()]
    return np.poly1d(coefficients)


def readout_values(model, p: int, k: int) -> tuple[float, float]:
    sizes = {p_symbol: p, k_symbol: k}
    return float(model.student_readout.subs(sizes)), float(model.teacher_readout.subs(sizes))


def exact_terms(model, Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> dict[str, np.ndarray | float]:
    """``drift_Q``, ``drift_R``, ``diffusion_Q``, ``noise_Q``, ``residual_risk`` by quadrature.

    ``D_R = a <s'(l_j) n_r (y0 - f)>``, ``D_Q = a <s'(l_j) l_l (y0 - f)> + (j <-> l)``,
    ``V_Q = a^2 <s'(l_j) s'(l_l) (y0 - f)^2>``, ``N_Q = a^2 <s'(l_j) s'(l_l)>``,
    ``eps_0 = <(y0 - f)^2> / 2`` (docs/derivation.md).
    """
    p, k = R.shape
    C = np.block([[Q, R], [R.T, T]])
    sigma = polynomial(model.student_activation)
    sigma_star = polynomial(model.teacher_activation)
    derivative = sigma.deriv()
    degree = max(sigma.order, sigma_star.order)
    # the highest degree integrand is s'^2 (y0 - f)^2
    n_nodes = (2 * max(sigma.order - 1, 0) + 2 * degree) // 2 + 1
    z, weights = gaussian_nodes(C, n_nodes)
    lam, nu = z[:, :p], z[:, p:]
    a, b = readout_values(model, p, k)
    residual = b * sigma_star(nu).sum(axis=1) - a * sigma(lam).sum(axis=1)
    slope = derivative(lam)
    weighted = weights[:, None] * slope * residual[:, None]
    drift_R = a * weighted.T @ nu
    half = a * weighted.T @ lam
    gram = (weights[:, None] * slope).T @ slope
    return {
        "drift_Q": half + half.T,
        "drift_R": drift_R,
        "diffusion_Q": a * a * (weights[:, None] * slope * residual[:, None] ** 2).T @ slope,
        "noise_Q": a * a * gram,
        "residual_risk": 0.5 * float(weights @ residual**2),
    }


def exact_increment_covariance(
    model, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, *, delta: float = 0.0, second_order: bool = True,
    a=None, b=None, eta_a=None,
) -> tuple[np.ndarray, ...]:
    """Covariance of one step's ``(q, r)`` by quadrature over ``z ~ N(0, C)`` and the label noise ``xi``.

    ``q_jl = eta (E_j l_l + E_l l_j) + eta**2 E_j E_l``, ``r_jr = eta E_j n_r``,
    ``E_j = a_j s'(l_j) (y0 - f + sqrt(delta) xi)``, ``y0 - f = sum_r b_r s*(n_r) - sum_j a_j s(l_j)``
    (docs/model.md, ``|x|^2 / N -> 1``); ``a`` (p,), ``b`` (k,) default to the model's scalars.
    Returns ``(QQ, QR, RR)`` with shapes (p, p, p, p), (p, p, p, k), (p, k, p, k); with
    ``eta_a`` also the blocks of the readout's increment ``s_j = eta_a s(l_j) (y - f)``:
    ``AQ[j, m, n] = Cov(s_j, q_mn)``, ``AR[j, m, r] = Cov(s_j, r_mr)``, ``AA[j, m] = Cov(s_j, s_m)``.
    """
    p, k = R.shape
    C = np.block([[Q, R], [R.T, T]])
    sigma = polynomial(model.student_activation)
    sigma_star = polynomial(model.teacher_activation)
    derivative = sigma.deriv()
    e_degree = max(derivative.order, 0) + max(sigma.order, sigma_star.order)
    # q (x) q has degree 4 e_degree (+ 4 for the lambda factors at most)
    n_nodes = (4 * e_degree + 4) // 2 + 1
    z, weights = gaussian_nodes(C, n_nodes)
    xi, xi_weights = hermite_e.hermegauss(3)  # the noise enters with powers up to 4
    xi_weights = xi_weights / np.sqrt(2 * np.pi)
    a_scalar, b_scalar = readout_values(model, p, k)
    a = np.full(p, a_scalar) if a is None else np.asarray(a, dtype=float)
    b = np.full(k, b_scalar) if b is None else np.asarray(b, dtype=float)
    lam, nu = z[:, :p], z[:, p:]
    residual = sigma_star(nu) @ b - sigma(lam) @ a
    slope = derivative(lam)
    activation = sigma(lam)
    first = {"QQ": 0.0, "QR": 0.0, "RR": 0.0, "AQ": 0.0, "AR": 0.0, "AA": 0.0}
    means = {"q": 0.0, "r": 0.0, "s": 0.0}
    for noise, noise_weight in zip(xi, xi_weights):
        E = a * slope * (residual + np.sqrt(delta) * noise)[:, None]
        q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :])
        if second_order:
            q = q + eta**2 * E[:, :, None] * E[:, None, :]
        r = eta * E[:, :, None] * nu[:, None, :]
        w = weights * noise_weight
        means["q"] = means["q"] + np.einsum("n,njl->jl", w, q)
        means["r"] = means["r"] + np.einsum("n,njr->jr", w, r)
        first["QQ"] = first["QQ"] + np.einsum("n,njl,nmo->jlmo", w, q, q)
        first["QR"] = first["QR"] + np.einsum("n,njl,nms->jlms", w, q, r)
        first["RR"] = first["RR"] + np.einsum("n,njr,nms->jrms", w, r, r)
        if eta_a is not None:
            s = eta_a * activation * (residual + np.sqrt(delta) * noise)[:, None]
            means["s"] = means["s"] + np.einsum("n,nj->j", w, s)
            first["AQ"] = first["AQ"] + np.einsum("n,nj,nmo->jmo", w, s, q)
            first["AR"] = first["AR"] + np.einsum("n,nj,nms->jms", w, s, r)
            first["AA"] = first["AA"] + np.einsum("n,nj,nm->jm", w, s, s)
    QQ = first["QQ"] - np.einsum("jl,mo->jlmo", means["q"], means["q"])
    QR = first["QR"] - np.einsum("jl,ms->jlms", means["q"], means["r"])
    RR = first["RR"] - np.einsum("jr,ms->jrms", means["r"], means["r"])
    if eta_a is None:
        return QQ, QR, RR
    AQ = first["AQ"] - np.einsum("j,mo->jmo", means["s"], means["q"])
    AR = first["AR"] - np.einsum("j,ms->jms", means["s"], means["r"])
    AA = first["AA"] - np.einsum("j,m->jm", means["s"], means["s"])
    return QQ, QR, RR, AQ, AR, AA
