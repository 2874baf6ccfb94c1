"""Stage 1 of the pipeline: Gaussian moments by counting pair-count matrices."""

import itertools

import pytest
import sympy as sp

from derive.gauss.wick import expectation, moment, naive_moment, number_of_pair_count_matrices, pairing_counts


def symbolic_covariance(n):
    C = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"C{min(i, j)}{max(i, j)}"))
    return lambda a, b: C[a, b]


def test_single_variable_tenth_moment_is_one_term():
    Q, lam = sp.symbols("Q lam")
    assert expectation(lam**10, [lam], sp.Matrix([[Q]])) == 945 * Q**5
    assert number_of_pair_count_matrices((10,)) == 1


@pytest.mark.parametrize(
    "exponents",
    [e for e in itertools.product(range(4), repeat=3) if sum(e) % 2 == 0 and sum(e) <= 8]
    + [(2, 2, 2, 2), (3, 1, 2, 2)],
)
def test_counting_equals_naive_enumeration(exponents):
    cov = symbolic_covariance(len(exponents))
    assert sp.expand(moment(exponents, cov) - naive_moment(exponents, cov)) == 0


def test_odd_moments_vanish():
    assert pairing_counts((1, 2)) == ()
    assert moment((3,), lambda a, b: sp.Symbol("q")) == 0


def test_degree_twelve_four_variables_is_small():
    # the counting form has far fewer terms than the 10395 pairings
    assert number_of_pair_count_matrices((3, 3, 3, 3)) < 100
    assert sum(c for c, _ in pairing_counts((3, 3, 3, 3))) == 10395


def test_expectation_with_mapping_and_isserlis_four():
    x, y = sp.symbols("x y")
    a, b, c = sp.symbols("a b c")
    cov = {(x, x): a, (x, y): b, (y, y): c}
    assert sp.expand(expectation(x**2 * y**2, [x, y], cov) - (a * c + 2 * b**2)) == 0


def test_expectation_rejects_bad_covariance():
    x, y = sp.symbols("x y")
    with pytest.raises(ValueError, match="covariance must be 2 x 2"):
        expectation(x * y, [x, y], sp.Matrix([[1]]))
    with pytest.raises(ValueError, match="no entry"):
        expectation(x * y, [x, y], {(x, x): 1})
    with pytest.raises(ValueError, match="distinct"):
        expectation(x, [x, x], sp.eye(2))
