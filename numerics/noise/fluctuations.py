"""Covariance of one SGD step's overlap increments: the diffusion of the overlaps at finite N.

One step changes the overlaps by ``Q -> Q + q/N``, ``R -> R + r/N`` with

    r_jr = eta E_j nu_r,    q_jl = eta (E_j lambda_l + E_l lambda_j) + eta**2 E_j E_l

(``|x|^2/N -> 1``; see ``derive/quantities/increments.py``). Their means are the ODE's drift
(without weight decay, which is deterministic given the state and so adds nothing
to the covariance). :func:`increment_covariance` returns the covariance of ``(q, r)``
under ``(lambda, nu) ~ N(0, C)`` and the label noise, assembled from the generated
averages of ``<E lambda E lambda>``-type (eta**2), ``<E lambda E E>``-type (eta**3)
and ``<E E E E>`` (eta**4) and the generated drift terms. Activations of degree <= 4
are supported (:func:`numerics.runtime.registry.fluctuation_module`); erf and relu units (per-tuple
models) from their per-tuple kernels (:mod:`numerics.noise.tuple_fluctuations`): erf networks to
every order as above, relu networks too up to ``p + k = 5`` units (the leading order above, with a
warning).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.core.validation import check_flag, check_int, check_overlaps, check_scalar
from numerics.noise.label_flips import flip_mixture_blocks
from numerics.noise.readout_fluctuations import network_moments, readout_blocks, readout_means
from numerics.noise.tuple_fluctuations import tuple_covariance_blocks
from numerics.ode.readouts import check_readout_batch, check_readouts
from numerics.results.settings import RunSettings
from numerics.runtime.registry import fluctuation_module, is_per_tuple, resolve


def _swap_first_pair(tensor: np.ndarray) -> np.ndarray:
    # X[j, l, i, h] -> X[l, j, i, h]
    return np.swapaxes(tensor, -4, -3)


def _swap_pairs(tensor: np.ndarray) -> np.ndarray:
    # X[j, l, i, h] -> X[i, h, j, l]
    return np.moveaxis(tensor, (-4, -3), (-2, -1))


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # a[..., j, l] b[..., i, h] -> (..., j, l, i, h)
    return a[..., :, :, None, None] * b[..., None, None, :, :]


def increment_covariance(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    eta: float | None = None,
    settings: RunSettings | None = None,
    **setting_overrides: Any,
) -> tuple[np.ndarray, ...]:
    """Covariance of one step's overlap increments ``(q, r)`` (``Q += q/N``, ``R += r/N``).

    Parameters
    ----------
    Q : array, shape (..., p, p)
    R : array, shape (..., p, k)
    T : array, shape (..., k, k)
    eta : float
        Learning rate (>= 0); default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics (:class:`~numerics.results.settings.RunSettings`); its entries, or the same
        names as keywords (below), override the defaults. Other keyword names raise ``TypeError``.
    model : derive.Model, optional
        ``None`` is the paper model. Its label noise ``Delta`` enters; its weight
        decay does not (a deterministic move given the state). Models with erf units on both
        sides get every order as the polynomial models (``second_order``; a trained readout's
        ``AQ`` its ``eta_a eta**2`` part too), and so do relu networks up to ``p + k = 5`` units
        (above, the leading order ``eta**2`` with a ``RuntimeWarning``; their readout's blocks stay
        at the leading order ``eta eta_a``, ``eta_a**2``; :mod:`numerics.noise.tuple_fluctuations`). Label flips
        (``Model(label_flip=epsilon)``) give the covariance of the mixture of the teacher ``b``
        and ``-b`` (:mod:`numerics.noise.label_flips`).
    second_order : bool
        Keep the ``eta**2 E_j E_l`` part of ``q`` (as the ODE's ``second_order``); ``False``
        keeps only ``eta (E_j lambda_l + E_l lambda_j)``. relu networks above ``p + k = 5`` units
        get the latter's covariance (``model``).
    batch_size : int
        Mini-batch size ``B >= 1``. A step's increment is then the mean of ``B``
        independent single-sample increments whose ``eta**2`` part is divided by
        ``B`` (the cross terms between the samples of a step are ``O(N**-1/2)``),
        so the covariance is ``B`` times the single-sample covariance at ``eta / B``.
    a : array, shape (p,) or (..., p), optional
        Per-unit student readouts replacing the model's scalar one (``f = sum_j a_j
        sigma(lambda_j)``, ``E_j = a_j sigma'(lambda_j) (y - f)``).
    b : array, shape (k,) or (..., k), optional
        Per-unit teacher readouts (``y = sum_r b_r sigma*(nu_r) + sqrt(Delta) xi``). With
        either vector the averages come from the model's network tables
        (:mod:`numerics.noise.readout_fluctuations`; a missing vector is the model's scalar on
        every unit); their leading axes must broadcast to the batch of ``Q, R, T``.
    eta_a : float, optional
        Learning rate of a trained student readout (>= 0), when given as a keyword (0 included) or
        when ``settings`` train the readout (``eta_a > 0``). One step then also moves
        ``a_j`` by ``s_j / N`` with ``s_j = eta_a (y - f) sigma(lambda_j)`` (averaged over
        a mini-batch), and three more blocks are returned. ``a`` is the readout's
        current value (default the model's scalar on every unit).

    Returns
    -------
    QQ : array, shape (..., p, p, p, p)
        ``QQ[j, l, m, n] = Cov(q_jl, q_mn)``.
    QR : array, shape (..., p, p, p, k)
        ``QR[j, l, m, s] = Cov(q_jl, r_ms)``.
    RR : array, shape (..., p, k, p, k)
        ``RR[j, r, m, s] = Cov(r_jr, r_ms)``.
    AQ : array, shape (..., p, p, p)
        ``AQ[j, m, n] = Cov(s_j, q_mn)``; only with ``eta_a`` (see there).
    AR : array, shape (..., p, p, k)
        ``AR[j, m, r] = Cov(s_j, r_mr)``; only with ``eta_a``.
    AA : array, shape (..., p, p)
        ``AA[j, m] = Cov(s_j, s_m)``; only with ``eta_a``.
    """
    values = RunSettings.values(settings, setting_overrides, "increment_covariance")
    if values["sam_radius"]:
        raise ValueError(f"increment_covariance does not take sam_radius = {values['sam_radius']}: "
                         "the increment covariance of sharpness-aware steps is not derived")
    eta = values["eta"] if eta is None else eta
    if eta is None:
        raise TypeError("increment_covariance() needs the learning rate: eta or settings=RunSettings(eta=...)")
    model, second_order, batch_size, a, b = (values[name] for name in ("model", "second_order", "batch_size", "a", "b"))
    # the readout's blocks are part of the result when eta_a is asked for, or trained
    eta_a = values["eta_a"] if "eta_a" in setting_overrides or values["eta_a"] else None
    Q, R, T = check_overlaps(Q, R, T)
    eta = check_scalar(eta, "eta", nonnegative=True)
    # the covariance's own order: leading_order_noise drops the eta**3, eta**4 parts (RunSettings)
    second_order = check_flag(second_order, "second_order") and not check_flag(values["leading_order_noise"],
                                                                                "leading_order_noise")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    p, k = Q.shape[-1], T.shape[-1]
    trained = eta_a is not None
    if a is not None or b is not None or trained:
        a, b, eta_a = check_readouts(a, b, eta_a, p, k)
        check_readout_batch(a, b, np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2]), "the overlaps' batch")
    if batch_size != 1:
        # q_B = (1/B) sum_b [eta A_b + (eta**2 / B) E_b E_b] = mean of B copies of B q_1(eta / B),
        # and s_B = mean of B copies of s_1(eta_a) = of B s_1(eta_a / B)
        single = increment_covariance(Q, R, T, eta / batch_size, model=model, second_order=second_order, a=a, b=b,
                                      eta_a=eta_a / batch_size if trained else None)
        return tuple(batch_size * block for block in single)
    resolved = resolve(model, sizes=(p, k))
    with np.errstate(over="raise", invalid="raise"):
        try:
            blocks = covariance_blocks(Q, R, T, eta, model, resolved, second_order, a, b,
                                       eta_a if trained else None)
        except FloatingPointError:
            raise ValueError(
                "increment_covariance: the overlaps are too large, the covariance overflows"
            ) from None
        except OverflowError:  # Python float arithmetic on eta itself (eta**2)
            raise ValueError(f"increment_covariance: eta = {eta:g} is too large, the covariance overflows") from None
    if not all(np.all(np.isfinite(block)) for block in blocks):
        raise ValueError("increment_covariance: non-finite result (overlaps too large?)")
    return blocks


def covariance_blocks(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, model: Any, resolved: Any, second_order: bool,
    a: np.ndarray | None = None, b: np.ndarray | None = None, eta_a: float | None = None,
) -> tuple[np.ndarray, ...]:
    """:func:`increment_covariance` (single sample) without validation, for hot loops on valid input.

    ``resolved`` is ``numerics.runtime.registry.resolve(model, sizes=(p, k))``; ``a``, ``b`` are
    float arrays (or ``None``) whose leading axes broadcast with those of ``Q, R, T``;
    with ``eta_a`` (a float) the trained readout's blocks ``AQ, AR, AA`` follow.
    Overflow follows the caller's ``np.errstate``; nothing is checked for finiteness. Label flips
    (``resolved.label_flip``) mix the teacher and its negative (:mod:`numerics.noise.label_flips`).
    """
    if resolved.label_flip:
        # the teacher and its negative mixed (numerics/noise/label_flips.py)
        def blocks_of(a_vector: np.ndarray, b_vector: np.ndarray) -> tuple[np.ndarray, ...]:
            return _unflipped_blocks(Q, R, T, eta, model, resolved, second_order, a_vector, b_vector, eta_a)

        return flip_mixture_blocks(blocks_of, Q, R, T, eta, model, resolved, second_order, a, b, eta_a)
    return _unflipped_blocks(Q, R, T, eta, model, resolved, second_order, a, b, eta_a)


def _unflipped_blocks(Q, R, T, eta, model, resolved, second_order, a, b, eta_a):
    # covariance_blocks without label flips
    delta = resolved.noise_variance
    if is_per_tuple(resolved.module):
        # erf and relu networks: unit tuple by unit tuple (numerics/noise/tuple_fluctuations.py)
        return tuple_covariance_blocks(resolved.module, Q, R, T, eta, delta, a, b, eta_a, second_order)
    if a is None and b is None and eta_a is None:
        module = fluctuation_module(model)
        means = _scalar_means(resolved, Q, R, T, delta)
        first, second = module.first_order_moments, module.second_order_moments
    else:
        # a vector readout enters the vertex vectors of the network tables (numerics/noise/readout_fluctuations.py)
        evaluator = network_moments(model)
        means = readout_means(model, Q, R, T, a, b, delta)

        def first(Q, R, T, delta):
            return evaluator.evaluate(("LL", "LN", "NN"), Q, R, T, delta, a, b)

        def second(Q, R, T, delta):
            return evaluator.evaluate(("LE", "EN", "EE"), Q, R, T, delta, a, b)

    blocks = _assemble(Q, R, T, eta, means, first, second, delta, second_order)
    if eta_a is None:
        return blocks
    return blocks + readout_blocks(model, Q, R, T, eta, eta_a, a, b, delta, second_order, means)


def _scalar_means(resolved, Q, R, T, delta):
    # D_Q, D_R and <E_j E_l> = V_Q + Delta N_Q from the model's generated ODE terms
    drift_Q, drift_R, diffusion_Q, noise_Q = resolved.module.all_terms(Q, R, T)
    return drift_Q, drift_R, diffusion_Q + delta * noise_Q


def _assemble(Q, R, T, eta, means, first_order_moments, second_order_moments, delta, second_order):
    """The blocks from the six averages (functions of ``(Q, R, T, delta)``) and the means ``(D_Q, D_R, <E E>)``."""
    drift_Q, drift_R, mean_B = means
    LL, LN, NN = first_order_moments(Q, R, T, delta)
    # A_jl = E_j lambda_l + E_l lambda_j: its second moment from <E_j lambda_l E_i lambda_h>
    half = LL + _swap_first_pair(LL)
    second_AA = half + np.swapaxes(half, -2, -1)
    second_Ar = LN + _swap_first_pair(LN)
    QQ = eta**2 * (second_AA - _outer(drift_Q, drift_Q))
    QR = eta**2 * (second_Ar - _outer(drift_Q, drift_R))
    RR = eta**2 * (NN - _outer(drift_R, drift_R))
    if second_order:
        LE, EN, EE = second_order_moments(Q, R, T, delta)
        second_AB = LE + _swap_first_pair(LE)
        cross = second_AB - _outer(drift_Q, mean_B)
        QQ = QQ + eta**3 * (cross + _swap_pairs(cross)) + eta**4 * (EE - _outer(mean_B, mean_B))
        QR = QR + eta**3 * (EN - _outer(mean_B, drift_R))
    return QQ, QR, RR


__all__ = ["covariance_blocks", "increment_covariance"]
