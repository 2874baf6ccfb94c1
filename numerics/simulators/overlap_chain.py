"""Exact finite-N one-pass SGD on the overlaps alone: ``simulate(..., method="overlaps")``.

The chain
---------
Write ``V = [W; W*]`` ((p+k) x N) and ``C = V V^T / N = [[Q, R], [R^T, T]]``.
With ``N >= p + k`` there is an orthonormal set of ``P = p + k`` vectors in
``R^N`` (rows of ``Phi``, P x N) whose span contains the rows of ``V``, and
for any square factor ``C = F F^T`` (P x P) they can be chosen so that
``V / sqrt(N) = F Phi``. A fresh input splits as ``x = Phi^T g + y`` with
``g = Phi x ~ N(0, I_P)`` and ``y``
the Gaussian part orthogonal to that span, ``|y|**2 ~ chi2_{N-P}``,
independent of ``g``. Hence, for one step,

    z = (lambda, nu) = V x / sqrt(N) = F g ~ N(0, C),
    rho = |x|**2 / N = (|g|**2 + chi2_{N-P}) / N.

This is docs/model.md's ``rho = (z^T C^+ z + chi2_{N-r}) / N`` (``r = rank C``): the
``r`` coordinates of ``g`` along the range of ``C`` give ``z^T C^+ z``, the
other ``P - r`` ones are orthogonal to every weight and join the chi-square.
So the law needs no rank decision: any factor with ``F F^T = C`` gives it
exactly, singular ``C`` included (a student equal to a teacher, say), and
the chi-square always has ``N - P`` degrees of freedom.

With ``d = 1 - eta kappa / N`` and ``E_j = (y - f) a sigma'(lambda_j)``,
``y = b sum_r sigma*(nu_r) + sqrt(Delta) xi``, ``f = a sum_j sigma(lambda_j)``,
the weights move by ``w_j' = d w_j + (eta / sqrt(N)) E_j x``. Using
``W x / sqrt(N) = lambda``, ``W* x / sqrt(N) = nu`` and ``|x|**2 = N rho``:

    R' = d R + (eta / N) E nu^T,
    Q' = d**2 Q + (eta d / N) (E lambda^T + lambda E^T) + (eta**2 / N) rho E E^T,
    T' = T,

(:func:`overlap_step`). Given ``C`` the next ``C`` depends only on fresh
randomness, so the overlaps are an exact Markov chain, whatever N.

Blocks of steps
---------------
Factorising ``C`` at every step would cost a LAPACK call per step. Instead the
steps run in blocks of ``s`` (:data:`STEP_BLOCK`), exactly as the weight
simulator does, but in a ``P + s``-dimensional representation of the
inputs: ``C = F F^T`` is factorised once per block, the block's inputs have
coordinates ``G = X Phi^T`` (s x P, i.i.d. standard normal) on the
block-start span and orthogonal parts ``Y`` (s x N) whose Gram matrix ``H = Y Y^T ~ Wishart_s(N - P, I)``
is drawn directly (Bartlett decomposition ``H = L L^T``, ``L_ii**2 ~ chi2_{N-P-i}``
(``i = 0..s-1``), ``L_ij ~ N(0, 1)`` below the diagonal; for ``N - P < s``
the ``s x (N - P)`` matrix ``Y`` itself). Then with ``Lambda0 = G F_lambda^T``,
``Nu = G F_nu^T`` (the pre-activations at the block-start weights) and the
input Gram ``X X^T / N = (G G^T + H) / N`` (diagonal: the ``rho`` of each
step), the student pre-activation of step ``t`` is

    lambda_t = d^t Lambda0_t + sum_{tau < t} d^(t-1-tau) e_tau (x_tau . x_t) / N,   e = eta E,

and after the block, with ``u_tau = d^(s-1-tau) e_tau`` (columns of ``U``, p x s),

    R' = d^s R + U Nu / N,
    Q' = d^(2s) Q + d^s (U Lambda0 + Lambda0^T U^T) / N + U (X X^T / N) U^T / N,

which for ``s = 1`` is the step above. Per step the work is the sequential
``O(p s)`` recursion for ``e_t`` (a few NumPy calls on arrays with a leading
replica axis); per block one batched factorisation and a few small products.
Nothing depends on N (except the chi-square degrees of freedom), so the cost
per step is independent of N and the cost per unit of alpha grows like N
(against ``N**2`` for the weight simulator).

Factorisation (:func:`covariance_factor`): batched Cholesky; if it fails for
some replica (singular or round-off-indefinite ``C``), that replica's ``C``
alone is factorised by ``eigh``, ``F = U sqrt(s)``, with eigenvalues below
``EIGENVALUE_RTOL * P * max(s)`` (a few ulps, the accuracy of the
eigensolver) set to zero, so that for an exactly singular ``C`` the draws lie
exactly in its range (``lambda_1 = nu_1`` for a student equal to a teacher)
instead of ``sqrt(eps)`` off it. The tolerance only decides which round-off
is discarded; ``rho`` does not depend on it. A replica's factor, hence its
trajectory, does not depend on the other replicas.

Seeding: replica ``i`` owns ``replica_seeds(seed, B)[i]`` (as in
:func:`numerics.simulators.weights.simulate`); its spawned children 0, 1, 2, 3 feed
the start (:func:`haar_overlaps`), the input coordinates ``G`` and the normals
of the Bartlett factor, the label noise, and the chi-squares of the Bartlett
diagonal; child 4 the label flips (``Model(label_flip=epsilon)``: ``y -> -y`` with
probability ``epsilon``, independent of the inputs, :class:`FlipDraws`). The
blocks end at the recorded steps, which depend only on ``N``, ``alpha_max`` and
``record``, so a replica follows the same trajectory alone or batched.

Spherical SGD (``spherical=True``): every student renormalised to its start norm after each
step, exactly, inside the block as the weight simulator does it
(:mod:`numerics.simulators.chain_sphere`).

The starts and the factorisation live in :mod:`numerics.simulators.chain_start`, the
block draws in :mod:`numerics.simulators.chain_draws`, the readouts and risk in
:mod:`numerics.simulators.chain_readouts`; this module holds the step, the
block kernel (:class:`StepKernel`) and the simulation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from numerics.core.activations import activation_functions
from numerics.core.validation import check_flag, check_scalar
from numerics.ode.sphere import check_on_sphere
from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel, resolve
from numerics.simulators.chain_draws import STEP_BLOCK, BlockDraws, FlipDraws, block_sizes, block_steps
from numerics.simulators.chain_readouts import chain_readouts, chain_risk
from numerics.simulators.chain_sphere import renormalise_overlaps, sphere_update_vectors
from numerics.simulators.chain_start import covariance_factor, haar_overlaps, start_covariance
from numerics.simulators.common import (
    BLOWUP,
    SimulationError,
    check_memory,
    check_run,
    child_seed,
    progress_bar,
    replica_seeds,
)
from numerics.simulators.replicas import replica_result

#: A progress bar is shown when more than this many steps times replicas are simulated.
PROGRESS_WORK = 2e7


def overlap_step(
    Q: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    z: np.ndarray,
    rho: float | np.ndarray,
    xi: float | np.ndarray = 0.0,
    *,
    eta: float,
    N: int,
    model: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One SGD step on the overlaps, given the step's random draws.

    ``R' = d R + (eta/N) E nu^T`` and
    ``Q' = d**2 Q + (eta d/N)(E lambda^T + lambda E^T) + (eta**2/N) rho E E^T``
    with ``d = 1 - eta kappa / N``, ``E_j = (y - f) a sigma'(lambda_j)``,
    ``y = b sum_r sigma*(nu_r) + sqrt(Delta) xi`` (module docstring).

    Parameters
    ----------
    Q : array, shape (..., p, p)
    R : array, shape (..., p, k)
    T : array, shape (..., k, k)
        Unchanged by the step; only its shape is used.
    z : array, shape (..., p + k)
        Pre-activations ``(lambda, nu)`` of the step's input; in the chain
        ``z ~ N(0, C)``.
    rho : float or array, shape (...)
        ``|x|**2 / N``; in the chain ``(z^T C^+ z + chi2_{N - rank C}) / N``.
    xi : float or array, shape (...)
        Standard normal label noise (multiplied by ``sqrt(Delta)``).
    eta : float
    N : int
    model : derive.Model, optional

    Returns
    -------
    Q : array, shape (..., p, p)
    R : array, shape (..., p, k)
    """
    Q = np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float)
    p, k = R.shape[-2:]
    if np.shape(T)[-2:] != (k, k) or np.shape(z)[-1] != p + k:
        raise ValueError(f"T must have shape (..., {k}, {k}) and z (..., {p + k})")
    kernel = StepKernel(resolve(model), eta, N, p, k)
    z = np.asarray(z, dtype=float)
    lam, nu = z[..., :p], z[..., p:]
    rho = np.asarray(rho, dtype=float)[..., None, None]
    y = kernel.b * kernel.sigma_star(nu).sum(axis=-1) + kernel.noise_std * np.asarray(xi, dtype=float)
    residual = y - kernel.a * kernel.sigma(lam).sum(axis=-1)
    E = kernel.a * residual[..., None] * kernel.sigma_prime(lam)
    d = kernel.decay
    outer = E[..., :, None] * lam[..., None, :]
    Q_next = d * d * Q + (eta * d / N) * (outer + np.swapaxes(outer, -1, -2))
    Q_next = Q_next + (eta * eta / N) * rho * E[..., :, None] * E[..., None, :]
    R_next = d * R + (eta / N) * E[..., :, None] * nu[..., None, :]
    return Q_next, R_next


