"""The shared bookkeeping of the erf and relu networks' eta**3 / eta**4 parts, entry by entry."""

import itertools

import numpy as np

from numerics.noise.higher_orders import higher_blocks, raw_moments


def test_raw_moments_put_the_readouts_on_entry_by_entry():
    rng = np.random.default_rng(0)
    p, k = 2, 3
    pair, triple = rng.normal(size=(1, p, p)), rng.normal(size=(1, p, p, p, p + k))
    quadruple, a = rng.normal(size=(1, p, p, p, p)), rng.normal(size=(1, p))
    mean, AB, BN, BB = raw_moments(pair, triple, quadruple, a, p)
    for j, l, m, n in itertools.product(range(p), repeat=4):
        assert np.isclose(mean[0, j, l], a[0, j] * a[0, l] * pair[0, j, l])
        # <A_jl B_mn> = <E_j z_l E_m E_n> + <E_l z_j E_m E_n>
        expected = a[0, m] * a[0, n] * (a[0, j] * triple[0, j, m, n, l] + a[0, l] * triple[0, l, m, n, j])
        assert np.isclose(AB[0, j, l, m, n], expected)
        assert np.isclose(BB[0, j, l, m, n], np.prod(a[0, [j, l, m, n]]) * quadruple[0, j, l, m, n])
    for j, l, m, s in itertools.product(range(p), range(p), range(p), range(k)):
        assert np.isclose(BN[0, j, l, m, s], np.prod(a[0, [j, l, m]]) * triple[0, j, l, m, p + s])


def test_higher_blocks_broadcast_like_one_point_at_a_time():
    rng = np.random.default_rng(1)
    p, k, batch = 2, 1, (2, 3)
    tables = [rng.normal(size=batch + shape) for shape in ((p, p), (p,) * 4, (p, p, p, k), (p,) * 4)]

    def moments(Q, R, T, a, b):  # looks its point up by Q[0, 0], which carries the flat index
        index = Q[:, 0, 0].astype(int)
        return tuple(table.reshape((-1,) + table.shape[2:])[index] for table in tables)

    Q = np.broadcast_to(np.arange(6.0).reshape(batch)[..., None, None], batch + (p, p))
    R, T = np.zeros((p, k)), np.eye(k)
    a, b = np.ones(p), np.ones(k)
    drift_Q, drift_R = rng.normal(size=batch + (p, p)), rng.normal(size=batch + (p, k))
    QQ, QR = higher_blocks(moments, Q, R, T, 0.7, a, b, drift_Q, drift_R)
    for index in itertools.product(*map(range, batch)):
        mean, AB, BN, BB = (table[index] for table in tables)
        cross = AB - drift_Q[index][:, :, None, None] * mean[None, None]
        expected_QQ = 0.7**3 * (cross + cross.transpose(2, 3, 0, 1)) + 0.7**4 * (BB - np.multiply.outer(mean, mean))
        expected_QR = 0.7**3 * (BN - np.multiply.outer(mean, drift_R[index]))
        np.testing.assert_allclose(QQ[index], expected_QQ, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(QR[index], expected_QR, rtol=1e-13, atol=1e-13)
