"""A plan, made once per network table, that shares the factors of all its networks.

Every network of a table (:mod:`numerics.kernels.network_moments`) is a product of edge
factors ``C_block**m / m!`` and vertex vectors summed over the indices of its residual
vertices. Summing the residual vertices out one at a time gives intermediate tensors,
and most of them recur: the same vertex attached by the same edges to the same kinds of
indices appears in hundreds of networks (and in every average of the table). The plan
therefore

1. eliminates each network's residual vertices in the order of least guessed cost (every order of
   at most four is tried on bit masks, :func:`_best_order`) and names every intermediate by a
   *canonical key*: its operands with the summed index marked and the kept indices numbered in an
   order that does not depend on how the network named them (:func:`canonical_key`). Equal keys
   are one :class:`Node`, evaluated once per call. The last residual vertex is left *open*
   (:data:`OPEN`) when summing it would give a node over all four output axes: its index is then
   summed inside the final matrix products;
2. writes what is left of each network as a product of factors over the four output axes
   (free-free edges, free vertex vectors, nodes over free indices), merges equal products
   (their weights add, as polynomials in ``Delta``), and sorts them by *split*: ``(H, S, S')``
   with the shared axes ``H`` and the rest split into ``S`` and ``S'`` such that every factor lies
   within ``H + S`` or within ``H + S'`` (:data:`SPLITS`). Over one split the average is
   ``sum_{x, y} M_xy X_x Y_y`` over the distinct products ``X`` on ``H + S`` and ``Y`` on
   ``H + S'``, i.e. two (stacked over ``H``) matrix products. Since every average is summed over its
   free symmetries afterwards, a product may be replaced by any of its images under them (output axes
   relabelled); each product is taken in the image and split adding the fewest new entries, which
   lets products of different splits share their halves, and every choice is made once more given
   all the others' (:data:`REFINEMENTS`). Products no split separates fall to the last split, whole
   products summed with their weights.

Nothing here depends on the widths ``p, k`` or on the values: the plan holds only keys and
weights, and :mod:`numerics.kernels.network_shared` evaluates it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache
from itertools import compress

import numpy as np

#: Output axes of the free vertices.
FREE_AXES = (0, 1, 2, 3)
#: Marker of the summed index in a node's operands.
SUMMED = -1
#: Position of a network's last residual index when it is left to the final matrix products.
OPEN = 4
#: The last residual vertex is left open when its operands span more letters than this (itself included):
#: summed out it would be a node over all four output axes.
OPEN_SPAN = 4

def _splits() -> tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]:
    """Every ``(H, S, S')``: shared axes ``H`` (at most two), the rest split into ``S`` and ``S'``.

    In order of preference: no shared axis, one, two; the last, ``((), (0, 1, 2, 3), ())``,
    separates every product (a weighted sum of whole products).
    """
    found = []
    for size in (0, 1, 2):
        for shared in itertools.combinations(FREE_AXES, size):
            rest = [a for a in FREE_AXES if a not in shared]
            for n in range(1, len(rest)):
                for left in itertools.combinations(rest[1:], n - 1):
                    left = (rest[0], *left)
                    found.append((shared, left, tuple(a for a in rest if a not in left)))
    found.append(((), FREE_AXES, ()))
    return tuple(found)


#: The splits of the four output axes ``(H, S, S')`` (:func:`_splits`).
SPLITS = _splits()
#: Passes that choose every product's split again given the others' (:meth:`PlanBuilder.add_average`).
REFINEMENTS = 1
#: Averages with more merged products than this keep every product as the network gave it: choosing
#: images costs more at first use than it saves (the quartic tables' 18,059 products of ``EE`` doubled
#: the plan's build, 7 s to 16 s, for no measurable gain per call); He3's largest average has 621.
MAX_RELABELLED_PRODUCTS = 1000
#: The first splits, those without shared axes.
UNSHARED_SPLITS = 7

# An operand key is one of
#   ("E", multiplicity, (kind_x, kind_y))  on the positions (x, y): C_block**m / m!
#   ("V", kind, polynomial, degree)        on one position: a vertex vector
#   ("I", node number)                     on the node's positions, in its axis order
# and an operand is (key, positions).
Operand = tuple[tuple, tuple[int, ...]]


@dataclass(frozen=True)
class Node:
    """An intermediate: ``sum over the summed index of the product of the operands``.

    ``operands`` carry positions ``0 .. len(kinds) - 1`` (the node's axes) and
    :data:`SUMMED`; ``kinds`` are the index kinds of the axes (``student``, ``teacher``, ``unit``).
    """

    operands: tuple[Operand, ...]
    kinds: tuple[str, ...]


@dataclass
class SplitTerms:
    """The products separated by one split ``(H, S, S')``: ``sum_{x, y} (sum_t Delta**t M_t)[x, y] X_x Y_y``.

    ``X_x`` is a product of factors on the axes ``H + S``, ``Y_y`` on ``H + S'``; over the
    shared axes ``H`` the sum is a stack of matrix products.
    """

    split: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    open: bool = False  # the products keep their last residual index (:data:`OPEN`), summed in the products
    x_keys: list = field(default_factory=list)  # per distinct X: its factors (operands on output axes), sorted
    y_keys: list = field(default_factory=list)
    entries: dict = field(default_factory=dict)  # (x, y) -> {Delta power: weight}


@dataclass
class AveragePlan:
    """One average: the output axes' index kinds and its products by split."""

    kinds: tuple[str, ...]
    splits: list  # SplitTerms


@dataclass
class SharedPlan:
    """Every node of a table (in evaluation order) and every average's products."""

    nodes: list = field(default_factory=list)
    averages: dict = field(default_factory=dict)


class OpenGroups:
    """The products of one side of an open split grouped by their factors without the open index.

    Parameters
    ----------
    keys : list
        Per product its factors ``((key, positions), ...)``; a factor holds the open index when
        :data:`OPEN` is among its positions.
    min_size : int
        Groups of fewer products are pooled into one whose products keep all their factors (pulling a
        group's factors out costs one multiplication of the group's sum, and a matrix product of its own).

    Attributes
    ----------
    order : array of int, shape (n,)
        The products in group order (each group's contiguous).
    bounds : list of int
        Group g holds the products ``order[bounds[g]:bounds[g + 1]]``.
    free_keys : list
        Per group the factors without the open index pulled out of it (empty: none).
    open_keys : list
        Per product in ``order`` its factors left in it (those holding the open index, or all when pooled).
    """

    def __init__(self, keys: list, min_size: int = 1) -> None:
        by_free: dict[tuple, list[int]] = {}
        for index, factors in enumerate(keys):
            by_free.setdefault(tuple(f for f in factors if OPEN not in f[1]), []).append(index)
        pooled = [index for free, indices in by_free.items() if not free or len(indices) < min_size
                  for index in indices]
        groups = [(free, indices) for free, indices in by_free.items() if free and len(indices) >= min_size]
        groups += [((), sorted(pooled))] if pooled else []
        self.free_keys = [free for free, _ in groups]
        self.order = np.array([index for _, indices in groups for index in indices], dtype=np.intp)
        self.bounds = [0, *itertools.accumulate(len(indices) for _, indices in groups)]
        self.open_keys = [tuple(f for f in keys[index] if OPEN in f[1] or not free)
                          for free, indices in groups for index in indices]


def _operand_key(key: tuple, positions: tuple[int, ...]) -> Operand:
    """An operand in normal form: an edge's positions in increasing order (its kinds swapped along)."""
    if key[0] == "E" and positions[0] > positions[1]:
        return ("E", key[1], (key[2][1], key[2][0])), (positions[1], positions[0])
    return key, positions


def canonical_key(operands: list[tuple[tuple, tuple[str, ...]]], summed: str,
                  kind_of: dict[str, str]) -> tuple[tuple[Operand, ...], tuple[str, ...]]:
    """The canonical operands of ``sum_summed prod operands`` and the letters of its axes in order.

    ``operands`` are ``(key, letters)``. The kept letters are ordered by an invariant (their
    kind and the operands touching them, other letters masked), and letters with equal
    invariants by the permutation giving the smallest key, so that the same intermediate
    reached from different networks (or with its letters named differently) gets one key.
    """
    kept = sorted({c for _, letters in operands for c in letters} - {summed})

    def signature(letter: str) -> tuple:
        touching = []
        for key, letters in operands:
            if letter in letters:
                masked = tuple(0 if c == letter else (SUMMED if c == summed else 1) for c in letters)
                touching.append(_operand_key(key, masked) if key[0] == "E" else (key, masked))
        return (kind_of[letter], tuple(sorted(touching)))

    ordered = sorted(kept, key=signature)
    blocks = [list(group) for _, group in itertools.groupby(ordered, key=signature)]
    best = None
    for arrangement in itertools.product(*(itertools.permutations(block) for block in blocks)):
        order = [c for block in arrangement for c in block]
        position = {c: n for n, c in enumerate(order)}
        position[summed] = SUMMED
        key = tuple(sorted(_operand_key(k, tuple(position[c] for c in letters)) for k, letters in operands))
        if best is None or key < best[0]:
            best = (key, tuple(order))
    return best


#: Sizes assumed when comparing elimination orders (a student or teacher index, a unit one).
_GUESSED_SIZE = {"student": 8, "teacher": 2, "unit": 10}


#: Bit masks ``(H + S + open, H + S' + open)`` of the splits but the last (axis ``a`` is bit ``a``).
_SPLIT_MASKS = tuple((sum(1 << a for a in (*shared, *left, OPEN)), sum(1 << a for a in (*shared, *right, OPEN)))
                     for shared, left, right in SPLITS[:-1])


@cache
def _final_cost(factors: frozenset[int]) -> int:
    """Guessed entries the final products of one network cost (factors as bit masks of output axes):
    none when a split without shared axes separates its factors, three axes' worth when one with
    shared axes does, four whole products otherwise; with the open index (whose halves are an
    index larger) ten times as much."""
    scale = 10 if any(f >> OPEN & 1 for f in factors) else 1
    for n, (on_left, on_right) in enumerate(_SPLIT_MASKS):
        if all(f & ~on_left == 0 or f & ~on_right == 0 for f in factors):
            return 0 if n < UNSHARED_SPLITS else 8**3 * scale**2
    return 4 * 8**4 * scale


def _best_order(operands: list[tuple[str, ...]], residual: list[str], kind_of: dict[str, str]) -> tuple[tuple, bool]:
    """The order in which to sum the residual letters out, and whether to leave the last one open.

    Every order (at most 4! of them) is costed by the guessed entries of its nodes plus those of
    the final products (:func:`_final_cost`); the last letter is left open (:data:`OPEN`) when
    summing it would give a node over all four output axes and leaving it costs less.
    """
    # letters as bits: the output axes 0-3, the residual letters from bit 5 on
    bit = {c: 1 << n for n, c in enumerate("jlih")}
    bit.update({c: 1 << (5 + n) for n, c in enumerate(residual)})
    sizes = tuple((bit[c], _GUESSED_SIZE[kind_of[c]]) for c in bit)
    masks = tuple(sorted(sum(bit[c] for c in set(letters)) for letters in operands))
    order, leave_open = _best_mask_order(masks, len(residual), sizes)
    return tuple(residual[n] for n in order), leave_open


@cache
def _best_mask_order(masks: tuple[int, ...], residuals: int, sizes: tuple) -> tuple[tuple[int, ...], bool]:
    """:func:`_best_order` on bit masks (networks of one support share it): residual numbers in order."""
    free = 0b1111
    sizes = dict(sizes)
    best = None
    for order in itertools.permutations(range(residuals)):
        sets = list(masks)
        cost = 0
        for step, summed in enumerate(order):
            b = 1 << (5 + summed)
            kept = 0
            for s in sets:
                if s & b:
                    kept |= s
            kept &= ~b
            if step == len(order) - 1 and bin(kept).count("1") + 1 > OPEN_SPAN:
                opened = frozenset((s & free) | (1 << OPEN if s & b else 0) for s in sets)
                candidate = (cost + _final_cost(opened) + 8**2, order, True)
                if best is None or candidate[0] < best[0]:
                    best = candidate
            cost += _node_cost(kept | b, sizes)
            sets = [s for s in sets if not s & b] + [kept]
        candidate = (cost + _final_cost(frozenset(sets)), order, False)
        if best is None or candidate[0] < best[0]:
            best = candidate
    return best[1], best[2]


def _node_cost(mask: int, sizes: dict[int, int]) -> int:
    cost = 1
    for b, size in sizes.items():
        if mask & b:
            cost *= size
    return cost


class PlanBuilder:
    """Collects the nodes and products of every network of a table (one instance per table)."""

    def __init__(self) -> None:
        self.plan = SharedPlan()
        self.node_index: dict[tuple, int] = {}

    def node(self, operands: tuple[Operand, ...], kinds: tuple[str, ...]) -> int:
        index = self.node_index.get(operands)
        if index is None:
            index = self.node_index[operands] = len(self.plan.nodes)
            self.plan.nodes.append(Node(operands, kinds))
        return index

    def reduce(self, edges: list[tuple[int, int, int]], degrees: list[int],
               vertices: list[tuple[str, str]]) -> tuple[Operand, ...]:
        """One network as its product of factors on the output axes (sorted), residual vertices summed out.

        ``edges`` are ``(a, b, multiplicity)``, ``degrees`` and ``vertices`` (index kind,
        polynomial) per vertex; vertices 0-3 are the free ones (output axes in order).
        """
        letters = "jlihmnouvw"
        kind_of = {letters[a]: kind for a, (kind, _) in enumerate(vertices)}
        operands = [(("E", m, (vertices[a][0], vertices[b][0])), (letters[a], letters[b])) for a, b, m in edges]
        operands += [(("V", kind, polynomial, degrees[a]), (letters[a],))
                     for a, (kind, polynomial) in enumerate(vertices)]
        residual = [letters[a] for a in range(len(FREE_AXES), len(vertices))]
        position = {letters[a]: a for a in FREE_AXES}
        elimination, leave_open = _best_order([letters for _, letters in operands], residual, kind_of)
        for summed in elimination:
            if leave_open and summed == elimination[-1]:
                # summing this vertex out would leave a node over all four output axes: it is summed
                # in the final matrix products instead (its index joins their inner dimension)
                return _positioned(operands, {**position, summed: OPEN})
            touching = [o for o in operands if summed in o[1]]
            operands = [o for o in operands if summed not in o[1]]
            key, order = canonical_key(touching, summed, kind_of)
            index = self.node(key, tuple(kind_of[c] for c in order))
            operands.append((("I", index), order))
        return _positioned(operands, position)

    def add_average(self, name: str, kinds: tuple[str, ...], products: dict[tuple, dict[int, float]],
                    symmetries: tuple[tuple[int, ...], ...] = (FREE_AXES,)) -> None:
        """Sort an average's merged products by split (:data:`SPLITS`).

        The average is summed over its free ``symmetries`` afterwards, so any image of a product under
        them counts the same: each product is taken in the image (and split) that adds the fewest
        new entries (:class:`_SplitChooser`), so that products share halves across what were different splits.
        """
        large = len(products) > MAX_RELABELLED_PRODUCTS
        if large:
            symmetries = (FREE_AXES,)
        chooser = _SplitChooser(_group_or_identity(symmetries))
        numbered = [[chooser.number(operand) for operand in product] for product in products]
        opened = [any(OPEN in positions for _, positions in product) for product in products]
        chosen = []
        for factors, is_open in zip(numbered, opened):
            chosen.append(chooser.choose(factors, is_open))
            chooser.hold(chosen[-1], is_open, 1)
        for _ in range(0 if large else REFINEMENTS):
            # each product chosen again given every other product's halves: fewer distinct halves
            for index, (factors, is_open) in enumerate(zip(numbered, opened)):
                if chooser.shared(chosen[index], is_open):
                    continue  # both halves held by other products as well: no choice adds fewer entries
                chooser.hold(chosen[index], is_open, -1)
                chosen[index] = chooser.choose(factors, is_open)
                chooser.hold(chosen[index], is_open, 1)
        by_split: dict[tuple[int, bool], SplitTerms] = {}
        x_index: dict[tuple[int, bool], dict] = {}
        y_index: dict[tuple[int, bool], dict] = {}
        for (n, left, right), is_open, weights in zip(chosen, opened, products.values()):
            key = (n, is_open)
            terms = by_split.setdefault(key, SplitTerms(SPLITS[key[0]], is_open))
            x = x_index.setdefault(key, {}).setdefault(left, len(terms.x_keys))
            if x == len(terms.x_keys):
                terms.x_keys.append(chooser.operands_of(left))
            y = y_index.setdefault(key, {}).setdefault(right, len(terms.y_keys))
            if y == len(terms.y_keys):
                terms.y_keys.append(chooser.operands_of(right))
            entry = terms.entries.setdefault((x, y), {})
            for power, weight in weights.items():
                entry[power] = entry.get(power, 0.0) + weight
        self.plan.averages[name] = AveragePlan(kinds, [by_split[key] for key in sorted(by_split)])


class _SplitChooser:
    """Chooses, per product of one average, the image under its symmetries and the split to take it in.

    Operands are numbered (their images kept in a table), so that the halves compared are tuples of ints;
    ``held`` counts the products using each ``(split key, side, half)``.
    """

    def __init__(self, permutations: tuple[tuple[int, ...], ...]) -> None:
        self.permutations = permutations
        self.numbers: dict[Operand, int] = {}
        self.operands: list[Operand] = []
        self.masks: list[int] = []  # output axes of each operand as a bit mask
        self.images: dict[tuple[int, int], int] = {}
        self.held: dict[tuple, int] = {}

    def number(self, operand: Operand) -> int:
        found = self.numbers.get(operand)
        if found is None:
            found = self.numbers[operand] = len(self.operands)
            self.operands.append(operand)
            self.masks.append(sum(1 << a for a in operand[1]))
        return found

    def image(self, operand: int, permutation: int) -> int:
        """The number of an operand's image, output axis ``a`` relabelled ``permutations[permutation][a]``."""
        found = self.images.get((operand, permutation))
        if found is None:
            key, positions = self.operands[operand]
            moved = tuple(self.permutations[permutation][a] if a < OPEN else a for a in positions)
            found = self.images[(operand, permutation)] = self.number(_operand_key(key, moved))
        return found

    def operands_of(self, half: tuple[int, ...]) -> tuple[Operand, ...]:
        return tuple(sorted(self.operands[o] for o in half))

    def choose(self, numbered: list[int], is_open: bool) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """``(split number, left half, right half)`` adding the fewest new entries (halves held cost nothing),
        then the split of lowest number."""
        best = None
        images = {tuple(sorted(self.image(o, n) for o in numbered)) for n in range(len(self.permutations))}
        for factors in images:
            for n, inside, outside, left_cost, right_cost in _separations(tuple(self.masks[o] for o in factors)):
                left, right = tuple(compress(factors, inside)), tuple(compress(factors, outside))
                key = (n, is_open)
                cost = ((0 if self.held.get((key, 0, left)) else left_cost)
                        + (0 if self.held.get((key, 1, right)) else right_cost))
                candidate = (cost, n, left, right)
                if best is None or candidate < best:
                    best = candidate
        return best[1:]

    def shared(self, choice: tuple[int, tuple[int, ...], tuple[int, ...]], is_open: bool) -> bool:
        n, left, right = choice
        return self.held[((n, is_open), 0, left)] > 1 and self.held[((n, is_open), 1, right)] > 1

    def hold(self, choice: tuple[int, tuple[int, ...], tuple[int, ...]], is_open: bool, change: int) -> None:
        n, left, right = choice
        for side, half in ((0, left), (1, right)):
            key = ((n, is_open), side, half)
            self.held[key] = self.held.get(key, 0) + change


def _group_or_identity(symmetries: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """``symmetries`` when they form a group (closed under composition), else the identity alone: only
    then is the symmetrised sum of an image of a product the symmetrised sum of the product."""
    found = {tuple(permutation) for permutation in symmetries}
    closed = all(tuple(first[a] for a in second) in found for first in found for second in found)
    return tuple(sorted(found)) if closed and FREE_AXES in found else (FREE_AXES,)


@cache
def _separations(masks: tuple[int, ...]) -> tuple[tuple[int, tuple[bool, ...], tuple[bool, ...], int, int], ...]:
    """Per split that separates factors on the output axes ``masks`` (bit masks, the open index bit
    :data:`OPEN`): its number, which factors lie on ``H + S`` and which do not, and the guessed entries
    of both halves (a size of 8 per axis, 9 for the open index): the cost of choosing a half not yet held."""
    found = []
    for n, (on_left, on_right) in enumerate(_ALL_SPLIT_MASKS):
        inside = tuple(m & ~on_left == 0 for m in masks)
        if all(is_inside or m & ~on_right == 0 for is_inside, m in zip(inside, masks)):
            shared, left, right = SPLITS[n]
            costs = [8 ** (len(shared) + len(axes)) * (9 if any(m >> OPEN & 1 for m, i in zip(masks, inside)
                                                                if i == side) else 1)
                     for side, axes in ((True, left), (False, right))]
            found.append((n, inside, tuple(not i for i in inside), *costs))
    return tuple(found)


def _positioned(operands: list[tuple[tuple, tuple[str, ...]]], position: dict[str, int]) -> tuple[Operand, ...]:
    """Operands on letters as a product on output positions (sorted operands in normal form)."""
    return tuple(sorted(_operand_key(key, tuple(position[c] for c in letters)) for key, letters in operands))


#: Bit masks ``(H + S + open, H + S' + open)`` of every split.
_ALL_SPLIT_MASKS = _SPLIT_MASKS + ((0b11111, 1 << OPEN),)


def build_shared_plan(tables: dict) -> SharedPlan:
    """The shared plan of a generated table (``TABLES`` of a network module, see :class:`NetworkMoments`).

    Parameters
    ----------
    tables : dict
        ``{average: (free vertices, free symmetries, parts)}``, parts
        ``(coefficient, Delta power, residual vertices, groups)``, groups
        ``(pairs as digits, ((weight, multiplicities as digits), ...))``.
    """
    builder = PlanBuilder()
    for name, (free, symmetries, parts) in tables.items():
        free = [tuple(vertex) for vertex in free]
        products: dict[tuple, dict[int, float]] = {}
        for coefficient, delta_power, residuals, groups in parts:
            vertices = free + [("unit", "residual")] * residuals
            for pairs, networks in groups:
                support = [(int(pairs[i]), int(pairs[i + 1])) for i in range(0, len(pairs), 2)]
                for count, code in networks:
                    edges = [(a, b, int(m)) for (a, b), m in zip(support, code)]
                    degrees = [0] * len(vertices)
                    for a, b, m in edges:
                        degrees[a] += m
                        degrees[b] += m
                    product = builder.reduce(edges, degrees, vertices)
                    weights = products.setdefault(product, {})
                    weights[delta_power] = weights.get(delta_power, 0.0) + coefficient * count
        builder.add_average(name, tuple(kind for kind, _ in free), products, tuple(map(tuple, symmetries)))
    return builder.plan


__all__ = ["FREE_AXES", "SPLITS", "SUMMED", "AveragePlan", "Node", "OpenGroups", "SharedPlan", "SplitTerms",
           "build_shared_plan", "canonical_key"]
