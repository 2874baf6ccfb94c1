"""Monte Carlo estimates of the generated quantities, straight from their definitions.

Used by ``wickode verify`` and the property tests: sample ``(lambda, nu) ~ N(0, C)``,
evaluate the learning amplitudes with the model's activation polynomials and
average. Every estimate comes with its standard error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.core.activations import activation_functions
from numerics.core.validation import (
    check_finite_result,
    check_int,
    check_overlaps,
    check_scalar,
    check_seed,
    covariance,
    overflow_error,
)
from numerics.runtime.registry import resolve

QUANTITIES = ("drift_Q", "drift_R", "diffusion_Q", "noise_Q", "residual_risk")


def gaussian_factor(C: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L L^T = C`` for a PSD ``C`` (eigen-decomposition, so singular C works)."""
    w, V = np.linalg.eigh(C)
    return V * np.sqrt(np.clip(w, 0.0, None))


def _per_sample(lam, nu, module, p, k):
    a, b = module.readouts(p, k)
    sigma, sigma_prime = activation_functions(module, "STUDENT")
    sigma_star, _ = activation_functions(module, "TEACHER")
    residual = b * sigma_star(nu).sum(axis=1) - a * sigma(lam).sum(axis=1)
    d = sigma_prime(lam)
    half = a * d[:, :, None] * lam[:, None, :] * residual[:, None, None]
    both = a**2 * d[:, :, None] * d[:, None, :]
    return {
        "drift_Q": half + np.swapaxes(half, 1, 2),
        "drift_R": a * d[:, :, None] * nu[:, None, :] * residual[:, None, None],
        "diffusion_Q": both * residual[:, None, None] ** 2,
        "noise_Q": both,
        "residual_risk": residual**2 / 2,
    }


