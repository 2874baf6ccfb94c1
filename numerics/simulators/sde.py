"""The diffusion approximation of finite-N SGD on the overlaps: ``simulate_sde``.

The SDE
-------
At finite N one SGD step moves the overlaps by ``q/N``, ``r/N`` (docs/model.md, "Finite N: the
noise of the overlaps"), and ``N dalpha`` steps make up ``dalpha``. To leading order in
``1/N`` the overlaps then follow

    dQ = b_Q dalpha + N**-1/2 dM_Q,    dR = b_R dalpha + N**-1/2 dM_R,    d<M, M> = Cov dalpha,

with ``b`` the ODE drift (:func:`numerics.rhs`, weight decay included) and ``Cov`` the
covariance of one step's increments (:func:`numerics.noise.fluctuations.increment_covariance`).
``q`` is symmetric, so the noise lives on the ``D = p (p + 1) / 2 + p k`` independent
entries ``v = (q_jl (j <= l), r_jr)``; their covariance matrix ``Sigma`` (D x D) is
:func:`numerics.noise.diffusion.packed_covariance` (the same numbers, evaluated fast). The
cost of a step does not depend on N: N only scales the noise, so the cost per unit of
alpha is independent of N (the exact chain, :func:`numerics.simulators.overlap_chain.simulate_overlaps`,
costs ``N`` steps per unit of alpha). A step costs about 18 ms for 100 replicas at
p = 8, k = 1 and 8-10 ms for 300 replicas at p = 2 (one core), nearly all of it the
noise covariance.

Scheme
------
Euler-Maruyama with a fixed step ``h`` (weak order one):
``v = sqrt(h / N) F g`` with ``g ~ N(0, I_D)`` and ``F F^T = Sigma`` (batched Cholesky;
where it fails, for a singular ``Sigma`` (the noise vanishes at the zero-error
manifold without label noise) or one indefinite by round-off, that replica's factor
comes from ``eigh`` with the eigenvalues at round-off level set to zero:
:func:`numerics.simulators.chain_start.covariance_factor`), and

    Q <- Q + b_Q h + sym(v_q),    R <- R + b_R h + v_r.

With per-unit readouts (``a=``, ``b=``) the drift and ``Sigma`` are evaluated with them
(:mod:`numerics.noise.sde_readouts`); with a trained readout (``eta_a > 0``) the noise vector
gains the readout's increments ``s_j`` (``D + p`` entries, correlated with ``(q, r)``) and
``a <- a + b_a h + v_s`` with ``b_a = eta_a <(y - f) sigma(lambda_j)>``.

Staying physical: the overlaps of real weights have ``C = [[Q, R], [R^T, T]]`` positive
semi-definite, i.e. ``S = Q - R T^+ R^T`` (the Gram matrix of the students' components
orthogonal to the teacher) positive semi-definite (and ``R`` in the range of ``T``).
The exact chain never leaves that cone, but a Gaussian step of finite size can, where
``S`` is small (students almost in the teacher span: near the solutions). After every
step ``S`` is therefore formed from the new ``Q``, ``R`` (the ``dR T^+ dR^T`` term,
the Ito correction of ``S``, is included exactly), and where it has a negative
eigenvalue it is replaced by its projection onto the positive semi-definite cone
(negative eigenvalues set to zero; the nearest PSD matrix in Frobenius norm) and
``Q = S_+ + R T^+ R^T``, as :func:`numerics.integrate` does for the ODE. Replicas
whose ``S`` stays positive semi-definite are not touched. This is the usual reflecting
treatment of a boundary by projection: it changes the law only within one step's
noise of the boundary. ``extra["projections"]`` counts the replica-steps projected.
With a rank-deficient ``T``, ``R`` is also projected onto the range of ``T``.

Step size
---------
Unless ``dalpha`` is given, ``h = min(DRIFT_STEP / rate, N (NOISE_STEP s)**2 / tr Sigma,
alpha_max / MIN_STEPS)`` at the start (the smallest over the replicas):

* ``rate``: the spectral radius of the drift's Jacobian in the packed coordinates
  (central differences). ``rate h = DRIFT_STEP = 0.02`` keeps the Euler error of the
  growth and relaxation rates near 1 % (``exp(x)`` against ``1 + x``). Along the
  paper model's escape the largest rate (reached at the solution) is about three times
  the starting one, which stays well inside Euler's stability limit ``rate h < 2``.
* the noise: one step's noise ``sqrt(h tr Sigma / N)`` at most ``NOISE_STEP = 0.05`` of
  the state's scale ``s = max(|Q|, |T|)`` (Frobenius); this binds only at small N.
* at least ``MIN_STEPS = 100`` steps.

The step is then shortened so that a whole number of steps ends at ``alpha_max``.
The weak error is ``O(h)``; pass ``dalpha`` to refine. With the default rule the steps
of a batch depend on all its starts (their largest rate); a replica follows the same
trajectory alone or batched when the starts are shared or ``dalpha`` is given.

Seeding
-------
Replica ``i`` owns ``replica_seeds(seed, B)[i]`` (:func:`numerics.simulators.weights.replica_seeds`);
its Gaussian increments come from the generator of that sequence's child 0, drawn in
chunks of :data:`CHUNK_STEPS` steps whose sizes depend only on the number of steps.
Every operation on a replica's state is batched over replicas without mixing them, so
with the same step size a replica follows the same trajectory alone
(``seed=[replica_seeds(seed, B)[i]]``) or batched, up to the last bits of entry-wise sums.

The drift, the noise covariance and the default step live in
:mod:`numerics.simulators.sde_dynamics`; this module holds the scheme and the simulation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from numerics.core.validation import as_float_array, as_real_array, check_int, check_overlaps, check_scalar
from numerics.noise.diffusion import packed_size
from numerics.ode.integrate import default_grid
from numerics.ode.readouts import check_readouts
from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve, tuple_module
from numerics.simulators.chain_start import covariance_factor
from numerics.simulators.common import (
    BLOWUP,
    SimulationError,
    check_memory,
    check_steps,
    child_seed,
    progress_bar,
    record_points,
    replica_seeds,
)
from numerics.simulators.replicas import replica_result
from numerics.simulators.sde_dynamics import SdeDynamics, default_step

#: Steps whose Gaussian draws are generated per generator call (amortises the calls; the chunk
#: sizes depend only on the number of steps, so a replica's draws do not depend on the batch).
CHUNK_STEPS = 256
#: A progress bar is shown when more than this many steps times replicas are simulated.
PROGRESS_WORK = 2e4


def _check_N(N: object) -> float:
    if isinstance(N, bool) or not isinstance(N, (int, float, np.integer, np.floating)):
        raise ValueError(f"N must be a real number >= 1, got {N!r}")
    try:
        value = float(N)
    except OverflowError:  # an integer beyond the float range
        raise ValueError(f"N must be a finite number >= 1, got an integer of {len(str(N))} digits") from None
    if not np.isfinite(value) or value < 1:
        raise ValueError(f"N must be a finite number >= 1, got {N!r}")
    return value


def _check_replicas(replicas: object) -> int:
    return check_int(replicas, "replicas", minimum=1)


def _per_replica(value: Any, name: str, shape: tuple[int, ...], replicas: int) -> np.ndarray:
    """``value`` of shape ``shape`` (shared) or ``(replicas,) + shape``, as ``(replicas,) + shape``."""
    array = as_float_array(value, name)
    if array.shape == shape:
        return np.broadcast_to(array, (replicas,) + shape).copy()
    if array.shape == (replicas,) + shape:
        return array.copy()
    raise ValueError(f"{name} must have shape {shape} or (replicas,) + {shape} = {(replicas,) + shape}, "
                     f"got {array.shape}")


def _record_steps(record: Any, alpha_max: float, h: float, n_steps: int) -> np.ndarray:
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        if record < 2:
            raise ValueError(f"record must be >= 2 points, got {record}")
        alphas = np.append(default_grid(alpha_max, int(record), "log"), alpha_max)  # the end, always
    else:
        alphas = as_float_array(record, "record", ndim_min=1)
        if alphas.ndim != 1 or alphas.size < 1 or np.any(np.diff(alphas) < 0) or alphas[0] < 0:
            raise ValueError("record must be an integer or a non-decreasing 1-d array of alphas >= 0")
        if alphas[-1] > alpha_max * (1 + 1e-12):
            raise ValueError(f"record goes beyond alpha_max = {alpha_max:g} (last alpha {alphas[-1]:g})")
    return np.unique(np.clip(np.rint(alphas / h).astype(np.int64), 0, n_steps))


def _project(Q: np.ndarray, R: np.ndarray, T_pinv: np.ndarray) -> int:
    """Project ``S = Q - R T^+ R^T`` onto the PSD cone where it has a negative eigenvalue, in place.

    Returns the number of replicas projected.
    """
    teacher = R @ T_pinv @ np.swapaxes(R, -1, -2)
    teacher = (teacher + np.swapaxes(teacher, -1, -2)) / 2
    S = Q - teacher
    S = (S + np.swapaxes(S, -1, -2)) / 2
    smallest = np.linalg.eigvalsh(S)[:, 0]
    bad = np.flatnonzero(smallest < 0)
    if bad.size:
        values, vectors = np.linalg.eigh(S[bad])
        inside = (vectors * np.maximum(values, 0.0)[:, None, :]) @ np.swapaxes(vectors, -1, -2)
        Q[bad] = (inside + np.swapaxes(inside, -1, -2)) / 2 + teacher[bad]
    return int(bad.size)


def simulate_sde(
    Q0: np.ndarray,
    R0: np.ndarray,
    T: np.ndarray,
    settings: RunSettings | None = None,
    *,
    N: float,
    alpha_max: float,
    replicas: int = 1,
    seed: Any = None,
    dalpha: float | None = None,
    record: int | Sequence[float] | np.ndarray = 200,
    progress: bool = True,
    **setting_overrides: Any,
) -> IntegrationResult:
    """Integrate the diffusion approximation of finite-N SGD on the overlaps (module docstring).

    Parameters
    ----------
    Q0 : array, shape (p, p) or (replicas, p, p)
        Start, shared by all replicas or one per replica.
    R0 : array, shape (p, k) or (replicas, p, k)
    T : array, shape (k, k) or (replicas, k, k)
        Teacher overlaps (fixed).
    settings : RunSettings, optional
        The dynamics (:class:`~numerics.results.settings.RunSettings`): ``eta`` (> 0), ``model``
        (``None``: the paper's; activations of degree <= 4, for which the increment covariance is
        generated, and erf or relu units, whose covariance is the leading order; other models raise
        ``ValueError``), ``second_order`` (keep the ``eta**2``
        terms in the drift and in the increments, or drop them in both: the gradient-flow
        limit), ``batch_size``, readout vectors ``a``, ``b`` and ``eta_a`` (below).
    **setting_overrides
        The same settings as keywords (``eta=0.5, model=...``); other names raise ``TypeError``.
    N : float
        Input dimension (>= 1; it only sets the noise amplitude ``N**-1/2``).
    alpha_max : float
        Final time (> 0).
    replicas : int
        Independent trajectories integrated together (batched linear algebra).
    seed : None, int, SeedSequence, or sequence of ``replicas`` of those
        See :func:`numerics.simulators.weights.replica_seeds` and the module docstring.
    dalpha : float, optional
        Euler-Maruyama step; default from the drift and noise scales at the start
        (:func:`numerics.simulators.sde_dynamics.default_step`). Shortened so that a whole number of steps ends at
        ``alpha_max``.
    record : int or array of alphas
        Number of log-spaced output times (as :func:`numerics.integrate`; 0 and
        ``alpha_max`` always among them), or the output times themselves; each is
        rounded to the nearest step.
    progress : bool
        Show a tqdm progress bar on long runs.
    batch_size : int
        Mini-batch size ``B >= 1`` (``alpha`` counts SGD steps / N). With drift
        ``B b(eta / B)`` and increment covariance ``B Sigma(eta / B)``
        (:func:`numerics.increment_covariance`), the process at ``(eta, B)`` is the
        single-sample one at ``eta / B`` run ``B`` times faster: it is integrated
        as that one, on ``B alpha``, and reported on the ``alpha`` axis
        (``dalpha`` and ``record`` are in ``alpha``).
    a : array, shape (p,) or (replicas, p), optional
        Fixed per-unit student readouts replacing the model's scalar one: the drift is
        :func:`numerics.rhs` with ``a``, ``b`` and the noise covariance
        :func:`numerics.increment_covariance` with ``a``, ``b`` (network tables; slower
        than the scalar path's packed evaluator).
    b : array, shape (k,) or (replicas, k), optional
        Fixed per-unit teacher readouts.
    eta_a : float, optional
        Learning rate of a trained student readout (>= 0; ``a`` is then its start).
        The state becomes ``(Q, R, a)``: ``a`` drifts by ``da/dalpha = eta_a <(y - f)
        sigma(lambda_j)>`` and its noise ``s_j / sqrt(N)`` is correlated with that of
        ``(Q, R)`` (:func:`numerics.increment_covariance` with ``eta_a``,
        :mod:`numerics.noise.sde_readouts`). The default step is chosen from the drift of
        ``(Q, R)`` at the starting readout and from the whole noise.

    Returns
    -------
    IntegrationResult
        ``alpha`` (n,) = recorded steps times the step; ``Q`` (B, n, p, p), ``R``
        (B, n, p, k), ``risk`` (B, n), ``T`` (B, k, k); the replica axis ``B`` is
        dropped when ``replicas == 1`` (as :func:`numerics.simulate`). ``nfev`` is the
        number of steps; ``extra`` holds ``"N"``, ``"dalpha"`` (the step used),
        ``"steps"`` (recorded step indices), ``"replicas"``, ``"model"``, ``"method"``
        (``"sde"``), ``"seconds"`` (wall time of the loop) and ``"projections"``
        (replica-steps whose ``S`` was projected onto the PSD cone). With readout vectors
        ``a`` (B, n, p) holds the student readout at the recorded times (fixed or
        trained), ``b`` (B, k) the teacher's, and ``risk`` is computed with them.
        ``settings`` holds the run's settings.

    Raises
    ------
    TypeError
        A keyword that is not a setting, or no learning rate.
    ValueError
        Bad arguments: ``N < 1``, ``eta``, ``alpha_max`` or ``dalpha`` not positive and
        finite, ``dalpha > alpha_max``, wrong shapes, a replica axis that is not
        ``replicas`` long, more than :data:`~numerics.simulators.common.MAX_STEPS` steps
        (``alpha_max / dalpha``) or more memory than
        :func:`~numerics.simulators.common.check_memory` allows (``replicas``, ``record``, ``p``),
        starts whose ``C`` is not positive semi-definite, models
        without a generated increment covariance.
    SimulationError
        If the overlaps diverge (or the noise covariance overflows), naming the alpha.
    """
    settings = RunSettings.merged(settings, setting_overrides, "simulate_sde")
    if settings.spherical:
        raise ValueError("spherical SGD is simulated by simulate(method='weights') and integrated by integrate only")
    N = _check_N(N)
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    if settings.batch_size != 1:
        return _mini_batch(Q0, R0, T, settings, N=N, alpha_max=alpha_max, replicas=replicas, seed=seed,
                           dalpha=dalpha, record=record, progress=progress)
    replicas = _check_replicas(replicas)
    if dalpha is not None:
        dalpha = check_scalar(dalpha, "dalpha", positive=True)
        if dalpha > alpha_max:
            raise ValueError(f"dalpha = {dalpha:g} is larger than alpha_max = {alpha_max:g}")
    start_size = sum(float(np.size(value)) for value in (Q0, R0, T))
    check_memory(8.0 * replicas * start_size, f"the starts of {replicas} replicas (replicas)")
    Q, R, T_b = _starts(Q0, R0, T, replicas)
    p, k = R.shape[-2:]
    coordinates = p * (p + 1) / 2 + p * k  # of the increment covariance Sigma
    check_memory(24.0 * replicas * coordinates**2, f"the increment covariances of {replicas} replicas at p = {p}, "
                 f"k = {k} (replicas, p)")
    resolved = resolve(settings.model, sizes=(p, k))
    if resolved.label_flip:
        raise ValueError(
            f"label flips (label_flip = {resolved.label_flip:g}) are simulated by simulate(method='weights') and "
            "integrated by integrate only"
        )
    check_readouts(settings.a, settings.b, settings.eta_a, p, k)
    dynamics = SdeDynamics(settings, resolved, replicas, p, k)
    T_b = (T_b + np.swapaxes(T_b, -1, -2)) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        Sigma = dynamics.covariance(Q, R, T_b, dynamics.a)
        if not np.all(np.isfinite(Sigma)):
            raise SimulationError("the increment covariance is not finite at the start (overlaps too large)")
        if dalpha is None:
            dalpha = default_step(Q, R, T_b, Sigma, N=N, alpha_max=alpha_max, settings=settings, resolved=resolved,
                                  a=dynamics.a, b=dynamics.b)
    check_steps(alpha_max / dalpha * (1 - 1e-12), f"alpha_max / dalpha = {alpha_max:g} / {dalpha:g}")
    n_steps = max(1, math.ceil(alpha_max / dalpha * (1 - 1e-12)))
    h = alpha_max / n_steps
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        check_memory(16.0 * record, f"record = {record}")  # the grid is built before duplicates are dropped
    points = record_points(record, n_steps)
    check_memory(8.0 * points * replicas * (p * p + p * k), f"recording {points} points of {replicas} replicas "
                 "(record, replicas)")
    steps = _record_steps(record, alpha_max, h, n_steps)
    generators = [np.random.default_rng(child_seed(sequence, 0)) for sequence in replica_seeds(seed, replicas)]
    bar = progress_bar(progress and float(n_steps) * replicas > PROGRESS_WORK, n_steps, "SDE steps", unit_scale=False)
    started = time.perf_counter()
    Q_rec, R_rec, a_rec, projections = _euler_maruyama(dynamics, Q, R, T_b, Sigma, h, N, steps, n_steps,
                                                         generators, bar)
    seconds = time.perf_counter() - started
    T_rec = np.broadcast_to(T_b, (replicas, k, k)).copy()
    risk = None
    if settings.per_unit:
        risk = tuple_module(settings.model).residual_risk(Q_rec, R_rec, T_rec[:, None], a_rec, dynamics.b[:, None])
        risk = risk + resolved.noise_variance / 2
    extra = {"N": N, "dalpha": h, "steps": steps, "replicas": replicas, "model": settings.model, "method": "sde",
             "seconds": seconds, "projections": projections}
    return replica_result(
        alpha=steps * h, Q=Q_rec, R=R_rec, T=T_rec, resolved=resolved, risk=risk, squeeze=("a", "b"),
        settings=settings, nfev=n_steps, extra=extra,
        a=a_rec if settings.per_unit else None, b=None if settings.b is None else dynamics.b,
    )


def _starts(Q0: Any, R0: Any, T: Any, replicas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Q (B, p, p), R (B, p, k) and T ((k, k) shared, or (B, k, k)), checked
    Q0a, R0a, Ta = (as_float_array(v, name) for v, name in ((Q0, "Q0"), (R0, "R0"), (T, "T")))
    if Q0a.ndim not in (2, 3) or R0a.ndim not in (2, 3) or Ta.ndim not in (2, 3):
        raise ValueError(f"Q0, R0, T must be 2-d (shared) or 3-d (one per replica); got shapes "
                         f"{Q0a.shape}, {R0a.shape}, {Ta.shape}")
    p, k = Q0a.shape[-1], Ta.shape[-1]
    Q = _per_replica(Q0a, "Q0", (p, p), replicas)
    R = _per_replica(R0a, "R0", (p, k), replicas)
    T_b = Ta if Ta.ndim == 2 else _per_replica(Ta, "T", (k, k), replicas)
    check_overlaps(Q, R, T_b)  # shapes, symmetry, finite, C positive semi-definite
    return Q, R, T_b


def _euler_maruyama(
    dynamics: SdeDynamics, Q: np.ndarray, R: np.ndarray, T_b: np.ndarray, Sigma: np.ndarray, h: float, N: float,
    steps: np.ndarray, n_steps: int, generators: list, bar: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    # the scheme of the module docstring; returns the records of Q, R, a and the number of projections
    replicas, p, k = R.shape
    per_unit, trained, eta = dynamics.settings.per_unit, dynamics.settings.eta_a > 0, dynamics.settings.eta
    a_b = dynamics.a
    D = packed_size(p, k)
    D_state = D + p if trained else D  # the noise vector, with s_j for a trained readout
    iu = np.triu_indices(p)
    n_upper = iu[0].size
    T_pinv = np.linalg.pinv(T_b, hermitian=True)
    # R must stay in the range of T (nu lives there); only a rank-deficient T needs the projection
    range_T = T_b @ T_pinv
    singular_T = not np.allclose(range_T, np.eye(k), atol=1e-12)
    amplitude = math.sqrt(h / N)
    n_rec = steps.size
    chunk = np.empty((replicas, CHUNK_STEPS, D_state))
    Q_rec = np.empty((replicas, n_rec, p, p))
    R_rec = np.empty((replicas, n_rec, p, k))
    a_rec = np.empty((replicas, n_rec, p))
    projections = 0
    rec_index = 0
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for step in range(n_steps + 1):
                while rec_index < n_rec and steps[rec_index] == step:
                    Q_rec[:, rec_index] = Q
                    if per_unit:
                        a_rec[:, rec_index] = a_b
                    R_rec[:, rec_index] = R
                    rec_index += 1
                if step == n_steps:
                    break
                if step % CHUNK_STEPS == 0:
                    size = min(CHUNK_STEPS, n_steps - step)
                    for i, generator in enumerate(generators):
                        chunk[i, :size] = generator.standard_normal((size, D_state))
                if step:
                    Sigma = dynamics.covariance(Q, R, T_b, a_b)
                    if not np.all(np.isfinite(Sigma)):
                        _diverged(step, h, eta)
                drift_Q, drift_R, drift_a = dynamics.drift(Q, R, T_b, a_b)
                noise = (covariance_factor(Sigma) @ chunk[:, step % CHUNK_STEPS, :, None])[..., 0]
                noise *= amplitude
                increment_Q = np.empty((replicas, p, p))
                increment_Q[:, iu[0], iu[1]] = noise[:, :n_upper]
                increment_Q[:, iu[1], iu[0]] = noise[:, :n_upper]
                Q = Q + drift_Q * h + increment_Q
                R = R + drift_R * h + noise[:, n_upper:D].reshape(replicas, p, k)
                if trained:
                    a_b = a_b + drift_a * h + noise[:, D:]
                if singular_T:
                    R = R @ range_T
                if not np.all(np.isfinite(Q)) or not np.all(np.isfinite(R)):
                    _diverged(step + 1, h, eta)
                if np.max(np.diagonal(Q, axis1=1, axis2=2)) > BLOWUP:
                    _diverged(step + 1, h, eta)
                projections += _project(Q, R, T_pinv)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Q_rec, R_rec, a_rec, projections


def _mini_batch(
    Q0: Any, R0: Any, T: Any, settings: RunSettings, *, N: float, alpha_max: float, replicas: Any, seed: Any,
    dalpha: Any, record: Any, progress: Any,
) -> IntegrationResult:
    # the single-sample process at eta / B on the time B alpha (see simulate_sde's batch_size); a trained
    # readout's drift is a mean (unchanged by B) and its increment the mean of B copies, so it runs at eta_a / B
    B = settings.batch_size
    if not isinstance(record, (int, np.integer)) or isinstance(record, (bool, np.bool_)):
        record = as_real_array(record, "record", ndim_min=1) * B
    single = settings.replace(eta=settings.eta / B, batch_size=1, eta_a=settings.eta_a / B)
    run = simulate_sde(Q0, R0, T, single, N=N, alpha_max=alpha_max * B, replicas=replicas, seed=seed,
                       dalpha=None if dalpha is None else dalpha * B, record=record, progress=progress)
    extra = dict(run.extra, dalpha=run.extra["dalpha"] / B)
    return replace(run, alpha=run.alpha / B, eta=settings.eta, batch_size=B, extra=extra, eta_a=settings.eta_a,
                   settings=settings)


def _diverged(step: int, h: float, eta: float) -> None:
    raise SimulationError(
        f"the overlaps diverged (Q_jj > {BLOWUP:g} or not finite) between alpha = {(step - 1) * h:.6g} and "
        f"alpha = {step * h:.6g}: the learning rate eta = {eta:g} is too large for this model and start"
    )


__all__ = ["simulate_sde"]
