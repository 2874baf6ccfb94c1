"""Running the generated fluctuation moments with their ``einsum`` deferred: every term recorded, none summed.

The generated moment functions (``first_order_moments``, ``second_order_moments`` of a
``<model>_fluctuations`` module) write each moment tensor as a sum of
``_c4(c) * _einsum(subscripts, X, Y)`` outer products. :func:`deferred_functions` runs the
same code objects in a namespace where ``_einsum``, ``_c4`` and ``_full`` record instead:
each term becomes a :class:`Leaf` (coefficient, parsed subscripts, operands), sums become
:class:`Node` trees, and :func:`flatten_terms` lists the leaves in the order the code wrote
them. Anything else the code does raises :class:`Unsupported`, and the caller
(:class:`numerics.noise.diffusion.PackedCovariance`) falls back to the plain evaluation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any

import numpy as np


class Unsupported(Exception):
    """The generated code did something the deferred evaluation does not model."""



class Deferred:
    """A deferred sum of outer-product terms (numpy defers its operators to these objects)."""

    __slots__ = ()
    # ndarray (op) Deferred returns NotImplemented, so Python calls our reflected operators
    __array_ufunc__ = None

    def __add__(self, other: Any) -> Deferred:
        return Node(self, other if isinstance(other, Deferred) else _as_deferred(other), 1.0)

    def __radd__(self, other: Any) -> Deferred:
        return Node(_as_deferred(other), self, 1.0)

    def __sub__(self, other: Any) -> Deferred:
        return Node(self, _as_deferred(other), -1.0)

    def __rsub__(self, other: Any) -> Deferred:
        return Node(_as_deferred(other), self, -1.0)

    def __neg__(self) -> Deferred:
        return self.scaled(-1.0)

    def __mul__(self, other: Any) -> Deferred:
        if isinstance(other, Deferred):
            raise Unsupported("product of two sums of outer products")
        return self.scaled(other)

    __rmul__ = __mul__

    def scaled(self, factor: Any) -> Deferred:
        raise NotImplementedError


def _as_deferred(value: Any) -> Deferred:
    if isinstance(value, Deferred):
        return value
    # a plain number or array added to outer products: only an exact zero is understood
    if np.ndim(value) == 0 and float(value) == 0.0:
        return Node(None, None, 0.0)
    raise Unsupported("a plain array added to a sum of outer products")


class Leaf(Deferred):
    """One term ``coef * einsum(subscripts, *operands)``."""

    __slots__ = ("factors", "operands", "coef", "sign")

    def __init__(self, factors: tuple, operands: tuple, coef: Any = None, sign: float = 1.0) -> None:
        self.factors, self.operands, self.coef, self.sign = factors, operands, coef, sign

    def scaled(self, factor: Any) -> Leaf:
        coef = factor if self.coef is None else self.coef * factor
        return Leaf(self.factors, self.operands, coef, self.sign)

    def __neg__(self) -> Leaf:
        return Leaf(self.factors, self.operands, self.coef, -self.sign)


class Node(Deferred):
    """``left + sign * right`` (``left`` is None for an empty sum)."""

    __slots__ = ("left", "right", "sign")

    def __init__(self, left: Deferred | None, right: Deferred | None, sign: float) -> None:
        self.left, self.right, self.sign = left, right, sign

    def scaled(self, factor: Any) -> Deferred:
        # rare (the generator scales terms, not sums): push the factor down to the leaves
        left = None if self.left is None else self.left.scaled(factor)
        right = None if self.right is None else self.right.scaled(factor)
        return Node(left, right, self.sign)


@dataclass
class Output:
    """A generated function's deferred output (what ``_full`` returns for a deferred sum)."""

    value: Any
    shape: tuple


