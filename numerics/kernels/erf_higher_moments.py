"""The ``eta**3`` and ``eta**4`` increment moments of an erf network, for every student tuple at once.

With ``sigma(z) = erf(z / sqrt(2))`` on every unit, ``c = (-a, b)`` over the units (students first),
``r = sum_u c_u sigma(z_u)`` and ``Delta`` the label-noise variance, the ``eta**2 E_j E_l`` part of
the ``Q`` increment (``E_j = a_j sigma'(z_j) (r + sqrt(Delta) xi)``) brings three averages into
the covariance of one step's increments (:mod:`numerics.noise.erf_higher_orders`); here they are
without the readout factors ``a``:

    pair:      P[j, l]       = E[sigma'_j sigma'_l (r**2 + Delta)]
    triple:    T[j, m, n, x] = E[sigma'_j sigma'_m sigma'_n z_x (r**3 + 3 Delta r)]
    quadruple: F[j, l, m, n] = E[sigma'_j sigma'_l sigma'_m sigma'_n (r**4 + 6 Delta r**2 + 3 Delta**2)]

(odd moments of the label noise vanish). All three are symmetric in their student slots, so
each is evaluated once per multiset of students and scattered. The steps, all exact:

1. ``sigma'(z) = sqrt(2 / pi) exp(-z**2 / 2)``: the Gaussian factors of a multiset ``G`` (a student
   repeated is a factor repeated) tilt the measure,
   ``E[prod_G sigma'_g h(z)] = (2 / pi)**(|G| / 2) det(I + C_GG)**-1/2 E'[h]`` with
   ``z ~ N(0, C')``, ``C' = C - C_:G (I + C_GG)^-1 C_G:`` (:func:`tilt`).
2. ``E'[r**2] = sum_{u, v} c_u c_v E'[sigma_u sigma_v]``, the arcsine law (:func:`residual_square`).
3. The triple: Stein's lemma on ``z_x`` gives ``E'[z_x r**3] = 3 sum_s C'_xs c_s E'[sigma'_s r**2]``;
   ``sigma'_s`` is a fourth Gaussian factor (step 1 again) and step 2 ends it. The noise part
   ``E'[z_x r] = sum_s C'_xs c_s E'[sigma'_s]`` is the same without the arcsine laws.
4. The quadruple's ``E'[r**4]`` (four plain erfs, no elementary closed form): Price's theorem
   along ``C(t) = D + t (C' - D)``, ``D = diag(C')``, for ``r**4`` as a whole,

       E'[r**4] = E_D[r**4] + int_0^1 12 sum_{u < v} C'_uv c_u c_v E_t[sigma'_u sigma'_v r**2] dt,

   where the integrand is steps 1 and 2 (elementary) and ``E_D`` is over independent units:
   ``sum_u c_u**4 m4_u + 3 ((sum_u c_u**2 m2_u)**2 - sum_u c_u**4 m2_u**2)`` with
   ``m2_u = E[sigma_u**2]`` (arcsine law) and ``m4_u = E[sigma_u**4]``
   (:func:`numerics.kernels.tuple_moments.erf_erf_erf_erf` on four copies). Every ``C(t)`` is
   positive semi-definite, so the tilts' determinants are ``>= 1`` and the arcsine laws'
   arguments stay inside ``(-1, 1)``: the integrand is analytic on ``[0, 1]`` and Gauss-Legendre
   converges geometrically, with :func:`path_nodes` nodes chosen from the largest variance
   (below 1e-12 against 80 nodes on random and singular blocks of variances 0.3 to 10;
   tests/numerics/kernels/test_erf_higher_moments.py).

Cost per replica: the triple takes ``p**3 / 6`` multisets times ``(p + k)**3 / 2`` arcsine laws,
the quadruple ``p**4 / 24`` multisets times ``nodes (p + k)**4 / 4`` (12 nodes at unit
variances): the latter dominates (bench: ``python -m bench --only erf_higher``). Singular blocks
(coinciding units) need nothing special.

Sign units (``offsets`` 0; teachers only, the Gaussian factors of step 1 are always students).
``sign(z)`` is the limit ``o -> 0`` of ``erf(z / sqrt(2 o))``, whose derivative is the Gaussian factor
``sqrt(2 / (pi o)) exp(-z**2 / (2 o))``: every ``1 +`` on a unit's variance above is ``o_u +``, so a
tilt by a sign unit (Stein's lemma in step 3, Price's theorem in step 4: ``sign' = 2 delta``) is
``sqrt(2 / pi) C'_ss**-1/2`` times the conditioning on ``z_s = 0``, and a plain sign slot takes the
arcsine law without the 1 (``E[sign_u sign_u] = 1``, ``E[sign**4] = 1`` in ``E_D``). A sign unit
among the Gaussian factors is left with variance ``C''_ss = o - o**2 (O + C_GG)^-1_ss ~ o`` against
its own ``o``, so in the limit ``E''[sign_s**2] = (2 / pi) arcsin(1 / 2) = 1 / 3`` (not 1: ``sign' sign**2 =
(sign**3)' / 3``, the jump of ``r**3`` across ``z_s = 0``) and ``E''[sign_s sigma_x] = 0`` (its
argument is ``O(sqrt(o))``); the other units are conditioned as above. These limits are taken in
:func:`downdated_arcsines` (checked against a quadrature split at the sign boundaries to 1e-11,
tests/numerics/kernels/test_sign_higher_moments.py). The path of step 4 then has singularities
where a principal block of ``O + C(t)`` turns singular, nearer to ``[0, 1]`` than for erf units
(:func:`path_nodes_with_signs`): linearly dependent sign teachers are refused.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from numerics.kernels.tuple_moments import erf_erf_erf_erf

TWO_OVER_PI = 2 / math.pi
#: The fewest Gauss-Legendre nodes of the path integral of the quadruple (module docstring, step 4).
MIN_NODES = 6
#: The most Gauss-Legendre nodes of the path integral with sign units (nearly dependent teacher directions need more).
MAX_SIGN_NODES = 400
#: Elements of the largest temporary array (per chunk of multisets and replicas).
CHUNK_ELEMENTS = 1 << 16


@functools.cache
def student_multisets(p: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G, index_of)``: the multisets of ``size`` students (sorted rows) and the multiset of every index tuple.

    Shapes (M, size) and (p,) * size, ``M = binomial(p + size - 1, size)``; ``index_of`` is
    symmetric under any permutation of its axes.
    """
    G = np.array(list(itertools.combinations_with_replacement(range(p), size)), dtype=np.intp).reshape(-1, size)
    index_of = np.empty((p,) * size, dtype=np.intp)
    for m, combo in enumerate(G):
        for order in itertools.permutations(combo):
            index_of[order] = m
    return G, index_of


