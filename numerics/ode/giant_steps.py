"""Giant steps: the exact one-step map of the overlaps for a batch of ``B = n_b N`` samples.

Conventions (docs/model.md, "Giant steps"): one step sums the per-sample updates over the batch,

    w_j <- (1 - eta kappa n_b) w_j + (eta / sqrt N) sum_{mu in batch} E_j^mu x^mu,

(the learning rate ``eta`` is per sample, as in one-pass SGD; equivalently the mini-batch mean with
learning rate ``eta B``), and ``alpha`` counts samples / N, so one step advances ``alpha`` by ``n_b``.
As N -> infinity with ``n_b`` fixed the step is deterministic. With ``z = (lambda, nu) ~ N(0, C)``,
``M_j = <E_j z>`` (a row of length p + k) and ``s = 1 - eta kappa n_b``:

    R'  = s R + eta n_b <E_j nu_r>
    Q'  = s**2 Q + s eta n_b <E_j lambda_l + E_l lambda_j> + eta**2 (n_b**2 M_j C^+ M_l^T + n_b <E_j E_l>)
    a'  = a + eta_a n_b (<(y - f) sigma(lambda_j)> - kappa_a a_j)          (a trained readout)

The ``n_b`` part of the ``eta**2`` term is the ODE's (each sample's own square, label noise included);
the ``n_b**2`` part is the square of the mean update: by Stein's lemma the mean of ``E_j x`` is
``sum_u (C^+ M_j)_u w_u / sqrt N``, and ``M_j`` lies in the range of ``C`` (``z`` does), so the
pseudo-inverse is exact for a singular ``C`` too. Every average comes from the model's per-tuple
module (:func:`numerics.kernels.unit_tuples.update_averages`: the first-order averages before they
are symmetrised into the ODE's drift). As ``n_b -> 0`` at fixed ``alpha`` the iterates approach the
one-sample ODE (:func:`numerics.integrate` with ``batch_size=1``), with an error of order ``n_b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.core.validation import check_int, check_overlaps, check_scalar, covariance
from numerics.kernels.unit_tuples import readout_vectors, update_averages
from numerics.ode.flow import BLOWUP
from numerics.ode.integrate import IntegrationError
from numerics.ode.overlaps import risk
from numerics.ode.readouts import check_readout_batch, check_readouts, teacher_readout_vector
from numerics.ode.sphere import check_on_sphere
from numerics.results.persist import IntegrationResult
from numerics.results.settings import RunSettings
from numerics.runtime.registry import resolve, tuple_module

#: Eigenvalues of ``C`` below this fraction of its largest count as zero in ``C^+`` (their
#: directions carry ``M`` only to the same relative order, see :func:`mean_square`).
PINV_RTOL = 1e-10


@dataclass(frozen=True)
class StepAverages:
    """The Gaussian averages one giant step is built from, at one state (batch axes ``...`` first).

    Attributes
    ----------
    first_order : array, shape (..., p, p + k)
        ``M_j = <E_j z>`` over ``z = (lambda, nu)``: ``<E_j lambda_l>`` then ``<E_j nu_r>``, unsymmetrised.
    second_moment : array, shape (..., p, p)
        ``<E_j E_l>``, label noise included (zeros without ``second_order``).
    mean_square : array, shape (..., p, p)
        ``M_j C^+ M_l^T``: ``N`` times the overlap of two mean updates (zeros without ``second_order``).
    readout : array, shape (..., p), or None
        ``<(y - f) sigma(lambda_j)>`` when the readout is trained.
    """

    first_order: np.ndarray
    second_moment: np.ndarray
    mean_square: np.ndarray
    readout: np.ndarray | None


def mean_square(first_order: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``M C^+ M^T``, shapes (..., p, n) and (..., n, n) to (..., p, p), symmetric.

    ``C^+`` drops eigenvalues below :data:`PINV_RTOL` times the largest: on such a direction ``v``,
    ``v . M_j = <E_j v.z>`` is of the order of the eigenvalue itself (Stein's lemma), so what is
    dropped is of that order too, while round-off there would otherwise be divided by ~0.
    """
    eigenvalues, vectors = np.linalg.eigh(C)
    floor = PINV_RTOL * np.max(np.abs(eigenvalues), axis=-1, keepdims=True)
    inverse = np.where(eigenvalues > floor, 1.0 / np.where(eigenvalues > floor, eigenvalues, 1.0), 0.0)
    projected = first_order @ vectors
    square = (projected * inverse[..., None, :]) @ np.swapaxes(projected, -1, -2)
    return (square + np.swapaxes(square, -1, -2)) / 2


