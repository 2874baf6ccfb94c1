"""Exact one-pass SGD at finite input dimension N, many replicas at once.

The update is the one of ``docs/model.md``: at step ``mu`` a fresh ``x ~ N(0, I_N)``
(and label noise ``xi ~ N(0, 1)``) is drawn and every student row moves by

    w_j <- w_j + (eta / sqrt(N)) E_j x - (eta * kappa / N) w_j,
    E_j = (y - f) a sigma'(lambda_j),  y = sum_r b sigma*(nu_r) + sqrt(Delta) xi,

with the activations, readouts, Delta and kappa of the model (read from its
generated module, so every model of the derive family works). The order
parameters are measured from the weights only at the recorded steps.

Seeding: replica ``i`` owns the seed sequence ``replica_seeds(seed, B)[i]``;
from it three independent generators are spawned, for the initial weights,
the inputs and the label noise (:func:`replica_streams`). A replica therefore
follows the same trajectory whether it is simulated alone
(``seed=[replica_seeds(seed, B)[i]]``) or together with others.

Cost: the steps are processed in blocks of ``s`` (:data:`STEP_BLOCK`). Within
a block the student weights are ``W_t = d^t W_0 + sum_{tau < t} d^(t-1-tau) e_tau x_tau^T``
(``d`` the weight-decay factor, ``e_tau`` the step's update vector), so

    lambda_t = (d^t W_0 x_t + sum_{tau < t} d^(t-1-tau) e_tau (x_tau . x_t)) / sqrt(N):

one product ``X [W_0; W*; X]^T`` per replica gives the student and teacher
pre-activations of the block's ``s`` inputs ``X`` and their Gram matrix (the
inputs are drawn into the same array as the weights, and used while they are
still in cache); after the sequential ``O(p s**2)`` recursion for the ``e_t``
(batched over replicas), one in-place BLAS update ``W += e X``. That is two
matrix-matrix products per block instead of ``2 s`` matrix-vector passes over
``W`` and a temporary. The squared student norms (divergence check) follow
from the same products. The per-step Python work does not grow with N.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.linalg.blas import dgemm as _gemm

from numerics.core.activations import activation_functions
from numerics.core.blas import with_blas_threads
from numerics.core.validation import (
    as_real_array,
    check_flag,
    check_int,
    check_scalar,
    check_symmetric,
)
from numerics.kernels.unit_tuples import readout_vectors
from numerics.ode.readouts import check_readout_batch, check_readouts
from numerics.results.persist import IntegrationResult
from numerics.runtime.registry import resolve, tuple_module
from numerics.simulators.common import (
    BLOWUP,
    MAX_STEPS,
    SimulationError,
    as_seed_sequence,
    check_count,
    record_steps,
    replica_streams,
)
from numerics.simulators.replicas import replica_result

#: Steps per block (see the module docstring). The block products cost (p + k + s) N
#: multiplies per step and the update p N, so the Gram part grows with s; a few steps are
#: enough to amortise the per-block NumPy calls (s = 2 ... 16 time the same within noise).
STEP_BLOCK = 8
#: A progress bar is shown when more than this many steps times replicas times N are simulated.
PROGRESS_WORK = 2e8














def orthonormal_rows(rng: np.random.Generator, rows: int, N: int) -> np.ndarray:
    # QR of a Gaussian N x rows matrix: Haar-distributed orthonormal columns (signs fixed by R's diagonal).
    gaussian = rng.standard_normal((N, rows))
    q, r = np.linalg.qr(gaussian)
    return (q * np.sign(np.diagonal(r))).T


def weights_from_overlaps(
    Q0: np.ndarray, R0: np.ndarray, *, N: int, seed: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Student and teacher weights at dimension ``N`` with exactly the overlaps ``Q0``, ``R0`` and ``T = I``.

    Useful to start a simulation from a chosen (e.g. macroscopic, N-independent)
    teacher-student overlap instead of the random ``O(1/sqrt(N))`` one.

    Parameters
    ----------
    Q0 : array, shape (p, p)
        Student-student overlaps; ``Q0 - R0 R0^T`` must be positive semi-definite.
    R0 : array, shape (p, k)
    N : int
        Input dimension, ``>= p + k``.
    seed : None, int or SeedSequence
        Randomness of the orthonormal directions.

    Returns
    -------
    W0 : array, shape (p, N)
    W_star : array, shape (k, N)
        ``W0 W0^T / N = Q0``, ``W0 W_star^T / N = R0``, ``W_star W_star^T / N = I``.
    """
    Q0 = as_real_array(Q0, "Q0")
    R0 = as_real_array(R0, "R0")
    if Q0.ndim != 2 or Q0.shape[0] != Q0.shape[1] or R0.ndim != 2 or R0.shape[0] != Q0.shape[0]:
        raise ValueError(f"Q0 must have shape (p, p) and R0 (p, k); got {Q0.shape} and {R0.shape}")
    p, k = R0.shape
    if p < 1 or k < 1:
        raise ValueError(f"p and k must be >= 1, got Q0 of shape {Q0.shape} and R0 of shape {R0.shape}")
    # a non-symmetric Q0 would be replaced silently by its symmetric part below
    check_symmetric(Q0, "Q0")
    N = check_count(N, "N", p + k)
    rest = Q0 - R0 @ R0.T
    eigenvalues, vectors = np.linalg.eigh((rest + rest.T) / 2)
    if eigenvalues[0] < -1e-10 * max(1.0, float(np.max(np.abs(Q0)))):
        raise ValueError(f"Q0 - R0 R0^T must be positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g})")
    factor = vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    rng = np.random.default_rng(as_seed_sequence(seed, "seed"))
    basis = np.sqrt(N) * orthonormal_rows(rng, p + k, N)
    W_star = basis[:k]
    return R0 @ W_star + factor @ basis[k:], W_star




