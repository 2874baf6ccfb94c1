"""The packed increment covariance of erf and relu networks, evaluated straight into the packed layout.

For a per-tuple model (:mod:`numerics.noise.tuple_fluctuations`) every entry of the packed
covariance ``Sigma`` (:mod:`numerics.noise.packing`) is ``eta**2`` times a sum of at most four
moments ``X[j, x, i, y] = <E_j z_x E_i z_y>`` minus a product of drifts:

    Cov(q_jl, q_ih) = eta**2 (X[j,l,i,h] + X[l,j,i,h] + X[j,l,h,i] + X[l,j,h,i] - D_jl D_ih),
    Cov(q_jl, r_ms) = eta**2 (X[j,l,m,s] + X[l,j,m,s] - D_jl D_ms),
    Cov(r_jr, r_ms) = eta**2 (X[j,r,m,s] - D_jr D_ms)

(``x, y`` over the units, students first; teachers at ``p + r``). :class:`TuplePacking` lists,
once per ``(p, k)``, the flat positions of those moments for every entry of ``Sigma`` (a
position past the end stands for a zero), so one call is a gather, a sum and an outer product
of the packed drift, for every replica at once. The moments of an erf network come in closed
form from :func:`numerics.kernels.erf_increments.erf_pair_moments` (matrix products per
student pair); those of a relu network from
:func:`numerics.noise.tuple_fluctuations.relu_increment_moments`. The result is the same as
``pack_covariance(*increment_covariance(...))`` to round-off: the leading order, ``eta**2``, and with
``second_order`` for an erf network (erf students, erf or sign teachers) the ``eta**3`` and ``eta**4``
parts of :mod:`numerics.noise.erf_higher_orders`, for a relu network (up to ``p + k = 5`` units) those of
:mod:`numerics.noise.relu_higher_orders`, whose raw moments join ``X`` (packed by
:func:`numerics.noise.packing.pack_covariance`) and whose mean ``<E_j E_l>`` joins the drift (so
label flips mix it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from numerics.core.validation import covariance
from numerics.kernels.erf_increments import erf_pair_moments, student_pairs
from numerics.kernels.unit_tuples import readout_vectors
from numerics.noise.erf_higher_orders import erf_higher_moments, erf_unit_scales, includes_higher_orders
from numerics.noise.packing import pack_covariance, packed_size
from numerics.noise.relu_higher_orders import includes_relu_higher_orders, relu_network_higher_moments
from numerics.noise.tuple_fluctuations import relu_increment_moments

#: The kinds of unit (the same on both sides) with a packed covariance here; an erf student may
#: also learn a ``sign`` teacher.
PACKED_KINDS = ("erf", "relu")


@dataclass(frozen=True, eq=False)
class TuplePacking:
    """Where each entry of ``Sigma`` takes its moments from, at sizes ``(p, k)``.

    Attributes
    ----------
    p, k : int
    terms : int array, shape (D, D, 4)
        Flat positions in ``X`` (shape (p, p + k, p, p + k)) of the moments summed into each
        entry; ``p**2 (p + k)**2`` is the appended zero.
    drift_index : int array, shape (D,)
        The drift of each packed coordinate, as a position in the raveled ``[D_Q, D_R]``
        (``p**2 + p k`` entries).
    pair_of : int array, shape (p, p)
        The student pair of ``(j, i)`` (:func:`numerics.kernels.erf_increments.student_pairs`).
    """

    p: int
    k: int
    terms: np.ndarray
    drift_index: np.ndarray
    pair_of: np.ndarray


def _coordinates(p: int, k: int) -> list[tuple[str, int, int]]:
    """The packed coordinates ``(kind, j, x)`` in order: ``("q", j, l)`` for ``j <= l``, then ``("r", j, p + r)``."""
    rows, columns = np.triu_indices(p)
    return [("q", int(j), int(l)) for j, l in zip(rows, columns)] + [
        ("r", j, p + r) for j in range(p) for r in range(k)]


def _build(p: int, k: int) -> TuplePacking:
    n = p + k
    zero = p * n * p * n

    def flat(j: int, x: int, i: int, y: int) -> int:
        return ((j * n + x) * p + i) * n + y

    def moments(first: tuple[str, int, int], second: tuple[str, int, int]) -> list[int]:
        # q_jl = eta (E_j lambda_l + E_l lambda_j) + ..., r_jr = eta E_j nu_r
        left = [(first[1], first[2]), (first[2], first[1])] if first[0] == "q" else [(first[1], first[2])]
        right = [(second[1], second[2]), (second[2], second[1])] if second[0] == "q" else [(second[1], second[2])]
        found = [flat(j, x, i, y) for j, x in left for i, y in right]
        return found + [zero] * (4 - len(found))

    coordinates = _coordinates(p, k)
    terms = np.array([[moments(first, second) for second in coordinates] for first in coordinates], dtype=np.intp)
    drift_index = np.array([j * p + x if kind == "q" else p * p + j * k + (x - p) for kind, j, x in coordinates],
                           dtype=np.intp)
    return TuplePacking(p, k, terms, drift_index, student_pairs(p)[2])


_PACKINGS: dict[tuple[int, int], TuplePacking] = {}


def tuple_packing(p: int, k: int) -> TuplePacking:
    """The cached :class:`TuplePacking` of sizes ``(p, k)``."""
    found = _PACKINGS.get((p, k))
    if found is None:
        found = _PACKINGS[(p, k)] = _build(p, k)
    return found


def _moments(module: ModuleType, C: np.ndarray, Q, R, T, delta: float, a: np.ndarray, b: np.ndarray,
             packing: TuplePacking) -> np.ndarray:
    """``X`` (B, p, n, p, n) of an erf or relu network, students first in ``x`` and ``y``."""
    p = packing.p
    if module.STUDENT_KIND == "relu":
        return relu_increment_moments(module, Q, R, T, delta, a, b)
    d, offsets = erf_unit_scales(module, p, packing.k)
    # the closed form in the rescaled units d z; sigma'(z_j) = d_j sigma'~(d_j z_j), z_x = (d z)_x / d_x
    M = erf_pair_moments(C * (d[:, None] * d[None, :]), np.concatenate([-a, b], axis=-1), delta, p, offsets)
    M = M[:, packing.pair_of] * (d[0] ** 2 / (d[:, None] * d[None, :]))  # (B, j, i, x, y)
    M = M * (a[:, :, None, None, None] * a[:, None, :, None, None])
    return np.moveaxis(M, 2, 3)


def tuple_packed_covariance(
    module: ModuleType, Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float, delta: float,
    a: np.ndarray | None = None, b: np.ndarray | None = None, label_flip: float = 0.0, second_order: bool = False,
) -> np.ndarray:
    """The packed covariance ``Sigma`` of an erf or relu network (module docstring), no validation.

    Parameters
    ----------
    module : module
        The model's per-tuple generated module (erf or relu units on both sides).
    Q, R, T : arrays, shapes (B, p, p), (B, p, k), (B, k, k) or (k, k)
    eta : float
    delta : float
        Label-noise variance.
    a, b : arrays, shapes (B, p) or (p,), and (B, k) or (k,), optional
        Readout vectors (default the model's scalars).
    label_flip : float
        Probability ``epsilon`` that a label is replaced by ``-y`` (docs/model.md): the covariance
        of the mixture of the teacher readout ``b`` and ``-b``.
    second_order : bool
        Add the ``eta**3`` and ``eta**4`` parts of an erf network (erf students, erf or sign
        teachers, up to ``p + k = 8`` units,
        :func:`numerics.noise.erf_higher_orders.includes_higher_orders`) or a relu network (up to
        ``p + k = 5`` units, :func:`numerics.noise.relu_higher_orders.includes_relu_higher_orders`).

    Returns
    -------
    Sigma : array, shape (B, D, D)
        ``D = p (p + 1) / 2 + p k``, rows in the order ``(q_jl (j <= l), r_jr)``; equal to
        ``pack_covariance(*increment_covariance(...))`` of the same arguments to round-off.

    Raises
    ------
    ValueError
        For a model whose students and teachers are not both erf or both relu (an erf student may
        learn a sign teacher); for sign teachers whose directions are parallel, or with the higher
        parts linearly dependent (:mod:`numerics.noise.erf_higher_orders`).
    """
    kinds = (module.STUDENT_KIND, module.TEACHER_KIND)
    if kinds not in tuple((kind, kind) for kind in PACKED_KINDS) + (("erf", "sign"),):
        raise ValueError("tuple_packed_covariance: needs erf units or relu units on both sides (or an erf student "
                         f"and a sign teacher), got a {kinds[0]} student and a {kinds[1]} teacher")
    p, k = R.shape[-2:]
    nb = Q.shape[0]
    packing = tuple_packing(p, k)
    a, b = readout_vectors(module.readouts, p, k, a, b)
    a, b = np.broadcast_to(a, (nb, p)), np.broadcast_to(b, (nb, k))
    T = np.broadcast_to(T, (nb, k, k))
    C = covariance(Q, R, T)
    included = includes_higher_orders(module, p, k, second_order) or includes_relu_higher_orders(module, p, k,
                                                                                                  second_order)
    higher = eta if included else None
    second, drift = _second_moments(module, C, Q, R, T, delta, a, b, packing, higher)
    if label_flip:
        # labels -y with probability epsilon: the raw second moments mix, and the means' difference adds
        # epsilon (1 - epsilon) (m_b - m_-b)(m_b - m_-b)^T to the mixture of the two covariances
        second_flipped, drift_flipped = _second_moments(module, C, Q, R, T, delta, a, -b, packing, higher)
        second = (1 - label_flip) * second + label_flip * second_flipped
        drift = (1 - label_flip) * drift + label_flip * drift_flipped
    Sigma = eta**2 * (second - drift[:, :, None] * drift[:, None, :])
    # symmetric to the last bit (the rescaled units of erf(s z) round the two halves differently)
    return (Sigma + np.swapaxes(Sigma, -1, -2)) / 2


def _second_moments(module: ModuleType, C, Q, R, T, delta: float, a: np.ndarray, b: np.ndarray,
                    packing: TuplePacking, higher: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The packed raw second moments (B, D, D) over ``eta**2`` and the packed mean (B, D) over ``eta``.

    With ``higher = eta`` (an erf or relu network with ``second_order``) they include the ``eta**2 E_j E_l``
    part of ``q``: ``eta <A B> + eta**2 <B B>`` and ``eta <B>`` (:mod:`numerics.noise.erf_higher_orders`,
    :mod:`numerics.noise.relu_higher_orders`).
    """
    nb, p, k = Q.shape[0], packing.p, packing.k
    X = _moments(module, C, Q, R, T, delta, a, b, packing).reshape(nb, -1)
    X = np.concatenate([X, np.zeros((nb, 1))], axis=1)
    drift_Q, drift_R = module.first_order_terms(Q, R, T, a, b)
    drift = np.concatenate([drift_Q.reshape(nb, -1), drift_R.reshape(nb, -1)], axis=1)[:, packing.drift_index]
    D = packed_size(p, k)
    second = X[:, packing.terms.reshape(-1)].reshape(nb, D, D, 4).sum(axis=-1)
    if higher is None:
        return second, drift
    if module.STUDENT_KIND == "relu":
        mean, AB, BN, BB = relu_network_higher_moments(Q, R, T, delta, a, b)
    else:
        mean, AB, BN, BB = erf_higher_moments(module, Q, R, T, delta, a, b)
    # raw <q q> / eta**2 gains eta (<A B> + <B A>) + eta**2 <B B>, raw <q r> / eta**2 gains eta <B E nu>
    QQ = higher * (AB + np.moveaxis(AB, (1, 2), (3, 4))) + higher**2 * BB
    second = second + pack_covariance(QQ, higher * BN, np.zeros((nb, p, k, p, k)))
    rows, columns = np.triu_indices(p)
    drift[:, : rows.size] += higher * mean[:, rows, columns]
    return second, drift


__all__ = ["PACKED_KINDS", "TuplePacking", "erf_unit_scales", "tuple_packed_covariance", "tuple_packing"]
