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
Euler-Maruyama with the step ``h`` of "Step size" (weak order one):
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
Every replica takes its own steps. Unless ``dalpha`` is given, the step at each state is
``h = step_scale * min(drift_bound, noise_bound, alpha_max / MIN_STEPS)``
(:func:`numerics.simulators.sde_dynamics.step_bounds`), re-evaluated at every step from the
state it starts from, so it follows the state along the path:

* ``drift_bound = min(DRIFT_STEP / rate, BLOCK_STEP scale(x) / |b_x|)``, ``DRIFT_STEP = 0.02``,
  ``BLOCK_STEP = 0.05``:
  ``rate`` is the spectral radius of the drift's Jacobian in the packed coordinates
  (central differences, re-estimated every :data:`~numerics.simulators.sde_scheme.RATE_EVERY`
  steps of the replica); ``rate h = 0.02`` keeps the Euler error of the growth and
  relaxation rates near 1 % (``exp(x)`` against ``1 + x``) and far inside the stability
  limit ``rate h < 2``. ``scale(x) / |b_x|`` is the time the drift takes to move a block
  ``x`` of the state (``Q``, ``R``, a trained ``a``) by its own size (Frobenius norms; the scale
  of ``Q`` is ``max(|Q|, |T|)``, that of ``R`` at least ``sqrt(tr Q tr T / N)``, its size at a
  random start). Near ``R = 0`` this is the escape's time scale ``|R| / |dR/dalpha|``: for
  information exponent ``k* >= 3`` (a cubic student and a He3 teacher, say) the drift of ``R``
  is ``O(R**(k* - 1))``, its Jacobian at ``R = 0`` vanishes, and a rate alone would allow any step.
* ``noise_bound``: one step's noise ``sqrt(h tr Sigma / N)`` at most ``NOISE_STEP = 0.05`` of
  the state's scale ``max(|Q|, |T|)``; this binds only at small N.
* at least ``MIN_STEPS = 100`` steps.

The steps up to the next recorded alpha are made equal so that the last lands on it: the
records are at the requested alphas exactly. With ``dalpha`` the step is fixed (shortened so that a whole number of
steps ends at ``alpha_max``; recorded alphas rounded to whole steps) and the same bounds are
evaluated along the path only to warn (``RuntimeWarning``) when a step is longer than
:data:`~numerics.simulators.sde_scheme.STEP_WARNING` = 10 times ``drift_bound`` (``rate h > 0.2``,
or a step moving the state by a fifth of its size).

Weak order: the step is chosen from the state at the start of the step (a previsible step
sequence), so the scheme keeps Euler-Maruyama's weak order one: the error of
``E f(X_alpha)`` for smooth ``f`` is ``O(h)``, halved with ``step_scale`` (tested by step halving
on a linear model whose mean is known exactly: tests/numerics/simulators/test_sde_robust.py).

Replica status
--------------
A replica whose overlaps diverge (``Q_jj > BLOWUP`` or not finite, or a covariance that
overflows, or an adaptive step below :data:`~numerics.simulators.sde_scheme.SMALLEST_STEP`
``* alpha_max``: a finite-time blow-up, which the adaptive step would otherwise approach in ever
shorter steps) is frozen at its last good state and reported; the others go on. A replica
stalls when it has taken ``max_steps`` steps (at most :data:`~numerics.simulators.common.MAX_STEPS`).
``extra["status"]`` (B,) says ``"completed"``, ``"escaped"`` (completed, and the risk fell below
``escape_risk``), ``"diverged"`` or ``"stalled"``; ``extra["status_alpha"]`` where the replica
ended (``alpha_max``, or the alpha of the step that failed); ``extra["escape_alpha"]`` the first alpha
with the risk below ``escape_risk`` (linear within the step; NaN if never). Records after a
failure are NaN, and a ``RuntimeWarning`` names the failed replicas. ``SimulationError`` is raised
only when every replica failed, or when one diverged with ``on_divergence="raise"``.

Seeding
-------
Replica ``i`` owns ``replica_seeds(seed, B)[i]`` (:func:`numerics.simulators.weights.replica_seeds`);
its Gaussian increments come from the generator of that sequence's child 0, drawn in
chunks of :data:`~numerics.simulators.sde_scheme.CHUNK_STEPS` of its own steps. Every
operation on a replica's state, its step included, is batched over replicas without mixing
them, so a replica follows the same trajectory alone (``seed=[replica_seeds(seed, B)[i]]``)
or batched, up to the last bits of entry-wise sums.