def _check_weights(value: object, name: str, rows: int, N: int, replicas: int) -> np.ndarray:
    array = as_real_array(value, name)
    if array.shape == (rows, N):
        array = np.broadcast_to(array, (replicas, rows, N))
    elif array.shape != (replicas, rows, N):
        raise ValueError(
            f"{name} must have shape ({rows}, {N}) or (replicas, {rows}, {N}) = ({replicas}, {rows}, {N}), "
            f"got {array.shape}"
        )
    return np.array(array, dtype=np.float64, order="C")








@with_blas_threads(lambda bound: bound.arguments["p"] + bound.arguments["k"])
def simulate(
    *,
    N: int,
    p: int,
    k: int,
    eta: float,
    alpha_max: float,
    model: Any = None,
    q0: float = 1.0,
    seed: Any = None,
    replicas: int = 1,
    record: int | Sequence[float] | np.ndarray = 200,
    W0: np.ndarray | None = None,
    W_star: np.ndarray | None = None,
    progress: bool = True,
    method: str = "weights",
    Q0: np.ndarray | None = None,
    R0: np.ndarray | None = None,
    T: np.ndarray | None = None,
    batch_size: int = 1,
    a: np.ndarray | None = None,
    b: np.ndarray | None = None,
    eta_a: float = 0.0,
) -> IntegrationResult:
    """One-pass SGD of the student at input dimension ``N``, measuring the overlaps.

    Parameters
    ----------
    N : int
        Input dimension (``>= p + k``).
    p, k : int
        Student and teacher widths.
    eta : float
        Learning rate (> 0).
    alpha_max : float
        Final time; ``round(alpha_max * N)`` steps are made.
    model : derive.Model, optional
        ``None`` is the paper's model.
    q0 : float
        Initial squared student norm divided by N (used when ``W0`` is not given).
    seed : None, int, SeedSequence, or sequence of ``replicas`` of those
        See :func:`replica_seeds`; replica ``i`` uses the generators of
        :func:`replica_streams`.
    replicas : int
        Independent runs simulated together (batched linear algebra).
    record : int or array of alphas
        Where the overlaps are measured (see :func:`record_steps`); default
        200 log-spaced points.
    W0 : array, shape (p, N) or (replicas, p, N), optional
        Initial student weights. Default: ``p`` orthonormal rows scaled to
        norm ``sqrt(q0 N)``, drawn independently of the teacher, so that
        ``R(0)`` has i.i.d. entries of variance ~ ``q0 / N`` (paper Sec. 4).
    W_star : array, shape (k, N) or (replicas, k, N), optional
        Teacher weights. Default: ``k`` orthonormal rows scaled to norm ``sqrt(N)``
        (``T = I``).
    progress : bool
        Show a tqdm progress bar on long runs.
    method : {"weights", "overlaps"}
        ``"weights"`` simulates the N-dimensional weights (this function);
        ``"overlaps"`` runs the exact Markov chain of the overlaps
        (:func:`numerics.simulators.overlap_chain.simulate_overlaps`: same law, cost per step
        independent of N, no weights in ``extra``).
    Q0, R0, T : arrays, optional
        Start overlaps for ``method="overlaps"`` only (see there).
    batch_size : int
        Mini-batch size ``B >= 1``: each step averages the update over ``B``
        fresh samples, ``w_j <- w_j + (eta / (B sqrt(N))) sum_b E_j^b x^b``
        (weight decay once per step); ``alpha`` counts steps / N, so a run
        draws ``B * alpha_max * N`` inputs (docs/model.md).
    a : array, shape (p,) or (replicas, p), optional
        Per-unit student readouts (default: the model's scalar readout), the
        start when ``eta_a > 0``.
    b : array, shape (k,) or (replicas, k), optional
        Per-unit teacher readouts.
    eta_a : float
        Learning rate of the student readout (>= 0, default 0: fixed). Each step
        also makes ``a_j <- a_j + (eta_a / N) (y - f) sigma(lambda_j)`` with the
        same sample, averaged over the step's samples for a mini-batch
        (docs/model.md). ``method="weights"`` only.
    blas_threads : "auto", int or None
        BLAS threads during the simulation (see :mod:`numerics.core.blas`):
        ``"auto"`` (default) pins BLAS to one thread when ``p + k <= 2048``;
        an integer sets the limit; ``None`` leaves BLAS as configured.

    Returns
    -------
    IntegrationResult
        ``alpha`` (n,) = recorded steps / N; ``Q`` (B, n, p, p), ``R`` (B, n, p, k),
        ``risk`` (B, n) (population risk of the measured overlaps, generated
        ``residual_risk`` plus ``Delta / 2``), ``T`` (B, k, k) measured from the
        teacher. The replica axis ``B`` is dropped when ``replicas == 1``.
        ``extra`` holds ``"W"`` (final student weights, shape (B, p, N) or
        (p, N)), ``"W_star"`` (teacher, same convention), ``"N"``, ``"steps"``
        (recorded step indices), ``"replicas"``, ``"model"`` (the model object
        passed) and ``"seconds"`` (wall time of the SGD loop). ``nfev`` is
        the number of SGD steps. With readout vectors or ``eta_a > 0``,
        ``a`` holds the student readout at the recorded steps, shape
        (B, n, p) (or (n, p)), and ``b`` the teacher readout given.
        Activations: polynomials, erf and relu (evaluated with
        ``scipy.special.erf`` and ``max(z, 0)``).

    Raises
    ------
    ValueError
        Bad arguments (``N < p + k``, ``eta <= 0``, ``replicas < 1``, weights
        with the wrong shape or non-finite entries, ...).
    SimulationError
        If the weights diverge (learning rate too large), naming the alpha reached.
    """
    batch = check_int(batch_size, "batch_size", minimum=1)
    if method == "overlaps":
        from numerics.simulators.overlap_chain import simulate_overlaps

        if a is not None or b is not None or (eta_a is not None and eta_a != 0):
            raise ValueError(
                "readout vectors a, b and a trained readout (eta_a > 0) are simulated by method='weights' only"
            )
        return simulate_overlaps(N=N, p=p, k=k, eta=eta, alpha_max=alpha_max, model=model, q0=q0, seed=seed,
                                 replicas=replicas, record=record, W0=W0, W_star=W_star, Q0=Q0, R0=R0, T=T,
                                 progress=progress, batch_size=batch)
    if method != "weights":
        raise ValueError(f"method must be 'weights' or 'overlaps', got {method!r}")
    if Q0 is not None or R0 is not None or T is not None:
        raise ValueError("Q0, R0 and T are starts of method='overlaps'; for the weights use "
                         "W0, W_star (e.g. from weights_from_overlaps)")
    p = check_count(p, "p", 1)
    k = check_count(k, "k", 1)
    N = check_count(N, "N", 1)
    if N < p + k:
        raise ValueError(f"N must be >= p + k = {p + k} (orthonormal students and teachers), got N = {N}")
    replicas = check_count(replicas, "replicas", 1)
    eta = check_scalar(eta, "eta", positive=True)
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    q0 = check_scalar(q0, "q0", positive=True)
    progress = check_flag(progress, "progress")
    if not alpha_max * N < MAX_STEPS:
        raise ValueError(f"alpha_max * N = {alpha_max * N:g} steps is more than can be simulated (max {MAX_STEPS:g})")
    n_steps = int(round(alpha_max * N))
    if n_steps < 1:
        raise ValueError(f"alpha_max * N must be at least one step, got {alpha_max * N:g}")
    steps = record_steps(N, alpha_max, record)
    resolved = resolve(model, sizes=(p, k))
    module = resolved.module
    a_given, b_given, eta_a = check_readouts(a, b, eta_a, p, k)
    check_readout_batch(a_given, b_given, (replicas,), "the replicas")
    per_unit = a_given is not None or b_given is not None or eta_a > 0
    sigma, sigma_prime = activation_functions(module, "STUDENT")
    sigma_star, _ = activation_functions(module, "TEACHER")
    # per-unit readouts, one row per replica (the student's is trained when eta_a > 0)
    a, b = readout_vectors(module.readouts, p, k, a_given, b_given)
    a = np.array(np.broadcast_to(a, (replicas, p)), dtype=float)
    b = np.broadcast_to(b, (replicas, k))
    noise_std = float(np.sqrt(resolved.noise_variance))
    decay = 1.0 - eta * resolved.weight_decay / N

    streams = replica_streams(seed, replicas)
    if W_star is None:
        W_star = np.sqrt(N) * np.stack([orthonormal_rows(s.init, k, N) for s in streams])
    else:
        W_star = _check_weights(W_star, "W_star", k, N, replicas)
    if W0 is None:
        W = np.sqrt(q0 * N) * np.stack([orthonormal_rows(s.init, p, N) for s in streams])
    else:
        W = _check_weights(W0, "W0", p, N, replicas)
    W_star_T = np.ascontiguousarray(np.swapaxes(W_star, 1, 2))  # (B, N, k)
    T = W_star @ W_star_T / N
    # steps per block: the block holds s * batch inputs, and its Gram part costs (s * batch) N per input
    s = max(1, STEP_BLOCK // batch)
    inputs_per_block = s * batch
    # one array per replica holding the students, the teachers and the block's inputs, so
    # one product X [W; W*; X]^T gives lambda, nu and the Gram matrix of the inputs
    V = np.empty((replicas, p + k + inputs_per_block, N))
    V[:, :p] = W
    V[:, p : p + k] = W_star
    W = V[:, :p]

    n_rec = steps.size
    Q_rec = np.empty((replicas, n_rec, p, p))
    R_rec = np.empty((replicas, n_rec, p, k))
    a_rec = np.empty((replicas, n_rec, p))
    sqrt_n = np.sqrt(N)
    coefficient = eta / (sqrt_n * batch)  # e_t = coefficient * residual * a * sigma'(lambda_t)
    bar = None
    if progress and float(n_steps) * batch * replicas * N > PROGRESS_WORK:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc="SGD steps", unit="step", unit_scale=True, leave=False)

    def measure(index: int) -> None:
        Q_rec[:, index] = W @ np.swapaxes(W, 1, 2) / N
        R_rec[:, index] = W @ W_star_T / N
        a_rec[:, index] = a

    # weight decay inside a block: powers d^t, and the (tau, t) weights d^(t-1-tau) of the Gram
    # matrix; inputs of one step (same t) do not see each other's updates (weight 0)
    step_of = np.repeat(np.arange(s), batch)  # the step of each input of a block
    powers = decay ** np.arange(s + 1)
    lags = step_of[None, :] - step_of[:, None] - 1
    decay_weights = np.where(lags >= 0, decay ** np.maximum(lags, 0), 0.0)
    products = np.empty((replicas, inputs_per_block, p + k + inputs_per_block))  # X [W_0; W*; X]^T of the block
    e = np.empty((replicas, p, inputs_per_block))  # update vectors, one column per input
    # squared student norms, tracked from the block products (no pass over W per block)
    norms = np.einsum("bpn,bpn->bp", W, W)

    started = time.perf_counter()
    done = 0
    rec_index = 0
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            while True:
                while rec_index < n_rec and steps[rec_index] == done:
                    measure(rec_index)
                    rec_index += 1
                if done >= n_steps:
                    break
                target = steps[rec_index] if rec_index < n_rec else n_steps
                size = int(min(s, target - done))
                n_inputs = size * batch
                rows = p + k + n_inputs
                for i, stream in enumerate(streams):
                    inputs = V[i, p + k : rows]
                    stream.inputs.standard_normal(out=inputs)
                    # while the inputs are in cache
                    np.matmul(inputs, V[i, :rows].T, out=products[i, :n_inputs, :rows])
                block = products[:, :n_inputs]
                lam0 = block[:, :, :p] / sqrt_n  # (B, size, p): W_0 x_t / sqrt(N)
                nu = block[:, :, p : p + k] / sqrt_n  # (B, size, k)
                overlap = block[:, :, p + k : rows] / sqrt_n  # (B, size, size): x_tau . x_t / sqrt(N)
                if decay != 1.0:
                    lam0 *= powers[step_of[:n_inputs], None]
                    overlap *= decay_weights[:n_inputs, :n_inputs]
                y = np.einsum("bk,btk->bt", b, sigma_star(nu))  # (B, n_inputs)
                if noise_std > 0:
                    y = y + noise_std * np.stack([st.noise.standard_normal(n_inputs) for st in streams])
                for t in range(size):
                    first, last = t * batch, (t + 1) * batch  # the inputs of step t
                    lam = lam0[:, first:last]  # (B, batch, p)
                    if t:
                        lam = lam + np.swapaxes(e[:, :, :first] @ overlap[:, :first, first:last], 1, 2)
                    activations = sigma(lam)  # (B, batch, p)
                    residual = y[:, first:last] - np.einsum("bp,bsp->bs", a, activations)
                    e[:, :, first:last] = coefficient * np.swapaxes(
                        residual[..., None] * a[:, None, :] * sigma_prime(lam), 1, 2
                    )
                    if eta_a:
                        # the readout step averages the step's samples, with the weights and readout before it
                        a += (eta_a / (N * batch)) * np.einsum("bs,bsp->bp", residual, activations)
                updates = e[:, :, :n_inputs]
                if decay != 1.0:
                    updates = updates * powers[size - 1 - step_of[:n_inputs]]
                    W *= powers[size]
                # |w_j + u_j X|^2 = |w_j|^2 + 2 u_j X w_j + u_j X X^T u_j^T, all from the block products
                cross = np.einsum("bps,bsp->bp", updates, block[:, :, :p])
                gram = block[:, :, p + k : rows]
                norms = powers[size] ** 2 * norms + 2 * powers[size] * cross
                norms += np.einsum("bps,bst,bpt->bp", updates, gram, updates)
                for i in range(replicas):
                    # W_i^T += X_i^T u_i^T in place (BLAS gemm with beta = 1, no temporary)
                    _gemm(1.0, V[i, p + k : rows].T, updates[i].T, beta=1.0, c=W[i].T, overwrite_c=True)
                done += size
                if bar is not None:
                    bar.update(size)
                largest = np.max(norms) / N
                if not np.isfinite(largest) or largest > BLOWUP:
                    raise SimulationError(
                        f"the student weights diverged (|w_j|^2 / N > {BLOWUP:g} or not finite) between "
                        f"alpha = {(done - size) / N:.6g} and alpha = {done / N:.6g}: the learning rate "
                        f"eta = {eta:g} is too large for this model and start"
                    )
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started

    risk = None
    if per_unit:
        risk = tuple_module(model).residual_risk(Q_rec, R_rec, T[:, None], a_rec, b[:, None])
        risk = risk + resolved.noise_variance / 2
    return replica_result(
        alpha=steps / N, Q=Q_rec, R=R_rec, T=T, resolved=resolved, model=model, eta=eta, second_order=True,
        nfev=n_steps, risk=risk, squeeze=("W", "W_star", "a", "b"),
        extra={
            "W": np.ascontiguousarray(W),
            "W_star": W_star,
            "N": N,
            "steps": steps,
            "replicas": replicas,
            "model": model,
            "seconds": seconds,
        },
        batch_size=batch,
        a=a_rec if per_unit else None,
        b=None if b_given is None else np.array(b),
        eta_a=eta_a,
    )


