"""The layout of one evaluation of the packed covariance: which matrices, which coefficients, which pairing.

The terms recorded by :mod:`numerics.noise.traced_einsums`, under each index permutation
:func:`numerics.noise.packing.covariance_contributions` applies to them, are outer products
``X[i_0, i_pi] Y[i_o, i_o']`` with ``X`` on output axis 0 and one *partner* axis ``pi``;
per block of ``Sigma`` and partner they add up to ``sum_{x, y} M_xy X_x (x) Y_y``
(:class:`ClassPlan`). :func:`build_plan` works that out once per shape of a call
(:class:`Plan`); :func:`same_layout` re-checks that a later call has the same layout.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numerics.noise.packing import covariance_contributions, sigma_blocks
from numerics.noise.traced_einsums import Leaf, Unsupported


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
            raise Unsupported("matrix factor across the pairing")
        y_spec = matrix_spec(others[0], others[1])
    else:
        y_spec = ("o", vector(others[0]), vector(others[1]))
    return partner, x_spec, y_spec


def materialise(spec: tuple, operands: tuple, batch: tuple) -> np.ndarray:
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
class ClassPlan:
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
class Plan:
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


@dataclass
class _TermIndex:
    """A call's terms in terms of its distinct operands and coefficients (first step of :func:`build_plan`)."""

    operand_slots: list = field(default_factory=list)  # (source, leaf, position) of each distinct operand
    coef_slots: list = field(default_factory=list)  # (source, leaf) of each distinct coefficient
    slot_pattern: list = field(default_factory=list)  # per (leaf, operand) slot: first slot of its operand
    coef_pattern: list = field(default_factory=list)  # per leaf: first leaf with its coefficient (-1: none)
    factors: list = field(default_factory=list)  # every leaf's parsed subscripts, in order
    per_leaf: dict = field(default_factory=dict)  # source -> [(factors, operand indices, coef column, sign)]


def _index_terms(sources: dict) -> _TermIndex:
    """Number the distinct operands and coefficients (by identity) of every leaf of every source."""
    found = _TermIndex()
    operand_ids: dict[int, int] = {}
    coef_ids: dict[int, int] = {}
    first_slot: list[int] = []  # per distinct operand: its first (leaf, operand) slot
    coef_first: dict[int, int] = {}
    for name, leaves in sources.items():
        entries = []
        for i, leaf in enumerate(leaves):
            indices = []
            for j, operand in enumerate(leaf.operands):
                shape = np.shape(operand)
                if len(shape) < 2 or any(axis < 0 and shape[slot - 2] != 1
                                         for slot, axis in enumerate(leaf.factors[j])):
                    raise Unsupported("einsum operand that is not a matrix or a size-one vector")
                index = operand_ids.get(id(operand))
                if index is None:
                    index = operand_ids[id(operand)] = len(found.operand_slots)
                    found.operand_slots.append((name, i, j))
                    first_slot.append(len(found.slot_pattern))
                indices.append(index)
                found.slot_pattern.append(first_slot[index])
            if leaf.coef is None:
                coef = 0
                found.coef_pattern.append(-1)
            else:
                if np.size(leaf.coef) > 1 and np.shape(leaf.coef)[-2:] != (1, 1):
                    raise Unsupported("coefficient that is not a (batched) scalar")
                coef = coef_ids.get(id(leaf.coef))
                if coef is None:
                    coef = coef_ids[id(leaf.coef)] = len(found.coef_slots) + 1  # column 0 holds ones
                    found.coef_slots.append((name, i))
                    coef_first[coef] = len(found.factors)
                found.coef_pattern.append(coef_first[coef])
            found.factors.append(leaf.factors)
            entries.append((leaf.factors, tuple(indices), coef, leaf.sign))
        found.per_leaf[name] = entries
    return found