def step_averages(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, settings: RunSettings, a: np.ndarray | None = None
) -> StepAverages:
    """The averages of :class:`StepAverages` at ``(Q, R)`` (shapes (..., p, p), (..., p, k), T (..., k, k)).

    ``a`` (..., p) is the student readout (``None``: ``settings.a``, else the model's); label flips mix
    the teacher and its negative in every average before the mean update is squared. Unchecked:
    valid float64 overlaps only (:func:`giant_steps` checks them).
    """
    resolved = resolve(settings.model)
    module = tuple_module(settings.model)
    a = settings.a if a is None else a
    flip = resolved.label_flip
    b = teacher_readout_vector(module, R, settings.b) if flip else settings.b
    teachers = ((1.0, b),) if not flip else ((1.0 - flip, b), (flip, -b))
    first_order, second_moment, readout = 0.0, 0.0, None
    for weight, teacher in teachers:
        averages, diffusion, noise = update_averages(
            module.KERNELS, module.readouts, Q, R, T, a, teacher, second_order=settings.second_order
        )
        first_order = first_order + weight * averages
        if settings.second_order:
            second_moment = second_moment + weight * (diffusion + resolved.noise_variance * noise)
        if settings.eta_a:
            readout = (0.0 if readout is None else readout) + weight * module.readout_drift(Q, R, T, a, teacher)
    if settings.second_order:
        square = mean_square(first_order, covariance(Q, R, T))
    else:
        second_moment = square = np.zeros(first_order.shape[:-1] + (Q.shape[-1],))
    return StepAverages(first_order, second_moment, square, readout)


