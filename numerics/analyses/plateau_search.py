"""Finding the plateau of any model and setting: at ``R = 0`` where that is invariant, else the symmetric one.

Two kinds of plateau (:attr:`Plateau.kind`):

* ``"R = 0"``: where the teacher-student drift ``<E_j nu_r>`` vanishes at ``R = 0`` (the paper
  model with any ``T``, He3 with ``T = I``, every student whose derivative has zero mean...),
  ``R = 0`` is invariant and the plateau is the attractive fixed point of the flow of ``Q``
  (and of a trained readout) restricted to it, followed from ``Q_start``;
* ``"symmetric"``: where ``R = 0`` is no fixed point (information exponent 1: the teacher's
  first Hermite coefficient times the mean of the student's derivative drives ``R`` from the
  start, as for erf and relu units), the plateau is Saad and Solla's: the fixed point of the
  flow restricted to permutation-symmetric overlaps (:func:`numerics.analyses.fixed_points.
  symmetric_fixed_point_of`), left along the directions that break the symmetry. It needs
  ``T = I`` and uniform readouts; without a symmetric fixed point short of zero error (one
  student, or a student that learns without stalling) there is no plateau.

Either way the point is polished to a residual below :data:`FIXED_POINT_TOLERANCE` and
carries its full :class:`~numerics.analyses.fixed_points.Stability`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import root

from numerics.analyses.fixed_points import Stability, readout_still_moving, spectrum, symmetric_fixed_point_of
from numerics.ode.flow import BLOWUP, psd_part
from numerics.ode.jacobian import Drift, Jacobian, coordinate_names, drift_jacobian, pack_state
from numerics.ode.overlaps import risk
from numerics.runtime.registry import resolve

#: A fixed point must make every entry of dQ/dalpha smaller than this.
FIXED_POINT_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Plateau:
    """The plateau of a model, teacher and learning rate (see :func:`numerics.plateau_fixed_point`).

    Attributes
    ----------
    Q : array, shape (p, p)
        Student overlaps at the fixed point.
    T : array, shape (k, k)
        The teacher overlaps it belongs to.
    risk : float
        Population risk at the fixed point (label-noise term ``Delta / 2`` included).
    noise_floor : float
        ``Delta / 2``, the risk no student can go below.
    eigenvalues : array
        For an ``"R = 0"`` plateau the eigenvalues of the flow of ``Q`` (and of a trained
        readout) at ``R = 0``, all with a negative real part: the point attracts the
        uninformed dynamics. For a symmetric plateau the eigenvalues of the full flow other
        than the unstable ones (those break the symmetry), at ``eta / B``.
    residual : float
        ``max |dx/dalpha|`` at the point.
    eta : float
        The learning rate of the single-sample ODE with this fixed point (``eta / B`` for a mini-batch).
    second_order : bool
    R : array, shape (p, k)
        Teacher-student overlaps at the point (zero for an ``"R = 0"`` plateau).
    a : array, shape (p,) or None
        The trained readout at the point (None when it is not trained).
    kind : str
        ``"R = 0"`` or ``"symmetric"`` (module docstring).
    stability : Stability or None
        Spectrum of the full linearised flow of the run's own dynamics (``eta``, ``B``), unstable
        directions named: :attr:`growth_rate` is ``g_R``.
    """

    Q: np.ndarray
    T: np.ndarray
    risk: float
    noise_floor: float
    eigenvalues: np.ndarray
    residual: float
    eta: float
    second_order: bool
    R: np.ndarray | None = None
    a: np.ndarray | None = None
    kind: str = "R = 0"
    stability: Stability | None = None

    @property
    def growth_rate(self) -> float:
        """``g_R``, the linearised escape rate: the largest real part of the full flow's eigenvalues."""
        return np.nan if self.stability is None else self.stability.growth_rate

    @property
    def log_slope(self) -> float:
        """Predicted ``d <escape alpha> / d log N`` = ``1 / (2 g_R)`` (inf when nothing grows at first order)."""
        return np.nan if self.stability is None else self.stability.log_slope


