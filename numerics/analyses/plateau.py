"""The plateau and the escape from it (paper Sec. 4.1, Eqs. 9-13, App. 7.3).

The plateau is the fixed point of the ODEs with ``R = 0`` that the uninformed
dynamics settles on. For the paper model (and any model whose flow keeps
``Q = q I``) it is the isotropic point ``Q = q* I``; :func:`fixed_point_norm`
and :func:`plateau_coefficients` evaluate it and its linearisation from the
generated right-hand sides by exact low-order differences (the right-hand
sides are polynomials), so no sympy is needed; ``derive/paper/plateau.py`` holds the
same quantities in closed form and the tests compare the two.
:func:`plateau_fixed_point` finds the plateau of any model and teacher ``T``
without assuming isotropy (the He3 plateau, for one, is not isotropic), and
:func:`escape_time` measures every run against its own plateau.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from numerics.analyses.plateau_search import FIXED_POINT_TOLERANCE, Plateau, find_plateau
from numerics.core.validation import as_real_array, check_alphas, check_int, check_overlaps, check_scalar
from numerics.ode.overlaps import rhs, risk
from numerics.ode.readouts import check_readouts
from numerics.results.settings import RunSettings

_STEP = 1e-4


def _width(value: object, name: str) -> int:
    return check_int(value, name, minimum=1)


def _teacher(T: Any, k: int) -> np.ndarray:
    if T is None:
        return np.eye(k)
    T = np.asarray(T, dtype=float)
    if T.shape != (k, k):
        raise ValueError(f"T must have shape ({k}, {k}), got {T.shape}")
    return check_overlaps(np.eye(1), np.zeros((1, k)), T)[2]


def fixed_point_norm(
    p: int, k: int, eta: float, *, model: Any = None, second_order: bool = True, T: Any = None
) -> float:
    """Plateau norm ``q*`` (Eq. 10): attractive root of ``dq/dalpha`` at ``Q = q I``, ``R = 0``.

    Returns the smallest positive root where the isotropic norm rate turns from
    growing to shrinking. ``T`` is the teacher overlap matrix (default the
    identity); at ``R = 0`` it enters only through the moments of the label.

    Raises
    ------
    ValueError
        If there is no such root (eta too large), or if ``Q = q* I``, ``R = 0``
        is not a fixed point of the full equations: the model's flow does not
        keep ``Q`` isotropic (He3, for one) or does not keep ``R = 0``. Use
        :func:`plateau_fixed_point` for those.
    """
    p, k = _width(p, "p"), _width(k, "k")
    eta = check_scalar(eta, "eta", positive=True)
    T, R0 = _teacher(T, k), np.zeros((p, k))

    def rate(qv: float) -> float:
        return float(rhs(qv * np.eye(p), R0, T, eta, model=model, second_order=second_order)[0][0, 0]) / qv

    grid = np.geomspace(1e-4, 50.0, 400)
    values = np.array([rate(v) for v in grid])
    crossings = np.nonzero((values[:-1] > 0) & (values[1:] <= 0))[0]
    if crossings.size == 0:
        raise ValueError(f"no attractive isotropic fixed point for p={p}, k={k}, eta={eta:g}: eta is too large")
    i = crossings[0]
    q_star = float(brentq(rate, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-13))
    # the diagonal rate vanishes by construction; the off-diagonal entries and dR need not
    dQ, dR = rhs(q_star * np.eye(p), R0, T, eta, model=model, second_order=second_order)
    residual = max(float(np.max(np.abs(dQ))), float(np.max(np.abs(dR))))
    if residual > FIXED_POINT_TOLERANCE:
        raise ValueError(
            f"Q = q* I, R = 0 (q* = {q_star:.6g}) is not a fixed point of this model and teacher "
            f"(max |dQ|, |dR| = {residual:.3g}): the flow does not keep Q isotropic or R = 0; "
            "use plateau_fixed_point"
        )
    return q_star


def plateau_fixed_point(
    p: int,
    k: int,
    eta: float | None = None,
    settings: RunSettings | None = None,
    *,
    T: Any = None,
    Q_start: Any = None,
    **setting_overrides: Any,
) -> Plateau:
    """The plateau of any model: the fixed point that stalls the dynamics, with its stability.

    ``R = 0`` (students orthogonal to the teacher) is invariant when the
    teacher-student drift ``<E_j nu_r>`` vanishes there, which holds for the
    paper model with any ``T`` and for He3 with ``T = I``, but not for a
    teacher activation with a linear component (information exponent 1) and a
    student whose derivative has a nonzero mean, or for He3 with ``T != I``.
    Where it is invariant, the flow of ``Q`` (and of a trained readout) at
    ``R = 0`` is followed from ``Q_start`` (the plateau a run sees is the one its
    start flows to) until a root polish lands next to the flow's state; the root
    must be a fixed point to :data:`FIXED_POINT_TOLERANCE`, positive
    semi-definite, and attractive in that subspace. No isotropy is assumed: the
    He3 plateau has negative off-diagonal ``Q``. Where it is not (erf and relu
    units), the plateau is the symmetric one of Saad and Solla (``T = I`` and
    uniform readouts only; :mod:`numerics.analyses.plateau_search`). The result's
    ``stability`` is the spectrum of the full flow there, its ``growth_rate`` the
    escape rate ``g_R`` and ``log_slope`` the predicted ``1 / (2 g_R)``.

    Parameters
    ----------
    p, k : int
        Student and teacher widths.
    eta : float
        Learning rate; default ``settings.eta``.
    settings : RunSettings, optional
        The dynamics: ``model`` (``None``: the paper model), ``second_order`` (keep the
        ``eta**2`` term), readout vectors ``a`` (p,) and ``b`` (k,), a trained readout
        (``eta_a > 0``, ``a`` its start), or the same names as keywords. A mini-batch
        (``batch_size = B``) has the plateau of the single-sample ODE at ``eta / B`` (as
        :func:`run_plateaus`), which the result carries.
    T : array, shape (k, k), optional
        Teacher overlaps (default the identity).
    Q_start : array, shape (p, p), optional
        Where the flow at ``R = 0`` starts (default the identity, the Eq. 8
        start with ``q0 = 1``).

    Returns
    -------
    Plateau

    Raises
    ------
    ValueError
        If there is no plateau, saying why: ``R = 0`` is not invariant and there is
        no symmetric plateau (one student, a teacher other than ``T = I``, or a student
        that learns without stalling), the flow blows up (eta too large) or settles on
        no attractive fixed point, or a trained readout relaxes too slowly for the search
        (``eta_a`` far below ``eta``: the readout is still moving, with its speed and the alpha
        it would need; said after the first stretch of the flow).
    """
    values = RunSettings.values(settings, setting_overrides, "plateau_fixed_point")
    if values["sam_radius"]:
        raise ValueError(f"plateau_fixed_point does not take sam_radius = {values['sam_radius']}: "
                         "it follows the plain SGD flow; integrate the sharpness-aware ODE instead")
    p, k = _width(p, "p"), _width(k, "k")
    values["eta"] = check_scalar(values["eta"] if eta is None else eta, "eta", positive=True)
    values["batch_size"] = check_int(values["batch_size"], "batch_size", minimum=1)
    values["second_order"] = bool(values["second_order"])
    values["a"], values["b"], values["eta_a"] = check_readouts(values["a"], values["b"], values["eta_a"], p, k)
    T = _teacher(T, k)
    Q_start = np.eye(p) if Q_start is None else np.asarray(Q_start, dtype=float)
    if Q_start.shape != (p, p):
        raise ValueError(f"Q_start must have shape ({p}, {p}), got {Q_start.shape}")
    Q_start = check_overlaps((Q_start + Q_start.T) / 2, np.zeros((p, k)), T)[0]
    readouts = tuple(None if values[n] is None else _fingerprint(values[n]) for n in ("a", "b"))
    key = (values["model"], p, k, values["eta"], values["batch_size"], values["second_order"], values["eta_a"],
           readouts, _fingerprint(T), _fingerprint(Q_start))
    if key not in _PLATEAUS:
        if len(_PLATEAUS) >= 256:
            _PLATEAUS.clear()
        _PLATEAUS[key] = find_plateau(p, k, T, Q_start, values)
    return _PLATEAUS[key]


_PLATEAUS: dict[tuple, Plateau] = {}


def _fingerprint(array: np.ndarray) -> bytes:
    # starts that differ only by rounding (measured overlaps of a simulation) share one plateau
    return np.round(array, 10).tobytes()


@dataclass(frozen=True)
class PlateauCoefficients:
    """Linearisation at the plateau (paper Eqs. 11-12), numbers for given p, k, eta.

    ``risk = risk_plateau + risk_R * sum(R**2) + risk_D * tr(D)`` with
    ``R(alpha) = exp(growth_R alpha) R(0)`` and
    ``d tr(D)/dalpha = norm_rate * tr(D) + norm_source * sum(R**2)``.
    """

    p: int
    k: int
    eta: float
    q_star: float
    risk_plateau: float
    growth_R: float
    risk_R: float
    risk_D: float
    norm_rate: float
    norm_source: float


def plateau_coefficients(
    p: int, k: int, eta: float, *, model: Any = None, second_order: bool = True
) -> PlateauCoefficients:
    """Numbers of the linearised plateau dynamics (see :class:`PlateauCoefficients`).

    Assumes ``T = I`` (the growth of ``R`` is that of one teacher direction,
    the same for all of them only then) and an isotropic plateau (raises
    ``ValueError`` via :func:`fixed_point_norm` otherwise).
    """
    q_star = fixed_point_norm(p, k, eta, model=model, second_order=second_order)
    T, I = np.eye(k), np.eye(p)
    zero = np.zeros((p, k))
    unit = zero.copy()
    unit[0, 0] = 1.0

    def drift(Qm: np.ndarray, Rm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rhs(Qm, Rm, T, eta, model=model, second_order=second_order)

    level = float(risk(q_star * I, zero, T, model=model))
    # R enters dR linearly and dQ, risk quadratically at fixed Q: central
    # differences in R are exact up to rounding for the polynomial models.
    h = _STEP
    growth = float((drift(q_star * I, h * unit)[1][0, 0] - drift(q_star * I, -h * unit)[1][0, 0]) / (2 * h))
    risk_R = float((risk(q_star * I, h * unit, T, model=model) - level) / h**2)
    source = float(np.trace(drift(q_star * I, h * unit)[0] - drift(q_star * I, zero)[0]) / h**2)
    up, down = (q_star + h) * I, (q_star - h) * I
    norm_rate = float((drift(up, zero)[0][0, 0] - drift(down, zero)[0][0, 0]) / (2 * h))
    risk_D = float((risk(up, zero, T, model=model) - risk(down, zero, T, model=model)) / (2 * h * p))
    return PlateauCoefficients(p, k, float(eta), q_star, level, growth, risk_R, risk_D, norm_rate, norm_source=source)


def _norm_deviation(coefficients: PlateauCoefficients, alpha: np.ndarray, rr0: np.ndarray) -> np.ndarray:
    c = coefficients
    grow = 2 * c.growth_R
    return c.norm_source * rr0 * (np.exp(grow * alpha) - np.exp(c.norm_rate * alpha)) / (grow - c.norm_rate)


def linearised_risk(
    alpha: np.ndarray, R0: np.ndarray, *, eta: float, model: Any = None, second_order: bool = True
) -> np.ndarray:
    """Risk predicted by the linearised plateau dynamics from ``Q(0) = q* I`` and ``R(0) = R0``.

    Parameters
    ----------
    alpha : array, shape (n,)
    R0 : array, shape (p, k) or (B, p, k)
        Initial teacher-student overlaps (small).
    eta : float

    Returns
    -------
    array, shape (n,) or (B, n)
    """
    R0 = as_real_array(R0, "R0")
    if R0.ndim not in (2, 3):
        raise ValueError(f"R0 must have shape (p, k) or (B, p, k), got {R0.shape}")
    alpha = check_alphas(alpha, "alpha")
    p, k = R0.shape[-2:]
    c = plateau_coefficients(p, k, eta, model=model, second_order=second_order)
    rr0 = np.sum(R0**2, axis=(-2, -1))[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        rr = rr0 * np.exp(2 * c.growth_R * alpha)
        out = c.risk_plateau + c.risk_R * rr + c.risk_D * _norm_deviation(c, alpha, rr0)
    _check_linearised("linearised_risk", out)
    return out


def _check_linearised(function: str, values: np.ndarray) -> None:
    # the linearised solution grows exponentially: far beyond the plateau it overflows (and 0 * inf gives NaN)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{function}: the result is not finite (overflow): alpha is too large for the linearisation")


def average_risk_reduction(
    alpha: np.ndarray, p: int, k: int, *, eta: float, N: float, model: Any = None, second_order: bool = False
) -> np.ndarray:
    """Eq. 13: mean relative risk reduction ``<(eps(0) - eps(alpha)) / eps_pl>`` in the plateau.

    Start ``Q(0) = q* I``, ``R_jr(0) ~ N(0, q*/N)`` i.i.d. In gradient flow
    (default) this is ``2 p k (exp(8 eta alpha / (k p)) - 1) / (N (p + k + 2))``.

    Returns an array shaped like ``alpha``.
    """
    N = check_scalar(N, "N", positive=True)
    alpha = check_alphas(alpha, "alpha")
    c = plateau_coefficients(p, k, eta, model=model, second_order=second_order)
    mean_rr0 = p * k * c.q_star / N
    with np.errstate(over="ignore", invalid="ignore"):
        change = c.risk_R * mean_rr0 * (np.exp(2 * c.growth_R * alpha) - 1) + c.risk_D * _norm_deviation(
            c, alpha, np.asarray(mean_rr0)
        )
        out = -change / c.risk_plateau
    _check_linearised("average_risk_reduction", out)
    return out


def run_plateaus(run: Any) -> list[Plateau]:
    """The plateau of each start of ``run`` (flattened batch order).

    The plateau is :func:`plateau_fixed_point` for the run's own model, learning
    rate, ``second_order`` flag and teacher ``T``, followed from the run's own
    ``Q(0)``. A mini-batch run (``batch_size = B``) has the fixed point of the
    single-sample ODE at ``eta / B`` (its ODE is that one, ``B`` times faster), and
    its plateaus carry ``eta / B`` and eigenvalues per ``B`` steps. Starts that
    differ only by rounding share one computation.

    Raises
    ------
    ValueError
        If the run has no plateau, or does not carry its model (an
        ``IntegrationResult`` of a non-paper model built without ``model``).
    """
    if getattr(run, "model", None) is None and getattr(run, "model_name", "paper") != "paper":
        raise ValueError(
            f"the run was made with model {run.model_name!r} but does not carry it (IntegrationResult.model is None)"
        )
    p, k = run.p, run.k
    Q0 = np.asarray(run.Q)[..., 0, :, :].reshape(-1, p, p)
    batch = Q0.shape[0]
    # T is (k, k), or one per start for a simulation of several replicas
    T = np.broadcast_to(np.asarray(run.T, dtype=float), np.asarray(run.Q).shape[:-3] + (k, k)).reshape(-1, k, k)
    # the mini-batch ODE at (eta, B) is the B = 1 ODE at eta / B run B times faster
    # (dQ = eta D + eta**2/B V = B [eta' D + eta'**2 V], eta' = eta / B): same fixed point
    eta = run.eta / getattr(run, "batch_size", 1)
    # readout vectors (a trained readout's start) as the run's settings hold them: (p,) or one per start
    settings = getattr(run, "settings", None)
    readouts = {name: getattr(settings, name, None) for name in ("a", "b")}
    eta_a = getattr(settings, "eta_a", 0.0)
    vectors = {name: None if v is None else np.broadcast_to(v, (batch, np.shape(v)[-1]))
               for name, v in readouts.items()}
    return [
        plateau_fixed_point(p, k, eta, T=(T[b] + T[b].T) / 2, model=run.model, second_order=run.second_order,
                            Q_start=Q0[b], eta_a=eta_a, **{n: None if v is None else v[b] for n, v in vectors.items()})
        for b in range(batch)
    ]


def escape_time(run: Any, *, threshold: float = 0.75, on_failure: str = "raise") -> np.ndarray | float:
    """First alpha at which the risk of ``run`` falls below ``threshold`` times its plateau risk.

    The plateau is the run's own (:func:`run_plateaus`): the attractive fixed point at ``R = 0`` of the
    ODEs with the run's model, eta, ``second_order`` flag and teacher ``T``, reached from the run's
    ``Q(0)``. The crossing is located by linear interpolation of ``log(risk)`` between output times.

    Parameters
    ----------
    run : IntegrationResult
        Possibly batched (risk of shape (..., n)); from :func:`numerics.integrate`
        or :func:`numerics.simulate`.
    threshold : float
        Fraction in (0, 1); the default 3/4 also marks the escape when p < k,
        where the final risk stays above half the plateau risk.
    on_failure : {"raise", "nan"}
        A run without a plateau raises (default) or gives NaN with the reason logged as a warning
        (``plateau_summary(run).no_plateau`` returns it), so a loop over a sweep goes on.

    Returns
    -------
    float or array of shape (...)
        NaN where the risk never falls below the threshold.

    Raises
    ------
    ValueError
        If ``run`` is no result, or has no plateau (:func:`plateau_fixed_point`; e.g. He3 with ``T != I``, or
        the stability edge: paper model, p = k = 2, eta = 0.5) and ``on_failure="raise"``.
    """
    threshold = check_scalar(threshold, "threshold", positive=True)
    if threshold >= 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if on_failure not in ("raise", "nan"):
        raise ValueError(f"on_failure must be 'raise' or 'nan', got {on_failure!r}")
    if not all(hasattr(run, name) for name in ("alpha", "risk", "Q", "eta")):
        raise ValueError(f"run must be a result of numerics.integrate or numerics.simulate, got {type(run).__name__}")
    shape = np.asarray(run.risk).shape[:-1]
    try:
        levels = threshold * np.array([plateau.risk for plateau in run_plateaus(run)])
    except ValueError as error:
        if on_failure == "raise":
            raise
        logging.getLogger(__name__).warning("escape_time is NaN: %s", error)
        return np.nan if shape == () else np.full(shape, np.nan)
    alpha = np.asarray(run.alpha)
    risks = np.asarray(run.risk).reshape(-1, alpha.size)
    out = np.full(risks.shape[0], np.nan)
    for b, (curve, level) in enumerate(zip(risks, np.broadcast_to(levels, risks.shape[:1]))):
        below = np.nonzero(curve < level)[0]
        if below.size == 0 or below[0] == 0:
            out[b] = np.nan if below.size == 0 else alpha[0]
            continue
        i = below[0]
        x0, x1 = np.log(curve[i - 1]), np.log(curve[i])
        out[b] = alpha[i - 1] + (np.log(level) - x0) / (x1 - x0) * (alpha[i] - alpha[i - 1])
    return float(out[0]) if shape == () else out.reshape(shape)
