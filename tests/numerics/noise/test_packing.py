"""The packed increment vector: its size, the packing of ``Sigma`` and the dense gathers of its blocks.

Checked against a packing written out entry by entry from the module docstring: ``q_jl`` for
``j <= l`` row by row, then ``r_jr`` row-major.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerics.noise.packing import covariance_contributions, gather_dense, pack_covariance, packed_size, sigma_blocks


def _packed_labels(p: int, k: int) -> list[tuple[str, int, int]]:
    labels = [("q", j, l) for j in range(p) for l in range(j, p)]
    return labels + [("r", j, r) for j in range(p) for r in range(k)]


def _plain_sigma(QQ, QR, RR, p, k):
    labels = _packed_labels(p, k)
    Sigma = np.empty((len(labels), len(labels)))
    for row, (kind_a, a0, a1) in enumerate(labels):
        for col, (kind_b, b0, b1) in enumerate(labels):
            if kind_a == "q" and kind_b == "q":
                Sigma[row, col] = QQ[a0, a1, b0, b1]
            elif kind_a == "q":
                Sigma[row, col] = QR[a0, a1, b0, b1]
            elif kind_b == "q":
                Sigma[row, col] = QR[b0, b1, a0, a1]
            else:
                Sigma[row, col] = RR[a0, a1, b0, b1]
    return Sigma


@pytest.mark.parametrize("p, k", [(1, 1), (2, 1), (3, 2)])
def test_packed_size_counts_the_upper_triangle_and_r(p, k):
    assert packed_size(p, k) == len(_packed_labels(p, k))


@pytest.mark.parametrize("p, k", [(1, 1), (2, 3), (3, 2)])
def test_pack_covariance_matches_the_packing_written_out(p, k):
    rng = np.random.default_rng(0)
    QQ, QR, RR = rng.standard_normal((p, p, p, p)), rng.standard_normal((p, p, p, k)), rng.standard_normal((p, k, p, k))
    np.testing.assert_array_equal(pack_covariance(QQ, QR, RR), _plain_sigma(QQ, QR, RR, p, k))


def test_pack_covariance_broadcasts_the_batch():
    p, k = 2, 2
    rng = np.random.default_rng(1)
    QQ = rng.standard_normal((3, p, p, p, p))
    QR = rng.standard_normal((1, p, p, p, k))
    RR = rng.standard_normal((3, p, k, p, k))
    Sigma = pack_covariance(QQ, QR, RR)
    assert Sigma.shape == (3, packed_size(p, k), packed_size(p, k))
    for b in range(3):
        np.testing.assert_array_equal(Sigma[b], _plain_sigma(QQ[b], QR[0], RR[b], p, k))


@pytest.mark.parametrize("sigma", [(0, 1, 2, 3), (1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1), (3, 2, 0, 1)])
def test_gather_dense_places_a_permuted_tensor_where_pack_covariance_does(sigma):
    # gather_dense reads X[n_sigma0, ..., n_sigma3] on a block: the permuted tensor packed in full
    p, k = 3, 3  # p == k so every permutation of every block has matching axis sizes
    rng = np.random.default_rng(2)
    dense = rng.standard_normal((2, p, p, p, p))
    permuted = np.einsum(dense, [0, 1, 2, 3, 4], [0] + [1 + sigma.index(t) for t in range(4)])
    blocks = sigma_blocks(p, k)
    zeros_qr, zeros_rr = np.zeros((2, p, p, p, k)), np.zeros((2, p, k, p, k))
    expected = pack_covariance(permuted, zeros_qr, zeros_rr)
    block = blocks["QQ"]
    np.testing.assert_array_equal(gather_dense(dense, sigma, block), expected[:, block.row_slice, block.col_slice])
    expected_rr = pack_covariance(np.zeros((2, p, p, p, p)), zeros_qr, permuted)
    block = blocks["RR"]
    np.testing.assert_array_equal(gather_dense(dense, sigma, block), expected_rr[:, block.row_slice, block.col_slice])


def test_covariance_contributions_first_order_terms_only_without_second_order():
    first = covariance_contributions(False)
    both = covariance_contributions(True)
    assert first == both[: len(first)]
    assert {power for *_, power, _ in first} == {2}
    assert {power for *_, power, _ in both[len(first):]} <= {3, 4}
    # sym(LL): all four swaps of LL with sign +1; every block has a subtracted product of drifts
    assert sorted(term[2] for term in first if term[1] == "LL") == sorted(
        [(0, 1, 2, 3), (1, 0, 2, 3), (0, 1, 3, 2), (1, 0, 3, 2)])
    assert {term[0] for term in first if term[4] < 0} == {"QQ", "QR", "RR"}