@dataclass
class Comparison:
    """ODE started from a simulation's measured overlaps, and the distances between the two.

    Attributes
    ----------
    ode : IntegrationResult
        ODE trajectory on the simulation's alpha grid (leading replica axis
        when the simulation has one).
    risk_distance : float or array, shape (B,)
        ``max_alpha |risk_sim - risk_ode|`` per replica.
    Q_distance, R_distance : float or array, shape (B,)
        ``max_alpha max_entries |Q_sim - Q_ode|`` (and the same for ``R``).
    a_distance : float, array of shape (B,), or None
        The same for the student readout, when the simulation recorded it.
    """

    ode: IntegrationResult
    risk_distance: Any
    Q_distance: Any
    R_distance: Any
    a_distance: Any = None


def compare_ode_simulation(
    simulation: IntegrationResult,
    *,
    second_order: bool = True,
    rtol: float = 1e-8,
    atol: float = 1e-11,
    from_alpha: float = 0.0,
) -> Comparison:
    """Integrate the ODE from the overlaps a simulation starts with and measure the gap.

    Parameters
    ----------
    simulation : IntegrationResult
        Output of :func:`simulate` (its ``eta`` and ``extra["model"]`` are used).
    second_order : bool
        Keep the ``eta**2`` term of the ODE (default).
    rtol, atol : float
        ODE tolerances.
    from_alpha : float
        Start the ODE from the overlaps measured at the first recorded alpha
        ``>= from_alpha`` (default: the simulation's start) and compare from
        there on; the ODE's ``alpha`` is on the simulation's time axis.

    Returns
    -------
    Comparison
    """
    from numerics.ode.integrate import integrate

    if not isinstance(simulation, IntegrationResult):
        raise ValueError(f"simulation must be a result of numerics.simulate, got {type(simulation).__name__}")
    if "model" not in simulation.extra or "N" not in simulation.extra:
        raise ValueError("simulation must be a result of numerics.simulate (its extra lacks 'model' / 'N')")
    second_order = check_flag(second_order, "second_order")
    rtol = check_scalar(rtol, "rtol", positive=True, below=1.0)
    atol = check_scalar(atol, "atol", nonnegative=True)
    from_alpha = check_scalar(from_alpha, "from_alpha", nonnegative=True)
    batched = simulation.Q.ndim == 4
    start = int(np.searchsorted(simulation.alpha, from_alpha))
    if start >= simulation.alpha.size - 1:
        raise ValueError(
            f"from_alpha = {from_alpha} leaves fewer than two recorded alphas (last: {simulation.alpha[-1]:.6g})"
        )
    if start:
        simulation = replace(
            simulation,
            alpha=simulation.alpha[start:],
            Q=simulation.Q[..., start:, :, :],
            R=simulation.R[..., start:, :, :],
            risk=simulation.risk[..., start:],
            a=None if simulation.a is None else simulation.a[..., start:, :],
        )
    Q0 = simulation.Q[..., 0, :, :]
    R0 = simulation.R[..., 0, :, :]
    # the measured start is symmetric and PSD up to rounding: symmetrise so the check passes
    Q0 = (Q0 + np.swapaxes(Q0, -1, -2)) / 2
    T = (simulation.T + np.swapaxes(simulation.T, -1, -2)) / 2
    ode = integrate(
        Q0,
        R0,
        T,
        eta=simulation.eta,
        alpha_max=float(simulation.alpha[-1] - simulation.alpha[0]),
        alpha_eval=simulation.alpha - simulation.alpha[0],
        model=simulation.extra["model"],
        second_order=second_order,
        batch_size=getattr(simulation, "batch_size", 1),
        rtol=rtol,
        atol=atol,
        a=None if simulation.a is None else simulation.a[..., 0, :],
        b=simulation.b,
        eta_a=simulation.eta_a,
    )
    axes_qr = (-3, -2, -1)
    risk_distance = np.max(np.abs(simulation.risk - ode.risk), axis=-1)
    Q_distance = np.max(np.abs(simulation.Q - ode.Q), axis=axes_qr)
    R_distance = np.max(np.abs(simulation.R - ode.R), axis=axes_qr)
    a_distance = None if simulation.a is None else np.max(np.abs(simulation.a - ode.a), axis=(-2, -1))
    if not batched:
        risk_distance, Q_distance, R_distance = float(risk_distance), float(Q_distance), float(R_distance)
        a_distance = None if a_distance is None else float(a_distance)
    return Comparison(
        replace(ode, alpha=simulation.alpha.copy()), risk_distance, Q_distance, R_distance, a_distance
    )
