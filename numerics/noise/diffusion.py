"""The diffusion matrix of the overlaps: the covariance of one step's independent increments, packed.

One SGD step changes the overlaps by ``Q -> Q + q/N``, ``R -> R + r/N``
(:mod:`numerics.noise.fluctuations`). ``q`` is symmetric, so a step has
``D = p (p + 1) / 2 + p k`` independent increments, here the vector

    v = (q_jl for (j, l) in zip(*numpy.triu_indices(p)), then r_jr in row-major order),

and :func:`packed_covariance` returns its covariance matrix ``Sigma`` (D x D):
``Sigma[a, b] = QQ[j_a, l_a, j_b, l_b]`` on the ``q`` block, ``QR[j_a, l_a, m_b, s_b]``
and ``RR[j_a, r_a, m_b, s_b]`` on the others, with ``(QQ, QR, RR)`` of
:func:`numerics.noise.fluctuations.increment_covariance` (:func:`pack_covariance` does
exactly that packing). This is the ``Cov`` of the diffusion
``d<M, M> = Cov dalpha`` that :func:`numerics.simulators.sde.simulate_sde` integrates.

Evaluation
----------
The generated moment functions (``first_order_moments``, ``second_order_moments``)
write each moment tensor as a sum of outer products ``c X (x) Y`` of two matrices
(p x p, p x k, ...) or of a matrix and vectors, one ``einsum`` call per term (834 for
the paper model), and ``increment_covariance`` then makes some fifteen passes over
p**4 tensors. A simulator that needs ``Sigma`` at every step cannot pay that, so
:class:`PackedCovariance` runs the *same generated functions* with the ``einsum``
deferred: every term is recorded (coefficient, subscripts, operands) instead of
evaluated. Each term, under each index permutation ``increment_covariance`` applies
to it (the symmetrisations of ``q``: ``LL`` enters ``QQ`` four times, ``LE`` four
times, ``LN`` twice), and each product of drifts it subtracts, is an outer product
``X[i_0, i_pi] Y[i_o, i_o']`` with ``X`` on output axis 0 and one *partner* axis
``pi`` in (1, 2, 3), ``Y`` on the other two. Per block of ``Sigma`` (``QQ``, ``QR``,
``RR``) and partner the terms add up to

    sum_{x, y} M_xy X_x (x) Y_y,        M_xy = sum of the coefficients of the terms (X_x, Y_y),

over the distinct matrices ``X_x``, ``Y_y``. For matrices with many entries (p >= 4)
that is two batched BLAS products ``X^T (M Y)``; for a few entries (p = 2) a sum over
the (x, y) pairs entry-wise, with the replicas along contiguous rows
(:func:`_choose_pairs` picks by operation count). With partner 1 both are taken
straight on the packed indices (only the ``j <= l`` entries of ``X`` and ``Y``);
partners 2 and 3 give the full ``p**2 x p**2`` grid, from which the packed entries
are gathered. The coefficients ``M`` of every block and partner come from one sparse
(pairs x distinct coefficients) matrix, cached per eta, times the table of the
distinct coefficients.

The layout of the terms (which matrices, which coefficients, which pairing) is the
same at every call with the same shapes, because the generated code is
straight-line; it is analysed once per shape and reused, and re-verified against the
call's terms (subscripts, which operands and coefficients are the same objects) on
the first calls and every :data:`VERIFY_EVERY` calls. Per call the work is the
generated functions' own coefficient and matrix-product preamble, the recording (a
few Python operations per term), and about ten NumPy calls per block and partner.
Measured (one core, CPU time): 1.8 ms against 15-21 ms for ``increment_covariance``
plus packing at one point (p = 2 or 8), 8 ms against 33 ms for 300 points at
p = 2, 16 ms against 0.81 s for 100 points at p = 8, k = 1.

Safety: the deferred evaluation understands exactly the code the generator prints
(sums of ``_c4(c) * _einsum(...)`` over outer-product subscripts, with contracted
indices of size one). Anything else raises an internal error, and the first
evaluation for every model is compared with :func:`increment_covariance` at a
random point; on any mismatch or unsupported construct the evaluator falls back to
``increment_covariance`` (slow, with a :class:`RuntimeWarning`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FunctionType, ModuleType
from typing import Any

import numpy as np

from numerics.core.validation import check_overlaps, check_scalar
from numerics.noise.fluctuations import increment_covariance
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, fluctuation_module, resolve

#: Relative agreement with ``increment_covariance`` required by the first-use self-check.
SELF_CHECK_RTOL = 1e-9
#: A cached layout is re-verified against the call's terms on its first calls and every this many.
VERIFY_EVERY = 32


class _Unsupported(Exception):
    """The generated code did something the deferred evaluation does not model."""


# ----------------------------------------------------------------------------------------
# Deferred terms: what the generated code builds when its einsum is replaced
# ----------------------------------------------------------------------------------------


class _Deferred:
    """A deferred sum of outer-product terms (numpy defers its operators to these objects)."""

    __slots__ = ()
    # ndarray (op) _Deferred returns NotImplemented, so Python calls our reflected operators
    __array_ufunc__ = None

    def __add__(self, other: Any) -> _Deferred:
        return _Node(self, other if isinstance(other, _Deferred) else _as_deferred(other), 1.0)

    def __radd__(self, other: Any) -> _Deferred:
        return _Node(_as_deferred(other), self, 1.0)

    def __sub__(self, other: Any) -> _Deferred:
        return _Node(self, _as_deferred(other), -1.0)

    def __rsub__(self, other: Any) -> _Deferred:
        return _Node(_as_deferred(other), self, -1.0)

    def __neg__(self) -> _Deferred:
        return self.scaled(-1.0)

    def __mul__(self, other: Any) -> _Deferred:
        if isinstance(other, _Deferred):
            raise _Unsupported("product of two sums of outer products")
        return self.scaled(other)

    __rmul__ = __mul__

    def scaled(self, factor: Any) -> _Deferred:
        raise NotImplementedError


def _as_deferred(value: Any) -> _Deferred:
    if isinstance(value, _Deferred):
        return value
    # a plain number or array added to outer products: only an exact zero is understood
    if np.ndim(value) == 0 and float(value) == 0.0:
        return _Node(None, None, 0.0)
    raise _Unsupported("a plain array added to a sum of outer products")


class _Leaf(_Deferred):
    """One term ``coef * einsum(subscripts, *operands)``."""

    __slots__ = ("factors", "operands", "coef", "sign")

    def __init__(self, factors: tuple, operands: tuple, coef: Any = None, sign: float = 1.0) -> None:
        self.factors, self.operands, self.coef, self.sign = factors, operands, coef, sign

    def scaled(self, factor: Any) -> _Leaf:
        coef = factor if self.coef is None else self.coef * factor
        return _Leaf(self.factors, self.operands, coef, self.sign)

    def __neg__(self) -> _Leaf:
        return _Leaf(self.factors, self.operands, self.coef, -self.sign)


class _Node(_Deferred):
    """``left + sign * right`` (``left`` is None for an empty sum)."""

    __slots__ = ("left", "right", "sign")

    def __init__(self, left: _Deferred | None, right: _Deferred | None, sign: float) -> None:
        self.left, self.right, self.sign = left, right, sign

    def scaled(self, factor: Any) -> _Deferred:
        # rare (the generator scales terms, not sums): push the factor down to the leaves
        left = None if self.left is None else self.left.scaled(factor)
        right = None if self.right is None else self.right.scaled(factor)
        return _Node(left, right, self.sign)


@dataclass
class _Output:
    """A generated function's deferred output (what ``_full`` returns for a deferred sum)."""

    value: Any
    shape: tuple


