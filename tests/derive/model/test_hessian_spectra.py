"""The closed-form Hessian spectra (derive/model/hessian_spectra.py) against exact Hessians at small sizes.

The paper model (``sigma = x**2``, ``a = 1/p``, ``b = 1/k``, ``T = I``) has, by Isserlis' theorem
(``E[u**2 v**2] = E[u**2] E[v**2] + 2 E[u v]**2`` for jointly Gaussian ``u, v``), the population risk

    eps = 1/2 sum_{i,j} a**2 (Q_ii Q_jj + 2 Q_ij**2) - sum_{i,n} a b (Q_ii T_nn + 2 R_in**2)
          + 1/2 sum_{n,m} b**2 (T_nn T_mm + 2 T_nm**2),

a polynomial in the weights; its exact Hessian (sympy, rational entries) at each stationary point
must have the characteristic polynomial of the table's eigenvalues and multiplicities.
"""

from fractions import Fraction

import pytest
import sympy as sp

from derive.model.hessian_spectra import POINT_NAMES, aligned_norm, spectrum_table


def paper_risk(W: sp.Matrix, W_star: sp.Matrix) -> sp.Expr:
    """Population risk of the paper model for weights ``W`` (p, N) and ``W_star`` (k, N)."""
    (p, N), k = W.shape, W_star.shape[0]
    Q, R, T = W * W.T / N, W * W_star.T / N, W_star * W_star.T / N
    a, b = sp.Rational(1, p), sp.Rational(1, k)
    risk = sum(a**2 * (Q[i, i] * Q[j, j] + 2 * Q[i, j] ** 2) for i in range(p) for j in range(p)) / 2
    risk -= sum(a * b * (Q[i, i] * T[n, n] + 2 * R[i, n] ** 2) for i in range(p) for n in range(k))
    risk += sum(b**2 * (T[n, n] * T[m, m] + 2 * T[n, m] ** 2) for n in range(k) for m in range(k)) / 2
    return sp.expand(risk)


def point_weights(point: str, N: int, p: int, k: int, r: int) -> sp.Matrix:
    """The students at ``point`` for the teacher ``W* = sqrt(N) [e_1 .. e_k]`` (rows)."""
    W = sp.zeros(p, N)
    if point == "plateau":  # r students orthogonal to the teachers with Q_ii = p / (r + 2)
        for i in range(r):
            W[i, k + i] = sp.sqrt(sp.Rational(N * p, r + 2))
    elif point == "zero_error":  # W = sqrt(p/k) O W*, O = first k columns of the identity
        for n in range(k):
            W[n, n] = sp.sqrt(sp.Rational(N * p, k))
    elif point == "aligned":  # every student c w*_1
        for i in range(p):
            W[i, 0] = sp.sqrt(aligned_norm(sp.Integer(k)) * N)
    return W


def table_charpoly(point: str, N: int, p: int, k: int, r: int, lam: sp.Symbol) -> sp.Poly:
    sizes = [Fraction(n) for n in (N, p, k, r)]
    pairs = spectrum_table(point, *sizes, aligned_norm(Fraction(k)))
    polynomial = sp.Integer(1)
    for value, multiplicity in pairs:
        assert multiplicity.denominator == 1 and multiplicity >= 0, (point, value, multiplicity)
        polynomial *= (lam - sp.Rational(value.numerator, value.denominator)) ** int(multiplicity)
    return sp.Poly(polynomial, lam)


CASES = [("tabula_rasa", 0), ("plateau", 1), ("plateau", 2), ("plateau", 3), ("zero_error", 0), ("aligned", 0)]


@pytest.mark.parametrize("point, r", CASES, ids=[f"{point}-r{r}" for point, r in CASES])
def test_table_is_the_spectrum_of_the_exact_hessian_times_N(point, r):
    N, p, k = 5, 3, 2
    symbols = sp.Matrix(p, N, lambda i, j: sp.Symbol(f"w{i}_{j}"))
    W_star = sp.sqrt(N) * sp.eye(k, N)
    risk = paper_risk(symbols, W_star)
    weights = list(symbols)
    at_point = dict(zip(weights, point_weights(point, N, p, k, r)))
    gradient = [sp.simplify(sp.diff(risk, w).xreplace(at_point)) for w in weights]
    assert gradient == [0] * len(weights), "not a stationary point"
    n = len(weights)
    hessian = sp.Matrix(n, n, lambda a, b: sp.diff(risk, weights[a], weights[b]).xreplace(at_point))
    lam = sp.Symbol("lam")
    assert (N * hessian).charpoly(lam) == table_charpoly(point, N, p, k, r, lam)


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_aligned_norm_makes_the_aligned_students_stationary_along_their_norm(k):
    # every student c w*_1: eps(c) = ((k + 2)/k - 2 c**2 (k + 2)/k + 3 c**4) / 2 from the moments of one Gaussian
    c2 = sp.Symbol("c2")
    risk = ((k + 2) / sp.Integer(k) - 2 * c2 * (k + 2) / sp.Integer(k) + 3 * c2**2) / 2
    assert sp.diff(risk, c2).subs(c2, aligned_norm(sp.Integer(k))) == 0
    assert aligned_norm(Fraction(k)) == Fraction(k + 2, 3 * k)


@pytest.mark.parametrize("point", POINT_NAMES)
def test_multiplicities_sum_to_the_number_of_weights(point):
    N, p, k, r, c2 = sp.symbols("N p k r c2")
    total = sum(multiplicity for _, multiplicity in spectrum_table(point, N, p, k, r, c2))
    assert sp.expand(total - p * N) == 0


def test_an_unknown_point_is_named():
    with pytest.raises(ValueError, match=r"point must be one of .*got 'saddle'"):
        spectrum_table("saddle", 5, 3, 2, 1, 1)