def _group_terms(per_leaf: dict, dense_names: set, second_order: bool) -> tuple[dict, list]:
    """Every term of every contribution, grouped by (block, partner); the plain-array contributions apart."""
    groups: dict[tuple[str, int], dict] = {}
    dense = []
    for block_name, source, sigma, power, sign in covariance_contributions(second_order):
        if source in dense_names:
            dense.append((block_name, sigma, power, sign, source))
            continue
        for factors, indices, coef, leaf_sign in per_leaf[source]:
            partner, x_spec, y_spec = _recipe(factors, sigma)
            group = groups.setdefault((block_name, partner), {"x": {}, "y": {}, "terms": []})
            ix = group["x"].setdefault(_spec_key(x_spec, indices), len(group["x"]))
            iy = group["y"].setdefault(_spec_key(y_spec, indices), len(group["y"]))
            group["terms"].append((ix, iy, coef, leaf_sign * sign, power))
    return groups, dense


def _class_plan(block_name: str, partner: int, group: dict, block: Any) -> ClassPlan:
    """The plan of one block and partner: its (x, y) pairs and where the packed entries come from."""
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
    return ClassPlan(
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
    )


def _stack_matrices(classes: list, shapes: dict[int, tuple[int, int]]) -> dict[tuple, list]:
    """The distinct matrices of all classes grouped by shape; sets each class's rows of those stacks."""
    stacks: dict[tuple, dict] = {}

    def place(keys: list) -> tuple[tuple, np.ndarray]:
        key_shapes = {_key_shape(key, shapes) for key in keys}
        if len(key_shapes) != 1:
            raise Unsupported("matrices of different shapes in one class")
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
    return {shape: list(registry) for shape, registry in stacks.items()}


def build_plan(p: int, k: int, sources: dict[str, list[Leaf]], dense_names: set, second_order: bool) -> Plan:
    """Analyse a call's terms: distinct operands and coefficients, the plan of every block and partner.

    Parameters
    ----------
    p, k : int
        Student and teacher widths.
    sources : dict
        Recorded leaves per moment (``"LL"``, ``"LN"``, ...) and per product of drifts (``"dQ*dR"``, ...).
    dense_names : set
        The moments that came back as plain arrays (network tables), packed as they are.
    second_order : bool

    Raises
    ------
    Unsupported
        If the terms are not the outer products the plan understands.
    """
    index = _index_terms(sources)
    groups, dense = _group_terms(index.per_leaf, dense_names, second_order)
    blocks = sigma_blocks(p, k)
    classes = [_class_plan(name, partner, group, blocks[name]) for (name, partner), group in groups.items()]
    offsets = np.cumsum([0] + [cp.pair_flat.size for cp in classes])
    term_offsets = np.cumsum([0] + [cp.coef_index.size for cp in classes])
    pointer = np.concatenate([cp.starts + start for cp, start in zip(classes, term_offsets)]
                             + [term_offsets[-1:]])
    shapes = {i: tuple(np.shape(sources[name][leaf].operands[j])[-2:])
              for i, (name, leaf, j) in enumerate(index.operand_slots)}
    stacks = _stack_matrices(classes, shapes)
    return Plan(classes, dense, index.operand_slots, index.coef_slots, np.array(index.slot_pattern, dtype=np.intp),
                np.array(index.coef_pattern, dtype=np.intp), tuple(index.factors),
                term_scale=np.concatenate([cp.scale for cp in classes]),
                term_power=np.concatenate([cp.power for cp in classes]),
                term_coef=np.concatenate([cp.coef_index for cp in classes]),
                pair_pointer=pointer.astype(np.intp),
                pair_offsets=[int(o) for o in offsets[:-1]],
                stacks=stacks,
                entrywise_shapes={shape for cp in classes if cp.use_pairs for shape in (cp.x_shape, cp.y_shape)})


def pair_weights(plan: Plan, eta: float) -> Any:
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


def same_layout(plan: Plan, leaves: list[Leaf]) -> bool:
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
