"""The packed increment vector of one SGD step and the blocks of its covariance matrix ``Sigma``.

``v = (q_jl for (j, l) in zip(*numpy.triu_indices(p)), then r_jr in row-major order)``
has ``D = p (p + 1) / 2 + p k`` entries (:func:`packed_size`); :func:`pack_covariance`
takes the blocks ``(QQ, QR, RR)`` of :func:`numerics.noise.fluctuations.increment_covariance`
to ``Sigma`` (D x D). :func:`covariance_contributions` states how ``increment_covariance``
assembles those blocks from the moment tensors, as (block, source, index permutation,
power of eta, sign) terms, which is what the fast evaluation sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def packed_size(p: int, k: int) -> int:
    """``D = p (p + 1) / 2 + p k``, the number of independent increments of ``(Q, R)``."""
    return p * (p + 1) // 2 + p * k


def pack_covariance(QQ: np.ndarray, QR: np.ndarray, RR: np.ndarray) -> np.ndarray:
    """The covariance matrix of the packed increment vector from :func:`increment_covariance`'s blocks.

    Parameters
    ----------
    QQ : array, shape (..., p, p, p, p)
    QR : array, shape (..., p, p, p, k)
    RR : array, shape (..., p, k, p, k)

    Returns
    -------
    Sigma : array, shape (..., D, D)
        ``D = p (p + 1) / 2 + p k``, rows and columns in the order of the vector
        ``(q_jl for j <= l (numpy.triu_indices order), r_jr row-major)``.
    """
    p, k = RR.shape[-4], RR.shape[-1]
    iu = np.triu_indices(p)
    n_upper = iu[0].size
    batch = np.broadcast_shapes(QQ.shape[:-4], QR.shape[:-4], RR.shape[:-4])
    Sigma = np.empty(batch + (n_upper + p * k,) * 2)
    qq = QQ[..., iu[0], iu[1], :, :][..., iu[0], iu[1]]
    qr = QR[..., iu[0], iu[1], :, :].reshape(QR.shape[:-4] + (n_upper, p * k))
    Sigma[..., :n_upper, :n_upper] = qq
    Sigma[..., :n_upper, n_upper:] = qr
    Sigma[..., n_upper:, :n_upper] = np.swapaxes(qr, -1, -2)
    Sigma[..., n_upper:, n_upper:] = RR.reshape(RR.shape[:-4] + (p * k, p * k))
    return Sigma


@dataclass(frozen=True)
class Block:
    """A block of Sigma: output axes sizes, its row and column index pairs, where it goes."""

    dims: tuple[int, int, int, int]
    rows: tuple[np.ndarray, np.ndarray]
    cols: tuple[np.ndarray, np.ndarray]
    row_slice: slice
    col_slice: slice


def sigma_blocks(p: int, k: int) -> dict[str, Block]:
    iu = np.triu_indices(p)
    n_upper = iu[0].size
    every = (np.repeat(np.arange(p), k), np.tile(np.arange(k), p))
    upper, rest = slice(0, n_upper), slice(n_upper, n_upper + p * k)
    return {
        "QQ": Block((p, p, p, p), iu, iu, upper, upper),
        "QR": Block((p, p, p, k), iu, every, upper, rest),
        "RR": Block((p, k, p, k), every, every, rest, rest),
    }


_ID = (0, 1, 2, 3)
_SWAP_FIRST = (1, 0, 2, 3)  # X[l, j, i, h]: the permutation maps old output axis t to new axis sigma[t]
_SWAP_LAST = (0, 1, 3, 2)
_SWAP_BOTH = (1, 0, 3, 2)
_SWAP_PAIRS = (2, 3, 0, 1)
_SWAP_PAIRS_FIRST = (3, 2, 0, 1)  # swap_pairs(swap_first(X))


def covariance_contributions(second_order: bool) -> list[tuple[str, str, tuple, int, float]]:
    """(block, source, permutation, power of eta, sign): ``increment_covariance``'s assembly as terms.

    ``QQ = eta**2 (sym(LL) - dQ dQ) + eta**3 (cross + swap_pairs(cross)) + eta**4 (EE - B B)``,
    ``cross = LE + swap_first(LE) - dQ B``, ``QR = eta**2 (LN + swap_first(LN) - dQ dR)
    + eta**3 (EN - B dR)``, ``RR = eta**2 (NN - dR dR)``, with ``sym(X)`` the sum of
    ``X`` over both swaps of the first and the last pair, ``dQ``, ``dR`` the first-order
    drifts and ``B`` the mean of the ``eta**2`` part of ``q`` (see
    :func:`numerics.noise.fluctuations.increment_covariance`).
    """
    terms = [("QQ", "LL", s, 2, 1.0) for s in (_ID, _SWAP_FIRST, _SWAP_LAST, _SWAP_BOTH)]
    terms += [("QQ", "dQ*dQ", _ID, 2, -1.0)]
    terms += [("QR", "LN", s, 2, 1.0) for s in (_ID, _SWAP_FIRST)] + [("QR", "dQ*dR", _ID, 2, -1.0)]
    terms += [("RR", "NN", _ID, 2, 1.0), ("RR", "dR*dR", _ID, 2, -1.0)]
    if second_order:
        terms += [("QQ", "LE", s, 3, 1.0) for s in (_ID, _SWAP_FIRST, _SWAP_PAIRS, _SWAP_PAIRS_FIRST)]
        terms += [("QQ", "dQ*B", _ID, 3, -1.0), ("QQ", "B*dQ", _ID, 3, -1.0)]
        terms += [("QQ", "EE", _ID, 4, 1.0), ("QQ", "B*B", _ID, 4, -1.0)]
        terms += [("QR", "EN", _ID, 3, 1.0), ("QR", "B*dR", _ID, 3, -1.0)]
    return terms


def gather_dense(dense: np.ndarray, sigma: tuple, block: Block) -> np.ndarray:
    """The entries of a block of ``Sigma`` from a dense tensor (..., a, b, c, d) with its axes permuted by ``sigma``."""
    # new[n0, n1, n2, n3] = old[n_sigma0, n_sigma1, n_sigma2, n_sigma3] on the block's rows and columns
    r0, r1 = block.rows
    c2, c3 = block.cols
    new = [r0[:, None], r1[:, None], c2[None, :], c3[None, :]]
    index = tuple(np.broadcast_to(new[sigma[t]], (r0.size, c2.size)) for t in range(4))
    return dense[(slice(None),) + index]
