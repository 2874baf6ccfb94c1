"""The kernel printer (derive/codegen/kernel_printer.py) and the joint cse of a kernel program
(derive/codegen/tuples.py): the printed statements evaluate to the program's value on broadcast
block entries, operands over few slots are combined first, and the joint form is never longer."""

import numpy as np
import pytest
import sympy as sp

from derive.codegen.kernel_printer import KernelPrinter
from derive.codegen.tuples import kernel_programs, kernel_statements
from derive.gauss.kernels import covariance_symbols
from derive.model.model import SCM


def _run(statements, result, arguments):
    """Print the statements and evaluate them in a namespace holding the block entries."""
    printer = KernelPrinter()
    namespace = {"numpy": np, **arguments}
    for symbol, expr in statements:
        exec(printer.statement(symbol, expr), namespace)  # noqa: S102 - the printed kernel body
    return eval(printer.doprint(result), namespace)  # noqa: S307


@pytest.fixture(scope="module")
def scm_programs():
    return kernel_programs(SCM)


def _entries(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Entries ``c<a><b>`` on a grid of 3 units per slot, slot ``a`` on grid axis ``a`` (broadcast shapes).

    Unit ``i`` of slot ``a`` is row ``3 a + i`` of one PSD matrix, so the block at every grid
    point is a principal submatrix of it (PSD, as the kernels' inputs are).
    """
    factor = rng.normal(size=(3 * n, 3 * n + 2)) / np.sqrt(3 * n + 2)
    G = factor @ factor.T
    entries = {}
    for a in range(n):
        for b in range(a, n):
            shape = [1] * n
            shape[a] = shape[b] = 3
            if a == b:
                value = np.diagonal(G)[3 * a : 3 * a + 3]
            else:
                value = G[3 * a : 3 * a + 3, 3 * b : 3 * b + 3]
            entries[f"c{a}{b}"] = value.reshape(shape)
    return entries


@pytest.mark.parametrize("name", ["noise", "drift_student", "diffusion_ss", "hessian_4_s"])
def test_printed_kernels_equal_the_program_on_broadcast_entries(scm_programs, name):
    program = scm_programs[name]
    n = 1 + max(int(s.name[2]) for s in program.inline().free_symbols)
    entries = _entries(n, np.random.default_rng(0))
    printed = np.broadcast_to(_run(*kernel_statements(program), entries), (3,) * n)
    C = covariance_symbols(n)
    function = sp.lambdify([C[a][b] for a in range(n) for b in range(a, n)], program.inline(), "numpy")
    full = [np.broadcast_to(entries[f"c{a}{b}"], (3,) * n) for a in range(n) for b in range(a, n)]
    expected = np.broadcast_to(function(*full), (3,) * n)
    np.testing.assert_allclose(printed, expected, rtol=1e-12, atol=1e-15)


def test_small_operands_are_combined_first():
    c01, c02, c22 = sp.symbols("c01 c02 c22", real=True)
    printer = KernelPrinter()
    # c22 + 1 (slot 2 alone) is added before the grid-wide product; the constant multiplies the smaller factor
    assert printer.doprint(c01 * c02 + c22 + 1).startswith("1 + c22")
    assert printer.doprint(3 * c01 * c02 * c22) == "3 * c22 * c02 * c01"
    # a quotient is printed as a division, a difference as a subtraction (no negated leading term)
    assert printer.doprint(c01 / c02) == "c01 / c02"
    assert printer.doprint(-c01 * c02 + c22) == "c22 - c01 * c02"


def test_the_joint_cse_is_never_longer(scm_programs):
    for name in ("diffusion_ss", "drift_student", "hessian_2_s"):
        program = scm_programs[name]
        statements, result = kernel_statements(program)
        joint = sp.count_ops([e for _, e in statements] + [result])
        stepwise = sp.count_ops([e for _, e in program.assignments] + [program.result])
        assert joint <= stepwise
    statements, result = kernel_statements(scm_programs["diffusion_ss"])
    assert sp.count_ops([e for _, e in statements] + [result]) <= 54  # 67 printed step by step
