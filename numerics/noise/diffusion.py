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
deferred (:mod:`numerics.noise.traced_einsums`): every term is recorded (coefficient, subscripts, operands) instead of
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
(picked by operation count in :mod:`numerics.noise.covariance_plan`). With partner 1 both are taken
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

Why a run-time plan and not printed code: it is kept because it is measured faster than
the plain evaluation it replaces, ``pack_covariance(*increment_covariance(...))``, on the
same points (paper model, eta = 0.5, best of 5 interleaved repeats, 2-core VM, Dec 2026):
ratio traced / plain 0.19 (3.2 ms against 16 ms) at one point and 0.21 (8 ms against 38 ms)
for 300 points at p = 2, k = 1; 0.087 (1.9 ms against 21 ms) at one point and 0.015 (17 ms
against 1.1 s) for 100 points at p = 8, k = 1 (one BLAS thread; the default threads give
0.12, 0.22, 0.082, 0.014). The command that prints these rows is

    python -m bench --only covariance        (or: python -m bench.bench_covariance)

Modules: :mod:`numerics.noise.traced_einsums` records the terms,
:mod:`numerics.noise.covariance_plan` lays them out, :mod:`numerics.noise.packing` holds
the packed vector and the assembly of ``increment_covariance`` as terms; this module
evaluates (:class:`PackedCovariance`).