@functools.cache
def _parse(subscripts: str) -> tuple[tuple[int, int], ...]:
    """Output axis of each letter of each operand (-1: a contracted letter, which must have size one)."""
    if "->" not in subscripts:
        raise _Unsupported(f"einsum without output: {subscripts!r}")
    inputs, output = subscripts.split("->")
    if not output.startswith("...") or len(output) != 7 or len(set(output[3:])) != 4:
        raise _Unsupported(f"einsum output is not four distinct axes: {subscripts!r}")
    out = output[3:]
    factors = []
    for term in inputs.split(","):
        if not term.startswith("...") or len(term) != 5:
            raise _Unsupported(f"einsum operand is not a batched matrix: {subscripts!r}")
        factors.append(tuple(out.index(c) if c in out else -1 for c in term[3:]))
    covered = sorted(axis for factor in factors for axis in factor if axis >= 0)
    if covered != [0, 1, 2, 3] or any(factor == (-1, -1) for factor in factors):
        raise _Unsupported(f"einsum is not an outer product: {subscripts!r}")
    return tuple(factors)


def _deferred_einsum(subscripts: str, *operands: np.ndarray) -> _Leaf:
    # the hot path: the operands' shapes are checked when a call's layout is analysed (_plan)
    factors = _parse(subscripts)
    if len(factors) != len(operands):
        raise _Unsupported("einsum operand count")
    return _Leaf(factors, operands)


class _Coefficient:
    """What the deferred ``_c4(c)`` returns: ``_c4(c) * einsum(...)`` becomes one leaf with coefficient ``c``."""

    __slots__ = ("value",)
    __array_ufunc__ = None

    def __init__(self, value: Any) -> None:
        self.value = value

    def __mul__(self, other: Any) -> Any:
        if type(other) is _Leaf and other.coef is None:
            return _Leaf(other.factors, other.operands, self.value, other.sign)
        if isinstance(other, _Deferred):
            return other.scaled(self.value)
        return _Coefficient(self.value * other)

    __rmul__ = __mul__


def _deferred_c4(coefficient: Any) -> _Coefficient:
    # the generated _c4 reshapes a batched (..., 1, 1) coefficient for (..., a, b, c, d) tensors;
    # the deferred terms keep the coefficient as it is
    return _Coefficient(coefficient)


def _deferred_functions(module: ModuleType) -> dict[str, Callable]:
    """``first_order_moments`` / ``second_order_moments`` of ``module`` recording instead of summing."""
    original_full = getattr(module, "_full", None)  # network-table modules return dense arrays
    original_fill = getattr(module, "_fill", None)

    # a deferred sum comes back wrapped; plain arrays (a moment that is identically zero, or a
    # _full in the coefficient preamble) are left to the original helpers
    def full(value: Any, shape: tuple) -> Any:
        if isinstance(value, _Deferred):
            return _Output(value, tuple(shape))
        return original_full(value, shape)

    def fill(value: Any, tail: tuple, Q: Any, R: Any, T: Any) -> Any:
        if isinstance(value, _Deferred):
            batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
            return _Output(value, batch + tuple(tail))
        return original_fill(value, tail, Q, R, T)

    # a copy of the module's globals with three helpers replaced; the module itself is untouched
    namespace = dict(module.__dict__)
    namespace.update(_einsum=_deferred_einsum, _c4=_deferred_c4, _full=full)
    if original_fill is not None:
        namespace["_fill"] = fill
    functions = {}
    for name in ("first_order_moments", "second_order_moments"):
        function = getattr(module, name)
        functions[name] = FunctionType(function.__code__, namespace, name, function.__defaults__,
                                       function.__closure__)
    return functions


