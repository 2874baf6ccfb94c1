"""Increment moments with per-unit readout vectors: the network-table route for every polynomial model.

With readouts ``a`` (length p) and ``b`` (length k) in place of the model's scalars, every
average of the increment covariance is still a sum of Wick networks over the units
(derive/quantities/network_tables.py): a residual factor ``g = y0 - f`` is one vertex summed over all
``p + k`` units with the vertex vector ``(-a_j E[sigma^(d)], b_r E[sigma*^(d)])`` and a free
``sigma'(lambda_j)`` factor carries ``a_j``. The vectors only change those vertex vectors
(:meth:`numerics.kernels.network_moments.NetworkMoments.evaluate`), so the network tables of any
model of degree <= 4 serve: committed for He3, generated into the cache on first use for
the rest (the printed modules of degree <= 2 bake the scalar readouts into their einsums,
so degree <= 2 models get network tables too). The ODE means that the covariance
subtracts come from the model's per-tuple module (:func:`numerics.runtime.registry.tuple_module`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.kernels.network_moments import NetworkMoments
from numerics.runtime.registry import artefact, fluctuation_module, tuple_module

#: Evaluators built in this process, by kind and model (they plan their contractions once).
EVALUATORS: dict[tuple[str, str], NetworkMoments] = {}


def network_moments(model: Any = None) -> NetworkMoments:
    """The network-table evaluator of ``model``'s increment moments (any polynomial model of degree <= 4).

    Raises
    ------
    ValueError
        Non-polynomial activations or degree above the limit
        (as :func:`numerics.runtime.registry.fluctuation_module`).
    """
    return _evaluator("fluctuation_networks", model)


def trained_readout_moments(model: Any = None) -> NetworkMoments:
    """The network-table evaluator of a trained readout's averages ``AL, AN, AE, AA``.

    The tables are those of derive/quantities/network_tables.py.

    Generated into the cache on first use (any polynomial model of degree <= 4; about as
    costly as the increments' tables). Raises ``ValueError`` as :func:`network_moments`.
    """
    return _evaluator("readout_networks", model)


def _evaluator(kind: str, model: Any) -> NetworkMoments:
    key = (kind, "paper" if model is None else model.codegen_hash())
    evaluator = EVALUATORS.get(key)
    if evaluator is None:
        fluctuation_module(model)  # validates the model (polynomial, degree <= 4) before any generation
        module = artefact(kind, model)
        evaluator = EVALUATORS[key] = NetworkMoments(module.TABLES, module.DERIVATIVE_MOMENTS, module.readouts)
    return evaluator


def readout_blocks(
    model: Any, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, eta_a: float,
    a: np.ndarray | None, b: np.ndarray | None, delta: float, second_order: bool,
    means: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The trained readout's covariance blocks ``(AQ, AR, AA)`` (single sample, no validation).

    With ``s_j = eta_a sigma(lambda_j) (y - f)`` the readout's increment (``a += s / N``):
    ``AQ[j, m, n] = Cov(s_j, q_mn)`` (..., p, p, p), ``AR[j, m, r] = Cov(s_j, r_mr)``
    (..., p, p, k), ``AA[j, m] = Cov(s_j, s_m)`` (..., p, p). ``means`` are
    :func:`readout_means`' ``(D_Q, D_R, <E E>)`` at the same point.
    """
    drift_Q, drift_R, mean_B = means
    AL, AN, AE, AA = trained_readout_moments(model).evaluate(("AL", "AN", "AE", "AA"), Q, R, T, delta, a, b)
    # the padded axes (constant vertex 1) are dropped
    AL, AN, AE, AA = AL[..., 0], AN[..., 0], AE[..., 0], AA[..., 0, 0]
    mean_s = tuple_module(model).readout_drift(Q, R, T, a, b)  # <sigma_j (y - f)>, shape (..., p)
    mean_q = eta * drift_Q + (eta**2 * mean_B if second_order else 0.0)
    second_AQ = eta * (AL + np.swapaxes(AL, -1, -2))
    if second_order:
        second_AQ = second_AQ + eta**2 * AE
    AQ = eta_a * (second_AQ - mean_s[..., :, None, None] * mean_q[..., None, :, :])
    AR = eta_a * eta * (AN - mean_s[..., :, None, None] * drift_R[..., None, :, :])
    AA = eta_a**2 * (AA - mean_s[..., :, None] * mean_s[..., None, :])
    return AQ, AR, AA


def readout_means(
    model: Any, Q: np.ndarray, R: np.ndarray, T: np.ndarray, a: np.ndarray | None, b: np.ndarray | None,
    delta: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The means of the increments per unit learning rate, with readout vectors.

    Returns ``(D_Q, D_R, V_Q + Delta N_Q)``, shapes (..., p, p), (..., p, k), (..., p, p):
    ``<E_j lambda_l + E_l lambda_j>``, ``<E_j nu_r>`` and ``<E_j E_l>`` (label noise
    included), ``E_j = a_j sigma'(lambda_j) (y - f)``.
    """
    module = tuple_module(model)
    drift_Q, drift_R = module.rhs_terms(Q, R, T, 1.0, 0.0, 0.0, a, b)
    mean_B, _ = module.rhs_terms(Q, R, T, 0.0, 1.0, delta, a, b)
    return drift_Q, drift_R, mean_B


__all__ = ["network_moments", "readout_blocks", "readout_means", "trained_readout_moments"]