Safety: the deferred evaluation understands exactly the code the generator prints
(sums of ``_c4(c) * _einsum(...)`` over outer-product subscripts, with contracted
indices of size one). Anything else raises an internal error, and the first
evaluation for every model is compared with :func:`increment_covariance` at a
random point; on any mismatch or unsupported construct the evaluator falls back to
``increment_covariance`` (slow, with a :class:`RuntimeWarning`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from numerics.core.validation import check_flag, check_overlaps, check_scalar
from numerics.noise.covariance_plan import Plan, build_plan, materialise, pair_weights, same_layout
from numerics.noise.fluctuations import increment_covariance
from numerics.noise.packing import gather_dense, pack_covariance, packed_size, sigma_blocks
from numerics.noise.traced_einsums import (
    OUTER_PRODUCT,
    Deferred,
    Leaf,
    Output,
    Unsupported,
    deferred_functions,
    flatten_terms,
)
from numerics.noise.tuple_packing import tuple_packed_covariance
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, fluctuation_module, is_per_tuple, resolve

#: Relative agreement with ``increment_covariance`` required by the first-use self-check.
SELF_CHECK_RTOL = 1e-9
#: A cached layout is re-verified against the call's terms on its first calls and every this many.
VERIFY_EVERY = 32



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
        self.functions = deferred_functions(self.module)
        self._plans: dict[tuple, Plan] = {}
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
        except Unsupported as error:
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
        sources, dense = self._record(Q, R, T, resolved, second_order)
        key = (p, k, batch[0], np.ndim(T), second_order,
               tuple((n, len(v), n in dense) for n, v in sources.items()))
        plan = self._plans.get(key)
        leaves = [leaf for group in sources.values() for leaf in group]
        if plan is None or (plan.calls % VERIFY_EVERY == 0 or plan.calls < 4) and not same_layout(plan, leaves):
            plan = build_plan(p, k, sources, set(dense), second_order)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        plan.calls += 1
        return _assemble(plan, sources, dense, eta, p, k, batch)

    def _record(self, Q, R, T, resolved, second_order) -> tuple[dict[str, list[Leaf]], dict[str, np.ndarray]]:
        """The recorded terms of every moment and product of drifts; the moments that came back as arrays."""
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
        sources: dict[str, list[Leaf]] = {}
        for name, value in outputs.items():
            if isinstance(value, Output):
                sources[name] = flatten_terms(value.value)
            elif isinstance(value, Deferred):
                raise Unsupported("a moment returned without _full")
            else:
                dense[name] = np.asarray(value, dtype=float)
                sources[name] = []
        for name, (left, right) in drifts.items():
            sources[name] = [Leaf(OUTER_PRODUCT, (left, right))]
        return sources, dense


def _stacked_matrices(plan: Plan, sources: dict, batch: tuple) -> tuple[dict, dict]:
    """Every distinct matrix once, stacked per shape: ``first[shape]`` (B, matrices, entries), and for the
    classes summed entry-wise also with the replicas along contiguous rows: ``flat[shape]`` (matrices * entries, B).
    """
    nb = batch[0]
    operands = [sources[name][i].operands[j] for name, i, j in plan.operand_slots]
    first, flat = {}, {}
    for shape, keys in plan.stacks.items():
        mats = [materialise(spec, tuple(operands[i] for i in indices), batch) for spec, indices in keys]
        first[shape] = np.stack(mats, axis=1).reshape(nb, len(keys), -1)
        if shape in plan.entrywise_shapes:
            flat[shape] = np.ascontiguousarray(first[shape].reshape(nb, -1).T)
    return first, flat


def _assemble(plan: Plan, sources: dict, dense: dict, eta: float, p: int, k: int, batch: tuple) -> np.ndarray:
    """``Sigma`` (B, D, D) from a call's recorded terms laid out by ``plan`` (module docstring)."""
    nb = batch[0]
    coefs = [sources[name][i].coef for name, i in plan.coef_slots]
    # coefficient table: row 0 ones, then every distinct coefficient broadcast to the batch
    table = np.empty((len(coefs) + 1, nb))
    table[0] = 1.0
    for row, value in enumerate(coefs, start=1):
        table[row] = np.reshape(value, -1)
    blocks = sigma_blocks(p, k)
    D = packed_size(p, k)
    Sigma = np.zeros((nb, D, D))
    first, flat = _stacked_matrices(plan, sources, batch)
    restricted: dict[tuple, np.ndarray] = {}

    def entries(shape: tuple, index: np.ndarray | None) -> np.ndarray:
        if index is None:
            return first[shape]
        key = (shape, index.tobytes())
        if key not in restricted:
            restricted[key] = np.take(first[shape], index, axis=2)
        return restricted[key]

    all_weights = pair_weights(plan, eta) @ table  # (pairs of all classes, B)
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
        Sigma[:, block.row_slice, block.col_slice] += (sign * eta**power) * gather_dense(tensor, sigma, block)
    n_upper = p * (p + 1) // 2
    Sigma[:, n_upper:, :n_upper] = np.swapaxes(Sigma[:, :n_upper, n_upper:], 1, 2)
    return Sigma


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
        ``None`` is the paper model; activations of degree <= 4, or erf or relu units on both
        sides (:mod:`numerics.noise.tuple_packing`: erf students with erf or sign teachers, and relu
        networks up to ``p + k = 5`` units, as ``second_order`` says). With
        label flips (``Model(label_flip=epsilon)``) the covariance of the mixture of the teacher and
        its negative, from :func:`numerics.increment_covariance` (any model that has one).
    second_order : bool
        Keep the ``eta**2 E_j E_l`` part of ``q`` (polynomial models, erf networks, relu networks up
        to ``p + k = 5`` units).

    Returns
    -------
    Sigma : array, shape (..., D, D)
        ``D = p (p + 1) / 2 + p k``; symmetric positive semi-definite.
    """
    values = RunSettings.values(settings, setting_overrides, "packed_covariance")
    if values["sam_radius"]:
        raise ValueError(f"packed_covariance does not take sam_radius = {values['sam_radius']}: "
                         "the increment covariance of sharpness-aware steps is not derived")
    eta, model, second_order = (values[name] if name != "eta" or eta is None else eta
                                for name in ("eta", "model", "second_order"))
    # the covariance's own order: leading_order_noise drops the eta**3, eta**4 parts (RunSettings)
    second_order = bool(second_order) and not check_flag(values["leading_order_noise"], "leading_order_noise")
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
    per_tuple = is_per_tuple(resolved.module)
    if resolved.label_flip and not per_tuple:
        # the mixture of the teacher and its negative (numerics/noise/label_flips.py), from the blocks
        Sigma = pack_covariance(*increment_covariance(Qb, Rb, Tb, eta, model=model, second_order=second_order))
        return Sigma.reshape(batch + Sigma.shape[-2:])
    with np.errstate(over="raise", invalid="raise"):
        try:
            if per_tuple:
                # erf and relu networks (and sign teachers), straight into the packed layout
                Sigma = tuple_packed_covariance(resolved.module, Qb, Rb, Tb, eta, resolved.noise_variance,
                                                label_flip=resolved.label_flip, second_order=second_order)
            else:
                Sigma = packed_evaluator(model)(Qb, Rb, Tb, eta, resolved, second_order)
        except FloatingPointError:
            raise ValueError("packed_covariance: the overlaps are too large, the covariance overflows") from None
    D = packed_size(p, k)
    return Sigma.reshape(batch + (D, D))


__all__ = ["PackedCovariance", "pack_covariance", "packed_covariance", "packed_evaluator", "packed_size"]
