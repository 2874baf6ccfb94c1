"""Evaluate a :class:`numerics.kernels.network_plan.SharedPlan`: shared nodes once, each split by BLAS.

Per call: every node of the plan is evaluated once, in order (one ``einsum`` summing its
index out, or pairwise matrix products for large operands, :mod:`numerics.kernels.pairwise`);
then per average and split ``(H, S, S')`` the distinct products ``X_x`` (axes ``H + S``) and
``Y_y`` (axes ``H + S'``) are stacked and summed as

    out[h, s, s'] = sum_{x, y} M[x, y] X_x[h, s] Y_y[h, s'],      M = sum_t Delta**t M_t,

two matrix products: ``M`` applied to the smaller side first, stacked with the product number leading
so that this is one matrix product over the whole batch (a sparse one when ``M`` has few entries,
:data:`SPARSE_COUPLING`), then a batched one with the other side; an open residual index ``z``
(:data:`numerics.kernels.network_plan.OPEN`) joins the inner dimension of the second one. The larger
side is stacked a cache-sized chunk at a time (:data:`STACK_ENTRIES`). With an open index, the X that share
their factors without it are summed as a group and those factors multiply the group's sum once
(:class:`numerics.kernels.network_plan.OpenGroups`, :data:`MIN_GROUP_SIZE`). The batch axes are flattened to
one while evaluating.

BLAS runs on one thread inside :meth:`SharedEvaluator.evaluate` (:func:`numerics.core.blas.limited`):
the route makes thousands of small matrix products, and waking a second thread for each cost more
CPU than it saved (the quartic moments at p = 8, k = 1 over 10 points took several times longer
with two threads than with one on the shared two-core benchmark machine, ``python -m bench --only noise``).
"""

from __future__ import annotations

import itertools
from math import prod

import numpy as np
from scipy import sparse

from numerics.core.blas import limited
from numerics.kernels.network_operands import UNIT, NetworkOperands
from numerics.kernels.network_plan import OPEN, SUMMED, Node, OpenGroups, SharedPlan, SplitTerms
from numerics.kernels.pairwise import fold, fold_plan, run_plan

#: Letters of the output axes 0-3 and the open residual index (position 4).
OUTPUT_LETTERS = "jlihz"
#: Letters of a node's axes and of its summed index.
NODE_LETTERS, NODE_SUMMED = "abcdefg", "z"
#: Nodes with more operands than two and more multiply-adds than this (batch included) are
#: contracted pairwise by matrix products; below, one ``einsum`` (fewer calls).
NODE_MATMUL_THRESHOLD = 200_000
#: Below that, nodes with more operands than two and more multiply-adds than this are one broadcast product
#: and one matrix product (:func:`_small_node`); below this, one ``einsum`` (fewer calls).
NODE_EINSUM_THRESHOLD = 30_000
#: Entries of one stack of products (batch included) above which the side stacked last is stacked in chunks.
#: A chunk of 4 MB stays in the cache while its products are written (with an open index a few entries at a
#: time) and read back by the matrix product: against 2**22 entries (32 MB), the quartic moments at p = 8, k = 1
#: over 10 points took 0.77x the time and He3's over 100 points 0.90x (2**20: 0.86x, 0.94x; 2**18: 0.79x, 0.96x;
#: 2**16: 0.89x, 1.47x, the matrix products then too small), one BLAS thread, same process.
STACK_ENTRIES = 2**19
#: Where :func:`_stack` puts the product number: last but one (next to the open index), or first.
MINOR, LEADING = "minor", "leading"
#: A split's coupling ``M`` is applied as a sparse matrix when its nonzero entries times this are fewer than its
#: entries: one pass over a stack's row per nonzero entry (memory bound) against a dense matrix product. Measured
#: on the quartic tables' couplings (one BLAS thread): 174 x 356 with 589 entries, 46 080 columns: 0.062 s
#: sparse, 0.19 s dense; 1341 x 53 with 1 586 entries, 720 columns: 0.7 ms against 3.3 ms; 60 x 32 with 129
#: entries, 51 200 columns: the same either way.
SPARSE_COUPLING = 30
#: An open split's X that share their factors without the open index, this many or more, are a group whose shared
#: factors multiply its sum once (:class:`OpenGroups`); the others keep them.
MIN_GROUP_SIZE = 4