def giant_step(
    Q: np.ndarray, R: np.ndarray, T: np.ndarray, n_b: float, settings: RunSettings, a: np.ndarray | None = None,
    *, square_of_mean: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One giant step ``(Q, R, a) -> (Q', R', a')`` (the map of the module docstring).

    Parameters
    ----------
    Q, R, T : arrays, shapes (..., p, p), (..., p, k), (..., k, k)
        The overlaps before the step (unchecked: valid float64 input only).
    n_b : float
        Samples in the batch per input dimension, ``B / N`` (> 0).
    settings : RunSettings
        The dynamics (``eta``, ``model``, ``second_order``, readouts, ``spherical``).
    a : array, shape (..., p), or None
        The student readout before the step (``None``: ``settings.a``, else the model's).
    square_of_mean : bool
        Keep the ``n_b**2`` term (default). ``False`` leaves only the per-sample ``eta**2`` term,
        a map that is wrong at ``n_b`` of order one (kept to show that the term matters).

    Returns
    -------
    Q, R : arrays, shapes (..., p, p), (..., p, k)
    a : array, shape (..., p), or None
        The readout after the step when it is trained, else ``a`` unchanged.
    """
    averages = step_averages(Q, R, T, settings, a)
    resolved = resolve(settings.model)
    eta, p = settings.eta, Q.shape[-1]
    shrink = 1.0 - eta * resolved.weight_decay * n_b
    towards_students = averages.first_order[..., :p]
    R_next = shrink * R + (eta * n_b) * averages.first_order[..., p:]
    Q_next = shrink**2 * Q + (shrink * eta * n_b) * (towards_students + np.swapaxes(towards_students, -1, -2))
    if settings.second_order:
        square = n_b**2 * averages.mean_square if square_of_mean else 0.0
        Q_next = Q_next + eta**2 * (square + n_b * averages.second_moment)
    Q_next = (Q_next + np.swapaxes(Q_next, -1, -2)) / 2
    if settings.spherical:
        # each student back to its norm before the step: a deterministic rescaling of the exact map
        scale = np.sqrt(np.diagonal(Q, axis1=-2, axis2=-1) / np.diagonal(Q_next, axis1=-2, axis2=-1))
        Q_next = Q_next * scale[..., :, None] * scale[..., None, :]
        R_next = R_next * scale[..., :, None]
    if averages.readout is not None:
        a_now = a if a is not None else settings.a
        a_next = a_now + (settings.eta_a * n_b) * (averages.readout - settings.readout_decay * a_now)
        return Q_next, R_next, a_next
    return Q_next, R_next, a


def _check_batch_size(settings: RunSettings) -> None:
    if settings.batch_size != 1:
        raise ValueError(
            f"giant_steps() sets the batch by n_b (B = n_b N samples per step); batch_size = {settings.batch_size} "
            "does not apply: leave it at 1"
        )
    if settings.sam_radius:
        # the map is built from the plain step's averages; the ascent point would change every one of them
        raise ValueError(
            f"giant_steps() has no sharpness-aware map: sam_radius = {settings.sam_radius} is not supported "
            "(leave it at 0)"
        )


def giant_steps(
    Q0: np.ndarray,
    R0: np.ndarray,
    T: np.ndarray | None = None,
    settings: RunSettings | None = None,
    *,
    n_b: float,
    steps: int,
    **setting_overrides: Any,
) -> IntegrationResult:
    """Iterate the giant-step map (batches of ``B = n_b N`` samples) ``steps`` times from ``(Q0, R0)``.

    Example: ``giant_steps(np.eye(2), R0, n_b=2.0, steps=10, eta=0.2)`` (the paper's model, p = k = 2; at
    ``eta = 0.5`` the same steps blow up).

    Parameters
    ----------
    Q0 : array, shape (p, p) or (..., p, p)
        Student-student overlaps at the start (leading axes: a batch of starts, iterated together).
    R0 : array, shape (p, k) or (..., p, k)
    T : array, shape (k, k) or (..., k, k), optional
        Teacher-teacher overlaps (default: the identity).
    settings : RunSettings, optional
        The dynamics as in :func:`numerics.integrate` (``eta`` per sample, ``model``,
        ``second_order``, readouts ``a``, ``b``, ``eta_a``, ``readout_decay``, ``spherical``);
        keywords with the same names override it. ``batch_size`` must stay 1: ``n_b`` sets the batch.
    n_b : float
        Batch size per input dimension, ``B / N`` (> 0); one step advances ``alpha`` by ``n_b``.
    steps : int
        Number of steps (>= 1).

    Returns
    -------
    IntegrationResult
        ``alpha`` (steps + 1,) ``= n_b * (0, 1, ..., steps)``; ``Q`` (..., steps + 1, p, p),
        ``R`` (..., steps + 1, p, k), ``risk`` (..., steps + 1), ``a`` (..., steps + 1, p) with
        readout vectors or a trained readout; ``nfev`` counts the steps; ``extra["n_b"]``.

    Raises
    ------
    TypeError
        A keyword that is not a setting, or no learning rate.
    ValueError
        ``n_b <= 0``, ``steps < 1``, non-finite or non-PSD overlaps, ``batch_size != 1``, or bad
        settings, each named.
    IntegrationError
        The overlaps blow up (``|Q|`` or ``|R|`` beyond ``1e8``, or not finite); the message names
        the step and its alpha.
    """
    settings = RunSettings.merged(settings, setting_overrides, "giant_steps")
    k = np.shape(R0)[-1] if np.ndim(R0) >= 2 else 1
    T = np.eye(k) if T is None else T
    Q0, R0, T = check_overlaps(Q0, R0, T, names=("Q0", "R0", "T"))
    n_b = check_scalar(n_b, "n_b", positive=True)
    steps = check_int(steps, "steps", minimum=1)
    batch = np.broadcast_shapes(Q0.shape[:-2], R0.shape[:-2], T.shape[:-2])
    p, k = R0.shape[-2:]
    resolved = resolve(settings.model, sizes=(p, k))
    _check_batch_size(settings)
    check_readouts(settings.a, settings.b, settings.eta_a, p, k)
    check_readout_batch(settings.a, settings.b, batch, "the batch of starts")
    if settings.spherical:
        check_on_sphere(Q0)
    return _iterate(np.broadcast_to(Q0, batch + (p, p)), np.broadcast_to(R0, batch + (p, k)), T, settings,
                    resolved, n_b, steps)


def _iterate(Q, R, T, settings, resolved, n_b, steps):
    """The trajectory of :func:`giant_steps` from checked, broadcast starts."""
    batch, (p, k) = Q.shape[:-2], R.shape[-2:]
    per_unit = settings.per_unit or resolved.label_flip > 0
    a = None
    if per_unit:
        a = np.broadcast_to(readout_vectors(tuple_module(settings.model).readouts, p, k, settings.a, None)[0],
                            batch + (p,))
    Q_traj, R_traj = np.empty((steps + 1,) + batch + (p, p)), np.empty((steps + 1,) + batch + (p, k))
    a_traj = np.empty((steps + 1,) + batch + (p,)) if per_unit else None
    risks = np.empty((steps + 1,) + batch)
    for step in range(steps + 1):
        if step:
            with np.errstate(over="ignore", invalid="ignore"):
                Q, R, a = giant_step(Q, R, T, n_b, settings, a)
            largest = max(float(np.max(np.abs(Q))), float(np.max(np.abs(R))))
            if not largest <= BLOWUP:
                raise IntegrationError(
                    f"the overlaps blew up (|Q| or |R| > {BLOWUP:g} or not finite) at step {step}, "
                    f"alpha = {step * n_b:.6g}: the learning rate eta = {settings.eta:g} is too large for n_b = "
                    f"{n_b:g} from this start", kind="blew up", alpha=step * n_b,
                )
        Q_traj[step], R_traj[step] = Q, R
        if per_unit:
            a_traj[step] = a
        risks[step] = risk(Q, R, T, model=settings.model, a=a, b=settings.b, check=False)
    move = (lambda x: np.moveaxis(x, 0, len(batch))) if batch else (lambda x: x)
    return IntegrationResult(
        alpha=n_b * np.arange(steps + 1), Q=move(Q_traj), R=move(R_traj), risk=move(risks), T=T, eta=settings.eta,
        second_order=settings.second_order, model_name=resolved.name, nfev=steps, model=settings.model,
        a=None if a_traj is None else move(a_traj), b=settings.b, eta_a=settings.eta_a, settings=settings,
        extra={"n_b": n_b},
    )


__all__ = ["PINV_RTOL", "StepAverages", "giant_step", "giant_steps", "mean_square", "step_averages"]
