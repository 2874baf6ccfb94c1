"""Plans of the per-tuple routes: which kernel runs over which index tuples, and where its block entries sit in C.

A per-tuple route (:mod:`numerics.kernels.unit_tuples`) evaluates element-wise kernels
``kernel(c00, c01, ...)`` at the covariance blocks of many index tuples of the units
(the p students, then the k teachers). Everything that depends only on ``(p, k)`` and
on the kernel set is worked out here once and cached (:func:`tuple_plan`):

* **the grids** (:class:`KernelCall`): each slot of a kernel varies along one axis of
  the grid, so an entry ``c_ab`` of the blocks depends only on the axes of slots ``a`` and
  ``b`` and is gathered with that broadcast shape (an entry of the students' pair alone is
  a ``(P, 1)`` array, not ``(P, Q)``: the kernel's arithmetic on it is done once for the
  other axes); small grids are gathered whole and raveled instead (:data:`FLAT_ELEMENTS`),
  NumPy's fastest path where the cost of a call dominates;
* **symmetry**: the ``eta**2`` kernels have ``sigma'`` in both student slots, so only the
  pairs ``j <= l`` are evaluated (both slots on one axis of length ``P = p (p + 1) / 2``),
  and, while the tuples are few (:data:`LISTED_ELEMENTS`), only the unit pairs ``u <= v``
  of slots holding the same function; larger grids run in blocks that stay in cache
  (:data:`BLOCK_ELEMENTS`);
* **merging**: a kernel set in which two names map to the same function (a model whose
  student and teacher activations coincide, see ``derive/codegen/tuples.py``) has the
  student and teacher blocks evaluated in one call over all units;
* **one gather** (:class:`Gather`): the flat indices into ``C`` of every entry of every
  call of a term are concatenated (shared entries once), so a term costs one ``take`` into
  a buffer whose entry views are made once; batch axes go last, so the kernels run along
  contiguous memory however many replicas or alpha points are batched.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Kernels = Mapping[str, Callable[..., Any]]

#: Plans kept (one per kernel set, readouts and sizes; least recently built dropped first).
MAX_PLANS = 64
#: Largest grid (times batched replicas) gathered whole and raveled rather than broadcast (see :class:`Gather`);
#: about where the two layouts cost the same for the erf kernels.
FLAT_ELEMENTS = 1024
#: Most tuples (times replicas) of the eta**2 term listed one by one (:meth:`TuplePlan.diffusion_layout`).
LISTED_ELEMENTS = 8192
#: Elements of one block of the eta**2 grid: its temporaries stay in cache (:meth:`TuplePlan.diffusion_layout`).
BLOCK_ELEMENTS = 1 << 14
#: Batch shapes whose entry buffers a gather keeps per thread (the oldest is dropped).
BUFFERS_PER_THREAD = 4


@dataclass(frozen=True, eq=False)
class KernelCall:
    """One kernel over a grid of index tuples.

    Attributes
    ----------
    name : str
        The kernel's name in the kernel set.
    slots : tuple of (int, array)
        For each slot of the kernel, the grid axis it varies along and the units it runs
        over there (slots on one axis run together, as the pairs ``j <= l`` do).
    shape : tuple of int
        The grid's shape (one length per axis).
    """

    name: str
    slots: tuple[tuple[int, np.ndarray], ...]
    shape: tuple[int, ...]


def kernel_call(name: str, *axes: np.ndarray | tuple[np.ndarray, ...]) -> KernelCall:
    """A :class:`KernelCall` whose axis ``i`` carries ``axes[i]``: one unit array, or a tuple of them (one per slot).

    ``kernel_call("noise", students, students)`` runs over all ``(j, l)``;
    ``kernel_call("diffusion_ss", (rows, columns), students, students)`` over pairs and ``(m, n)``.
    """
    slots = []
    shape = []
    for axis, units in enumerate(axes):
        group = units if isinstance(units, tuple) else (units,)
        if len({len(u) for u in group}) != 1:
            raise ValueError(f"kernel {name!r}: the slots on axis {axis} run over different lengths")
        slots.extend((axis, np.asarray(u, dtype=np.intp)) for u in group)
        shape.append(len(group[0]))
    return KernelCall(name, tuple(slots), tuple(shape))


def entry_indices(call: KernelCall, units: int) -> list[np.ndarray]:
    """Flat indices into the raveled ``C`` (length ``units**2``) of the entries ``c_ab``, ``a <= b``, of ``call``.

    Returns
    -------
    list of int arrays
        In the kernel's argument order ``(c00, c01, ..., c11, ...)``; entry ``c_ab`` has
        the grid's length on the axes of slots ``a`` and ``b`` and 1 on the others.
    """
    ndim = len(call.shape)
    placed = [units_.reshape(tuple(-1 if d == axis else 1 for d in range(ndim))) for axis, units_ in call.slots]
    return [placed[a] * units + placed[b] for a in range(len(placed)) for b in range(a, len(placed))]


class Gather:
    """The block entries of several kernel calls, taken from ``C`` at once.

    Two layouts, both with the batch axis (if any) last, so that the kernels' element-wise
    operations run along contiguous memory however many replicas or points are batched:

    * ``broadcast=True``: entry ``c_ab`` keeps its broadcast shape (only the axes of slots
      ``a`` and ``b``), so the kernels' arithmetic on a few slots is hoisted out of the others;
    * ``broadcast=False``: every entry is gathered over the whole grid, raveled: NumPy's
      fastest path for small grids, where the cost of a call, not of an element, dominates.

    Parameters
    ----------
    calls : sequence of KernelCall
    units : int
        ``p + k``, the side of ``C``.
    broadcast : bool
        The layout (see above).
    """

    def __init__(self, calls: Sequence[KernelCall], units: int, broadcast: bool = True):
        self.calls = tuple(calls)
        self.broadcast = broadcast
        where: dict[tuple, tuple[int, int]] = {}
        parts: list[np.ndarray] = []
        size = 0
        self.pieces: list[list[tuple[int, int, tuple[int, ...]]]] = []
        for call in self.calls:
            pieces = []
            for flat in entry_indices(call, units):
                if not broadcast:
                    flat = np.broadcast_to(flat, call.shape)
                key = (flat.shape, flat.tobytes())
                if key not in where:
                    where[key] = (size, size + flat.size)
                    parts.append(flat.ravel())
                    size += flat.size
                pieces.append((*where[key], flat.shape))
            self.pieces.append(pieces)
        #: every distinct entry's flat indices, one after the other
        self.index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
        # the entries are taken into a buffer made once per batch shape, and per thread (a plan is shared)
        self._buffers = threading.local()

    def evaluate(self, kernels: Kernels, flat_covariance: np.ndarray) -> list[np.ndarray]:
        """Every call's kernel at its blocks.

        Parameters
        ----------
        kernels : mapping
            Kernel functions by name.
        flat_covariance : array, shape (units**2,) or (units**2, B)
            ``C`` raveled, the batch (if any) on the last axis.

        Returns
        -------
        list of arrays
            Per call, shape ``(*call.shape)`` or ``(*call.shape, B)`` (a kernel returning a
            constant is broadcast). The kernels see views of a buffer that the next call
            (in the same thread) overwrites: a value that is one of them is copied.
        """
        tail = flat_covariance.shape[1:]
        buffer, entries = self._entries(tail, flat_covariance.dtype)
        flat_covariance.take(self.index, axis=0, out=buffer, mode="clip")  # in range: clip skips the check
        values = []
        for call, arguments in zip(self.calls, entries):
            value = kernels[call.name](*arguments)
            if getattr(value, "base", None) is buffer:  # an entry itself: the next call overwrites it
                value = value.copy()
            full = call.shape + tail
            if np.shape(value) != full:
                value = np.reshape(value, full) if np.size(value) == math.prod(full) else np.broadcast_to(value, full)
            values.append(value)
        return values

    def buffered_tails(self) -> list[tuple[int, ...]]:
        """The batch shapes (``()`` or ``(B,)``) this thread keeps an entry buffer for, oldest first."""
        return [tail for tail, _complex in getattr(self._buffers, "made", {})]

    def _entries(self, tail: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, list[list[np.ndarray]]]:
        """This thread's buffer for the taken entries (batch ``tail``) and each call's arguments, views of it.

        Complex input (the complex-step Jacobian) gets a complex buffer of its own.
        """
        made = getattr(self._buffers, "made", None)
        if made is None:
            made = self._buffers.made = {}
        key = (tail, np.dtype(dtype).kind == "c")
        found = made.get(key)
        if found is None:
            if len(made) >= BUFFERS_PER_THREAD:
                del made[next(iter(made))]
            buffer = np.empty(self.index.shape + tail, dtype=complex if key[1] else float)
            entries = [[buffer[start:stop].reshape(shape + tail) if self.broadcast else buffer[start:stop]
                        for start, stop, shape in pieces] for pieces in self.pieces]
            found = made[key] = (buffer, entries)
        return found


@dataclass(eq=False)
class TuplePlan:
    """What the routes of one kernel set need at sizes ``(p, k)``, made once.

    Attributes
    ----------
    kernels, readouts
        The kernel set and the model's scalar readouts ``readouts(p, k)``.
    p, k : int
    merged : dict of str to bool
        Per term (and ``"hessian_2"``, ``"hessian_4"``), whether its student and teacher
        kernels are one function, evaluated in one call over all units.
    pair_rows, pair_columns : int arrays, shape (P,)
        The student pairs ``j <= l`` of the ``eta**2`` term, ``P = p (p + 1) / 2``.
    pair_of : int array, shape (p, p)
        The pair of ``(j, l)`` (symmetric).
    default_a, default_c : arrays, shapes (p,), (p + k,)
        The model's scalar student readout on every unit, and ``c = (-a, b)`` with ``b``
        the teacher readout on every unit.
    default_aa : array, shape (p, p)
        ``a_j a_l`` of the default readouts.
    """

    kernels: Kernels
    readouts: Callable[[int, int], tuple[float, float]]
    p: int
    k: int
    merged: dict[str, bool]
    pair_rows: np.ndarray
    pair_columns: np.ndarray
    pair_of: np.ndarray
    default_a: np.ndarray
    default_c: np.ndarray
    default_aa: np.ndarray
    #: gathers, layouts, unit pairs and weights made so far, by term, layout and block
    cache: dict[tuple, Any] = field(default_factory=dict)

    @property
    def units(self) -> int:
        """``p + k``."""
        return self.p + self.k

    def gather(self, term: str, replicas: int = 1) -> Gather:
        """The :class:`Gather` of the calls of ``term`` (:func:`term_calls`) for ``replicas`` batched covariances.

        Raveled while the largest grid times ``replicas`` has at most :data:`FLAT_ELEMENTS`
        elements, else broadcast.
        """
        found = self.cache.get((term, replicas, FLAT_ELEMENTS))
        if found is None:
            calls = term_calls(self, term)
            broadcast = max(math.prod(call.shape) for call in calls) * replicas > FLAT_ELEMENTS
            found = self.cache.get((term, broadcast)) or Gather(calls, self.units, broadcast)
            self.cache[(term, broadcast)] = self.cache[(term, replicas, FLAT_ELEMENTS)] = found
        return found

    def diffusion_gather(self, listed: bool, replicas: int = 1, rows: slice | None = None) -> Gather:
        """The :class:`Gather` of the ``eta**2`` term over the pairs ``rows`` (all: None, see :func:`diffusion_calls`).

        The listed tuples are raveled while they number at most :data:`FLAT_ELEMENTS`
        with the replicas, else broadcast (as the grid always is).
        """
        span = (None, None) if rows is None else (rows.start, rows.stop)
        found = self.cache.get(("diffusion", listed, replicas, span, FLAT_ELEMENTS))
        if found is None:
            count = len(self.pair_rows[slice(*span)])
            size = count * replicas * max(len(w.first) for w in self.diffusion_unit_pairs(True))
            broadcast = not listed or size > FLAT_ELEMENTS
            found = self.cache.get(("diffusion", listed, broadcast, span))
            if found is None:
                found = Gather(diffusion_calls(self, listed, slice(*span)), self.units, broadcast)
            self.cache[("diffusion", listed, broadcast, span)] = found
            self.cache[("diffusion", listed, replicas, span, FLAT_ELEMENTS)] = found
        return found

    def diffusion_layout(self, replicas: int, max_elements: int) -> tuple[bool, int]:
        """``(listed, rows)`` of the ``eta**2`` term for ``replicas`` batched covariances.

        ``listed``: the tuples ``(j <= l, u <= v)`` are listed one by one (every entry
        gathered in full, about half the tuples of the grid by the symmetry of the
        ``sigma'`` and ``sigma`` slots), while they number at most :data:`LISTED_ELEMENTS`
        times the replicas; else the grid ``(j <= l, u, v)`` with broadcast entries. ``rows``
        pairs are evaluated at a time, so that a block has at most :data:`BLOCK_ELEMENTS`
        elements (its temporaries stay in cache) and at most ``max_elements``.
        """
        key = ("layout", replicas, max_elements, LISTED_ELEMENTS, BLOCK_ELEMENTS)
        found = self.cache.get(key)
        if found is None:
            pairs = len(self.pair_rows)
            listed_size = pairs * replicas * sum(len(w.first) for w in self.diffusion_unit_pairs(True))
            if listed_size <= min(LISTED_ELEMENTS, max_elements):
                found = (True, pairs)
            else:
                found = (False, max(1, min(BLOCK_ELEMENTS, max_elements) // (replicas * self.units**2)))
            self.cache[key] = found
        return found

    def default_diffusion_weights(self, listed: bool) -> list[np.ndarray]:
        """Per call of the ``eta**2`` term, ``multiplicity * c_u c_v`` of the default readouts, shape (Q,)."""
        key = ("default weights", listed)
        found = self.cache.get(key)
        if found is None:
            c = self.default_c
            found = self.cache[key] = [w.multiplicity * c[w.first] * c[w.second]
                                         for w in self.diffusion_unit_pairs(listed)]
        return found

    def diffusion_unit_pairs(self, listed: bool) -> list[UnitPairs]:
        """Per call of the ``eta**2`` term, the ``(u, v)`` of its values in order (see :func:`diffusion_calls`)."""
        key = ("unit pairs", listed)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = [unit_pairs(first, second, symmetric and listed, factor)
                                         for _, first, second, symmetric, factor in _diffusion_slots(self)]
        return found


@dataclass(frozen=True, eq=False)
class UnitPairs:
    """The units ``(u, v)`` of the slots 2 and 3 of one ``eta**2`` call, raveled, and each one's weight.

    Attributes
    ----------
    first, second : int arrays, shape (Q,)
    multiplicity : float array, shape (Q,)
        How many terms of ``sum_{u, v} c_u c_v K[., u, v]`` the value stands for (2 for
        ``u < v`` listed once, 2 for the student-teacher block that also stands for the
        teacher-student one).
    """

    first: np.ndarray
    second: np.ndarray
    multiplicity: np.ndarray


def unit_pairs(first: np.ndarray, second: np.ndarray, symmetric: bool, factor: float = 1.0) -> UnitPairs:
    """All ``(u, v)`` of ``first x second`` (``symmetric``: only ``u <= v``, each ``u < v`` counted twice)."""
    if symmetric:
        rows, columns = np.triu_indices(len(first))
        return UnitPairs(first[rows], first[columns], factor * np.where(rows == columns, 1.0, 2.0))
    u, v = np.meshgrid(first, second, indexing="ij")
    return UnitPairs(u.ravel(), v.ravel(), np.full(u.size, factor))


def _diffusion_slots(plan: TuplePlan) -> list[tuple[str, np.ndarray, np.ndarray, bool, float]]:
    """``(kernel, units of slot 2, units of slot 3, symmetric in them, factor)`` per call of the eta**2 term."""
    p, k = plan.p, plan.k
    students, teachers = np.arange(p), p + np.arange(k)
    if plan.merged["diffusion"]:
        return [("diffusion_ss", np.arange(p + k), np.arange(p + k), True, 1.0)]
    return [("diffusion_ss", students, students, True, 1.0), ("diffusion_st", students, teachers, False, 2.0),
            ("diffusion_tt", teachers, teachers, True, 1.0)]


def diffusion_calls(plan: TuplePlan, listed: bool, rows: slice | None = None) -> list[KernelCall]:
    """The calls of the ``eta**2`` term over the pairs ``rows`` (all: None).

    ``listed``: the grid ``(pair, unit pair)`` over the unit pairs of
    :meth:`TuplePlan.diffusion_unit_pairs`; else the grid ``(pair, u, v)``.
    """
    rows = slice(None) if rows is None else rows
    pair_rows, pair_columns = plan.pair_rows[rows], plan.pair_columns[rows]
    calls = []
    for (name, first, second, _, _), units in zip(_diffusion_slots(plan), plan.diffusion_unit_pairs(listed)):
        if listed:
            calls.append(kernel_call(name, (pair_rows, pair_columns), (units.first, units.second)))
        else:
            calls.append(kernel_call(name, (pair_rows, pair_columns), first, second))
    return calls


def _same(kernels: Kernels, *names: str) -> bool:
    first = kernels.get(names[0])
    return first is not None and all(kernels.get(name) is first for name in names[1:])


def term_calls(plan: TuplePlan, term: str) -> list[KernelCall]:
    """The kernel calls of ``term``: ``"drift"``, ``"noise"``, ``"pairs"`` or ``"hessian"``.

    Merged terms run one kernel over all units where the others run a student and a
    teacher kernel over the students and the teachers (their order is the contraction's,
    :mod:`numerics.kernels.unit_tuples`).
    """
    p, k = plan.p, plan.k
    students, teachers, units = np.arange(p), p + np.arange(k), np.arange(p + k)
    merged = plan.merged.get(term, False)
    if term == "drift":
        if merged:
            return [kernel_call("drift_student", students, units, units)]
        return [kernel_call("drift_student", students, units, students),
                kernel_call("drift_teacher", students, units, teachers)]
    if term == "noise":
        return [kernel_call("noise", students, students)]
    if term == "pairs":
        if merged:
            return [kernel_call("pair_ss", units, units)]
        return [kernel_call("pair_ss", students, students), kernel_call("pair_st", students, teachers),
                kernel_call("pair_tt", teachers, teachers)]
    if term == "hessian":
        calls = [kernel_call(name, students, teachers if name.endswith("_st") else students)
                 for name in ("noise", "hessian_11_st", "hessian_22_ss", "hessian_22_st", "hessian_13_ss",
                              "hessian_31_st")]
        for order in (2, 4):
            if plan.merged[f"hessian_{order}"]:
                calls.append(kernel_call(f"hessian_{order}_s", students, units))
            else:
                calls += [kernel_call(f"hessian_{order}_s", students, students),
                          kernel_call(f"hessian_{order}_t", students, teachers)]
        return calls
    raise ValueError(f"unknown per-tuple term {term!r} (drift, noise, pairs, hessian)")


def _build(kernels: Kernels, readouts: Callable[[int, int], tuple[float, float]], p: int, k: int) -> TuplePlan:
    rows, columns = np.triu_indices(p)
    pair_of = np.zeros((p, p), dtype=np.intp)
    pair_of[rows, columns] = pair_of[columns, rows] = np.arange(len(rows))
    scalar_a, scalar_b = readouts(p, k)
    default_a = np.full(p, float(scalar_a))
    default_c = np.concatenate([-default_a, np.full(k, float(scalar_b))])
    merged = {
        "drift": _same(kernels, "drift_student", "drift_teacher"),
        "diffusion": _same(kernels, "diffusion_ss", "diffusion_st", "diffusion_tt"),
        "pairs": _same(kernels, "pair_ss", "pair_st", "pair_tt"),
        **{f"hessian_{n}": _same(kernels, f"hessian_{n}_s", f"hessian_{n}_t") for n in (2, 4)},
    }
    return TuplePlan(kernels, readouts, p, k, merged, rows, columns, pair_of, default_a, default_c,
                     np.outer(default_a, default_a))


_PLANS: dict[tuple[int, int, int, int], TuplePlan] = {}


def tuple_plan(kernels: Kernels, readouts: Callable[[int, int], tuple[float, float]], p: int, k: int) -> TuplePlan:
    """The cached :class:`TuplePlan` of a kernel set and its readouts at sizes ``(p, k)``.

    Raises
    ------
    ValueError
        When ``p`` or ``k`` is below 1.
    """
    key = (id(kernels), id(readouts), p, k)
    plan = _PLANS.get(key)
    if plan is not None and plan.kernels is kernels and plan.readouts is readouts:
        return plan
    if p < 1 or k < 1:
        raise ValueError(f"per-tuple routes need p >= 1 and k >= 1, got p = {p}, k = {k}")
    plan = _build(kernels, readouts, p, k)
    if len(_PLANS) >= MAX_PLANS:
        del _PLANS[next(iter(_PLANS))]
    _PLANS[key] = plan
    return plan


__all__ = [
    "BLOCK_ELEMENTS",
    "BUFFERS_PER_THREAD",
    "FLAT_ELEMENTS",
    "LISTED_ELEMENTS",
    "MAX_PLANS",
    "Gather",
    "KernelCall",
    "TuplePlan",
    "UnitPairs",
    "diffusion_calls",
    "entry_indices",
    "kernel_call",
    "term_calls",
    "tuple_plan",
    "unit_pairs",
]