def _flatten(root: _Deferred) -> list[_Leaf]:
    """The leaves of a deferred sum, signs folded in, in the order the generated code wrote them."""
    leaves: list[_Leaf] = []
    stack: list[tuple[Any, float]] = [(root, 1.0)]
    while stack:
        node, sign = stack.pop()
        if node is None:
            continue
        if isinstance(node, _Node):
            if node.sign != 0.0:
                stack.append((node.right, sign * node.sign))
            stack.append((node.left, sign))
        elif sign == 1.0:
            leaves.append(node)
        else:
            leaves.append(_Leaf(node.factors, node.operands, node.coef, node.sign * sign))
    return leaves


# ----------------------------------------------------------------------------------------
# Packing and the blocks of Sigma
# ----------------------------------------------------------------------------------------


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
class _Block:
    """A block of Sigma: output axes sizes, its row and column index pairs, where it goes."""

    dims: tuple[int, int, int, int]
    rows: tuple[np.ndarray, np.ndarray]
    cols: tuple[np.ndarray, np.ndarray]
    row_slice: slice
    col_slice: slice


def _blocks(p: int, k: int) -> dict[str, _Block]:
    iu = np.triu_indices(p)
    n_upper = iu[0].size
    every = (np.repeat(np.arange(p), k), np.tile(np.arange(k), p))
    upper, rest = slice(0, n_upper), slice(n_upper, n_upper + p * k)
    return {
        "QQ": _Block((p, p, p, p), iu, iu, upper, upper),
        "QR": _Block((p, p, p, k), iu, every, upper, rest),
        "RR": _Block((p, k, p, k), every, every, rest, rest),
    }


_ID = (0, 1, 2, 3)
_SWAP_FIRST = (1, 0, 2, 3)  # X[l, j, i, h]: the permutation maps old output axis t to new axis sigma[t]
_SWAP_LAST = (0, 1, 3, 2)
_SWAP_BOTH = (1, 0, 3, 2)
_SWAP_PAIRS = (2, 3, 0, 1)
_SWAP_PAIRS_FIRST = (3, 2, 0, 1)  # swap_pairs(swap_first(X))


def _contributions(second_order: bool) -> list[tuple[str, str, tuple, int, float]]:
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


_OUTER = _parse("...ab,...cd->...abcd")


@functools.cache
def _recipe(factors: tuple, sigma: tuple) -> tuple:
    """How a term with these factors, permuted by ``sigma``, reads as ``X (x) Y``.

    Returns ``(partner, x_spec, y_spec)``; a spec is ``("m", operand, transpose)`` for a
    matrix operand, or ``("o", (operand, slot), (operand, slot))`` for the outer product of
    two vectors (``slot``: the operand's axis, 0 or 1, that carries the output index).
    """
    placed = []  # (output axes, operand index, slots)
    for index, factor in enumerate(factors):
        axes = tuple(sigma[a] if a >= 0 else -1 for a in factor)
        placed.append((axes, index))
    where: dict[int, tuple[int, int, bool]] = {}  # output axis -> (operand, slot, is_matrix)
    for axes, index in placed:
        matrix = axes[0] >= 0 and axes[1] >= 0
        for slot, axis in enumerate(axes):
            if axis >= 0:
                where[axis] = (index, slot, matrix)

    def matrix_spec(first: int, second: int) -> tuple:
        index, slot, _ = where[first]
        return ("m", index, slot == 1)  # transpose when the first axis sits in the operand's columns

    def vector(axis: int) -> tuple[int, int]:
        index, slot, _ = where[axis]
        return (index, slot)

    first = where[0]
    if first[2]:
        partner = next(a for a in (1, 2, 3) if where[a][0] == first[0] and where[a][2])
    else:
        # axis 0 carries a vector: pair it with the axis whose factor is not a matrix on the other two
        matrices = {a for a in (1, 2, 3) if where[a][2]}
        partner = next(a for a in (1, 2, 3) if a not in matrices) if matrices else 1
    others = tuple(a for a in (1, 2, 3) if a != partner)
    x_spec = matrix_spec(0, partner) if first[2] else ("o", vector(0), vector(partner))
    if where[others[0]][2]:
        if where[others[0]][0] != where[others[1]][0]:
            raise _Unsupported("matrix factor across the pairing")
        y_spec = matrix_spec(others[0], others[1])
    else:
        y_spec = ("o", vector(others[0]), vector(others[1]))
    return partner, x_spec, y_spec


def _materialise(spec: tuple, operands: tuple, batch: tuple) -> np.ndarray:
    if spec[0] == "m":
        _, index, transpose = spec
        matrix = operands[index]
        matrix = np.swapaxes(matrix, -1, -2) if transpose else matrix
    else:
        (iu, su), (iv, sv) = spec[1], spec[2]
        u = operands[iu][..., :, 0] if su == 0 else operands[iu][..., 0, :]
        v = operands[iv][..., :, 0] if sv == 0 else operands[iv][..., 0, :]
        matrix = u[..., :, None] * v[..., None, :]
    return matrix if matrix.shape[:-2] == batch else np.broadcast_to(matrix, batch + matrix.shape[-2:])