def tilt(C: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(root, C')``: ``det(I + C_GG)**1/2`` and the tilted covariance of step 1, for every multiset in ``G``.

    Parameters
    ----------
    C : array, shape (B, n, n)
    G : int array, shape (M, g)
        Unit indices of the Gaussian factors (repeats allowed).

    Returns
    -------
    root : array, shape (B, M)
    tilted : array, shape (B, M, n, n)
    """
    across = np.moveaxis(C[:, :, G], 1, -1)  # C_Gx, shape (B, M, g, n)
    inner = C[:, G[:, :, None], G[:, None, :]] + np.eye(G.shape[1])  # I + C_GG, shape (B, M, g, g)
    factor = np.linalg.cholesky(inner)
    solved = np.linalg.solve(factor, across)  # L^-1 C_G:
    tilted = C[:, None] - np.swapaxes(solved, -1, -2) @ solved
    return np.prod(np.diagonal(factor, axis1=-2, axis2=-1), axis=-1), tilted


def arcsine_laws(C: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """``E[sigma_u sigma_v]`` for every pair of units of ``N(0, C)``; shape of ``C`` (..., n, n).

    ``offsets`` (n,): 1 for an erf unit (the default on every unit), 0 for a sign unit (module
    docstring, "Sign units"); a sign unit needs a positive variance.
    """
    shifted = (1 if offsets is None else offsets) + np.diagonal(C, axis1=-2, axis2=-1)
    scale = np.sqrt(shifted[..., :, None] * shifted[..., None, :])
    return TWO_OVER_PI * np.arcsin(np.clip(C / scale, -1.0, 1.0))


def residual_square(C: np.ndarray, c: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """``E[r**2]`` under ``N(0, C)``, ``C`` of shape (B, ..., n, n) and ``c`` (B, n); shape (B, ...).

    ``offsets`` as :func:`arcsine_laws`.
    """
    c = c.reshape(c.shape[:1] + (1,) * (C.ndim - 3) + c.shape[1:])
    return np.einsum("...uv,...u,...v->...", arcsine_laws(C, offsets), c, c)


def _chunks(count: int, per_item: int) -> list[slice]:
    step = max(1, CHUNK_ELEMENTS // max(1, per_item))
    return [slice(start, start + step) for start in range(0, count, step)]


def erf_pair_means(
    C: np.ndarray, c: np.ndarray, delta: float, p: int, offsets: np.ndarray | None = None
) -> np.ndarray:
    """``P[j, l] = E[sigma'_j sigma'_l (r**2 + Delta)]`` (module docstring); ``C`` (B, n, n), ``c`` (B, n).

    ``offsets`` (n,): 1 for an erf unit (the default on every unit), 0 for a sign teacher unit
    (module docstring, "Sign units"). Returns an array of shape (B, p, p).
    """
    G, index_of = student_multisets(p, 2)
    root, tilted = tilt(C, G)
    values = TWO_OVER_PI / root * (residual_square(tilted, c, offsets) + delta)
    return values[:, index_of]


def downdated_arcsines(
    diagonal: np.ndarray, upper: np.ndarray, terms: list[tuple[np.ndarray, np.ndarray]], n: int,
    offsets: np.ndarray | None = None, conditioned: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(own, crossed)``: the arcsine laws over ``2 / pi`` under ``C'' = C - sum_i left_i right_i^T`` (symmetric).

    ``diagonal`` (B, ..., n) and ``upper`` (B, ..., n (n - 1) / 2) (``numpy.triu_indices(n, 1)`` order)
    are those of ``C`` and broadcast against the vectors ``left_i``, ``right_i`` (B, ..., n). ``own``
    (B, ..., n) holds ``arcsin`` of ``E''[sigma_w**2]``'s argument, ``crossed`` (B, ..., n (n - 1) / 2)
    that of ``E''[sigma_w sigma_x]`` for ``w < x`` (the laws are symmetric). With sign units,
    ``offsets`` (n,) as :func:`arcsine_laws` and ``conditioned`` (boolean, broadcast against
    ``diagonal``): the sign units among the downdate's Gaussian factors, which take their limits
    (module docstring, "Sign units").
    """
    w, x = np.triu_indices(n, 1)
    variance = diagonal - sum(left * right for left, right in terms)
    cross = upper - sum(left[..., w] * right[..., x] for left, right in terms)
    if offsets is None:
        scale = 1 / np.sqrt(1 + variance)
        argument = cross * scale[..., w] * scale[..., x]
        own = np.arcsin(variance * scale * scale)
    else:
        # a sign unit conditioned on 0: E[sign**2] -> 1/3, E[sign sigma_x] -> 0 (its variance is 0 up to round-off)
        shifted = np.where(conditioned, 1.0, offsets + variance)
        scale = 1 / np.sqrt(shifted)
        own = np.where(conditioned, math.pi / 6, np.arcsin(np.clip(variance / shifted, -1.0, 1.0)))
        either = conditioned[..., w] | conditioned[..., x]
        argument = np.where(either, 0.0, np.clip(cross * scale[..., w] * scale[..., x], -1.0, 1.0))
    return own, np.arcsin(argument)


def _downdated_square(diagonal: np.ndarray, upper: np.ndarray, terms: list[tuple[np.ndarray, np.ndarray]],
                      c: np.ndarray, offsets: np.ndarray | None = None,
                      conditioned: np.ndarray | None = None) -> np.ndarray:
    """``E[r**2]`` under ``C''`` of :func:`downdated_arcsines` (same arguments, ``c`` (B, n)), shape (B, ...)."""
    n = c.shape[-1]
    w, x = np.triu_indices(n, 1)
    own, crossed = downdated_arcsines(diagonal, upper, terms, n, offsets, conditioned)
    flat = c.shape[:1] + (1,) * (own.ndim - 2) + c.shape[1:]
    squares = (c * c).reshape(flat)
    products = (2 * c[:, w] * c[:, x]).reshape(flat[:-1] + (w.size,))
    return TWO_OVER_PI * (np.sum(own * squares, axis=-1) + np.sum(crossed * products, axis=-1))


def erf_triple_moments(
    C: np.ndarray, c: np.ndarray, delta: float, p: int, offsets: np.ndarray | None = None
) -> np.ndarray:
    """``T[j, m, n, x] = E[sigma'_j sigma'_m sigma'_n z_x (r**3 + 3 Delta r)]`` (module docstring, step 3).

    Parameters
    ----------
    C : array, shape (B, n, n)
        The covariance of the ``n = p + k`` units, students first.
    c : array, shape (B, n)
        ``(-a, b)``.
    delta : float
        Label-noise variance.
    p : int
        Number of students.
    offsets : array, shape (n,), optional
        1 for an erf unit (the default on every unit), 0 for a sign teacher unit (module
        docstring, "Sign units").

    Returns
    -------
    array, shape (B, p, p, p, n)
        Symmetric in ``j, m, n``; ``x`` over all units.
    """
    G, index_of = student_multisets(p, 3)
    nb, n = C.shape[0], C.shape[-1]
    w, x = np.triu_indices(n, 1)
    out = np.empty((nb, G.shape[0], n))
    # the fourth factor of a sign unit s conditions it on 0: row s of the downdate
    conditioned = None if offsets is None else np.diag(offsets == 0)
    for part in _chunks(G.shape[0], nb * n**3):
        root, tilted = tilt(C, G[part])  # (B, M), (B, M, n, n)
        diagonal = np.diagonal(tilted, axis1=-2, axis2=-1)  # C'_ss, shape (B, M, n)
        shifted = 1 + diagonal if offsets is None else offsets + diagonal
        # the fourth factor sigma'_s, for every unit s: C'' = C' - C'_:s C'_s: / (1 + C'_ss)
        left = tilted / shifted[..., None]  # [..., s, x] = C'_sx / (1 + C'_ss)
        square = _downdated_square(diagonal[..., None, :], tilted[..., None, w, x], [(left, tilted)], c, offsets,
                                   conditioned)
        slope = np.sqrt(TWO_OVER_PI / shifted)  # E'[sigma'_s]
        weight = c[:, None, :] * slope * (square + delta)  # (B, M, s)
        prefactor = 3 * TWO_OVER_PI ** 1.5 / root
        out[:, part] = prefactor[..., None] * np.einsum("bmxs,bms->bmx", tilted, weight)
    return out[:, index_of]


def _independent_fourth(variance: np.ndarray, c: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """``E_D[r**4]``: the units made independent with variances ``variance`` (K, n); ``c`` (K, n) -> (K,)."""
    second = TWO_OVER_PI * np.arcsin(variance / (1 + variance))
    fourth = erf_erf_erf_erf(*(variance,) * 10)
    if offsets is not None:  # sign**2 = sign**4 = 1
        second, fourth = np.where(offsets == 0, 1.0, second), np.where(offsets == 0, 1.0, fourth)
    c2 = c * c
    return np.sum(c2 * c2 * (fourth - 3 * second * second), axis=-1) + 3 * np.sum(c2 * second, axis=-1) ** 2


def path_nodes(largest_variance: float) -> int:
    """Gauss-Legendre nodes that take the path integral of step 4 below about 1e-13 (relative).

    The integrand's singularities nearest to ``[0, 1]`` lie beyond ``t = 1 + 1 / v`` (``v`` the
    largest variance: there a tilt's determinant or an arcsine's argument can reach its limit),
    so the error falls as ``rho**(-2 nodes)`` with ``rho = x + sqrt(x**2 - 1)``, ``x = 1 + 2 / v``
    (the Bernstein ellipse through that point). ``4 + 14 / log(rho)`` nodes, at least
    :data:`MIN_NODES`, is the measured need for 1e-13 plus two nodes (7, 12, 17, 27 nodes at
    ``v`` = 0.3, 1, 3, 10; tests/numerics/kernels/test_erf_higher_moments.py).
    """
    x = 1 + 2 / max(largest_variance, 1e-12)
    rho = x + math.sqrt(x * x - 1)
    return max(MIN_NODES, math.ceil(4 + 14 / math.log(rho)))


def path_nodes_with_signs(tilted: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Gauss-Legendre nodes of the path integral of step 4 for every block with sign units, shape (K,).

    ``tilted`` (K, n, n), ``offsets`` (n,) as :func:`arcsine_laws`. The integrand's singularities
    in ``t`` are where a principal block of ``A(t) = O + D + t (C' - D)`` (``O`` the offsets) turns
    singular: real (a symmetric pencil), at ``t = -1 / mu`` for the eigenvalues ``mu`` of
    ``(O + D)**-1/2 (C' - D) (O + D)**-1/2``; the extreme ones bound every principal block's
    (interlacing). A sign unit has no offset, so ``t = 1 / |mu_min|`` comes near 1 as the sign
    units' block of ``C'`` nears singular, and ``t = -1 / mu_max`` near 0 when many are
    correlated. The nearer end sets the Bernstein ellipse, and the nodes are those of
    :func:`path_nodes` for it.

    Raises
    ------
    ValueError
        When the sign units' block of ``C'`` is singular (the path ends on a singularity) or so
        nearly singular that more than :data:`MAX_SIGN_NODES` nodes would be needed.
    """
    diagonal = np.diagonal(tilted, axis1=-2, axis2=-1)
    scale = 1 / np.sqrt(offsets + diagonal)
    moved = (tilted - diagonal[..., :, None] * np.eye(tilted.shape[-1])) * scale[..., :, None] * scale[..., None, :]
    eigenvalues = np.linalg.eigvalsh(moved)
    lowest, highest = -eigenvalues[..., 0], eigenvalues[..., -1]  # both >= 0: zero trace
    ends = np.minimum(2 / np.maximum(lowest, 1e-300) - 1, 1 + 2 / np.maximum(highest, 1e-300))
    ends = np.maximum(ends, 1.0)  # a singular sign block puts a singularity at t = 1
    rho = ends + np.sqrt(ends * ends - 1)
    with np.errstate(divide="ignore"):
        needed = np.maximum(MIN_NODES, np.ceil(4 + 14 / np.log(rho)))
    if np.any(needed > MAX_SIGN_NODES):
        raise ValueError("the eta**3 and eta**4 increment moments of sign teachers need teacher directions that are "
                         "linearly independent, and not nearly dependent: the sign units' block of the covariance is "
                         f"singular or close to it (the path integral would need more than {MAX_SIGN_NODES} nodes); "
                         "leading_order_noise=True (or second_order=False) gives the leading order for such teachers")
    return needed.astype(int)


def _fourth_power(tilted: np.ndarray, c: np.ndarray, nodes: int, offsets: np.ndarray | None = None) -> np.ndarray:
    """``E'[r**4]`` under ``N(0, C')`` by the path of step 4; ``tilted`` (K, n, n), ``c`` (K, n) -> (K,)."""
    n = tilted.shape[-1]
    u, v = np.triu_indices(n, 1)
    pairs = np.arange(u.size)
    x, w = np.polynomial.legendre.leggauss(nodes)
    diagonal = np.diagonal(tilted, axis1=-2, axis2=-1)  # (K, n), the same all along the path
    shifted = 1 + diagonal if offsets is None else offsets + diagonal
    off = tilted[..., u, v]  # C'_uv (u < v), shape (K, P)
    coupling = 12 * TWO_OVER_PI * off * c[:, u] * c[:, v]
    moved = tilted - np.einsum("...u,uv->...uv", diagonal, np.eye(n))  # C' - D
    total = _independent_fourth(diagonal, c, offsets)
    conditioned = None
    if offsets is not None:  # the pair's sign units are conditioned on 0
        conditioned = np.zeros((u.size, n), dtype=bool)
        conditioned[pairs, u], conditioned[pairs, v] = offsets[u] == 0, offsets[v] == 0
    for t, weight in zip((x + 1) / 2, w / 2):
        rows_u, rows_v = t * moved[:, u, :], t * moved[:, v, :]  # (K, P, n), off the diagonal
        rows_u[:, pairs, u] = diagonal[:, u]
        rows_v[:, pairs, v] = diagonal[:, v]
        guu, gvv, guv = shifted[:, u], shifted[:, v], t * off
        det = guu * gvv - guv * guv  # det(O + C_GG) for the pair G = {u, v}: >= 1 for erf units, > 0 with signs
        # C'' = C(t) - C_:G (I + C_GG)^-1 C_G:, the inverse written out
        left_u = (gvv[..., None] * rows_u - guv[..., None] * rows_v) / det[..., None]
        left_v = (guu[..., None] * rows_v - guv[..., None] * rows_u) / det[..., None]
        square = _downdated_square(diagonal[:, None, :], t * off[:, None, :], [(left_u, rows_u), (left_v, rows_v)],
                                   c, offsets, conditioned)
        total = total + weight * np.sum(coupling * square / np.sqrt(det), axis=-1)
    return total


def erf_quadruple_moments(
    C: np.ndarray, c: np.ndarray, delta: float, p: int, nodes: int | None = None, offsets: np.ndarray | None = None
) -> np.ndarray:
    """``F[j, l, m, n] = E[sigma'_j sigma'_l sigma'_m sigma'_n (r**4 + 6 Delta r**2 + 3 Delta**2)]`` (step 4).

    Parameters as :func:`erf_triple_moments`; ``nodes``: Gauss-Legendre nodes of the path integral
    (default :func:`path_nodes` of the largest tilted variance, chunk by chunk; with sign units
    :func:`path_nodes_with_signs`).

    Returns
    -------
    array, shape (B, p, p, p, p)
        Symmetric in all four slots.
    """
    G, index_of = student_multisets(p, 4)
    nb, n = C.shape[0], C.shape[-1]
    root, tilted = tilt(C, G)  # (B, M), (B, M, n, n)
    noise = 6 * delta * residual_square(tilted, c, offsets) + 3 * delta**2 if delta else 0.0
    tilted = tilted.reshape(-1, n, n)
    rows = np.repeat(c, G.shape[0], axis=0)  # c of every (replica, multiset)
    # in order of the nodes they need, so that each chunk takes the nodes its own blocks need
    if offsets is None:
        largest = np.max(np.diagonal(tilted, axis1=-2, axis2=-1), axis=-1, initial=0.0)
        order = np.argsort(largest)
        needed = None
    else:
        needed = path_nodes_with_signs(tilted, offsets)
        order = np.argsort(needed, kind="stable")
    fourth = np.empty(tilted.shape[0])
    # small chunks: the temporaries of the path stay in the cache
    for part in _chunks(tilted.shape[0], n**4 // 4):
        items = order[part]
        if nodes is not None:
            count = nodes
        elif needed is None:
            count = path_nodes(float(largest[items[-1]]))
        else:
            count = int(needed[items[-1]])
        fourth[items] = _fourth_power(tilted[items], rows[items], count, offsets)
    out = TWO_OVER_PI**2 / root * (fourth.reshape(nb, -1) + noise)
    return out[:, index_of]


__all__ = [
    "CHUNK_ELEMENTS",
    "MAX_SIGN_NODES",
    "MIN_NODES",
    "arcsine_laws",
    "downdated_arcsines",
    "erf_pair_means",
    "erf_quadruple_moments",
    "erf_triple_moments",
    "path_nodes",
    "path_nodes_with_signs",
    "residual_square",
    "student_multisets",
    "tilt",
]