class StepKernel:
    """The model's activations and constants, and the block update (module docstring).

    ``readouts``: per-unit readout vectors ``(a, b)`` of shapes (B, p) and (B, k), one row
    per replica; default the model's scalar readout on every unit. ``sphere_norms`` (B, p): the
    squared norms ``Q_jj`` that spherical SGD keeps (``None``: free steps).
    """

    def __init__(
        self, resolved: ResolvedModel, eta: float, N: int, p: int, k: int, batch: int = 1,
        readouts: tuple[np.ndarray, np.ndarray] | None = None, sphere_norms: np.ndarray | None = None,
    ) -> None:
        module = resolved.module
        # the model's scalar readouts, or per-unit readout vectors a (B, p), b (B, k) (one row per replica)
        self.a, self.b = (float(v) for v in module.readouts(p, k)) if readouts is None else readouts
        self.per_unit = readouts is not None
        # polynomials, erf or relu: the chain's law holds for any activation
        self.sigma, self.sigma_prime = activation_functions(module, "STUDENT")
        self.sigma_star, _ = activation_functions(module, "TEACHER")
        self.noise_std = float(np.sqrt(resolved.noise_variance))
        self.decay = 1.0 - eta * resolved.weight_decay / N
        # spherical SGD (numerics.simulators.chain_sphere): the students keep the squared norms
        # sphere_norms (B, p); the decay only rescales each step
        self.sphere_norms, self.sphere_scale = sphere_norms, 1.0
        if sphere_norms is not None:
            self.sphere_scale, self.decay = 1.0 / self.decay, 1.0
        self.eta, self.N, self.p, self.k, self.batch = eta, N, p, k, batch
        s = block_steps(batch)
        # decay powers d^t and the (tau, t) weights d^(t-1-tau) (tau < t) of the input Gram matrix;
        # the inputs of one mini-batch step (same t) do not see each other's updates
        self.step_of = np.repeat(np.arange(s), batch)
        self.powers = self.decay ** np.arange(s + 1)
        lags = self.step_of[None, :] - self.step_of[:, None] - 1
        self.decay_weights = np.where(lags >= 0, self.decay ** np.maximum(lags, 0), 0.0)

    def advance(
        self, C: np.ndarray, inputs: np.ndarray, xi: np.ndarray | None, signs: np.ndarray | None = None
    ) -> None:
        """Advance the overlaps of every replica by one block of steps, in place.

        Parameters
        ----------
        C : array, shape (B, P, P)
            ``[[Q, R], [R^T, T]]`` at the block start; overwritten with the block end.
        inputs : array, shape (B, s * batch, P + m)
            Row t: the coordinates ``g_t`` (P) of input t on the span of the
            block-start factor's columns, then its coordinates (m) in an
            orthonormal basis of the orthogonal part of the block's inputs
            (Bartlett factor: lower triangular, or ``Y`` itself). Only
            ``inputs @ inputs^T`` (the Gram matrix of the inputs) is used.
        xi : array, shape (B, s * batch), or None
            Standard normal label noise of the inputs (``None``: no noise).
        signs : array, shape (B, s * batch), or None
            ``-1`` where an input's label is flipped, else ``+1`` (``None``: no flips).
        """
        p, N, eta, batch = self.p, self.N, self.eta, self.batch
        n_inputs = inputs.shape[1]
        size = n_inputs // batch  # steps
        P = C.shape[-1]
        decay = self.decay
        F = covariance_factor(C)
        G = inputs[:, :, :P]
        Z0 = G @ np.swapaxes(F, 1, 2)  # (B, s, P): pre-activations at the block-start weights
        lam0, nu = Z0[:, :, :p], Z0[:, :, p:]
        gram = inputs @ np.swapaxes(inputs, 1, 2)  # (B, s, s): x_tau . x_t / N after the division
        gram /= N
        y = self.teacher_output(nu)
        if signs is not None:
            y *= signs
        if xi is not None and self.noise_std > 0:
            y += self.noise_std * xi
        step_of = self.step_of[:n_inputs]
        if decay != 1.0:
            lam_start = lam0 * self.powers[step_of, None]
            overlap = gram * self.decay_weights[:n_inputs, :n_inputs]
        else:
            lam_start, overlap = lam0, gram
        e = np.empty((C.shape[0], p, n_inputs))  # e_t = (eta / batch) E_t, one column per input
        sigma_prime = self.sigma_prime
        if self.sphere_norms is not None:
            e = sphere_update_vectors(self, lam0, y, gram, self.sphere_norms)
        elif batch == 1:
            coefficient = eta * self.student_readout(1) / batch  # scalar or (B, p)
            for t in range(size):
                lam = lam_start[:, t]
                if t:
                    lam = lam + (e[:, :, :t] @ overlap[:, :t, t, None])[..., 0]
                residual = y[:, t] - self.student_output(lam, 1)
                np.multiply(coefficient * residual[:, None], sigma_prime(lam), out=e[:, :, t])
        else:
            coefficient = eta * self.student_readout(2) / batch  # scalar or (B, 1, p)
            for t in range(size):
                first, last = t * batch, (t + 1) * batch  # the inputs of step t
                lam = lam_start[:, first:last]  # (B, batch, p)
                if t:
                    lam = lam + np.swapaxes(e[:, :, :first] @ overlap[:, :first, first:last], 1, 2)
                residual = y[:, first:last] - self.student_output(lam, 2)
                e[:, :, first:last] = np.swapaxes(coefficient * residual[..., None] * sigma_prime(lam), 1, 2)
        U = e * self.powers[size - 1 - step_of] if decay != 1.0 else e
        ds = self.powers[size]
        cross = (U @ lam0) * (ds / N)  # (B, p, p)
        Q = C[:, :p, :p] * (ds * ds) + cross + np.swapaxes(cross, 1, 2)
        Q += (U @ gram @ np.swapaxes(U, 1, 2)) / N
        R = C[:, :p, p:] * ds + (U @ nu) / N
        if self.sphere_norms is not None:
            renormalise_overlaps(Q, R, self.sphere_norms)
        C[:, :p, :p] = (Q + np.swapaxes(Q, 1, 2)) / 2  # symmetric to the last bit
        C[:, :p, p:] = R
        C[:, p:, :p] = np.swapaxes(R, 1, 2)


    def student_readout(self, axes: int) -> Any:
        # the scalar readout, or a (B, p) with axes - 1 unit axes inserted before p (lambda's layout)
        if not self.per_unit:
            return self.a
        return self.a.reshape(self.a.shape[:1] + (1,) * (axes - 1) + self.a.shape[1:])

    def student_output(self, lam: np.ndarray, axes: int) -> np.ndarray:
        # f = sum_j a_j sigma(lambda_j) for lambda of shape (B, ..., p) with ``axes`` leading axes
        if not self.per_unit:
            return self.a * self.sigma(lam).sum(axis=-1)
        return (self.student_readout(axes) * self.sigma(lam)).sum(axis=-1)

    def teacher_output(self, nu: np.ndarray) -> np.ndarray:
        # y without label noise, sum_r b_r sigma*(nu_r), for nu of shape (B, n, k)
        if not self.per_unit:
            return self.b * self.sigma_star(nu).sum(axis=-1)
        return (self.b[:, None, :] * self.sigma_star(nu)).sum(axis=-1)