def monte_carlo_terms(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    *,
    model: Any = None,
    n_samples: int = 200_000,
    seed: int | None = 0,
    chunk: int = 50_000,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Sample means and standard errors of every generated quantity.

    Parameters
    ----------
    Q, R, T : arrays of shapes (p, p), (p, k), (k, k)
        Overlaps defining the covariance of ``(lambda, nu)`` (no batch axes).
    n_samples : int
        Number of Gaussian samples (>= 2, for a standard error).
    chunk : int
        Samples drawn at once (>= 1; bounds the memory).

    Returns
    -------
    dict
        ``name -> (mean, standard_error)`` for each name in :data:`QUANTITIES`,
        with the shapes of the generated outputs.
    """
    Q, R, T = check_overlaps(Q, R, T)
    if Q.ndim != 2 or R.ndim != 2 or T.ndim != 2:
        raise ValueError("monte_carlo_terms takes unbatched Q, R, T")
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    chunk = check_int(chunk, "chunk", minimum=1)  # chunk = 0 would never finish
    p, k = R.shape
    module = resolve(model, sizes=(p, k)).module
    L = gaussian_factor(covariance(Q, R, T))
    rng = np.random.default_rng(check_seed(seed))
    sums: dict[str, np.ndarray] = {}
    squares: dict[str, np.ndarray] = {}
    done = 0
    while done < n_samples:
        n = min(chunk, n_samples - done)
        z = rng.standard_normal((n, p + k)) @ L.T
        for name, values in _per_sample(z[:, :p], z[:, p:], module, p, k).items():
            sums[name] = sums.get(name, 0.0) + values.sum(axis=0)
            squares[name] = squares.get(name, 0.0) + (values**2).sum(axis=0)
        done += n
    out = {}
    for name in QUANTITIES:
        mean = sums[name] / n_samples
        variance = np.maximum(squares[name] / n_samples - mean**2, 0.0)
        out[name] = (mean, np.sqrt(variance / n_samples))
    return out


def monte_carlo_rhs(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    eta: float,
    *,
    model: Any = None,
    n_samples: int = 200_000,
    seed: int | None = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Monte Carlo estimate of ``(dQ, dR)`` from one SGD step's increments, docs/model.md verbatim.

    Samples ``(lambda, nu) ~ N(0, C)`` and the label noise ``xi``, forms
    ``E_j = (y - f) a sigma'(lambda_j)`` and averages
    ``dR_jr = eta E_j nu_r - eta kappa R_jr`` and
    ``dQ_jl = eta (E_j lambda_l + E_l lambda_j) + eta**2 E_j E_l - 2 eta kappa Q_jl``.

    Returns ``{"dQ": (mean, se), "dR": (mean, se)}`` with shapes (p, p) and (p, k).
    """
    Q, R, T = check_overlaps(Q, R, T)
    if Q.ndim != 2 or R.ndim != 2 or T.ndim != 2:
        raise ValueError("monte_carlo_rhs takes unbatched Q, R, T")
    eta = check_scalar(eta, "eta", nonnegative=True)
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    p, k = R.shape
    resolved = resolve(model, sizes=(p, k))
    module = resolved.module
    a, b = module.readouts(p, k)
    sigma, sigma_prime = activation_functions(module, "STUDENT")
    sigma_star, _ = activation_functions(module, "TEACHER")
    rng = np.random.default_rng(check_seed(seed))
    z = rng.standard_normal((n_samples, p + k)) @ gaussian_factor(covariance(Q, R, T)).T
    lam, nu = z[:, :p], z[:, p:]
    xi = rng.standard_normal(n_samples)
    residual = b * sigma_star(nu).sum(axis=1) - a * sigma(lam).sum(axis=1) + np.sqrt(resolved.noise_variance) * xi
    E = residual[:, None] * a * sigma_prime(lam)
    kappa = resolved.weight_decay
    dR = eta * E[:, :, None] * nu[:, None, :] - eta * kappa * R
    first = E[:, :, None] * lam[:, None, :]
    dQ = eta * (first + np.swapaxes(first, 1, 2)) + eta**2 * E[:, :, None] * E[:, None, :] - 2 * eta * kappa * Q
    return {
        name: (values.mean(axis=0), values.std(axis=0) / np.sqrt(n_samples))
        for name, values in (("dQ", dQ), ("dR", dR))
    }


def generated_terms(Q, R, T, *, model: Any = None) -> dict[str, np.ndarray]:
    """The generated quantities at one point, by name (no Delta or kappa applied)."""
    Q, R, T = check_overlaps(Q, R, T)
    module = resolve(model, sizes=R.shape[-2:]).module
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            drift_Q, drift_R, diffusion_Q, noise_Q = module.all_terms(Q, R, T)
            residual = np.asarray(module.residual_risk(Q, R, T))
    except OverflowError:
        raise overflow_error("generated_terms") from None
    check_finite_result("generated_terms", drift_Q, drift_R, diffusion_Q, noise_Q, residual)
    return {
        "drift_Q": drift_Q,
        "drift_R": drift_R,
        "diffusion_Q": diffusion_Q,
        "noise_Q": noise_Q,
        "residual_risk": residual,
    }


def random_overlaps(p: int, k: int, rng: np.random.Generator, *, scale: float = 1.0):
    """Random PSD overlaps from Gram matrices of random vectors (a generic test point)."""
    p, k = check_int(p, "p", minimum=1), check_int(k, "k", minimum=1)
    scale = check_scalar(scale, "scale", positive=True)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    n = p + k + 2
    W = rng.normal(size=(p + k, n)) * np.sqrt(scale / n)
    C = W @ W.T
    return C[:p, :p], C[:p, p:], C[p:, p:]


def z_scores(Q, R, T, *, model: Any = None, n_samples: int = 200_000, seed: int | None = 0) -> dict[str, float]:
    """Largest |generated - Monte Carlo| / standard error for each quantity."""
    generated = generated_terms(Q, R, T, model=model)
    sampled = monte_carlo_terms(Q, R, T, model=model, n_samples=n_samples, seed=seed)
    out = {}
    for name in QUANTITIES:
        mean, sem = sampled[name]
        diff = np.abs(generated[name] - mean)
        # an entry with zero spread must match exactly (up to rounding)
        z = np.where(sem > 0, diff / np.where(sem > 0, sem, 1.0), np.where(diff > 1e-9, np.inf, 0.0))
        out[name] = float(np.max(z))
    return out
