"""The array helpers of the generated code (numerics/kernels/helpers.py) against plain NumPy."""

from pathlib import Path

import numpy as np
import pytest

from numerics.kernels import helpers as runtime


def test_generated_modules_share_one_hand_written_runtime():
    # the helpers live once, in numerics/kernels/helpers.py; every generated module imports them from there
    from numerics._generated import he3, paper, paper_fluctuations, paper_hessian

    for module in (paper, he3, paper_hessian, paper_fluctuations):
        assert module._sym is runtime.sym and module._fill is runtime.fill
        text = Path(module.__file__).read_text()
        assert "from numerics.kernels.helpers import (" in text and "def _sym(" not in text


def _batched(rng, *shape):
    return rng.standard_normal(shape)


def test_reductions_equal_plain_numpy_batched_and_unbatched():
    rng = np.random.default_rng(0)
    a = _batched(rng, 2, 3, 4, 4)
    np.testing.assert_array_equal(runtime.tp(a), np.transpose(a, (0, 1, 3, 2)))
    np.testing.assert_array_equal(runtime.dg(a)[..., 0], np.diagonal(a, axis1=-2, axis2=-1))
    np.testing.assert_allclose(runtime.rowsum(a)[..., 0], a.sum(axis=-1))
    for helper, plain in ((runtime.tr, np.trace(a, axis1=-2, axis2=-1)), (runtime.total, a.sum(axis=(-2, -1))),
                          (runtime.sumsq, (a**2).sum(axis=(-2, -1)))):
        got = helper(a)
        assert got.shape == (2, 3, 1, 1)  # scalars keep two unit axes and broadcast against matrices
        np.testing.assert_allclose(got[..., 0, 0], plain, rtol=1e-13)
    m = a[0, 0]
    for helper, helper1, plain in ((runtime.tr, runtime.tr1, np.trace(m)), (runtime.total, runtime.total1, m.sum()),
                                   (runtime.sumsq, runtime.sumsq1, (m**2).sum())):
        assert np.ndim(helper(m)) == 0 and isinstance(helper1(m), float)
        assert helper(m) == pytest.approx(plain, rel=1e-13) and helper1(m) == pytest.approx(plain, rel=1e-13)


def test_einsum_reuses_its_path_and_equals_numpy():
    rng = np.random.default_rng(1)
    a, b, c = _batched(rng, 3, 4), _batched(rng, 4, 5), _batched(rng, 5, 2)
    want = np.einsum("ij,jk,kl->il", a, b, c)
    np.testing.assert_allclose(runtime.einsum("ij,jk,kl->il", a, b, c), want, rtol=1e-12)
    np.testing.assert_allclose(runtime.einsum("ij,jk,kl->il", a, b, c), want, rtol=1e-12)  # the stored path


@pytest.mark.parametrize("size", [5, runtime.GRAM_MIN + 3])
def test_gram_products_below_and_above_the_syrk_threshold(size):
    rng = np.random.default_rng(2)
    a = _batched(rng, size, 7)
    np.testing.assert_allclose(runtime.gram1(a), a @ a.T, rtol=1e-12, atol=1e-12)
    s = a @ a.T
    np.testing.assert_allclose(runtime.gram1s(s), s @ s, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("size", [6, runtime.SYM_MIN + 5])
@pytest.mark.parametrize("with_y", [False, True])
def test_symmetric_product_equals_the_plain_product(size, with_y):
    # above SYM_MIN the upper block rows are computed and mirrored: the result equals a @ b (+ y + y^T)
    rng = np.random.default_rng(3)
    q = _batched(rng, size, size)
    a = b = q @ q.T  # (q q^T)(q q^T) is symmetric
    y = _batched(rng, size, size) if with_y else None
    want = a @ b if y is None else a @ b + y + y.T
    for function in (runtime.sym, runtime.sym1):
        got = function(a, b, y)
        assert got.shape == (size, size)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.max(np.abs(want)))
        if size >= runtime.SYM_MIN:  # the blocks below the diagonal blocks are mirrored from those above
            edges = [size * i // runtime.SYM_BLOCKS for i in range(runtime.SYM_BLOCKS + 1)]
            for lo, hi in zip(edges[:-1], edges[1:]):
                np.testing.assert_array_equal(got[hi:, lo:hi], got[lo:hi, hi:].T)
    batched = runtime.sym(np.stack([a, a]), np.stack([b, b]), None if y is None else np.stack([y, y]))
    np.testing.assert_allclose(batched[1], want, rtol=1e-10, atol=1e-10 * np.max(np.abs(want)))


def test_shift_cat_full_and_fill_broadcast_the_batch_axes():
    rng = np.random.default_rng(4)
    a = _batched(rng, 2, 3, 3)
    c = np.array([1.0, -2.0])[:, None, None]
    np.testing.assert_allclose(runtime.shift(a, c), a + c * np.eye(3))
    m = a[0].copy()
    assert runtime.shift1(m, 0.5) is m  # in place on a temporary
    np.testing.assert_allclose(m, a[0] + 0.5 * np.eye(3))
    joined = runtime.cat(-1, a, np.ones((3, 1)))
    assert joined.shape == (2, 3, 4)
    np.testing.assert_array_equal(joined[1, :, :3], a[1])
    np.testing.assert_array_equal(joined[..., 3], 1.0)
    assert runtime.full(2.0, (2, 3)).shape == (2, 3) and np.all(runtime.full(2.0, (2, 3)) == 2.0)
    Q, R, T = np.eye(2), np.zeros((4, 2, 1)), np.eye(1)
    filled = runtime.fill(np.ones((2, 1)), (2, 1), Q, R, T)
    assert filled.shape == (4, 2, 1) and filled.flags.writeable
    value = np.ones((2, 1))
    assert runtime.fill(value, (2, 1), Q, R[0], T) is value  # unbatched and already shaped: no copy