def simulate_overlaps(
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
    Q0: np.ndarray | None = None,
    R0: np.ndarray | None = None,
    T: np.ndarray | None = None,
    progress: bool = True,
    **setting_overrides: Any,
) -> IntegrationResult:
    """Finite-N one-pass SGD simulated exactly on the overlaps (``simulate(..., method="overlaps")``).

    Same trajectory law as :func:`numerics.simulators.weights.simulate` (the weight
    method) at every N, at a cost per step independent of N (module docstring).

    Parameters
    ----------
    settings : RunSettings, optional
        ``eta``, ``model`` and ``batch_size`` as in :func:`numerics.simulators.weights.simulate` (a
        mini-batch step draws ``batch_size`` inputs: the block's ``s * batch_size`` rows, their Gram
        matrix included); per-unit readout vectors ``a`` (shape (p,) or (replicas, p)) and ``b``
        ((k,) or (replicas, k)) as there; a trained readout (``eta_a > 0``) is simulated by the
        weight method only (``ValueError`` here). ``spherical=True`` renormalises every student to
        its start norm after each step; label flips (``Model(label_flip=epsilon)``) flip each label
        with probability ``epsilon`` (the risk is then the mixture over flipped labels).
    **setting_overrides
        The same settings as keywords; other names raise ``TypeError``.
    N, p, k, alpha_max, q0, seed, replicas, record, progress
        As in :func:`numerics.simulators.weights.simulate`.
    W0 : array, shape (p, N) or (replicas, p, N), optional
        Start from these weights' overlaps.
    W_star : array, shape (k, N) or (replicas, k, N), optional
        Teacher weights (their overlaps ``T``, and ``R`` with ``W0``).
    Q0 : array, shape (p, p) or (replicas, p, p), optional
    R0 : array, shape (p, k) or (replicas, p, k), optional
        Explicit start (``R0`` needs ``Q0``). Without ``R0`` (and without both
        ``W0`` and ``W_star``) ``R(0)`` is random, students and teacher being
        independent random orthonormal-frame images (:func:`start_covariance`);
        the default start has the law of the weight method's default.
    T : array, shape (k, k) or (replicas, k, k), optional
        Teacher overlaps; default ``I``.

    Returns
    -------
    IntegrationResult
        As the weight method: ``alpha`` (n,), ``Q`` (B, n, p, p), ``R`` (B, n, p, k),
        ``risk`` (B, n), ``T`` (B, k, k), replica axis dropped for ``replicas == 1``;
        ``extra`` holds ``"N"``, ``"steps"``, ``"replicas"``, ``"model"``,
        ``"method"`` (``"overlaps"``), ``"seconds"`` (wall time of the SGD loop).
        ``nfev`` is the number of SGD steps; ``settings`` the run's settings. With readout
        vectors ``a`` (B, n, p) holds the (fixed) student readout at the recorded steps, ``b``
        (B, k) the teacher's when given, and ``risk`` is computed with them.

    Raises
    ------
    ValueError
        Bad arguments.
    SimulationError
        If the overlaps diverge, naming the alpha interval reached.
    """
    settings = RunSettings.merged(settings, setting_overrides, "simulate_overlaps")
    if settings.sam_radius:
        raise ValueError(f"simulate_overlaps does not take sam_radius = {settings.sam_radius}: "
                         "sharpness-aware steps are simulated by method='weights' only")
    if settings.eta_a > 0:
        raise ValueError("a trained readout (eta_a > 0) is simulated by method='weights' only")
    N, p, k, replicas, n_steps, steps = check_run(settings, N, p, k, alpha_max, replicas, record, "simulate_overlaps")
    q0 = check_scalar(q0, "q0", positive=True)
    progress = check_flag(progress, "progress")
    batch = settings.batch_size
    inputs, dof = max(STEP_BLOCK, batch), N - p - k  # at most this many inputs per block
    block_bytes = 16.0 * replicas * inputs * (p + k + min(inputs, dof) + inputs / 2 + 1)
    check_memory(block_bytes + 40.0 * n_steps / block_steps(batch),
                 f"simulating {replicas} replicas in blocks of {inputs} inputs over {n_steps} steps "
                 "(replicas, batch_size, N)")
    resolved = resolve(settings.model, sizes=(p, k))
    readouts = chain_readouts(settings, resolved, p, k, replicas)
    sequences = replica_seeds(seed, replicas)
    generators = [[np.random.default_rng(child_seed(sq, j)) for j in range(5)] for sq in sequences]
    C = start_covariance(N=N, p=p, k=k, replicas=replicas, init_rngs=[g[0] for g in generators], q0=q0,
                         W0=W0, W_star=W_star, Q0=Q0, R0=R0, T=T)
    T_out = C[:, p:, p:].copy()
    sphere_norms = None
    if settings.spherical:
        check_on_sphere(C[:, :p, :p])
        sphere_norms = np.diagonal(C[:, :p, :p], axis1=1, axis2=2).copy()
    streams = [(g[1], g[2], g[3]) for g in generators]
    kernel = StepKernel(resolved, settings.eta, N, p, k, batch, readouts, sphere_norms)
    sizes = [size * batch for size in block_sizes(steps, n_steps, block_steps(batch))]  # inputs per block
    draws = BlockDraws(streams, sizes, p + k, dof, resolved.noise_variance > 0)
    flips = FlipDraws([g[4] for g in generators], sizes, resolved.label_flip) if resolved.label_flip else None
    bar = progress_bar(progress and float(n_steps) * batch * replicas > PROGRESS_WORK, n_steps,
                       "SGD steps (overlaps)")
    started = time.perf_counter()
    Q_rec, R_rec = _run_chain(kernel, draws, flips, C, steps, bar)
    seconds = time.perf_counter() - started
    extra = {"N": N, "steps": steps, "replicas": replicas, "model": settings.model, "method": "overlaps",
             "seconds": seconds}
    risk, a_rec = chain_risk(settings, resolved, readouts, Q_rec, R_rec, T_out)
    return replica_result(alpha=steps / N, Q=Q_rec, R=R_rec, T=T_out, resolved=resolved, settings=settings,
                          nfev=n_steps, extra=extra, risk=risk, squeeze=("a", "b"), a=a_rec,
                          b=None if settings.b is None else readouts[1].copy())