@dataclass
class _ClassPlan:
    """The terms of one block of Sigma and one partner axis (module docstring)."""

    block: str
    partner: int
    x_keys: list  # the distinct X: (spec, distinct-operand indices), in order
    y_keys: list
    coef_index: np.ndarray  # per term, sorted by (x, y) pair: column of the coefficient table
    scale: np.ndarray  # per term: its sign
    power: np.ndarray  # per term: its power of eta
    starts: np.ndarray  # first term of every distinct (x, y) pair
    pair_x: np.ndarray  # X of every pair
    pair_y: np.ndarray
    pair_flat: np.ndarray  # x * n_y + y of every pair
    x_index: np.ndarray | None  # flat entries of X used (partner 1: the packed rows; None: all)
    y_index: np.ndarray | None
    grid_rows: np.ndarray | None  # partners 2, 3: the packed entries of the full grid
    grid_cols: np.ndarray | None
    use_pairs: bool  # sum over the (x, y) pairs directly rather than through the matrix M
    x_shape: tuple = ()  # (rows, columns) of every X of the class; its stack in the call's matrices
    y_shape: tuple = ()
    x_take: np.ndarray | None = None  # entry-wise classes: rows of the flat stack (pairs, entries used)
    y_take: np.ndarray | None = None
    x_ids: np.ndarray | None = None  # matrix classes: the X's places in the stack of their shape
    y_ids: np.ndarray | None = None


@dataclass
class _Plan:
    """Everything about a call that depends on the generated code and the shapes, not on the values."""

    classes: list
    dense: list  # (block, permutation, eta power, sign, output name) of plain-array outputs
    operand_slots: list  # (source, leaf, operand position) of the first use of every distinct operand
    coef_slots: list  # (source, leaf) of the first use of every distinct coefficient
    slot_pattern: np.ndarray  # per (leaf, operand) slot, all sources in order: first slot of its operand
    coef_pattern: np.ndarray  # per leaf: the first leaf with the same coefficient object (-1: none)
    factors: tuple  # every leaf's factor tuple (the parsed subscripts), in order
    # the weight of every (x, y) pair of every class is sum_terms sign eta**power coefficient:
    # one sparse (pairs x coefficients) matrix times the coefficient table
    term_scale: np.ndarray  # per term (classes in order, pairs in order): sign
    term_power: np.ndarray
    term_coef: np.ndarray  # column of the coefficient table
    pair_pointer: np.ndarray  # CSR row pointer: the terms of pair i are pair_pointer[i]:pair_pointer[i + 1]
    pair_offsets: list  # first row of every class in the stacked pair weights
    stacks: dict = field(default_factory=dict)  # matrix shape -> the distinct matrices of that shape, in order
    entrywise_shapes: set = field(default_factory=set)  # shapes some entry-wise (use_pairs) class reads
    weights_for: dict = field(default_factory=dict)  # eta -> the sparse matrix (the last few)
    calls: int = 0  # evaluations with this plan (the layout is re-verified every VERIFY_EVERY calls)


#: Cost of an entry-wise multiply-add (einsum over the pairs) in units of a BLAS one (measured:
#: the p = 2 blocks are fastest entry-wise, p >= 4 through M).
ENTRYWISE_COST = 3.0


def _choose_pairs(n_pairs: int, n_x: int, n_y: int, a: int, b: int) -> bool:
    """Whether summing over the (x, y) pairs entry-wise is cheaper than ``X^T (M Y)`` by BLAS."""
    pairs = ENTRYWISE_COST * n_pairs * a * b
    through_m = n_x * n_y * (2 + b) + a * n_x * b
    return pairs <= through_m


# ----------------------------------------------------------------------------------------
# The evaluator
# ----------------------------------------------------------------------------------------