@functools.cache
def parse_subscripts(subscripts: str) -> tuple[tuple[int, int], ...]:
    """Output axis of each letter of each operand (-1: a contracted letter, which must have size one)."""
    if "->" not in subscripts:
        raise Unsupported(f"einsum without output: {subscripts!r}")
    inputs, output = subscripts.split("->")
    if not output.startswith("...") or len(output) != 7 or len(set(output[3:])) != 4:
        raise Unsupported(f"einsum output is not four distinct axes: {subscripts!r}")
    out = output[3:]
    factors = []
    for term in inputs.split(","):
        if not term.startswith("...") or len(term) != 5:
            raise Unsupported(f"einsum operand is not a batched matrix: {subscripts!r}")
        factors.append(tuple(out.index(c) if c in out else -1 for c in term[3:]))
    covered = sorted(axis for factor in factors for axis in factor if axis >= 0)
    if covered != [0, 1, 2, 3] or any(factor == (-1, -1) for factor in factors):
        raise Unsupported(f"einsum is not an outer product: {subscripts!r}")
    return tuple(factors)


def deferred_einsum(subscripts: str, *operands: np.ndarray) -> Leaf:
    # the hot path: the operands' shapes are checked when a call's layout is analysed (build_plan)
    factors = parse_subscripts(subscripts)
    if len(factors) != len(operands):
        raise Unsupported("einsum operand count")
    return Leaf(factors, operands)


class Coefficient:
    """What the deferred ``_c4(c)`` returns: ``_c4(c) * einsum(...)`` becomes one leaf with coefficient ``c``."""

    __slots__ = ("value",)
    __array_ufunc__ = None

    def __init__(self, value: Any) -> None:
        self.value = value

    def __mul__(self, other: Any) -> Any:
        if type(other) is Leaf and other.coef is None:
            return Leaf(other.factors, other.operands, self.value, other.sign)
        if isinstance(other, Deferred):
            return other.scaled(self.value)
        return Coefficient(self.value * other)

    __rmul__ = __mul__


def deferred_c4(coefficient: Any) -> Coefficient:
    # the generated _c4 reshapes a batched (..., 1, 1) coefficient for (..., a, b, c, d) tensors;
    # the deferred terms keep the coefficient as it is
    return Coefficient(coefficient)


def deferred_functions(module: ModuleType) -> dict[str, Callable]:
    """``first_order_moments`` / ``second_order_moments`` of ``module`` recording instead of summing."""
    original_full = getattr(module, "_full", None)  # network-table modules return dense arrays
    original_fill = getattr(module, "_fill", None)

    # a deferred sum comes back wrapped; plain arrays (a moment that is identically zero, or a
    # _full in the coefficient preamble) are left to the original helpers
    def full(value: Any, shape: tuple) -> Any:
        if isinstance(value, Deferred):
            return Output(value, tuple(shape))
        return original_full(value, shape)

    def fill(value: Any, tail: tuple, Q: Any, R: Any, T: Any) -> Any:
        if isinstance(value, Deferred):
            batch = np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
            return Output(value, batch + tuple(tail))
        return original_fill(value, tail, Q, R, T)

    # a copy of the module's globals with three helpers replaced; the module itself is untouched
    namespace = dict(module.__dict__)
    namespace.update(_einsum=deferred_einsum, _c4=deferred_c4, _full=full)
    if original_fill is not None:
        namespace["_fill"] = fill
    functions = {}
    for name in ("first_order_moments", "second_order_moments"):
        function = getattr(module, name)
        functions[name] = FunctionType(function.__code__, namespace, name, function.__defaults__,
                                       function.__closure__)
    return functions


def flatten_terms(root: Deferred) -> list[Leaf]:
    """The leaves of a deferred sum, signs folded in, in the order the generated code wrote them."""
    leaves: list[Leaf] = []
    stack: list[tuple[Any, float]] = [(root, 1.0)]
    while stack:
        node, sign = stack.pop()
        if node is None:
            continue
        if isinstance(node, Node):
            if node.sign != 0.0:
                stack.append((node.right, sign * node.sign))
            stack.append((node.left, sign))
        elif sign == 1.0:
            leaves.append(node)
        else:
            leaves.append(Leaf(node.factors, node.operands, node.coef, node.sign * sign))
    return leaves


#: The subscripts of a plain outer product ``X (x) Y`` of two matrices (a product of drifts).
OUTER_PRODUCT = parse_subscripts("...ab,...cd->...abcd")