def _run_chain(
    kernel: StepKernel, draws: BlockDraws, flips: FlipDraws | None, C: np.ndarray, steps: np.ndarray, bar: Any
) -> tuple[np.ndarray, np.ndarray]:
    # the chain's loop: advance C block by block, measuring Q and R at the recorded steps
    replicas, p, N, batch = C.shape[0], kernel.p, kernel.N, kernel.batch
    n_rec = steps.size
    Q_rec = np.empty((replicas, n_rec, p, p))
    R_rec = np.empty((replicas, n_rec, p, kernel.k))
    done = 0
    rec_index = 0

    def measure_due() -> None:
        nonlocal rec_index
        while rec_index < n_rec and steps[rec_index] == done:
            Q_rec[:, rec_index] = C[:, :p, :p]
            R_rec[:, rec_index] = C[:, :p, p:]
            rec_index += 1

    try:
        with np.errstate(over="ignore", invalid="ignore"):
            measure_due()
            signs = iter(flips) if flips is not None else None
            for inputs, xi in draws:
                kernel.advance(C, inputs, xi, None if signs is None else next(signs))
                size = inputs.shape[1] // batch
                done += size
                if bar is not None:
                    bar.update(size)
                largest = np.max(np.diagonal(C[:, :p, :p], axis1=1, axis2=2))
                if not np.all(np.isfinite(C)) or largest > BLOWUP:
                    raise SimulationError(
                        f"the student overlaps diverged (Q_jj > {BLOWUP:g} or not finite) between "
                        f"alpha = {(done - size) / N:.6g} and alpha = {done / N:.6g}: the learning rate "
                        f"eta = {kernel.eta:g} is too large for this model and start"
                    )
                measure_due()
    finally:
        if bar is not None:
            bar.close()
    return Q_rec, R_rec


__all__ = [
    "STEP_BLOCK",
    "StepKernel",
    "block_sizes",
    "block_steps",
    "covariance_factor",
    "haar_overlaps",
    "overlap_step",
    "simulate_overlaps",
    "start_covariance",
]