class PackedCovariance:
    """Fast ``Sigma`` (see the module docstring) for one model; call with batched overlaps.

    Parameters
    ----------
    model : derive.Model or None
        ``None`` is the paper model. Activations of degree <= 4 (as
        :func:`increment_covariance`); other models raise ``ValueError``. Above degree 2
        the moments come from network tables as dense arrays, which the packing uses as
        they are.
    """

    def __init__(self, model: Any = None) -> None:
        self.model = model
        self.module = fluctuation_module(model)  # raises ValueError for unsupported models
        self.functions = _deferred_functions(self.module)
        self._plans: dict[tuple, _Plan] = {}
        self.checked: set[tuple[int, int]] = set()
        self.fallback = False

    def __call__(
        self,
        Q: np.ndarray,
        R: np.ndarray,
        T: np.ndarray,
        eta: float,
        resolved: ResolvedModel,
        second_order: bool = True,
    ) -> np.ndarray:
        """``Sigma`` at unchecked overlaps.

        Parameters
        ----------
        Q : array, shape (B, p, p)
        R : array, shape (B, p, k)
        T : array, shape (k, k) or (B, k, k)
        eta : float
        resolved : ResolvedModel
            ``resolve(model)`` (its Delta and generated drift terms are used).
        second_order : bool

        Returns
        -------
        Sigma : array, shape (B, D, D)
        """
        p, k = R.shape[-2:]
        if (p, k) not in self.checked:
            self._self_check(p, k, resolved)
        if self.fallback:
            return self.reference(Q, R, T, eta, resolved, second_order)
        try:
            return self._evaluate(Q, R, T, eta, resolved, second_order)
        except _Unsupported as error:
            self._give_up(str(error))
            return self.reference(Q, R, T, eta, resolved, second_order)

    def reference(self, Q, R, T, eta, resolved, second_order) -> np.ndarray:
        """``Sigma`` through :func:`increment_covariance` (slow; the definition)."""
        return pack_covariance(*increment_covariance(Q, R, T, eta, model=self.model, second_order=second_order))

    def _give_up(self, reason: str) -> None:
        self.fallback = True
        warnings.warn(
            f"packed increment covariance: the generated module's layout is not understood ({reason}); "
            "using increment_covariance (correct but slower)",
            RuntimeWarning,
            stacklevel=3,
        )

    def _self_check(self, p: int, k: int, resolved: ResolvedModel) -> None:
        # the first evaluation for these widths is compared with increment_covariance at a random point
        self.checked.add((p, k))
        if self.fallback:
            return
        rng = np.random.default_rng(20260403)
        factor = rng.normal(size=(2, p + k, p + k)) / np.sqrt(p + k)
        C = factor @ np.swapaxes(factor, 1, 2) + 0.1 * np.eye(p + k)
        Q, R, T = C[:, :p, :p], C[:, :p, p:], C[:, p:, p:]
        for second_order in (True, False):
            want = self.reference(Q, R, T, 0.37, resolved, second_order)
            try:
                got = self._evaluate(Q, R, T, 0.37, resolved, second_order)
            except Exception as error:  # noqa: BLE001 - any failure of the deferred path means: do not use it
                self._give_up(f"{type(error).__name__}: {error}")
                return
            scale = max(1.0, float(np.max(np.abs(want))))
            if not np.max(np.abs(got - want)) <= SELF_CHECK_RTOL * scale:
                self._give_up(f"self-check off by {np.max(np.abs(got - want)) / scale:.2g}")
                return

    # ------------------------------------------------------------------------------------

    def _evaluate(self, Q, R, T, eta, resolved, second_order) -> np.ndarray:
        p, k = R.shape[-2:]
        batch = Q.shape[:-2]
        if len(batch) != 1:
            raise ValueError("PackedCovariance expects one batch axis")
        nb = batch[0]
        delta = resolved.noise_variance
        outputs = dict(zip(("LL", "LN", "NN"), self.functions["first_order_moments"](Q, R, T, delta)))
        drift_Q, drift_R, diffusion_Q, noise_Q = resolved.module.all_terms(Q, R, T)
        drifts = {"dQ*dQ": (drift_Q, drift_Q), "dQ*dR": (drift_Q, drift_R), "dR*dR": (drift_R, drift_R)}
        if second_order:
            outputs.update(zip(("LE", "EN", "EE"), self.functions["second_order_moments"](Q, R, T, delta)))
            mean_B = diffusion_Q + delta * noise_Q if delta else diffusion_Q
            drifts.update({"dQ*B": (drift_Q, mean_B), "B*dQ": (mean_B, drift_Q), "B*B": (mean_B, mean_B),
                           "B*dR": (mean_B, drift_R)})
        dense: dict[str, np.ndarray] = {}
        sources: dict[str, list[_Leaf]] = {}
        for name, value in outputs.items():
            if isinstance(value, _Output):
                sources[name] = _flatten(value.value)
            elif isinstance(value, _Deferred):
                raise _Unsupported("a moment returned without _full")
            else:
                dense[name] = np.asarray(value, dtype=float)
                sources[name] = []
        for name, (left, right) in drifts.items():
            sources[name] = [_Leaf(_OUTER, (left, right))]

        key = (p, k, nb, np.ndim(T), second_order, tuple((n, len(v), n in dense) for n, v in sources.items()))
        plan = self._plans.get(key)
        leaves = [leaf for group in sources.values() for leaf in group]
        if plan is None or (plan.calls % VERIFY_EVERY == 0 or plan.calls < 4) and not _same_layout(plan, leaves):
            plan = self._plan(p, k, sources, set(dense), second_order)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        plan.calls += 1
        operands = [sources[name][i].operands[j] for name, i, j in plan.operand_slots]
        coefs = [sources[name][i].coef for name, i in plan.coef_slots]

        # coefficient table: row 0 ones, then every distinct coefficient broadcast to the batch
        table = np.empty((len(coefs) + 1, nb))
        table[0] = 1.0
        for row, value in enumerate(coefs, start=1):
            table[row] = np.reshape(value, -1)
        blocks = _blocks(p, k)
        D = packed_size(p, k)
        Sigma = np.zeros((nb, D, D))
        # every distinct matrix once, stacked per shape: first[replica, matrix, entry], and for the
        # classes summed entry-wise also with the replicas along contiguous rows: flat[(matrix, entry), replica]
        first, flat = {}, {}
        for shape, keys in plan.stacks.items():
            mats = [_materialise(spec, tuple(operands[i] for i in indices), batch) for spec, indices in keys]
            first[shape] = np.stack(mats, axis=1).reshape(nb, len(keys), -1)
            if shape in plan.entrywise_shapes:
                flat[shape] = np.ascontiguousarray(first[shape].reshape(nb, -1).T)

        restricted: dict[tuple, np.ndarray] = {}

        def entries(shape: tuple, index: np.ndarray | None) -> np.ndarray:
            if index is None:
                return first[shape]
            key = (shape, index.tobytes())
            if key not in restricted:
                restricted[key] = np.take(first[shape], index, axis=2)
            return restricted[key]

        all_weights = _pair_weights(plan, eta) @ table  # (pairs of all classes, B)
        for cp, offset in zip(plan.classes, plan.pair_offsets):
            block = blocks[cp.block]
            weights = all_weights[offset : offset + cp.pair_flat.size]
            if cp.use_pairs:
                # few entries per matrix: sum_pairs w X (x) Y entry-wise, the batch along contiguous rows
                X = flat[cp.x_shape][cp.x_take]  # (pairs, entries, B)
                Y = flat[cp.y_shape][cp.y_take]
                X *= weights[:, None, :]
                part = np.moveaxis(np.einsum("pan,pbn->abn", X, Y), 2, 0)
            else:
                # many entries: two batched BLAS products through the coefficient matrix M (n_x x n_y)
                # whole matrices gathered (contiguous rows) from the stack of their shape, restricted
                # to the packed entries first where partner 1 needs only those
                X = np.take(entries(cp.x_shape, cp.x_index), cp.x_ids, axis=1)  # (B, n_x, entries)
                Y = np.take(entries(cp.y_shape, cp.y_index), cp.y_ids, axis=1)
                n_x, n_y = len(cp.x_keys), len(cp.y_keys)
                M = np.zeros((nb, n_x * n_y))
                M[:, cp.pair_flat] = weights.T
                M = M.reshape(nb, n_x, n_y)
                part = np.swapaxes(X, 1, 2) @ (M @ Y)
            if cp.grid_rows is not None:
                part = part[:, cp.grid_rows, cp.grid_cols]
            Sigma[:, block.row_slice, block.col_slice] += part
        for block_name, sigma, power, sign, name in plan.dense:
            block = blocks[block_name]
            tensor = np.broadcast_to(dense[name], batch + block.dims)
            Sigma[:, block.row_slice, block.col_slice] += (sign * eta**power) * _gather_dense(tensor, sigma, block)
        n_upper = p * (p + 1) // 2
        Sigma[:, n_upper:, :n_upper] = np.swapaxes(Sigma[:, :n_upper, n_upper:], 1, 2)
        return Sigma

    def _plan(self, p: int, k: int, sources: dict, dense_names: set, second_order: bool) -> _Plan:
        """Analyse a call's terms: distinct operands and coefficients, the plan of every block and partner."""
        operand_ids: dict[int, int] = {}
        operand_slots: list = []
        coef_ids: dict[int, int] = {}
        coef_slots: list = []
        first_slot: list[int] = []  # per distinct operand: its first (leaf, operand) slot
        slot_pattern: list[int] = []
        coef_first: dict[int, int] = {}
        coef_pattern: list[int] = []
        factors_all: list = []
        per_leaf: dict[str, list[tuple]] = {}
        for name, leaves in sources.items():
            entries = []
            for i, leaf in enumerate(leaves):
                indices = []
                for j, operand in enumerate(leaf.operands):
                    shape = np.shape(operand)
                    if len(shape) < 2 or any(axis < 0 and shape[slot - 2] != 1
                                             for slot, axis in enumerate(leaf.factors[j])):
                        raise _Unsupported("einsum operand that is not a matrix or a size-one vector")
                    index = operand_ids.get(id(operand))
                    if index is None:
                        index = operand_ids[id(operand)] = len(operand_slots)
                        operand_slots.append((name, i, j))
                        first_slot.append(len(slot_pattern))
                    indices.append(index)
                    slot_pattern.append(first_slot[index])
                if leaf.coef is None:
                    coef = 0
                    coef_pattern.append(-1)
                else:
                    if np.size(leaf.coef) > 1 and np.shape(leaf.coef)[-2:] != (1, 1):
                        raise _Unsupported("coefficient that is not a (batched) scalar")
                    coef = coef_ids.get(id(leaf.coef))
                    if coef is None:
                        coef = coef_ids[id(leaf.coef)] = len(coef_slots) + 1  # column 0 holds ones
                        coef_slots.append((name, i))
                        coef_first[coef] = len(factors_all)
                    coef_pattern.append(coef_first[coef])
                factors_all.append(leaf.factors)
                entries.append((leaf.factors, tuple(indices), coef, leaf.sign))
            per_leaf[name] = entries

        blocks = _blocks(p, k)
        groups: dict[tuple[str, int], dict] = {}
        dense = []
        for block_name, source, sigma, power, sign in _contributions(second_order):
            if source in dense_names:
                dense.append((block_name, sigma, power, sign, source))
                continue
            for factors, indices, coef, leaf_sign in per_leaf[source]:
                partner, x_spec, y_spec = _recipe(factors, sigma)
                group = groups.setdefault((block_name, partner), {"x": {}, "y": {}, "terms": []})
                ix = group["x"].setdefault(_spec_key(x_spec, indices), len(group["x"]))
                iy = group["y"].setdefault(_spec_key(y_spec, indices), len(group["y"]))
                group["terms"].append((ix, iy, coef, leaf_sign * sign, power))
        classes = []
        for (block_name, partner), group in groups.items():
            block = blocks[block_name]
            n_x, n_y = len(group["x"]), len(group["y"])
            terms = sorted(group["terms"], key=lambda t: t[0] * n_y + t[1])
            flat = np.array([t[0] * n_y + t[1] for t in terms], dtype=np.intp)
            starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
            pair_flat = flat[starts]
            d = block.dims
            r0, r1 = block.rows
            c2, c3 = block.cols
            grid_rows = grid_cols = x_index = y_index = None
            if partner == 1:
                x_index, y_index = r0 * d[1] + r1, c2 * d[3] + c3
                a, b = x_index.size, y_index.size
                # all entries in order (an r block): no gather
                x_index = None if np.array_equal(x_index, np.arange(d[0] * d[1])) else x_index
                y_index = None if np.array_equal(y_index, np.arange(d[2] * d[3])) else y_index
            elif partner == 2:
                grid_rows = r0[:, None] * d[2] + c2[None, :]
                grid_cols = r1[:, None] * d[3] + c3[None, :]
                a, b = d[0] * d[2], d[1] * d[3]
            else:
                grid_rows = r0[:, None] * d[3] + c3[None, :]
                grid_cols = r1[:, None] * d[2] + c2[None, :]
                a, b = d[0] * d[3], d[1] * d[2]
            classes.append(_ClassPlan(
                block=block_name,
                partner=partner,
                x_keys=list(group["x"]),
                y_keys=list(group["y"]),
                coef_index=np.array([t[2] for t in terms], dtype=np.intp),
                scale=np.array([t[3] for t in terms], dtype=float),
                power=np.array([t[4] for t in terms], dtype=float),
                starts=starts,
                pair_x=pair_flat // n_y,
                pair_y=pair_flat % n_y,
                pair_flat=pair_flat,
                x_index=x_index,
                y_index=y_index,
                grid_rows=grid_rows,
                grid_cols=grid_cols,
                use_pairs=_choose_pairs(starts.size, n_x, n_y, a, b),
            ))
        offsets = np.cumsum([0] + [cp.pair_flat.size for cp in classes])
        term_offsets = np.cumsum([0] + [cp.coef_index.size for cp in classes])
        pointer = np.concatenate([cp.starts + start for cp, start in zip(classes, term_offsets)]
                                 + [term_offsets[-1:]])
        # the distinct matrices of all classes, grouped by shape, and each class's rows of their stacks
        shapes: dict[int, tuple[int, int]] = {}
        for index, (name, i, j) in enumerate(operand_slots):
            shapes[index] = tuple(np.shape(sources[name][i].operands[j])[-2:])
        stacks: dict[tuple, dict] = {}

        def place(keys: list) -> tuple[tuple, np.ndarray]:
            key_shapes = {_key_shape(key, shapes) for key in keys}
            if len(key_shapes) != 1:
                raise _Unsupported("matrices of different shapes in one class")
            shape = key_shapes.pop()
            registry = stacks.setdefault(shape, {})
            return shape, np.array([registry.setdefault(key, len(registry)) for key in keys], dtype=np.intp)

        def rows(shape: tuple, ids: np.ndarray, index: np.ndarray | None) -> np.ndarray:
            entries = np.arange(shape[0] * shape[1]) if index is None else index
            return ids[:, None] * (shape[0] * shape[1]) + entries[None, :]

        for cp in classes:
            cp.x_shape, cp.x_ids = place(cp.x_keys)
            cp.y_shape, cp.y_ids = place(cp.y_keys)
            if cp.use_pairs:
                cp.x_take = rows(cp.x_shape, cp.x_ids[cp.pair_x], cp.x_index)
                cp.y_take = rows(cp.y_shape, cp.y_ids[cp.pair_y], cp.y_index)
        return _Plan(classes, dense, operand_slots, coef_slots, np.array(slot_pattern, dtype=np.intp),
                     np.array(coef_pattern, dtype=np.intp), tuple(factors_all),
                     term_scale=np.concatenate([cp.scale for cp in classes]),
                     term_power=np.concatenate([cp.power for cp in classes]),
                     term_coef=np.concatenate([cp.coef_index for cp in classes]),
                     pair_pointer=pointer.astype(np.intp),
                     pair_offsets=[int(o) for o in offsets[:-1]],
                     stacks={shape: list(registry) for shape, registry in stacks.items()},
                     entrywise_shapes={shape for cp in classes if cp.use_pairs for shape in (cp.x_shape, cp.y_shape)})