class SharedEvaluator:
    """Evaluates a shared plan's averages (before the free symmetrisation), flat batch axis first.

    Parameters
    ----------
    plan : SharedPlan
    """

    def __init__(self, plan: SharedPlan) -> None:
        self.plan = plan
        self._node_subscripts = [_node_subscripts(node) for node in plan.nodes]
        self._node_folds: dict[tuple[int, int, int], list] = {}  # (node, p, k) -> pairwise plan
        self._weights: dict[tuple[int, float], list[np.ndarray]] = {}  # (id of split terms, Delta) -> M
        self._recipes: dict[tuple, list] = {}
        self._needed_nodes: dict[tuple[str, ...], list[int]] = {}  # (id of split terms, side, p, k) -> product recipes
        self._groups: dict[int, OpenGroups | None] = {}  # id of split terms -> its X grouped, or None

    def evaluate(self, names, operands: NetworkOperands, delta: float) -> dict[str, np.ndarray]:
        """``{name: sum of the orbit representatives}``, each of shape (B, sizes of the output axes).

        ``operands`` hold a flat batch: ``C`` of shape (B, p + k, p + k). BLAS is held to one thread meanwhile.
        """
        with limited(1):
            return self._evaluate(names, operands, delta)

    def _evaluate(self, names, operands: NetworkOperands, delta: float) -> dict[str, np.ndarray]:
        values = self._evaluate_nodes(operands, self._needed(tuple(names)))
        out = {}
        for name in names:
            average = self.plan.averages[name]
            sizes = tuple(operands.sizes[kind] for kind in average.kinds)
            batch = operands.C.shape[0]
            # the splits' sums are added in their own axis order (contiguous), each order moved to the
            # output order once: a strided addition per split would cost more than the split's products
            by_order: dict[tuple[int, ...], np.ndarray] = {}
            for terms in average.splits:
                part, axes = self._split_sum(terms, average.kinds, operands, values, delta)
                if axes in by_order:
                    by_order[axes] += part
                else:
                    by_order[axes] = part
            total = np.zeros((batch,) + sizes)
            for axes, part in by_order.items():
                total += np.transpose(part, (0,) + tuple(1 + axes.index(a) for a in range(len(sizes))))
            out[name] = total
        return out

    def _needed(self, names: tuple[str, ...]) -> list[int]:
        """The nodes the averages ``names`` use, directly or through other nodes (in evaluation order)."""
        needed = self._needed_nodes.get(names)
        if needed is None:
            found: set[int] = set()
            stack = [key[1] for name in names for terms in self.plan.averages[name].splits
                     for half in terms.x_keys + terms.y_keys for key, _ in half if key[0] == "I"]
            while stack:
                index = stack.pop()
                if index not in found:
                    found.add(index)
                    stack.extend(key[1] for key, _ in self.plan.nodes[index].operands if key[0] == "I")
            needed = self._needed_nodes[names] = sorted(found)
        return needed

    def _evaluate_nodes(self, operands: NetworkOperands, needed: list[int]) -> dict[tuple, np.ndarray]:
        values: dict[tuple, np.ndarray] = {}
        p, k = operands.p, operands.k
        for index in needed:
            node = self.plan.nodes[index]
            arrays = [_operand_array(key, operands, values) for key, _ in node.operands]
            subscripts, terms, output = self._node_subscripts[index]
            work = operands.C.shape[0] * (p + k) * prod(operands.sizes[kind] for kind in node.kinds)
            if len(arrays) > 2 and work * len(arrays) > NODE_MATMUL_THRESHOLD:
                folds = self._node_folds.get((index, p, k))
                if folds is None:
                    sizes = {NODE_SUMMED: p + k, **{NODE_LETTERS[n]: operands.sizes[kind]
                                                    for n, kind in enumerate(node.kinds)}}
                    folds = self._node_folds[(index, p, k)] = fold_plan(terms, output, sizes)
                values[("I", index)] = run_plan(arrays, terms, folds, output, 1)
            elif len(arrays) > 2 and work * len(arrays) > NODE_EINSUM_THRESHOLD:
                values[("I", index)] = _small_node(arrays, terms, output)
            else:
                values[("I", index)] = np.einsum(subscripts, *arrays)
        return values

    def _split_sum(self, terms: SplitTerms, kinds: tuple[str, ...], operands: NetworkOperands,
                   values: dict[tuple, np.ndarray], delta: float) -> tuple[np.ndarray, tuple[int, ...]]:
        """``sum_{x, y} M_xy X_x Y_y`` over one split and its axes: shape (B, sizes of those axes in that order).

        The array is the caller's to modify (a new one per call).
        """
        shared, left, right = terms.split
        size_of = {axis: operands.sizes[kind] for axis, kind in enumerate(kinds)}
        size_of[OPEN] = operands.sizes[UNIT]
        batch = operands.C.shape[0]
        inner = (OPEN,) if terms.open else ()
        x_recipes = self._recipes.setdefault((id(terms), "x", operands.p, operands.k), [])
        y_recipes = self._recipes.setdefault((id(terms), "y", operands.p, operands.k), [])
        M = self._coupling(terms, delta)
        if not right and not shared:
            # whole products (no split separates them): accumulated one at a time, never stacked
            weights = np.asarray(M.sum(axis=1)).reshape(-1)
            return _weighted_sum(terms.x_keys, weights, left + inner, size_of, operands, values, batch,
                                 x_recipes), left
        h = prod(size_of[a] for a in shared)
        s, t, z = (prod(size_of[a] for a in axes) for axes in (left, right, inner))
        n_x, n_y = len(terms.x_keys), len(terms.y_keys)
        # the larger side is stacked with the product number next to the open index, so that both enter the
        # matrix product without a copy (only the smaller, weighted side is reordered); without an open index
        # with the product number leading: each product is then written contiguously, which costs about half
        # as much per entry as writing it strided, and BLAS takes the stack as a strided matrix
        minor = z > 1
        if not x_recipes:
            x_recipes.extend(product_recipe(factors, shared + left + inner, size_of) for factors in terms.x_keys)
        groups = self._open_groups(terms) if minor and t <= s else None
        if groups is not None:
            # Y first, as below; the X grouped by their factors without the open index, pulled out of its sum
            Y = _stack(terms.y_keys, shared, right + inner, size_of, operands, values, batch, y_recipes, LEADING)
            return self._grouped_sum(terms, groups, Y.reshape(n_y, batch * h * t * z), delta, operands, values,
                                     size_of), shared + left + right
        if t <= s:  # M on the smaller side (Y) first; the X are stacked a chunk at a time (a stack of thousands
            # of three-axis products would not fit in the caches, or in memory)
            # Y with the product number leading: M applied to all of it is one matrix product (n_x, n_y) x
            # (n_y, B h t z), not B h small ones whose inner dimension is t z
            Y = _stack(terms.y_keys, shared, right + inner, size_of, operands, values, batch, y_recipes, LEADING)
            Y = Y.reshape(n_y, batch * h * t * z)
            chunk = max(1, STACK_ENTRIES // (batch * h * s * z))
            out = np.zeros((batch, h, s, t))
            for start in range(0, n_x, chunk):
                stop = min(n_x, start + chunk)
                X = _stack(terms.x_keys[start:stop], shared, left + inner, size_of, operands, values, batch,
                           x_recipes[start:stop], MINOR if minor else LEADING)
                weighted_Y = _rows_times(M, start, stop, Y).reshape(stop - start, batch, h, t, z)
                out += _side_matrix(X, stop - start, batch, h, s, z) @ _leading_side(weighted_Y, transpose=True)
        else:
            X_weighted = None
            chunk = max(1, STACK_ENTRIES // (batch * h * s * z))
            for start in range(0, n_x, chunk):
                stop = min(n_x, start + chunk)
                X = _stack(terms.x_keys[start:stop], shared, left + inner, size_of, operands, values, batch,
                           x_recipes[start:stop], LEADING).reshape(stop - start, batch * h * s * z)
                part = _rows_times(M, start, stop, X, transpose=True)
                X_weighted = part if X_weighted is None else X_weighted + part
            X_weighted = X_weighted.reshape(n_y, batch, h, s, z)
            # the Y are stacked a chunk at a time too: with an open index a whole stack of thousands of
            # three-axis products would be hundreds of megabytes written a few entries at a time
            if not y_recipes:
                y_recipes.extend(product_recipe(factors, shared + right + inner, size_of) for factors in terms.y_keys)
            chunk = max(1, STACK_ENTRIES // (batch * h * t * z))
            out = np.zeros((batch, h, s, t))
            for start in range(0, n_y, chunk):
                stop = min(n_y, start + chunk)
                Y = _stack(terms.y_keys[start:stop], shared, right + inner, size_of, operands, values, batch,
                           y_recipes[start:stop], MINOR if minor else LEADING)
                out += (_leading_side(X_weighted[start:stop], transpose=False)
                        @ np.swapaxes(_side_matrix(Y, stop - start, batch, h, t, z), -1, -2))
        axes = shared + left + right
        return out.reshape((batch,) + tuple(size_of[a] for a in axes)), axes

    def _open_groups(self, terms: SplitTerms) -> OpenGroups | None:
        """The split's X grouped by their factors without the open index (:class:`OpenGroups`, groups of
        :data:`MIN_GROUP_SIZE` products or more), or None when no such group has any."""
        key = id(terms)
        if key not in self._groups:
            groups = OpenGroups(terms.x_keys, MIN_GROUP_SIZE)
            self._groups[key] = groups if any(groups.free_keys) else None
        return self._groups[key]

    def _grouped_sum(self, terms: SplitTerms, groups: OpenGroups, Y: np.ndarray, delta: float,
                     operands: NetworkOperands, values: dict[tuple, np.ndarray], size_of: dict[int, int]) -> np.ndarray:
        """``sum_g A_g[h, s] sum_{x in g} sum_z Z_x[h, s, z] (M Y)_x[h, t, z]``: shape (B, h, s, t).

        ``A_g`` is the product of group g's factors without the open index, ``Z_x`` of product x's others
        (:class:`OpenGroups`); ``Y`` is the stack (n_y, B h t z) of the split's Y. Each ``X_x = A_g Z_x`` would
        be one broadcast multiplication of the whole product more than ``Z_x``, ``A_g`` multiplies the group's
        (B, h, s, t) sum once.
        """
        shared, left, right = terms.split
        batch = operands.C.shape[0]
        h, s, t = (prod(size_of[a] for a in axes) for axes in (shared, left, right))
        z = size_of[OPEN]
        M = self._coupling(terms, delta, groups)
        p, k = operands.p, operands.k
        open_recipes = self._recipes.setdefault((id(terms), "open", p, k), [])
        free_recipes = self._recipes.setdefault((id(terms), "free", p, k), [])
        if not open_recipes:
            order = shared + left + (OPEN,)
            open_recipes.extend(product_recipe(factors, order, size_of) for factors in groups.open_keys)
            free_recipes.extend(product_recipe(factors, shared + left, size_of) for factors in groups.free_keys)
        chunk = max(1, STACK_ENTRIES // (batch * h * s * z))
        out = np.zeros((batch, h, s, t))
        for group, (first, last) in enumerate(zip(groups.bounds[:-1], groups.bounds[1:])):
            part = None
            for start in range(first, last, chunk):
                stop = min(last, start + chunk)
                X = _stack(groups.open_keys[start:stop], shared, left + (OPEN,), size_of, operands, values, batch,
                           open_recipes[start:stop], MINOR)
                weighted_Y = _rows_times(M, start, stop, Y).reshape(stop - start, batch, h, t, z)
                product = _side_matrix(X, stop - start, batch, h, s, z) @ _leading_side(weighted_Y, transpose=True)
                part = product if part is None else part + product
            if groups.free_keys[group]:
                free = _stack(groups.free_keys[group:group + 1], shared, left, size_of, operands, values, batch,
                              free_recipes[group:group + 1], LEADING)
                part *= free.reshape(batch, h, s, 1)
            out += part
        return out.reshape((batch,) + tuple(size_of[a] for a in shared + left + right))

    def _coupling(self, terms: SplitTerms, delta: float,
                  groups: OpenGroups | None = None) -> np.ndarray | sparse.csr_array:
        """``M = sum_t Delta**t M_t`` (n_x, n_y), cached per split and Delta; sparse (CSR) when it has few entries
        (:data:`SPARSE_COUPLING`). With ``groups`` its rows in the groups' order (``groups.order``)."""
        key = (id(terms), float(delta), groups is not None)
        M = self._weights.get(key)
        if M is None:
            M = np.zeros((len(terms.x_keys), len(terms.y_keys)))
            for (x, y), weights in terms.entries.items():
                M[x, y] = sum(weight * delta**power for power, weight in weights.items())
            if groups is not None:
                M = M[groups.order]
            if np.count_nonzero(M) * SPARSE_COUPLING < M.size:
                M = sparse.csr_array(M)
            if len(self._weights) > 256:
                self._weights.clear()
            self._weights[key] = M
        return M


def _rows_times(M: np.ndarray | sparse.csr_array, start: int, stop: int, stack: np.ndarray,
                transpose: bool = False) -> np.ndarray:
    """``M[start:stop] @ stack`` with ``stack`` (n_y, columns): shape (stop - start, columns); with ``transpose``
    ``M[start:stop].T @ stack`` with ``stack`` (stop - start, columns): shape (n_y, columns)."""
    rows = M[start:stop]
    return rows.T @ stack if transpose else rows @ stack


def _side_matrix(stack: np.ndarray, n: int, batch: int, h: int, size: int, z: int) -> np.ndarray:
    """One side of a split's matrix product, shape (B, h, size, n * z), from a stack of its ``n`` products.

    ``stack`` is laid out by :func:`_stack` as :data:`MINOR` (B, h..., size..., n, z) with an open index
    (``z > 1``) and as :data:`LEADING` (n, B, h..., size...) without; a view either way.
    """
    if z > 1:
        return stack.reshape(batch, h, size, n * z)
    return stack.reshape(n, batch, h, size).transpose(1, 2, 3, 0)


def _leading_side(weighted: np.ndarray, transpose: bool) -> np.ndarray:
    """One side of a split's matrix product from weighted products with the product number leading.

    ``weighted`` is (n, B, h, size, z); returns (B, h, size, n * z), or with ``transpose`` (B, h, n * z, size).
    Without an open index (z = 1) a view, else one copy.
    """
    n, batch, h, size, z = weighted.shape
    if z == 1:
        matrix = weighted.reshape(n, batch, h, size).transpose(1, 2, 3, 0)
    else:
        matrix = weighted.transpose(1, 2, 3, 0, 4).reshape(batch, h, size, n * z)
    return np.swapaxes(matrix, -1, -2) if transpose else matrix


def _operand_array(key: tuple, operands: NetworkOperands, values: dict[tuple, np.ndarray]) -> np.ndarray:
    """The array of an operand key: a node's value, or an edge block or vertex vector (kept in ``values``)."""
    found = values.get(key)
    if found is None:
        if key[0] == "E":
            found = operands.edge(key[2][0], key[2][1], key[1])
        else:
            found = operands.vector(key[1], key[2], key[3])
        values[key] = found
    return found


class ViewSpec:
    """An operand key and its view ``(permutation, layout)``, hashed by identity (one object per distinct pair,
    :func:`view_spec`): the per-call lookups of the thousands of views then cost no hashing of nested tuples."""

    __slots__ = ("key", "view")

    def __init__(self, key: tuple, view: tuple) -> None:
        self.key, self.view = key, view


_SPECS: dict[tuple, ViewSpec] = {}


def view_spec(key: tuple, view: tuple) -> ViewSpec:
    """The one :class:`ViewSpec` of ``(key, view)``."""
    found = _SPECS.get((key, view))
    if found is None:
        found = _SPECS[(key, view)] = ViewSpec(key, view)
    return found


def _view(spec: ViewSpec, operands: NetworkOperands, values: dict) -> np.ndarray:
    """An operand's array with its axes permuted and size-one axes where it has none (kept in ``values``)."""
    found = values.get(spec)
    if found is None:
        permutation, layout = spec.view
        index = (slice(None),) + tuple(slice(None) if present else None for present in layout)
        found = values[spec] = _operand_array(spec.key, operands, values).transpose(permutation)[index]
    return found


def _small_node(arrays: list[np.ndarray], terms: list[str], output: str) -> np.ndarray:
    """A node of three or more operands, ``sum_z prod operands``, as one product of all operands but the
    widest, broadcast over their letters (``z`` last), and one matrix product with the widest over ``z``.

    ``arrays`` carry one batch axis first, ``terms`` their letters (every one holds ``z``); returns
    (B, sizes of ``output``). A multi-operand ``einsum`` loops over every letter at once without BLAS: for
    ``sum_z A_az B_bz C_cz w_z`` at p = 8, k = 1 over 10 points it took 0.20 ms, this 0.018 ms.
    """
    last = max(range(len(terms)), key=lambda n: (len(terms[n]), -n))
    letters = "".join(sorted(set("".join(t for n, t in enumerate(terms) if n != last)) - {NODE_SUMMED}))
    letters += NODE_SUMMED
    product = None
    for n, (array, term) in enumerate(zip(arrays, terms)):
        if n == last:
            continue
        permutation = (0,) + tuple(1 + term.index(c) for c in letters if c in term)
        view = array.transpose(permutation)[(slice(None),) + tuple(slice(None) if c in term else None
                                                                     for c in letters)]
        product = view if product is None else product * view
    result, kept = fold(product, letters, arrays[last], terms[last], output, 1)
    return np.transpose(result, (0,) + tuple(1 + kept.index(c) for c in output))


def _node_subscripts(node: Node) -> tuple[str, list[str], str]:
    """The node's einsum subscripts (batch axes ``...``), its operands' letters and its output letters."""
    terms = ["".join(NODE_SUMMED if p == SUMMED else NODE_LETTERS[p] for p in positions)
             for _, positions in node.operands]
    output = NODE_LETTERS[: len(node.kinds)]
    return ",".join("..." + t for t in terms) + "->..." + output, terms, output


def product_recipe(factors: tuple, order: tuple[int, ...], size_of: dict[int, int]) -> tuple[list, list]:
    """How to multiply a half's factors into an array on the axes ``order``.

    Returns ``(views, merges)``: per factor its :class:`ViewSpec`, the axis permutation and which
    axes of ``order`` it has (it gets size-one axes for the others, :func:`_view`), and the pairwise products, the
    two operands whose result has the fewest entries first (so that small factors meet
    before they are broadcast to the whole half).
    """
    views = []
    supports = []
    for key, positions in factors:
        ranked = sorted(range(len(positions)), key=lambda n: order.index(positions[n]))
        present = {positions[n] for n in ranked}
        layout = tuple(a in present for a in order)
        views.append(view_spec(key, ((0,) + tuple(1 + n for n in ranked), layout)))
        supports.append(present)
    merges = []
    alive = list(range(len(factors)))
    while len(alive) > 1:
        i, j = min(itertools.combinations(alive, 2),
                   key=lambda pair: (prod(size_of[a] for a in supports[pair[0]] | supports[pair[1]]), pair))
        merges.append((i, j))
        supports.append(supports[i] | supports[j])
        alive = [n for n in alive if n not in (i, j)] + [len(supports) - 1]
    return views, merges


def _weighted_sum(keys: list, weights: np.ndarray, axes: tuple, size_of: dict, operands: NetworkOperands,
                  values: dict[tuple, np.ndarray], batch: int, recipes: list) -> np.ndarray:
    """``sum_x weights[x] X_x`` over products on all output axes (and the open index, summed): (B, sizes)."""
    if not recipes:
        recipes.extend(product_recipe(factors, axes, size_of) for factors in keys)
    out = np.zeros((batch,) + tuple(size_of[a] for a in axes if a != OPEN))
    for weight, (views, merges) in zip(weights, recipes):
        if weight == 0.0:
            continue
        arrays = [_view(spec, operands, values) for spec in views]
        arrays[0] = weight * arrays[0]  # the scalar on the first (smallest-first order keeps it cheap) factor
        for i, j in merges:
            arrays.append(arrays[i] * arrays[j])
        product = np.broadcast_to(arrays[-1], out.shape + ((size_of[OPEN],) if OPEN in axes else ()))
        out += product.sum(axis=-1) if OPEN in axes else product
    return out


def _stack(keys: list, shared: tuple, axes: tuple, size_of: dict, operands: NetworkOperands,
           values: dict[tuple, np.ndarray], batch: int, recipes: list, layout: str) -> np.ndarray:
    """The products of ``keys`` on the axes ``shared + axes``, the product number's axis placed by ``layout``:
    :data:`MINOR` (B, shared sizes, axes sizes but the last, len(keys), last axis size) or :data:`LEADING`
    (len(keys), B, shared sizes, axes sizes).

    ``recipes`` are the :func:`product_recipe` of every key (filled on the first call).
    """
    order = shared + axes
    sizes = tuple(size_of[a] for a in order)
    if layout == LEADING:
        stack = np.empty((len(keys), batch) + sizes)
        rows = stack  # rows[index]: the product number index, contiguous
    else:
        stack = np.empty((batch,) + sizes[:-1] + (len(keys),) + sizes[-1:])
        rows = np.moveaxis(stack, -2, 0)  # rows[index]: the product number index, a view into the stack
    if not recipes:
        recipes.extend(product_recipe(factors, order, size_of) for factors in keys)
    for index, (factors, (views, merges)) in enumerate(zip(keys, recipes)):
        target = rows[index]
        if not factors:
            target[...] = 1.0
            continue
        arrays = [_view(spec, operands, values) for spec in views]
        if not merges:
            target[...] = arrays[0]
            continue
        for i, j in merges[:-1]:
            arrays.append(arrays[i] * arrays[j])
        i, j = merges[-1]
        np.multiply(arrays[i], arrays[j], out=target)  # the last product straight into the stack
    return stack


__all__ = ["NODE_MATMUL_THRESHOLD", "SharedEvaluator"]