def find_plateau(p: int, k: int, T: np.ndarray, Q_start: np.ndarray, values: dict) -> Plateau:
    """The plateau of the checked settings ``values`` (``eta``, ``model``, ``second_order``,
    ``batch_size``, ``a``, ``b``, ``eta_a``) for teacher ``T`` (k, k), followed from ``Q_start`` (p, p).

    Raises ``ValueError`` saying why there is none.
    """
    eta, batch_size = values["eta"], values["batch_size"]
    resolved = resolve(values["model"])
    # the mini-batch ODE at (eta, B) is the B = 1 ODE at eta / B run B times faster: same fixed point
    single = Drift(T, eta / batch_size, dict(values, eta=eta / batch_size, batch_size=1), resolved, p, k)
    where = f"p={p}, k={k}, eta={eta / batch_size:g}, model {resolved.name}"
    a_start = None if not single.trained else _readout_start(single)
    drift_R = _R_part(single, single(pack_state(Q_start, np.zeros((p, k)), a_start)), p, k)
    if np.max(np.abs(drift_R)) <= 1e-12 * eta:
        x, eigenvalues, residual = _relax_at_zero(single, Q_start, a_start, where)
        kind = "R = 0"
    else:
        x, eigenvalues, residual = _symmetric(single, T, Q_start, float(np.max(np.abs(drift_R))), where)
        kind = "symmetric"
    n_upper = p * (p + 1) // 2
    Q = np.zeros((p, p))
    Q[np.triu_indices(p)] = x[:n_upper]
    Q = Q + np.triu(Q, 1).T
    R = x[n_upper : n_upper + p * k].reshape(p, k)
    a = x[n_upper + p * k :] if single.trained else None
    readout = a if single.trained else values["a"]
    level = float(risk(Q, R, T, model=values["model"], a=readout, b=values["b"]))
    run_drift = Drift(T, eta, values, resolved, p, k)
    matrix, method = drift_jacobian(run_drift, x)
    stability = spectrum(Jacobian(matrix, coordinate_names(p, k, single.trained), method))
    return Plateau(Q, T, level, resolved.noise_variance / 2, eigenvalues, residual, eta / batch_size,
                   values["second_order"], R, a, kind, stability)


def _readout_start(drift: Drift) -> np.ndarray:
    if drift.values["a"] is not None:
        return np.asarray(drift.values["a"], dtype=float)
    return np.full(drift.p, drift.module.readouts(drift.p, drift.k)[0])


def _R_part(drift: Drift, dx: np.ndarray, p: int, k: int) -> np.ndarray:
    n_upper = p * (p + 1) // 2
    return dx[..., n_upper : n_upper + p * k]