def _pair_weights(plan: _Plan, eta: float) -> Any:
    """The sparse matrix taking the coefficient table to the weights of every (x, y) pair (cached per eta)."""
    matrix = plan.weights_for.get(eta)
    if matrix is None:
        from scipy.sparse import csr_matrix

        data = plan.term_scale * eta**plan.term_power
        matrix = csr_matrix((data, plan.term_coef, plan.pair_pointer),
                            shape=(plan.pair_pointer.size - 1, len(plan.coef_slots) + 1))
        if len(plan.weights_for) > 8:
            plan.weights_for.clear()
        plan.weights_for[eta] = matrix
    return matrix


def _same_layout(plan: _Plan, leaves: list[_Leaf]) -> bool:
    """Whether a call's terms have the analysed layout: same subscripts, same sharing of operands and coefficients.

    The generated code is straight-line, so this holds at every call with the same
    shapes; checking it costs two passes over the object ids.
    """
    if len(leaves) != len(plan.factors) or any(a.factors is not b for a, b in zip(leaves, plan.factors)):
        return False
    ids = np.fromiter((id(o) for leaf in leaves for o in leaf.operands), dtype=np.int64)
    if ids.size != plan.slot_pattern.size or not np.array_equal(ids, ids[plan.slot_pattern]):
        return False
    coef_ids = np.fromiter((0 if leaf.coef is None else id(leaf.coef) for leaf in leaves), dtype=np.int64,
                           count=len(leaves))
    has = plan.coef_pattern >= 0
    return bool(np.array_equal(coef_ids != 0, has)) and bool(
        np.array_equal(coef_ids[has], coef_ids[plan.coef_pattern[has]]))