The drift, the noise covariance and the step's bounds live in
:mod:`numerics.simulators.sde_dynamics`, the loop in :mod:`numerics.simulators.sde_scheme`;
this module checks the arguments and builds the result.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from numerics.core.validation import as_float_array, as_real_array, check_int, check_overlaps, check_scalar
from numerics.ode.integrate import default_grid
from numerics.ode.readouts import check_readouts, teacher_mixture
from numerics.ode.sphere import check_on_sphere
from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve, tuple_module
from numerics.simulators.common import (
    BLOWUP,
    MAX_STEPS,
    SimulationError,
    check_memory,
    check_steps,
    child_seed,
    record_points,
    replica_seeds,
)
from numerics.simulators.replicas import replica_result
from numerics.simulators.sde_dynamics import SdeDynamics
from numerics.simulators.sde_scheme import (
    DIVERGED,
    STALLED,
    STEP_WARNING,
    EulerMaruyama,
    SchemeRecord,
    record_alphas,
)

#: A progress display is shown when more than this many steps times replicas are expected.
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
    step_scale: float = 1.0,
    max_steps: int = MAX_STEPS,
    escape_risk: float | None = None,
    on_divergence: str = "mask",
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
        generated, and erf or relu units: erf students with erf or sign teachers to every order,
        relu networks too up to ``p + k = 5`` units (:mod:`numerics.noise.tuple_packing`); other
        models raise ``ValueError``), ``second_order`` (keep the ``eta**2``
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
        A fixed Euler-Maruyama step (shortened so that a whole number of steps ends at
        ``alpha_max``); default the adaptive step of the module docstring.
    record : int or array of alphas
        Number of log-spaced output times (as :func:`numerics.integrate`; 0 and
        ``alpha_max`` always among them), or the output times themselves; with ``dalpha``
        each is rounded to the nearest step, with the adaptive step the records are at them exactly.
    progress : bool
        Show a tqdm progress bar on long runs.
    step_scale : float
        Multiplies the adaptive step (> 0; ``0.5`` halves every step). Not used with ``dalpha``.
    max_steps : int
        Steps a replica may take (1 ... ``MAX_STEPS``); a replica reaching it stalls. With
        ``dalpha``, more than ``max_steps`` steps raise ``ValueError`` before the run.
    escape_risk : float, optional
        Risk level (> 0) below which a replica counts as escaped (``extra["escape_alpha"]``).
    on_divergence : {"mask", "raise"}
        ``"mask"``: diverged replicas are frozen, NaN from there on and reported (an error only
        if all fail); ``"raise"``: the first divergence raises ``SimulationError``.
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
        largest number of steps of a replica; ``extra`` holds ``"N"``, ``"dalpha"`` (the fixed
        step, or the mean step ``alpha_max / nfev`` of the adaptive one), ``"largest_step"``,
        ``"adaptive"``, ``"steps"`` (recorded step indices with a fixed step, else ``None``),
        ``"replicas"``, ``"model"``, ``"method"`` (``"sde"``), ``"seconds"`` (wall time of the
        loop), ``"projections"`` (replica-steps whose ``S`` was projected onto the PSD cone)
        and per replica (B,) ``"status"``, ``"status_alpha"``, ``"escape_alpha"`` and
        ``"steps_taken"`` (module docstring, "Replica status"). ``alpha`` holds the requested
        alphas exactly with the adaptive step. With readout vectors
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
        If every replica diverged or stalled, or one diverged with ``on_divergence="raise"``,
        naming the alpha.

    Warns
    -----
    RuntimeWarning
        Some replicas diverged or stalled; or steps were long against the drift's time scale.
    """
    settings = RunSettings.merged(settings, setting_overrides, "simulate_sde")
    if settings.sam_radius:
        raise ValueError(f"simulate_sde does not take sam_radius = {settings.sam_radius}: "
                         "the increment covariance of sharpness-aware steps is not derived; use simulate (weights)")
    N = _check_N(N)
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    if settings.batch_size != 1:
        return _mini_batch(Q0, R0, T, settings, N=N, alpha_max=alpha_max, replicas=replicas, seed=seed,
                           dalpha=dalpha, record=record, progress=progress, step_scale=step_scale,
                           max_steps=max_steps, escape_risk=escape_risk, on_divergence=on_divergence)
    replicas = _check_replicas(replicas)
    options = _check_options(alpha_max, dalpha, step_scale, max_steps, escape_risk, on_divergence)
    dalpha, step_scale, max_steps, escape_risk = options
    start_size = sum(float(np.size(value)) for value in (Q0, R0, T))
    check_memory(8.0 * replicas * start_size, f"the starts of {replicas} replicas (replicas)")
    Q, R, T_b = _starts(Q0, R0, T, replicas)
    if settings.spherical:
        check_on_sphere(Q)
    p, k = R.shape[-2:]
    coordinates = p * (p + 1) / 2 + p * k  # of the increment covariance Sigma
    check_memory(24.0 * replicas * coordinates**2, f"the increment covariances of {replicas} replicas at p = {p}, "
                 f"k = {k} (replicas, p)")
    resolved = resolve(settings.model, sizes=(p, k))
    check_readouts(settings.a, settings.b, settings.eta_a, p, k)
    dynamics = SdeDynamics(settings, resolved, replicas, p, k)
    T_b = (T_b + np.swapaxes(T_b, -1, -2)) / 2
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.all(np.isfinite(dynamics.covariance(Q, R, T_b, dynamics.a))):
            raise SimulationError("the increment covariance is not finite at the start (overlaps too large)")
    n_steps = None
    if dalpha is not None:
        check_steps(alpha_max / dalpha * (1 - 1e-12), f"alpha_max / dalpha = {alpha_max:g} / {dalpha:g}")
        n_steps = max(1, math.ceil(alpha_max / dalpha * (1 - 1e-12)))
        if n_steps > max_steps:
            raise ValueError(f"alpha_max / dalpha = {alpha_max:g} / {dalpha:g} gives {n_steps} steps, more than "
                             f"max_steps = {max_steps}")
        dalpha = alpha_max / n_steps
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        check_memory(16.0 * record, f"record = {record}")  # the grid is built before duplicates are dropped
    points = record_points(record, MAX_STEPS if n_steps is None else n_steps)
    check_memory(8.0 * points * replicas * (p * p + p * k), f"recording {points} points of {replicas} replicas "
                 "(record, replicas)")
    times = record_alphas(_record_alphas(record, alpha_max), alpha_max, dalpha, n_steps)
    generators = [np.random.default_rng(child_seed(sequence, 0)) for sequence in replica_seeds(seed, replicas)]
    scheme = EulerMaruyama(dynamics, T_b, N=N, alpha_max=alpha_max, dalpha=dalpha, step_scale=step_scale,
                           max_steps=max_steps, escape_risk=escape_risk)
    started = time.perf_counter()
    run = scheme.run(Q, R, times, generators, progress, PROGRESS_WORK)
    seconds = time.perf_counter() - started
    _report(run, settings.eta, on_divergence, dalpha)
    T_rec = np.broadcast_to(T_b, (replicas, k, k)).copy()
    risk = None
    if dynamics.per_unit:
        module = tuple_module(settings.model)
        risk = teacher_mixture(lambda teacher: module.residual_risk(run.Q, run.R, T_rec[:, None], run.a, teacher),
                               module, run.R, dynamics.b[:, None], resolved.label_flip)
        risk = risk + resolved.noise_variance / 2
    nfev = int(np.max(run.steps_taken))
    extra = {"N": N, "dalpha": dalpha if dalpha is not None else alpha_max / max(nfev, 1),
             "largest_step": dalpha if dalpha is not None else run.largest_step,
             "steps": None if dalpha is None else np.rint(times / dalpha).astype(np.int64), "replicas": replicas,
             "model": settings.model, "method": "sde", "seconds": seconds, "projections": run.projections,
             "adaptive": dalpha is None, "status": run.status, "status_alpha": run.status_alpha,
             "escape_alpha": run.escape_alpha, "steps_taken": run.steps_taken}
    return replica_result(
        alpha=times, Q=run.Q, R=run.R, T=T_rec, resolved=resolved, risk=risk,
        squeeze=("a", "b", "status", "status_alpha", "escape_alpha", "steps_taken"),
        settings=settings, nfev=nfev, extra=extra,
        a=run.a if settings.per_unit else None, b=None if settings.b is None else dynamics.b,
    )


def _check_options(
    alpha_max: float, dalpha: Any, step_scale: Any, max_steps: Any, escape_risk: Any, on_divergence: Any
) -> tuple[float | None, float, int, float | None]:
    # the checked (dalpha, step_scale, max_steps, escape_risk)
    if dalpha is not None:
        dalpha = check_scalar(dalpha, "dalpha", positive=True)
        if dalpha > alpha_max:
            raise ValueError(f"dalpha = {dalpha:g} is larger than alpha_max = {alpha_max:g}")
    step_scale = check_scalar(step_scale, "step_scale", positive=True)
    max_steps = check_int(max_steps, "max_steps", minimum=1)
    if max_steps > MAX_STEPS:
        raise ValueError(f"max_steps = {max_steps} is more than the maximum MAX_STEPS = {MAX_STEPS:g}")
    if escape_risk is not None:
        escape_risk = check_scalar(escape_risk, "escape_risk", positive=True)
    if on_divergence not in ("mask", "raise"):
        raise ValueError(f"on_divergence must be 'mask' or 'raise', got {on_divergence!r}")
    return dalpha, step_scale, max_steps, escape_risk


def _report(run: SchemeRecord, eta: float, on_divergence: str, dalpha: float | None) -> None:
    # errors when every replica failed (or one diverged with on_divergence="raise"), warnings otherwise
    if run.long_steps:
        warnings.warn(f"{run.long_steps} steps were longer than {STEP_WARNING:g} times the drift's time scale "
                      f"(DRIFT_STEP / rate, or the time the drift takes to move the state by its own size, e.g. "
                      "the escape's |R| / |dR/dalpha|): the Euler-Maruyama error is large; use a smaller dalpha",
                      RuntimeWarning, stacklevel=3)
    diverged = np.flatnonzero(run.status == DIVERGED)
    stalled = np.flatnonzero(run.status == STALLED)
    failed = diverged.size + stalled.size
    if diverged.size and (on_divergence == "raise" or failed == run.status.size):
        first = diverged[np.argmin(run.status_alpha[diverged])]
        _diverged(run.status_alpha[first] - _last_step(run, first, dalpha), run.status_alpha[first], eta,
                  diverged.size, run.status.size)
    if stalled.size == run.status.size:
        raise SimulationError(
            f"every replica stalled (the first by alpha = {np.min(run.status_alpha):.6g}): each took max_steps "
            "steps before alpha_max; raise max_steps or step_scale"
        )
    if failed:
        alphas = ", ".join(f"{alpha:.4g}" for alpha in run.status_alpha[np.append(diverged, stalled)][:5])
        warnings.warn(f"{diverged.size} of {run.status.size} replicas diverged and {stalled.size} stalled (at "
                      f"alpha = {alphas}{', ...' if failed > 5 else ''}); their records are NaN from there on "
                      "(extra['status'], extra['status_alpha'])", RuntimeWarning, stacklevel=3)


def _last_step(run: SchemeRecord, replica: int, dalpha: float | None) -> float:
    # the diverging step's length is known exactly only for a fixed step; 0 otherwise (an interval of one point)
    return 0.0 if dalpha is None else dalpha


def _record_alphas(record: Any, alpha_max: float) -> np.ndarray:
    # the recorded alphas before any rounding to steps: the log grid and alpha_max, or the alphas given
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        if record < 2:
            raise ValueError(f"record must be >= 2 points, got {record}")
        return np.unique(np.append(default_grid(alpha_max, int(record), "log"), alpha_max))  # the end, always
    alphas = as_float_array(record, "record", ndim_min=1)
    if alphas.ndim != 1 or alphas.size < 1 or np.any(np.diff(alphas) < 0) or alphas[0] < 0:
        raise ValueError("record must be an integer or a non-decreasing 1-d array of alphas >= 0")
    if alphas[-1] > alpha_max * (1 + 1e-12):
        raise ValueError(f"record goes beyond alpha_max = {alpha_max:g} (last alpha {alphas[-1]:g})")
    return np.unique(np.minimum(alphas, alpha_max))


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


def _mini_batch(
    Q0: Any, R0: Any, T: Any, settings: RunSettings, *, N: float, alpha_max: float, replicas: Any, seed: Any,
    dalpha: Any, record: Any, progress: Any, **options: Any,
) -> IntegrationResult:
    # the single-sample process at eta / B on the time B alpha (see simulate_sde's batch_size); a trained
    # readout's drift is a mean (unchanged by B) and its increment the mean of B copies, so it runs at eta_a / B
    B = settings.batch_size
    if not isinstance(record, (int, np.integer)) or isinstance(record, (bool, np.bool_)):
        record = as_real_array(record, "record", ndim_min=1) * B
    single = settings.replace(eta=settings.eta / B, batch_size=1, eta_a=settings.eta_a / B)
    run = simulate_sde(Q0, R0, T, single, N=N, alpha_max=alpha_max * B, replicas=replicas, seed=seed,
                       dalpha=None if dalpha is None else dalpha * B, record=record, progress=progress, **options)
    extra = dict(run.extra, dalpha=run.extra["dalpha"] / B, largest_step=run.extra["largest_step"] / B,
                 status_alpha=run.extra["status_alpha"] / B,
                 escape_alpha=run.extra["escape_alpha"] / B)
    return replace(run, alpha=run.alpha / B, eta=settings.eta, batch_size=B, extra=extra, eta_a=settings.eta_a,
                   settings=settings)


def _diverged(start: float, end: float, eta: float, count: int, replicas: int) -> None:
    where = f"between alpha = {start:.6g} and alpha = {end:.6g}" if end > start else f"at alpha = {end:.6g}"
    raise SimulationError(
        f"the overlaps diverged (Q_jj > {BLOWUP:g} or not finite) {where} ({count} of {replicas} replicas): "
        f"the learning rate eta = {eta:g} is too large for this model and start"
    )


__all__ = ["simulate_sde"]
