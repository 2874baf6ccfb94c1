"""The ``eta**3`` and ``eta**4`` parts of the increment covariance of an erf network.

With ``second_order`` the ``Q`` increment is ``q_jl = eta A_jl + eta**2 B_jl``,
``A_jl = E_j z_l + E_l z_j`` and ``B_jl = E_j E_l`` (``|x|**2 / N -> 1``, docs/model.md), so next to
the leading ``eta**2`` covariance (:mod:`numerics.noise.tuple_fluctuations`) come

    Cov(q_jl, q_mn) += eta**3 (Cov(A_jl, B_mn) + Cov(B_jl, A_mn)) + eta**4 Cov(B_jl, B_mn),
    Cov(q_jl, r_ms) += eta**3 Cov(B_jl, E_m nu_s),

as for the polynomial models (:func:`numerics.noise.packing.covariance_contributions`). Their raw
moments are, with the readouts ``a``,

    <B_jl>          = a_j a_l P[j, l]
    <E_j z_x B_mn>  = a_j a_m a_n T[j, m, n, x]
    <B_jl B_mn>     = a_j a_l a_m a_n F[j, l, m, n]

(``P``, ``T``, ``F`` in closed form and by a Price path integral:
:mod:`numerics.kernels.erf_higher_moments`, written for ``erf(z / sqrt(2))``; units
``erf(s z)`` are rescaled to it). A ``sign`` teacher (erf students) is the limit ``s -> oo``
taken in the closed forms (offset 0, :func:`erf_unit_scales`; the kernel module's "Sign units"):
a tilt by a teacher's derivative conditions on ``z_t = 0``, and a conditioned ``sign**2`` averages
to 1/3. Label flips mix the raw moments of the teacher and its negative, and the means' difference
carries the ``eta**2 <E_j E_l>`` part (:func:`numerics.noise.tuple_packing.tuple_packed_covariance`).
Linearly dependent sign teachers are refused (the path integral ends on a singularity).
A trained readout's ``s_j = eta_a sigma(z_j) (y - f)`` has no ``eta**2`` part, so as for the
polynomial models only ``AQ`` gains one, ``eta_a eta**2 Cov(sigma_j (y - f), B_mn)``
(:func:`erf_readout_higher_part`, erf teachers: a sign teacher's readout blocks are not derived).

Cost: the quadruple takes ``p**4 / 24`` student multisets times about ``12 (p + k)**4 / 4`` arcsine
laws per replica: about 20 times the leading order's cost at ``p = k = 2``, 250 times at
``p = k = 4`` and 1500 times at ``p = k = 8`` (``python -m bench --only erf_higher``). Up to
:data:`MAX_HIGHER_ORDER_UNITS` units the parts are included (when ``second_order``); above, the
covariance is the leading order and a ``RuntimeWarning`` says so (raise the constant to include
them at that cost). Both parts or neither: the leading order plus the ``eta**3`` part alone need
not be positive semi-definite.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from numerics.core.validation import covariance
from numerics.kernels.erf_higher_moments import erf_pair_means, erf_quadruple_moments, erf_triple_moments
from numerics.kernels.erf_readout_moments import erf_readout_moments
from numerics.noise.higher_orders import higher_blocks, raw_moments


def erf_unit_scales(module: ModuleType, p: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(d, offsets)``, shapes (p + k,): the unit scales and offsets of an erf network for the closed forms.

    ``erf(s z) = erf(d z / sqrt(2))`` with ``d = sqrt(2) s``: the closed forms are written for
    ``d = 1`` and applied to ``d z``; a ``sign`` teacher has ``d = 1`` and offset 0
    (:func:`numerics.kernels.erf_increments.erf_pair_moments`,
    :func:`numerics.kernels.erf_higher_moments.erf_quadruple_moments`).
    """
    student = np.sqrt(2.0) * float(module.STUDENT_SCALE)
    if module.TEACHER_KIND == "sign":
        teacher, teacher_offset = 1.0, 0.0
    else:
        teacher, teacher_offset = np.sqrt(2.0) * float(module.TEACHER_SCALE), 1.0
    d = np.concatenate([np.full(p, student), np.full(k, teacher)])
    offsets = np.concatenate([np.ones(p), np.full(k, teacher_offset)])
    return d, offsets


#: The most units ``p + k`` for which the ``eta**3`` and ``eta**4`` parts are included (module docstring).
MAX_HIGHER_ORDER_UNITS = 8


def has_higher_orders(module: ModuleType) -> bool:
    """Whether the ``eta**3`` and ``eta**4`` parts are derived for this per-tuple model.

    Yes for erf students with erf or sign teachers.
    """
    return module.STUDENT_KIND == "erf" and module.TEACHER_KIND in ("erf", "sign")


def includes_higher_orders(module: ModuleType, p: int, k: int, second_order: bool, warn: bool = True) -> bool:
    """Whether the covariance of this per-tuple model at sizes ``(p, k)`` gets the ``eta**3`` and ``eta**4`` parts.

    Yes for an erf network (erf students, erf or sign teachers) with ``second_order`` and
    ``p + k <= MAX_HIGHER_ORDER_UNITS``; an erf network above that size gets the leading order, with
    a ``RuntimeWarning`` (when ``warn``).
    """
    if not (second_order and has_higher_orders(module)):
        return False
    if p + k > MAX_HIGHER_ORDER_UNITS:
        if warn:
            warnings.warn(f"the increment covariance of this erf network (p + k = {p + k} units) is the leading order "
                          f"in eta: its eta**3 and eta**4 parts are included up to p + k = {MAX_HIGHER_ORDER_UNITS} "
                          "(numerics.noise.erf_higher_orders.MAX_HIGHER_ORDER_UNITS; their cost grows as "
                          "p**4 (p + k)**4)", RuntimeWarning, stacklevel=3)
        return False
    return True