def _key_shape(key: tuple, shapes: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(rows, columns) of the matrix a key materialises, from the shapes of the operands."""
    spec, indices = key
    if spec[0] == "m":
        rows, cols = shapes[indices[0]]
        return (cols, rows) if spec[2] else (rows, cols)
    (_, su), (_, sv) = spec[1], spec[2]
    return (shapes[indices[0]][su], shapes[indices[1]][sv])


def _spec_key(spec: tuple, indices: tuple) -> tuple:
    """A hashable key of a matrix spec in terms of the call's distinct operands: (spec, operand indices)."""
    if spec[0] == "m":
        # re-index the operand to 0 and keep the global operand index separately
        return (("m", 0, spec[2]), (indices[spec[1]],))
    (iu, su), (iv, sv) = spec[1], spec[2]
    return (("o", (0, su), (1, sv)), (indices[iu], indices[iv]))


def _gather_dense(dense: np.ndarray, sigma: tuple, block: _Block) -> np.ndarray:
    # new[n0, n1, n2, n3] = old[n_sigma0, n_sigma1, n_sigma2, n_sigma3] on the block's rows and columns
    r0, r1 = block.rows
    c2, c3 = block.cols
    new = [r0[:, None], r1[:, None], c2[None, :], c3[None, :]]
    index = tuple(np.broadcast_to(new[sigma[t]], (r0.size, c2.size)) for t in range(4))
    return dense[(slice(None),) + index]


EVALUATORS: dict[str, PackedCovariance] = {}


def packed_evaluator(model: Any = None) -> PackedCovariance:
    """The (cached) :class:`PackedCovariance` of ``model``.

    Keyed by the generated code and the label-noise variance: the evaluator's reference
    path (:func:`increment_covariance` with its model) must see the caller's ``Delta``.
    """
    key = "paper" if model is None else (model.codegen_hash(), float(model.noise_variance))
    evaluator = EVALUATORS.get(key)
    if evaluator is None:
        evaluator = EVALUATORS[key] = PackedCovariance(model)
    return evaluator


def packed_covariance(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    eta: float | None = None,
    settings: RunSettings | None = None,
    **setting_overrides: Any,
) -> np.ndarray:
    """Covariance matrix ``Sigma`` of one step's packed increments ``v = (q_jl (j <= l), r_jr)``.

    The same numbers as ``pack_covariance(*increment_covariance(...))``, evaluated
    fast (module docstring).

    Parameters
    ----------
    Q : array, shape (..., p, p)
    R : array, shape (..., p, k)
    T : array, shape (..., k, k)
    eta : float
        Learning rate (>= 0); default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics; its entries, or the same names as keywords (below), override the defaults.
        Single-sample scalar readouts only: ``batch_size``, ``a``, ``b`` and ``eta_a`` go to
        :func:`numerics.increment_covariance` (``ValueError`` here).
    model : derive.Model, optional
        ``None`` is the paper model; activations of degree <= 4.
    second_order : bool
        Keep the ``eta**2 E_j E_l`` part of ``q``.

    Returns
    -------
    Sigma : array, shape (..., D, D)
        ``D = p (p + 1) / 2 + p k``; symmetric positive semi-definite.
    """
    values = RunSettings.values(settings, setting_overrides, "packed_covariance")
    eta, model, second_order = (values[name] if name != "eta" or eta is None else eta
                                for name in ("eta", "model", "second_order"))
    if values["batch_size"] != 1 or values["a"] is not None or values["b"] is not None or values["eta_a"]:
        raise ValueError("packed_covariance evaluates single-sample scalar readouts; for batch_size, a, b and eta_a "
                         "use numerics.increment_covariance")
    Q, R, T = check_overlaps(Q, R, T)
    eta = check_scalar(eta, "eta", nonnegative=True)
    p, k = R.shape[-2:]
    resolved = resolve(model, sizes=(p, k))
    batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    flat = (int(np.prod(batch, dtype=int)),)
    Qb = np.broadcast_to(Q, batch + (p, p)).reshape(flat + (p, p))
    Rb = np.broadcast_to(R, batch + (p, k)).reshape(flat + (p, k))
    Tb = T if T.ndim == 2 else np.broadcast_to(T, batch + (k, k)).reshape(flat + (k, k))
    with np.errstate(over="raise", invalid="raise"):
        try:
            Sigma = packed_evaluator(model)(Qb, Rb, Tb, eta, resolved, second_order)
        except FloatingPointError:
            raise ValueError("packed_covariance: the overlaps are too large, the covariance overflows") from None
    D = packed_size(p, k)
    return Sigma.reshape(batch + (D, D))


__all__ = ["PackedCovariance", "pack_covariance", "packed_covariance", "packed_evaluator", "packed_size"]
