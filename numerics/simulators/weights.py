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

Cost: the steps are processed in blocks of ``s`` (:data:`STEP_BLOCK`, :mod:`numerics.simulators.weight_steps`). Within
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

from numerics.core.blas import with_blas_threads
from numerics.core.validation import as_real_array, check_flag, check_scalar, check_symmetric
from numerics.kernels.unit_tuples import readout_vectors
from numerics.ode.readouts import check_readout_batch, check_readouts, teacher_mixture
from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve, tuple_module
from numerics.simulators.common import (
    as_seed_sequence,
    check_count,
    check_memory,
    check_run,
    progress_bar,
    replica_streams,
)
from numerics.simulators.replicas import replica_result
from numerics.simulators.weight_steps import STEP_BLOCK, WeightBlocks

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
    settings: RunSettings | None = None,
    *,
    N: int,
    p: int,
    k: int,
    alpha_max: float,
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
    **setting_overrides: Any,
) -> IntegrationResult:
    """One-pass SGD of the student at input dimension ``N``, measuring the overlaps.

    Parameters
    ----------
    settings : RunSettings, optional
        The dynamics (:class:`~numerics.results.settings.RunSettings`): ``eta`` (> 0),
        ``model`` (``None``: the paper's), ``batch_size`` (each step averages the update
        over ``B`` fresh samples, ``w_j <- w_j + (eta / (B sqrt(N))) sum_b E_j^b x^b``,
        weight decay once per step; ``alpha`` counts steps / N, so a run draws
        ``B * alpha_max * N`` inputs), readout vectors ``a`` (shape (p,) or (replicas, p);
        the start when ``eta_a > 0``) and ``b`` ((k,) or (replicas, k)), and ``eta_a``:
        each step then also makes ``a_j <- a_j + (eta_a / N) (y - f) sigma(lambda_j)``
        with the same sample, averaged over the step's samples for a mini-batch
        (docs/model.md; ``method="weights"`` only). SGD has the ``eta**2`` term:
        ``second_order=False`` is refused. ``sam_radius = rho > 0`` takes each sample's gradient
        at its own ascent point ``w_j - rho (eta / sqrt(N)) E_j x`` (any model; ``method="weights"``
        only).
    **setting_overrides
        The same settings as keywords (``eta=0.5, model=...``); other names raise ``TypeError``.
    N : int
        Input dimension (``>= p + k``).
    p, k : int
        Student and teacher widths.
    alpha_max : float
        Final time; ``round(alpha_max * N)`` steps are made.
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
        ``settings`` holds the run's settings.
        Activations: polynomials, erf and relu (evaluated with
        ``scipy.special.erf`` and ``max(z, 0)``).

    Raises
    ------
    TypeError
        A keyword that is not a setting, or no learning rate.
    ValueError
        Bad arguments (``N < p + k``, ``eta <= 0``, ``replicas < 1``, weights
        with the wrong shape or non-finite entries, ...), more than
        :data:`~numerics.simulators.common.MAX_STEPS` steps ``alpha_max * N`` (both methods), or
        more memory than :func:`~numerics.simulators.common.check_memory` allows (``N``,
        ``replicas``, ``batch_size``, ``record``), all checked before the run starts.
    SimulationError
        If the weights diverge (learning rate too large), naming the alpha reached.
    """
    settings = RunSettings.merged(settings, setting_overrides, "simulate")
    if method == "overlaps":
        from numerics.simulators.overlap_chain import simulate_overlaps

        return simulate_overlaps(settings, N=N, p=p, k=k, alpha_max=alpha_max, q0=q0, seed=seed,
                                 replicas=replicas, record=record, W0=W0, W_star=W_star, Q0=Q0, R0=R0, T=T,
                                 progress=progress)
    if method != "weights":
        raise ValueError(f"method must be 'weights' or 'overlaps', got {method!r}")
    if Q0 is not None or R0 is not None or T is not None:
        raise ValueError("Q0, R0 and T are starts of method='overlaps'; for the weights use "
                         "W0, W_star (e.g. from weights_from_overlaps)")
    N, p, k, replicas, n_steps, steps = check_run(settings, N, p, k, alpha_max, replicas, record, "simulate")
    q0 = check_scalar(q0, "q0", positive=True)
    progress = check_flag(progress, "progress")
    inputs = max(STEP_BLOCK, settings.batch_size)  # at most this many inputs per block (WeightBlocks)
    check_memory(8.0 * (replicas * (2.0 * (p + k + inputs) * N + inputs * (p + k + inputs)) + inputs * inputs),
                 f"simulating {replicas} replicas of N = {N} weights in blocks of {inputs} inputs "
                 "(N, replicas, batch_size)")
    resolved = resolve(settings.model, sizes=(p, k))
    check_readouts(settings.a, settings.b, settings.eta_a, p, k)
    check_readout_batch(settings.a, settings.b, (replicas,), "the replicas")
    # per-unit readouts, one row per replica (the student's is trained when eta_a > 0)
    a, b = readout_vectors(resolved.module.readouts, p, k, settings.a, settings.b)
    a = np.array(np.broadcast_to(a, (replicas, p)), dtype=float)
    b = np.broadcast_to(b, (replicas, k))
    streams = replica_streams(seed, replicas)
    if W_star is None:
        W_star = np.sqrt(N) * np.stack([orthonormal_rows(s.init, k, N) for s in streams])
    else:
        W_star = _check_weights(W_star, "W_star", k, N, replicas)
    if W0 is None:
        W = np.sqrt(q0 * N) * np.stack([orthonormal_rows(s.init, p, N) for s in streams])
    else:
        W = _check_weights(W0, "W0", p, N, replicas)
    blocks = WeightBlocks(W, W_star, streams, settings, resolved, a, b)
    work = float(n_steps) * settings.batch_size * replicas * N
    bar = progress_bar(progress and work > PROGRESS_WORK, n_steps, "SGD steps")
    started = time.perf_counter()
    Q_rec, R_rec, a_rec = _run_blocks(blocks, steps, n_steps, bar)
    seconds = time.perf_counter() - started
    risk = None
    if settings.per_unit or resolved.label_flip:
        module = tuple_module(settings.model)
        risk = teacher_mixture(lambda teacher: module.residual_risk(Q_rec, R_rec, blocks.T[:, None], a_rec, teacher),
                               module, R_rec, b[:, None], resolved.label_flip)
        risk = risk + resolved.noise_variance / 2
    extra = {"W": np.ascontiguousarray(blocks.W), "W_star": W_star, "N": N, "steps": steps, "replicas": replicas,
             "model": settings.model, "seconds": seconds}
    return replica_result(
        alpha=steps / N, Q=Q_rec, R=R_rec, T=blocks.T, resolved=resolved, settings=settings, nfev=n_steps,
        risk=risk, squeeze=("W", "W_star", "a", "b"), extra=extra,
        a=a_rec if settings.per_unit else None, b=None if settings.b is None else np.array(b),
    )