def erf_higher_moments(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, delta: float, a: np.ndarray, b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The raw moments ``(<B>, <A B>, <B E nu>, <B B>)`` of an erf network (module docstring).

    Parameters
    ----------
    module : module
        A per-tuple generated module with erf students and erf or sign teachers.
    Q, R, T : arrays, shapes (B, p, p), (B, p, k), (B, k, k)
    delta : float
        Label-noise variance.
    a, b : arrays, shapes (B, p), (B, k)
        Readout vectors.

    Returns
    -------
    mean : array, shape (B, p, p)
        ``<B_jl> = <E_j E_l>``.
    AB : array, shape (B, p, p, p, p)
        ``AB[j, l, m, n] = <A_jl B_mn>``.
    BN : array, shape (B, p, p, p, k)
        ``BN[j, l, m, s] = <B_jl E_m nu_s>``.
    BB : array, shape (B, p, p, p, p)
        ``BB[j, l, m, n] = <B_jl B_mn>``.

    Raises
    ------
    ValueError
        Sign teachers whose directions are linearly dependent (or nearly so).
    """
    p, k = R.shape[-2:]
    d, offsets = erf_unit_scales(module, p, k)
    # the erf networks' own code path (offsets None) when no unit is a sign
    offsets = offsets if module.TEACHER_KIND == "sign" else None
    C = covariance(Q, R, T) * (d[:, None] * d[None, :])
    c = np.concatenate([-a, b], axis=-1)
    # sigma'(z_j) = d_j sigma~'(d_j z_j) on the students (one scale d[0]), z_x = (d z)_x / d_x
    scale = d[0]
    pair = scale**2 * erf_pair_means(C, c, delta, p, offsets)
    triple = scale**3 * erf_triple_moments(C, c, delta, p, offsets) / d
    quadruple = scale**4 * erf_quadruple_moments(C, c, delta, p, offsets=offsets)
    return raw_moments(pair, triple, quadruple, a, p)


def erf_higher_blocks(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, delta: float,
    a: np.ndarray, b: np.ndarray, drift_Q: np.ndarray, drift_R: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``eta**3 + eta**4`` parts of ``QQ`` and the ``eta**3`` part of ``QR`` (module docstring).

    Parameters
    ----------
    module : module
        A per-tuple generated module with erf students and erf or sign teachers.
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta, delta : float
    a, b : arrays, shapes (..., p) and (..., k)
        Readout vectors, broadcast against the overlaps' batch.
    drift_Q, drift_R : arrays, shapes (..., p, p), (..., p, k)
        The first-order drifts ``<A_jl>``, ``<E_j nu_r>``.

    Returns
    -------
    QQ : array, shape (..., p, p, p, p)
    QR : array, shape (..., p, p, p, k)
    """
    def moments(*flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return erf_higher_moments(module, *flat[:3], delta, *flat[3:])

    return higher_blocks(moments, Q, R, T, eta, a, b, drift_Q, drift_R)


def erf_readout_higher_part(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, eta_a: float, delta: float,
    a: np.ndarray, b: np.ndarray, mean_s: np.ndarray,
) -> np.ndarray:
    """The ``eta_a eta**2`` part of a trained readout's block ``AQ`` (module docstring).

    ``AQ[j, m, n] = Cov(s_j, q_mn)`` gains ``eta_a eta**2 Cov(sigma_j (y - f), B_mn)``, with
    ``<sigma_j (y - f) B_mn> = a_m a_n G[j, m, n]``
    (:func:`numerics.kernels.erf_readout_moments.erf_readout_moments`), as for the polynomial models
    (:func:`numerics.noise.readout_fluctuations.readout_blocks`); ``AR`` and ``AA`` have no such part.

    Parameters
    ----------
    module : module
        A per-tuple generated module with erf units on both sides.
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
    eta, eta_a, delta : float
        Learning rates and label-noise variance.
    a, b : arrays, shapes (..., p) and (..., k)
        Readout vectors, broadcast against the overlaps' batch.
    mean_s : array, shape (..., p)
        ``<sigma_j (y - f)>``, the readout's drift per unit ``eta_a``.

    Returns
    -------
    array, shape (..., p, p, p)
    """
    p, k = R.shape[-2:]
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2], a.shape[:-1], b.shape[:-1])
    flat = int(np.prod(batch, dtype=int))

    def flattened(x: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, batch + tail).reshape((flat,) + tail)

    d, _ = erf_unit_scales(module, p, k)
    C = covariance(flattened(Q, (p, p)), flattened(R, (p, k)), flattened(T, (k, k))) * (d[:, None] * d[None, :])
    a_flat = flattened(a, (p,))
    c = np.concatenate([-a_flat, flattened(b, (k,))], axis=-1)
    # two sigma' factors, each d_m sigma~'(d_m z_m) on the students; sigma_j is unscaled
    pair = d[0] ** 2 * a_flat[:, :, None] * a_flat[:, None, :]
    mean_B = (erf_pair_means(C, c, delta, p) * pair).reshape(batch + (p, p))
    moment = (erf_readout_moments(C, c, delta, p) * pair[:, None]).reshape(batch + (p, p, p))
    return eta_a * eta**2 * (moment - mean_s[..., :, None, None] * mean_B[..., None, :, :])


__all__ = [
    "MAX_HIGHER_ORDER_UNITS",
    "erf_higher_blocks",
    "erf_higher_moments",
    "erf_readout_higher_part",
    "erf_unit_scales",
    "has_higher_orders",
    "includes_higher_orders",
]