def _relax_at_zero(
    drift: Drift, Q_start: np.ndarray, a_start: np.ndarray | None, where: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(x, eigenvalues, residual)`` of the attractive fixed point of the flow at ``R = 0`` reached from the start.

    The flow of ``Q`` (and of a trained readout) with ``R`` held at 0 is followed until a root
    polish (``scipy.optimize.root``) lands next to the flow's state: exact to
    :data:`FIXED_POINT_TOLERANCE`, positive semi-definite, attractive.
    """
    p, k = drift.p, drift.k
    iu = np.triu_indices(p)
    n_upper, zero = len(iu[0]), np.zeros((p, k))
    keep = np.r_[np.arange(n_upper), n_upper + p * k + np.arange(p if drift.trained else 0)]

    def full(u: np.ndarray, project: bool = False) -> np.ndarray:
        Q = np.empty((p, p))
        Q[iu] = u[:n_upper]
        Q.T[iu] = u[:n_upper]
        # the flow is evaluated at the PSD part of Q (round-off only, as in integrate)
        return pack_state(psd_part(Q) if project else Q, zero, u[n_upper:] if drift.trained else None)

    def flow(u: np.ndarray) -> np.ndarray:
        return drift(full(u))[keep]

    def check_invariant(u: np.ndarray) -> None:
        # dR at R = 0 is eta times a function of (Q, T): exactly zero where R = 0 is invariant.
        # Checked along the way, not only at the start: for He3 with T != I it vanishes at Q = I only.
        drift_R = _R_part(drift, drift(full(u)), p, k)
        if np.max(np.abs(drift_R)) > 1e-12 * drift.eta:
            raise ValueError(
                f"no plateau ({where}): R = 0 is not invariant with this teacher (max |dR/dalpha| at R = 0 is "
                f"{np.max(np.abs(drift_R)):.3g}), so the student correlates with the teacher from the start"
            )

    def blew_up(_alpha: float, u: np.ndarray) -> float:
        return BLOWUP - float(np.max(np.abs(u))) if np.all(np.isfinite(u)) else -1.0

    blew_up.terminal = True  # type: ignore[attr-defined]
    u = np.concatenate([Q_start[iu], [] if a_start is None else a_start])
    chunk = 20.0 / drift.eta
    horizon, elapsed, rate = chunk * (2**12 - 1), 0.0, None
    for _ in range(12):
        with np.errstate(over="ignore", invalid="ignore"):
            relaxed = solve_ivp(lambda _a, v: drift(full(v, True))[keep], (0.0, chunk), u, method="DOP853",
                                rtol=1e-10, atol=1e-13, events=[blew_up])
        if relaxed.status != 0:
            raise ValueError(f"no plateau ({where}): the dynamics at R = 0 diverge ({relaxed.message}); "
                             "eta is too large")
        u = full(relaxed.y[:, -1], True)[keep]
        check_invariant(u)
        scale = max(1.0, float(np.max(np.abs(u))))
        solution = root(flow, u, method="hybr", options={"xtol": 1e-14})
        residual = float(np.max(np.abs(flow(solution.x))))
        Q = full(solution.x)[:n_upper]
        candidate = np.zeros((p, p))
        candidate[iu] = Q
        # accept the root the flow is heading to: close to the flow's state, PSD, exact
        if (residual <= FIXED_POINT_TOLERANCE and np.max(np.abs(solution.x - u)) <= 1e-3 * scale
                and np.linalg.eigvalsh(candidate + np.triu(candidate, 1).T)[0] >= -1e-12 * scale):
            break
        elapsed += chunk
        if drift.trained:
            rate = check_readout_settles(drift, full(u), keep, elapsed, horizon - elapsed, where, rate)
        chunk *= 2
    else:
        raise ValueError(f"no plateau ({where}): the dynamics at R = 0 settle on no fixed point")
    check_invariant(solution.x)
    x = full(solution.x)
    eigenvalues = np.linalg.eigvals(drift_jacobian(drift, x)[0][np.ix_(keep, keep)])
    if np.max(eigenvalues.real) >= 0:
        raise ValueError(
            f"no plateau ({where}): the fixed point at R = 0 is not attractive "
            f"(largest real part of the linearised flow {np.max(eigenvalues.real):.3g})"
        )
    return x, eigenvalues, residual


def check_readout_settles(drift: Drift, x: np.ndarray, keep: np.ndarray, elapsed: float, remaining: float,
                          where: str, earlier: float | None = None) -> float:
    """The slowest rate of the flow at ``x``, or ``ValueError`` when a trained readout cannot settle in the search.

    With ``eta_a`` far below ``eta`` the readout moves at a rate of order ``eta_a``: the flow settles
    on a slow manifold (``Q`` relaxed for the current readout) and only reaches the fixed point of the
    full state after ``alpha ~ 1 / eta_a``. When the slowest rate of the linearised flow at the packed
    state ``x`` (n,), over the coordinates ``keep`` that move, needs longer than the ``remaining``
    search, the search stops here (``elapsed``: the alpha followed so far) and says so. It stops too
    when that rate, below ``1 / elapsed``, has more than halved since the previous stretch (``earlier``):
    a flow that slows down as it goes (the readout decaying while ``Q`` grows) has no fixed point ahead.
    """
    matrix = drift_jacobian(drift, x)[0][np.ix_(keep, keep)]
    slowest = float(np.min(np.abs(np.linalg.eigvals(matrix).real)))
    slowing = earlier is not None and slowest * elapsed < 1.0 and slowest < earlier / 2
    if slowest * remaining >= 1.0 and not slowing:
        return slowest
    p, k = drift.p, drift.k
    readout = x[p * (p + 1) // 2 + p * k :]
    speed = float(np.max(np.abs(drift(x)[p * (p + 1) // 2 + p * k :])))
    raise ValueError(f"no plateau ({where}): " + readout_still_moving(
        drift.values["eta_a"], elapsed, readout, speed, slowest, remaining, earlier if slowing else None))


def _symmetric(
    drift: Drift, T: np.ndarray, Q_start: np.ndarray, drift_R: float, where: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(x, eigenvalues, residual)`` of the symmetric plateau, or ``ValueError`` saying why there is none."""
    reason = (f"no plateau ({where}): R = 0 is not invariant (max |dR/dalpha| at R = 0 is {drift_R:.3g}: the "
              "teacher's first Hermite coefficient times the mean of the student's derivative, information "
              "exponent 1), so the student correlates with the teacher from the start")
    uniform = all(v is None or np.ptp(v) == 0 for v in (drift.values["a"], drift.values["b"]))
    if not (np.array_equal(T, np.eye(drift.k)) and uniform):
        raise ValueError(reason + "; the symmetric plateau needs T = I and uniform readouts")
    point, why = symmetric_fixed_point_of(drift, float(np.mean(np.diag(Q_start))))
    floor = drift.resolved.noise_variance / 2
    if point is None:
        raise ValueError(f"{reason}, and {why}")
    if point.risk <= floor + 1e-9 * max(1.0, floor):
        raise ValueError(f"{reason}, and the symmetric dynamics learn it without stalling (they reach "
                         f"zero error, risk {point.risk - floor:.3g} above the noise floor)")
    x = pack_state(point.Q, point.R, point.a)
    if point.residual > FIXED_POINT_TOLERANCE:
        raise ValueError(f"{reason}; the symmetric fixed point is not exact (residual {point.residual:.3g})")
    return x, point.stability.eigenvalues[point.stability.n_unstable:], point.residual


__all__ = ["FIXED_POINT_TOLERANCE", "Plateau", "check_readout_settles", "find_plateau"]