def _run_blocks(
    blocks: WeightBlocks, steps: np.ndarray, n_steps: int, bar: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # the SGD loop: blocks of steps cut at the recorded steps; Q, R and a measured at each
    replicas, p, k = blocks.W.shape[0], blocks.p, blocks.k
    n_rec = steps.size
    Q_rec = np.empty((replicas, n_rec, p, p))
    R_rec = np.empty((replicas, n_rec, p, k))
    a_rec = np.empty((replicas, n_rec, p))
    done = 0
    rec_index = 0
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            while True:
                while rec_index < n_rec and steps[rec_index] == done:
                    Q_rec[:, rec_index], R_rec[:, rec_index] = blocks.measure()
                    a_rec[:, rec_index] = blocks.a
                    rec_index += 1
                if done >= n_steps:
                    break
                target = steps[rec_index] if rec_index < n_rec else n_steps
                size = int(min(blocks.s, target - done))
                blocks.advance(size, done)
                done += size
                if bar is not None:
                    bar.update(size)
    finally:
        if bar is not None:
            bar.close()
    return Q_rec, R_rec, a_rec


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
    # the simulation's own settings (every setting the run had), with the ODE's order and the start's readout
    start_readout = None if simulation.a is None else simulation.a[..., 0, :]
    if simulation.settings is not None:
        settings = simulation.settings.replace(second_order=second_order, a=start_readout, b=simulation.b)
    else:
        settings = RunSettings(eta=simulation.eta, model=simulation.extra["model"], second_order=second_order,
                               batch_size=getattr(simulation, "batch_size", 1), a=start_readout, b=simulation.b,
                               eta_a=simulation.eta_a)
    ode = integrate(
        Q0, R0, T, settings, alpha_max=float(simulation.alpha[-1] - simulation.alpha[0]),
        alpha_eval=simulation.alpha - simulation.alpha[0], rtol=rtol, atol=atol,
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
