"""Polynomials in indexed pre-activations, and their Gaussian averages as tensor networks.

A *slot* is one indexed Gaussian variable, ``("s", "j")`` for the student
pre-activation ``lambda_j`` or ``("t", "r")`` for the teacher's ``nu_r``. An
:class:`IndexedPolynomial` is a sum of monomials in slots, some of whose
indices are summed over (``sum_m sigma(lambda_m)``). Its Gaussian average is
computed slot by slot with :func:`derive.gauss.wick.pairing_counts`, treating slots
with different index names as different variables. That is exact even when
a summed index takes the value of another index: the Wick result is a
polynomial in the covariance entries, and at coinciding indices the
covariance entry is simply the variance (``Q_jj``). Hence one average, kept
with its index sums, is valid for every width p, k at once.

Each term of the average is a tensor network whose edges are overlap entries
``Q[a, b]``, ``R[a, r]`` or ``T[r, s]``; :func:`average` returns them in a
canonical form so that isomorphic networks are collected.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import sympy as sp

from derive.gauss.wick import pairing_counts
from derive.model.model import x

Slot = tuple[str, str]  # (kind, index name); kind "s" student, "t" teacher
Edge = tuple[str, str, str]  # (matrix name, row index, column index)

STUDENT, TEACHER = "s", "t"
SUMMED_NAMES = {STUDENT: "mnouv", TEACHER: "stwyx"}


@dataclass(frozen=True)
class Monomial:
    """``coefficient * prod slot**power``, summed over ``summed`` indices."""

    coefficient: sp.Expr
    powers: tuple[tuple[Slot, int], ...]
    summed: tuple[Slot, ...]


class IndexedPolynomial:
    """A sum of :class:`Monomial` objects, closed under + and *."""

    def __init__(self, monomials: Iterable[Monomial] = ()) -> None:
        self.monomials = [m for m in monomials if m.coefficient != 0]

    @classmethod
    def constant(cls, value: sp.Expr) -> IndexedPolynomial:
        return cls([Monomial(sp.sympify(value), (), ())])

    @classmethod
    def of_slot(cls, polynomial: sp.Expr, slot: Slot, *, summed: bool = False) -> IndexedPolynomial:
        """``polynomial(slot)``, or ``sum_index polynomial(slot)`` if ``summed``."""
        poly = sp.Poly(polynomial, x)
        monomials = []
        for (power,), coefficient in poly.terms():
            powers = ((slot, power),) if power else ()
            monomials.append(Monomial(coefficient, powers, (slot,) if summed else ()))
        return cls(monomials)

    def __add__(self, other: IndexedPolynomial) -> IndexedPolynomial:
        return IndexedPolynomial(self.monomials + other.monomials)

    def __neg__(self) -> IndexedPolynomial:
        return self.scale(-1)

    def __sub__(self, other: IndexedPolynomial) -> IndexedPolynomial:
        return self + (-other)

    def scale(self, factor: sp.Expr) -> IndexedPolynomial:
        return IndexedPolynomial(
            Monomial(m.coefficient * factor, m.powers, m.summed) for m in self.monomials
        )

    def __mul__(self, other: IndexedPolynomial) -> IndexedPolynomial:
        out = []
        for a in self.monomials:
            for b in other.monomials:
                clash = {s[1] for s in a.summed} & ({s[1] for s in b.summed} | _names(b)) or (
                    {s[1] for s in b.summed} & _names(a)
                )
                if clash:
                    raise ValueError(f"summed index names clash: {sorted(clash)}")
                powers: dict[Slot, int] = dict(a.powers)
                for slot, n in b.powers:
                    powers[slot] = powers.get(slot, 0) + n
                out.append(
                    Monomial(
                        a.coefficient * b.coefficient,
                        tuple(sorted(powers.items())),
                        tuple(sorted(a.summed + b.summed)),
                    )
                )
        return IndexedPolynomial(out)


def _names(m: Monomial) -> set[str]:
    return {slot[1] for slot, _ in m.powers}


def make_edge(slot_a: Slot, slot_b: Slot) -> Edge:
    kinds = (slot_a[0], slot_b[0])
    if kinds == (STUDENT, STUDENT):
        a, b = sorted((slot_a[1], slot_b[1]))
        return ("Q", a, b)
    if kinds == (TEACHER, TEACHER):
        a, b = sorted((slot_a[1], slot_b[1]))
        return ("T", a, b)
    if kinds == (STUDENT, TEACHER):
        return ("R", slot_a[1], slot_b[1])
    return ("R", slot_b[1], slot_a[1])


@dataclass(frozen=True)
class Network:
    """One tensor network: a product of overlap entries with some indices summed.

    ``summed`` lists the summed indices with their kinds (an index that
    touches no edge contributes a factor p or k); ``free`` the output indices.
    """

    edges: tuple[Edge, ...]
    summed: tuple[Slot, ...]
    free: tuple[Slot, ...]


def canonical_network(edges: list[Edge], summed: list[Slot], free: tuple[Slot, ...]) -> Network:
    """Rename summed indices to the canonical (lexicographically least) labelling."""
    by_kind = {kind: [name for kind_, name in summed if kind_ == kind] for kind in (STUDENT, TEACHER)}
    targets = {kind: list(SUMMED_NAMES[kind][: len(names)]) for kind, names in by_kind.items()}
    for kind, names in by_kind.items():
        if len(names) > len(SUMMED_NAMES[kind]):
            raise ValueError("too many summed indices of one kind")
    best: tuple[Edge, ...] | None = None
    for perm_s in itertools.permutations(targets[STUDENT]):
        for perm_t in itertools.permutations(targets[TEACHER]):
            rename = dict(zip(by_kind[STUDENT], perm_s)) | dict(zip(by_kind[TEACHER], perm_t))
            renamed = []
            for matrix, a, b in edges:
                a, b = rename.get(a, a), rename.get(b, b)
                if matrix in ("Q", "T") and b < a:
                    a, b = b, a
                renamed.append((matrix, a, b))
            candidate = tuple(sorted(renamed))
            if best is None or candidate < best:
                best = candidate
    new_summed = tuple((kind, name) for kind in (STUDENT, TEACHER) for name in targets[kind])
    return Network(best or (), new_summed, free)


def average(polynomial: IndexedPolynomial, free: tuple[Slot, ...]) -> dict[Network, sp.Expr]:
    """Gaussian average of an indexed polynomial as ``{network: coefficient}``.

    Parameters
    ----------
    polynomial
        Every index not in ``free`` must be summed in each monomial.
    free
        The output indices, e.g. ``(("s", "j"), ("t", "r"))`` for a p x k result.
    """
    free_names = {name for _, name in free}
    # integer pairing counts per network and monomial coefficient: sympy arithmetic once per
    # distinct coefficient of a network, not once per pairing (a degree-6 diffusion has ~10^4 pairings)
    counts: dict[Network, dict[sp.Expr, int]] = defaultdict(lambda: defaultdict(int))
    for monomial in polynomial.monomials:
        summed_names = {name for _, name in monomial.summed}
        unknown = _names(monomial) - summed_names - free_names
        if unknown:
            raise ValueError(f"indices {sorted(unknown)} are neither summed nor free")
        slots = [slot for slot, _ in monomial.powers]
        exponents = tuple(n for _, n in monomial.powers)
        for count, pairs in pairing_counts(exponents):
            edges: list[Edge] = []
            for (a, b), multiplicity in pairs:
                edges.extend([make_edge(slots[a], slots[b])] * multiplicity)
            network = canonical_network(edges, list(monomial.summed), free)
            counts[network][monomial.coefficient] += count
    collected = {}
    # many networks share one combination of counts and coefficients (a degree-6 diffusion:
    # ~6,000 networks, ~700 combinations): each combination is summed and expanded once
    combined: dict[frozenset, sp.Expr] = {}
    for network, by_coefficient in counts.items():
        key = frozenset(by_coefficient.items())
        coefficient = combined.get(key)
        if coefficient is None:
            coefficient = combined[key] = expanded_sum([c * n for c, n in by_coefficient.items()])
        if coefficient != 0:
            collected[network] = coefficient
    return collected


def expanded_sum(terms: list[sp.Expr]) -> sp.Expr:
    """``sympy.expand(sympy.Add(*terms))``, skipping the expansion when there is nothing to expand.

    A term that is a product of numbers, symbols and integer powers of symbols
    (``360/(11*k*p)``; readouts such as ``1/p`` give only those) is left as it is by the
    expansion, which costs most of an average's sympy time otherwise.

    Parameters
    ----------
    terms : list of sympy.Expr
        The terms of the sum.

    Returns
    -------
    sympy.Expr
        The expanded sum, the same expression ``sympy.expand`` gives.
    """
    total = sp.Add(*terms)
    if all(_is_power_product(term) for term in terms):
        return total
    return sp.expand(total)


def _is_power_product(term: sp.Expr) -> bool:
    factors = term.args if term.is_Mul else (term,)
    return all(
        factor.is_Number or factor.is_Symbol or (factor.is_Pow and factor.base.is_Symbol and factor.exp.is_Integer)
        for factor in factors
    )
