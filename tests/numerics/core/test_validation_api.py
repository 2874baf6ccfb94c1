"""Every public numerical function: bad arguments raise a ValueError naming the argument.

The tables below list, per function, calls that differ from a valid call in one
argument; each must raise ``ValueError`` with the argument's name in the
message (before any expensive work). Further tests: complex input is refused by
every array-taking function, overflow is reported instead of returned as
NaN/inf, and widths given as NumPy ``int32`` do not wrap around.
"""

import math
import re
from fractions import Fraction

import numpy as np
import pytest

import numerics
from numerics.analyses import implicit_bias, landscape, montecarlo
from numerics.core.validation import as_real_array, check_alpha_grid, check_int, check_scalar
from numerics.ode.integrate import IntegrationError
from numerics.simulators.common import record_steps
from numerics.simulators.weights import compare_ode_simulation, simulate, weights_from_overlaps

Q = np.eye(2)
R = np.array([[0.1], [0.0]])
T = np.eye(1)
W = np.array([[1.0, 0.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.5, 0.0]])
W_STAR = np.array([[0.0, 0.0, 1.0, 0.0, 1.0]])
R0 = np.array([[0.3, 0.1], [0.2, 0.4], [0.1, -0.2]])  # p = 3, k = 2, full column rank


@pytest.fixture(scope="module")
def simulation():
    return simulate(N=20, p=2, k=1, eta=0.1, alpha_max=0.5, seed=0, record=5, progress=False)


@pytest.fixture(scope="module")
def trajectory():
    return numerics.integrate(Q, R, T, eta=0.1, alpha_max=1.0, n_points=5)


def _integrate(**changes):
    kwargs = dict(eta=0.1, alpha_max=1.0, n_points=5)
    kwargs.update(changes)
    Q0, R0_, T_ = kwargs.pop("Q0", Q), kwargs.pop("R0", R), kwargs.pop("T", T)
    return numerics.integrate(Q0, R0_, T_, **kwargs)


def _rhs(**changes):
    kwargs = dict(Q=Q, R=R, T=T, eta=0.1)
    kwargs.update(changes)
    return numerics.rhs(kwargs.pop("Q"), kwargs.pop("R"), kwargs.pop("T"), kwargs.pop("eta"), **kwargs)


def _risk(**changes):
    kwargs = dict(Q=Q, R=R, T=T)
    kwargs.update(changes)
    return numerics.risk(kwargs["Q"], kwargs["R"], kwargs["T"])


def _simulate(**changes):
    kwargs = dict(N=20, p=2, k=1, eta=0.1, alpha_max=0.5, seed=0, record=5, progress=False)
    kwargs.update(changes)
    return simulate(**kwargs)


def _call(function, **base):
    def call(**changes):
        kwargs = dict(base)
        kwargs.update(changes)
        return function(**kwargs)

    return call


def _positional(function, names, **base):
    """Call ``function`` with ``names`` passed positionally (for functions whose arguments are positional)."""

    def call(**changes):
        kwargs = dict(base)
        kwargs.update(changes)
        positional = [kwargs.pop(name) for name in names]
        return function(*positional, **kwargs)

    return call


CALLS = {
    "rhs": _rhs,
    "risk": _risk,
    "integrate": _integrate,
    "initial_conditions": _positional(numerics.initial_conditions, ["p", "k"], p=2, k=1, N=100),
    "simulate": _simulate,
    "weights_from_overlaps": _call(weights_from_overlaps, Q0=Q, R0=R, N=10),
    "record_steps": _positional(record_steps, ["N", "alpha_max", "record"], N=10, alpha_max=1.0, record=5),
    "omega": _positional(numerics.omega, ["R"], R=R0),
    "closest_solution": _positional(numerics.closest_solution, ["R0"], R0=R0),
    "closest_solution_weights": _positional(
        numerics.closest_solution_weights, ["W0", "W_star"], W0=W, W_star=W_STAR
    ),
    "closest_solution_weights_numerical": _positional(
        implicit_bias.closest_solution_weights_numerical, ["W0", "W_star"], W0=W, W_star=W_STAR
    ),
    "distance_to": _positional(
        numerics.distance_to, ["trajectory", "target"], trajectory=(Q[None], R[None]), target=(R @ R.T, R)
    ),
    "gradient": _positional(numerics.gradient, ["W", "W_star"], W=W, W_star=W_STAR),
    "hessian": _positional(numerics.hessian, ["W", "W_star"], W=W, W_star=W_STAR),
    "hessian_spectrum": _positional(numerics.hessian_spectrum, ["W", "W_star"], W=W, W_star=W_STAR),
    "hessian_matvec": _positional(landscape.hessian_matvec, ["W", "W_star", "D"], W=W, W_star=W_STAR, D=W),
    "hessian_coefficients": _positional(landscape.hessian_coefficients, ["Q", "R", "T"], Q=Q, R=R, T=T),
    "count_signs": _positional(landscape.count_signs, ["eigenvalues"], eigenvalues=np.array([-1.0, 0.0, 2.0])),
    "tangent_directions": _positional(landscape.tangent_directions, ["W"], W=W),
    "fixed_point_norm": _positional(numerics.fixed_point_norm, ["p", "k", "eta"], p=2, k=1, eta=0.1),
    "plateau_coefficients": _positional(numerics.plateau_coefficients, ["p", "k", "eta"], p=2, k=1, eta=0.1),
    "linearised_risk": _positional(numerics.linearised_risk, ["alpha", "R0"], alpha=[0.0, 1.0], R0=R, eta=0.1),
    "average_risk_reduction": _positional(
        numerics.average_risk_reduction, ["alpha", "p", "k"], alpha=[0.0, 1.0], p=2, k=1, eta=0.1, N=100.0
    ),
    "optimal_learning_rate": _positional(numerics.optimal_learning_rate, ["p", "k"], p=2, k=1),
    "tabula_rasa": _positional(landscape.tabula_rasa, ["N", "p", "k"], N=10, p=2, k=1),
    "plateau": _positional(landscape.plateau, ["N", "p", "k"], N=10, p=2, k=1),
    "zero_error": _positional(landscape.zero_error, ["N", "p", "k"], N=10, p=2, k=1),
    "aligned": _positional(landscape.aligned, ["N", "p", "k"], N=10, p=2, k=2),
    "stationary_point": _positional(
        landscape.stationary_point, ["name", "N", "p", "k"], name="plateau", N=10, p=2, k=1
    ),
    "stationary_point[zero_error]": _positional(
        landscape.stationary_point, ["name", "N", "p", "k"], name="zero_error", N=10, p=2, k=1
    ),
    "predicted_counts": _positional(
        landscape.predicted_counts, ["name", "N", "p", "k"], name="plateau", N=10, p=2, k=1
    ),
    "predicted_spectrum": _positional(
        landscape.predicted_spectrum, ["name", "N", "p", "k"], name="plateau", N=10, p=2, k=1
    ),
    "plateau_negative_null_ratio": _positional(landscape.plateau_negative_null_ratio, ["N", "p", "k"], N=10, p=2, k=1),
    "student_expressivity": _positional(landscape.student_expressivity, ["N", "p"], N=10, p=2),
    "solution_manifold_dimension": _positional(
        landscape.solution_manifold_dimension, ["N", "p", "k"], N=10, p=2, k=1
    ),
    "expressivity_rank": _positional(landscape.expressivity_rank, ["N", "p"], N=3, p=2),
    "monte_carlo_terms": _positional(montecarlo.monte_carlo_terms, ["Q", "R", "T"], Q=Q, R=R, T=T, n_samples=100),
    "monte_carlo_rhs": _positional(
        montecarlo.monte_carlo_rhs, ["Q", "R", "T", "eta"], Q=Q, R=R, T=T, eta=0.1, n_samples=100
    ),
    "generated_terms": _positional(montecarlo.generated_terms, ["Q", "R", "T"], Q=Q, R=R, T=T),
    "random_overlaps": _positional(
        montecarlo.random_overlaps, ["p", "k", "rng"], p=2, k=1, rng=np.random.default_rng(0)
    ),
    "z_scores": _positional(montecarlo.z_scores, ["Q", "R", "T"], Q=Q, R=R, T=T, n_samples=100),
}

NAN = float("nan")
INF = float("inf")

# (function, argument, bad value): the argument's name must appear in the message
BAD_ARGUMENTS = [
    # overlaps and learning rate of the right-hand side
    ("rhs", "eta", NAN),
    ("rhs", "eta", -0.1),
    ("rhs", "eta", INF),
    ("rhs", "eta", True),
    ("rhs", "eta", "0.1"),
    ("rhs", "eta", 0.1 + 0j),
    ("rhs", "eta", np.array([0.1, 0.2])),
    ("rhs", "second_order", "no"),
    ("rhs", "Q", np.eye(2, dtype=bool)),
    ("rhs", "Q", np.array([[1.0, None], [None, 1.0]], dtype=object)),
    ("rhs", "Q", [["1", "0"], ["0", "1"]]),
    ("rhs", "Q", [[1.0, 0.0], [0.0]]),
    ("rhs", "Q", np.array([[1.0, 10**400], [10**400, 1.0]], dtype=object)),
    ("rhs", "T", np.array([[INF]])),
    ("risk", "R", np.array([[NAN], [0.0]])),
    # integrate: tolerances, horizon, output grid
    ("integrate", "rtol", NAN),
    ("integrate", "atol", NAN),
    ("integrate", "rtol", INF),
    ("integrate", "rtol", 0.0),
    ("integrate", "rtol", -1e-8),
    ("integrate", "rtol", 1.5),
    ("integrate", "rtol", "tight"),
    ("integrate", "atol", -1e-12),
    ("integrate", "atol", INF),
    ("integrate", "eta", NAN),
    ("integrate", "eta", 0.0),
    ("integrate", "alpha_max", NAN),
    ("integrate", "alpha_max", INF),
    ("integrate", "alpha_max", -1.0),
    ("integrate", "n_points", 1),
    ("integrate", "n_points", 2.5),
    ("integrate", "n_points", NAN),
    ("integrate", "n_points", True),
    ("integrate", "n_points", "10"),
    ("integrate", "grid", "cubic"),
    ("integrate", "second_order", None),
    ("integrate", "alpha_eval", [0.0, NAN, 3.0]),
    ("integrate", "alpha_eval", [0.0, INF]),
    ("integrate", "alpha_eval", [0.0, 0.8, 0.5]),
    ("integrate", "alpha_eval", [0.0, 0.5, 0.5, 1.0]),
    ("integrate", "alpha_eval", [-0.5, 0.5]),
    ("integrate", "alpha_eval", [0.0, 5.0]),  # beyond alpha_max = 1
    ("integrate", "alpha_eval", [[0.0, 1.0]]),
    ("integrate", "alpha_eval", []),
    ("integrate", "alpha_eval", [0.0]),
    ("integrate", "alpha_eval", [0.0, 1j]),
    # initial conditions
    ("initial_conditions", "p", 0),
    ("initial_conditions", "p", -1),
    ("initial_conditions", "p", 2.5),
    ("initial_conditions", "p", True),
    ("initial_conditions", "p", NAN),
    ("initial_conditions", "k", "1"),
    ("initial_conditions", "N", 0.0),
    ("initial_conditions", "N", NAN),
    ("initial_conditions", "q0", -1.0),
    ("initial_conditions", "q0", INF),
    ("initial_conditions", "batch", 0),
    ("initial_conditions", "batch", 1.5),
    ("initial_conditions", "seed", -1),
    ("initial_conditions", "seed", 1.5),
    ("initial_conditions", "seed", True),
    # simulation
    ("simulate", "N", 20.5),
    ("simulate", "N", True),
    ("simulate", "N", NAN),
    ("simulate", "p", 0),
    ("simulate", "k", -1),
    ("simulate", "eta", NAN),
    ("simulate", "alpha_max", NAN),
    ("simulate", "alpha_max", INF),
    ("simulate", "alpha_max", 1e300),  # more steps than can be counted
    ("simulate", "q0", 0.0),
    ("simulate", "replicas", 0),
    ("simulate", "replicas", 1.5),
    ("simulate", "replicas", True),
    ("simulate", "record", [0.0, NAN]),
    ("simulate", "record", [0.4, 0.2]),
    ("simulate", "record", [-0.1, 0.2]),
    ("simulate", "record", [0.0, 5.0]),
    ("simulate", "record", 1),
    ("simulate", "record", 2.5),
    ("simulate", "record", True),
    ("simulate", "progress", "yes"),
    ("simulate", "W0", np.full((2, 20), NAN)),
    ("weights_from_overlaps", "N", 2),
    ("weights_from_overlaps", "N", 10.5),
    ("weights_from_overlaps", "Q0", np.array([[1.0, 0.5], [0.0, 1.0]])),
    ("weights_from_overlaps", "R0", np.array([[NAN], [0.0]])),
    ("record_steps", "record", [0.0, NAN]),
    # implicit bias
    ("omega", "rcond", NAN),
    ("omega", "rcond", 0.0),
    ("omega", "rcond", 2.0),
    ("omega", "R", np.zeros((3, 0))),
    ("closest_solution", "p_over_k", NAN),
    ("closest_solution", "p_over_k", True),
    ("closest_solution", "p_over_k", -2.0),
    ("closest_solution", "T", np.array([[1.0, 0.0], [0.0, NAN]])),
    ("closest_solution_weights", "p_over_k", INF),
    ("closest_solution_weights", "W0", np.full((2, 5), NAN)),
    ("closest_solution_weights_numerical", "restarts", 0),
    ("closest_solution_weights_numerical", "restarts", 1.5),
    ("closest_solution_weights_numerical", "polish", -1),
    ("distance_to", "target", "closest"),
    ("distance_to", "T", np.array([[NAN]])),
    # landscape
    ("gradient", "W", np.full((2, 5), NAN)),
    ("gradient", "W_star", [[0.0, 0.0, 1.0, 0.0, None]]),
    ("hessian", "W", np.zeros((2, 5), dtype=bool)),
    ("hessian_spectrum", "tol", NAN),
    ("hessian_spectrum", "tol", 0.0),
    ("hessian_spectrum", "tol", 1.0),
    ("hessian_spectrum", "tol", "small"),
    ("hessian_matvec", "D", np.full((2, 5), INF)),
    ("hessian_coefficients", "R", np.array([[NAN], [0.0]])),
    ("count_signs", "tol", NAN),
    ("count_signs", "eigenvalues", [1.0, NAN]),
    ("tangent_directions", "W", np.full((2, 5), NAN)),
    ("tabula_rasa", "N", 0),
    ("tabula_rasa", "N", NAN),
    ("tabula_rasa", "N", INF),
    ("tabula_rasa", "p", True),
    ("tabula_rasa", "k", 1.5),
    ("tabula_rasa", "seed", -1),
    ("zero_error", "seed", 0.5),
    ("expressivity_rank", "seed", "zero"),
    ("plateau", "rank", -1),
    ("plateau", "rank", 3),
    ("plateau", "rank", 1.5),
    ("plateau", "rank", True),
    ("aligned", "teacher", 2),
    ("aligned", "teacher", -1),
    ("aligned", "teacher", 0.5),
    ("zero_error", "rotation", np.full((2, 1), NAN)),
    ("stationary_point", "name", "saddle"),
    ("stationary_point[zero_error]", "rank", 1),  # rank is for the plateau only
    ("predicted_counts", "N", True),
    ("predicted_counts", "N", 10.5),
    ("predicted_counts", "N", -10),
    ("predicted_counts", "N", NAN),
    ("predicted_counts", "N", 2),  # below rank + k
    ("predicted_counts", "p", 0),
    ("predicted_counts", "k", np.float64(0.5)),
    ("predicted_counts", "rank", -1),
    ("predicted_counts", "rank", 3),
    ("predicted_counts", "name", "saddle"),
    ("predicted_spectrum", "N", np.bool_(True)),
    ("predicted_spectrum", "p", np.int32(-3)),
    ("plateau_negative_null_ratio", "N", 0),
    ("student_expressivity", "N", 0),
    ("student_expressivity", "p", True),
    ("solution_manifold_dimension", "N", 1.5),
    ("solution_manifold_dimension", "k", 0),
    ("expressivity_rank", "N", 0),
    # plateau and escape
    ("fixed_point_norm", "p", 0),
    ("fixed_point_norm", "k", 1.5),
    ("fixed_point_norm", "eta", NAN),
    ("plateau_coefficients", "eta", -0.1),
    ("linearised_risk", "alpha", [0.0, NAN]),
    ("linearised_risk", "alpha", [-1.0, 1.0]),
    ("linearised_risk", "R0", np.full((2, 1), INF)),
    ("linearised_risk", "eta", NAN),
    ("average_risk_reduction", "alpha", [NAN]),
    ("average_risk_reduction", "N", NAN),
    ("average_risk_reduction", "p", 0),
    ("optimal_learning_rate", "seeds", 0),
    ("optimal_learning_rate", "seeds", True),
    ("optimal_learning_rate", "seeds", 2.5),
    ("optimal_learning_rate", "seeds", [0, -1]),
    ("optimal_learning_rate", "seeds", [0, 1.5]),
    ("optimal_learning_rate", "etas", [0.1, NAN]),
    ("optimal_learning_rate", "N", NAN),
    ("optimal_learning_rate", "N", 1.0),
    ("optimal_learning_rate", "q0", -1.0),
    ("optimal_learning_rate", "alpha_max", NAN),
    ("optimal_learning_rate", "alpha_max", -1.0),
    ("optimal_learning_rate", "threshold", 1.5),
    ("optimal_learning_rate", "threshold", NAN),
    # Monte Carlo checks
    ("monte_carlo_terms", "n_samples", 0),
    ("monte_carlo_terms", "n_samples", 1.5),
    ("monte_carlo_terms", "n_samples", True),
    ("monte_carlo_terms", "chunk", 0),  # would loop forever
    ("monte_carlo_rhs", "eta", NAN),
    ("monte_carlo_rhs", "n_samples", -5),
    ("generated_terms", "Q", np.full((2, 2), NAN)),
    ("random_overlaps", "p", 0),
    ("random_overlaps", "scale", NAN),
    ("random_overlaps", "rng", 0),
    ("monte_carlo_terms", "seed", -3),
    ("closest_solution_weights_numerical", "seed", 2.5),
    ("simulate", "seed", True),
    ("z_scores", "n_samples", 0),
]


def _id(case):
    function, argument, value = case
    text = re.sub(r"\s+", " ", repr(value))
    return f"{function}-{argument}-{text[:30]}"


@pytest.mark.parametrize("function, argument, value", BAD_ARGUMENTS, ids=[_id(c) for c in BAD_ARGUMENTS])
def test_bad_argument_names_itself(function, argument, value):
    with pytest.raises(ValueError, match=rf"\b{re.escape(argument)}\b"):
        CALLS[function](**{argument: value})


@pytest.mark.parametrize("function", sorted(CALLS))
def test_valid_base_calls(function):
    # the table above is only meaningful if the unchanged calls succeed
    if function == "optimal_learning_rate":
        pytest.skip("a full learning-rate scan: covered by tests/numerics/sweeps/test_learning_rate.py")
    CALLS[function]()


def test_rank_only_for_the_plateau():
    with pytest.raises(ValueError, match="rank is only meaningful for the plateau"):
        landscape.stationary_point("zero_error", 10, 2, 1, rank=1)
    with pytest.raises(ValueError, match="rank is only meaningful for the plateau"):
        landscape.predicted_counts("aligned", 10, 2, 2, rank=1)


# ---------------------------------------------------------------------------
# the simulation-comparison and escape-time arguments need a result to act on
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, argument",
    [
        (dict(from_alpha=NAN), "from_alpha"),
        (dict(from_alpha=-0.1), "from_alpha"),
        (dict(from_alpha=INF), "from_alpha"),
        (dict(rtol=NAN), "rtol"),
        (dict(atol=NAN), "atol"),
        (dict(second_order="yes"), "second_order"),
    ],
)
def test_compare_ode_simulation_bad_arguments(simulation, changes, argument):
    with pytest.raises(ValueError, match=rf"\b{argument}\b"):
        compare_ode_simulation(simulation, **changes)


def test_compare_ode_simulation_needs_a_simulation():
    with pytest.raises(ValueError, match="simulation must be"):
        compare_ode_simulation((Q, R))


@pytest.mark.parametrize("threshold", [NAN, 0.0, 1.0, -0.5, "half"])
def test_escape_time_bad_threshold(trajectory, threshold):
    with pytest.raises(ValueError, match="threshold"):
        numerics.escape_time(trajectory, threshold=threshold)


def test_integrate_nan_tolerance_raises_before_solving():
    # used to make solve_ivp loop forever: every error comparison with NaN is false
    for name in ("rtol", "atol"):
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            _integrate(**{name: NAN})


def test_alpha_eval_with_nan_is_refused_not_truncated():
    # used to return alpha = [0.] silently
    with pytest.raises(ValueError, match="alpha_eval contains NaN"):
        _integrate(alpha_eval=[0.0, NAN, 3.0], alpha_max=3.0)


def test_alpha_eval_inside_horizon_is_accepted():
    result = _integrate(alpha_eval=[0.0, 0.25, 1.0], alpha_max=1.0)
    np.testing.assert_array_equal(result.alpha, [0.0, 0.25, 1.0])
    # the grid may stop short of alpha_max; the integration then stops there too
    assert _integrate(alpha_eval=[0.0, 0.5], alpha_max=1.0).alpha[-1] == 0.5


def test_empty_batch_refused_by_integrate():
    with pytest.raises(ValueError, match="empty"):
        _integrate(Q0=np.zeros((0, 2, 2)), R0=np.zeros((0, 2, 1)))


# ---------------------------------------------------------------------------
# complex input: refused by every array-taking function, even with zero imaginary part
# ---------------------------------------------------------------------------

COMPLEX_CASES = [
    ("rhs", "Q"),
    ("rhs", "R"),
    ("rhs", "T"),
    ("risk", "Q"),
    ("risk", "R"),
    ("risk", "T"),
    ("integrate", "Q0"),
    ("integrate", "R0"),
    ("integrate", "T"),
    ("integrate", "alpha_eval"),
    ("simulate", "W0"),
    ("simulate", "W_star"),
    ("simulate", "record"),
    ("weights_from_overlaps", "Q0"),
    ("weights_from_overlaps", "R0"),
    ("omega", "R"),
    ("closest_solution", "R0"),
    ("closest_solution", "T"),
    ("closest_solution_weights", "W0"),
    ("closest_solution_weights", "W_star"),
    ("closest_solution_weights_numerical", "W0"),
    ("distance_to", "trajectory"),
    ("distance_to", "target"),
    ("distance_to", "T"),
    ("gradient", "W"),
    ("gradient", "W_star"),
    ("hessian", "W"),
    ("hessian", "W_star"),
    ("hessian_spectrum", "W"),
    ("hessian_spectrum", "W_star"),
    ("hessian_matvec", "D"),
    ("hessian_coefficients", "Q"),
    ("count_signs", "eigenvalues"),
    ("tangent_directions", "W"),
    ("zero_error", "rotation"),
    ("linearised_risk", "alpha"),
    ("linearised_risk", "R0"),
    ("average_risk_reduction", "alpha"),
    ("optimal_learning_rate", "etas"),
    ("monte_carlo_terms", "Q"),
    ("monte_carlo_rhs", "R"),
    ("generated_terms", "T"),
]

VALID_ARRAYS = {
    ("integrate", "Q0"): Q,
    ("integrate", "R0"): R,
    ("integrate", "T"): T,
    ("integrate", "alpha_eval"): np.array([0.0, 1.0]),
    ("simulate", "W0"): np.eye(2, 20) * np.sqrt(20),
    ("simulate", "W_star"): np.eye(3, 20)[2:] * np.sqrt(20),
    ("simulate", "record"): np.array([0.0, 0.5]),
    ("weights_from_overlaps", "Q0"): Q,
    ("weights_from_overlaps", "R0"): R,
    ("omega", "R"): R0,
    ("closest_solution", "R0"): R0,
    ("closest_solution", "T"): np.eye(2),
    ("closest_solution_weights", "W0"): W,
    ("closest_solution_weights", "W_star"): W_STAR,
    ("closest_solution_weights_numerical", "W0"): W,
    ("gradient", "W"): W,
    ("gradient", "W_star"): W_STAR,
    ("hessian", "W"): W,
    ("hessian", "W_star"): W_STAR,
    ("hessian_spectrum", "W"): W,
    ("hessian_spectrum", "W_star"): W_STAR,
    ("hessian_matvec", "D"): W,
    ("count_signs", "eigenvalues"): np.array([1.0, -1.0]),
    ("tangent_directions", "W"): W,
    ("zero_error", "rotation"): np.array([[1.0], [0.0]]),
    ("linearised_risk", "alpha"): np.array([0.0, 1.0]),
    ("linearised_risk", "R0"): R,
    ("average_risk_reduction", "alpha"): np.array([0.0, 1.0]),
    ("optimal_learning_rate", "etas"): np.array([0.1, 0.2]),
    ("distance_to", "T"): T,
}


def _complex(value):
    return np.asarray(value) + 0j  # zero imaginary part: still refused


@pytest.mark.parametrize("function, argument", COMPLEX_CASES, ids=[f"{f}-{a}" for f, a in COMPLEX_CASES])
def test_complex_input_refused(function, argument):
    if argument == "trajectory":
        changes = {argument: (_complex(Q[None]), R[None])}
        name = "Q"
    elif argument == "target":
        changes = {argument: (R @ R.T, _complex(R))}
        name = "R_target"
    else:
        valid = VALID_ARRAYS.get((function, argument))
        if valid is None:
            valid = {"Q": Q, "R": R, "T": T}[argument]
        changes = {argument: _complex(valid)}
        name = argument
    with pytest.raises(ValueError, match=rf"\b{re.escape(name)} must be real, got a complex array"):
        CALLS[function](**changes)


def test_complex_scalars_refused():
    for value in (0.1 + 0j, np.complex128(0.1), np.array(0.1 + 0j)):
        with pytest.raises(ValueError, match="eta must be a real number"):
            _rhs(eta=value)


def test_complex_trajectory_result_refused(trajectory):
    from dataclasses import replace

    with pytest.raises(ValueError, match=r"trajectory\.Q must be real"):
        numerics.distance_to(replace(trajectory, Q=trajectory.Q + 0j), (Q, R))


# ---------------------------------------------------------------------------
# overflow: a clear error, never a NaN or inf return
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e150, 1e200, 1e300])
def test_rhs_overflow_is_reported(scale):
    # 1e150 used to return inf/NaN, 1e200 to raise OverflowError from the generated code
    with pytest.raises(ValueError, match="rhs: the result is not finite .*overlaps are too large"):
        numerics.rhs(scale * Q, R, T, 0.1)


@pytest.mark.parametrize("scale", [1e200, 1e300])
def test_risk_overflow_is_reported(scale):
    with pytest.raises(ValueError, match="risk: the result is not finite .*overlaps are too large"):
        numerics.risk(scale * Q, R, T)


def test_large_but_finite_risk_is_returned():
    assert math.isfinite(numerics.risk(1e150 * Q, R, T))


@pytest.mark.parametrize("scale", [1e150, 1e200])
def test_integrate_overflow_is_an_integration_error(scale):
    with pytest.raises(IntegrationError, match=r"alpha = 0 .*too large"):
        numerics.integrate(scale * Q, R, T, eta=0.1, alpha_max=1.0)


def test_integrate_unstable_learning_rate_still_reports_alpha():
    Q0, R0_, T_ = numerics.initial_conditions(4, 2, N=1000, seed=1)
    with pytest.raises(IntegrationError, match=r"alpha = \d"):
        numerics.integrate(Q0, R0_, T_, eta=5.0, alpha_max=100)


def test_landscape_overflow_is_reported():
    huge = 1e200 * W
    for function in (numerics.gradient, numerics.hessian, numerics.hessian_spectrum):
        with pytest.raises(ValueError, match=rf"{function.__name__}: .*too large"):
            function(huge, W_STAR)
    # overlaps (~1e220) finite, the gradient (~ |W|**3) not: used to return inf
    with pytest.raises(ValueError, match="gradient: the result is not finite"):
        numerics.gradient(1e110 * W, W_STAR)


def test_linearised_risk_overflow_is_reported():
    with pytest.raises(ValueError, match="linearised_risk: the result is not finite"):
        numerics.linearised_risk([0.0, 1e6], np.zeros((2, 1)), eta=0.1)  # used to return NaN (0 * inf)


def test_generated_terms_overflow_is_reported():
    with pytest.raises(ValueError, match="generated_terms: the result is not finite"):
        montecarlo.generated_terms(1e200 * Q, R, T)


# ---------------------------------------------------------------------------
# widths: NumPy int32 must not wrap around
# ---------------------------------------------------------------------------


def _plateau_counts_python(N, p, k):
    # the closed form of landscape.predicted_spectrum at the plateau (rank p), in Python ints
    r = p
    return {
        "negative": (p - r) * (N - r - k) + (p - r) * k + r * k,
        "null": r * (N - r - k) + (p - r) * r + math.comb(r, 2),
        "positive": (math.comb(r + 1, 2) - 1) + 1,
    }


@pytest.mark.parametrize("width_type", [np.int32, np.int64, np.uint32, int, float])
def test_predicted_counts_do_not_wrap_around(width_type):
    N = 2**30
    counts = landscape.predicted_counts("plateau", width_type(N), width_type(4), width_type(2))
    assert counts == _plateau_counts_python(N, 4, 2)
    assert counts["null"] == 4 * (N - 6) + 6  # was 0 with np.int32 (4 * 2**30 wraps to 0)
    assert sum(counts.values()) == 4 * N  # the Hessian is pN x pN
    assert all(type(value) is int for value in counts.values())


def test_predicted_spectrum_multiplicities_sum_to_pN():
    for name, p, k in (("tabula_rasa", 3, 2), ("plateau", 3, 2), ("zero_error", 3, 2), ("aligned", 3, 2)):
        N = np.int32(2**30)
        pairs = landscape.predicted_spectrum(name, N, p, k)
        assert sum(count for _, count in pairs) == p * 2**30


# ---------------------------------------------------------------------------
# the shared checks themselves
# ---------------------------------------------------------------------------


def test_check_int_rules():
    assert check_int(np.int32(7), "n") == 7 and type(check_int(np.int32(7), "n")) is int
    assert check_int(1e4, "N", minimum=1) == 10_000
    assert check_int(np.array(3), "n") == 3
    for bad in (True, np.bool_(False), 2.5, NAN, INF, "3", None, Fraction(3, 1), np.array([3])):
        with pytest.raises(ValueError, match="n must be"):
            check_int(bad, "n")
    with pytest.raises(ValueError, match=r"n must be an integer in \[0, 4\], got 5"):
        check_int(5, "n", minimum=0, maximum=4)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        check_int(0, "n", minimum=1)


def test_check_scalar_rules():
    assert check_scalar(np.float32(0.5), "x") == 0.5
    assert check_scalar(np.array(2.0), "x") == 2.0
    assert check_scalar(Fraction(1, 4), "x") == 0.25
    for bad in (True, "1.0", None, 1 + 0j, np.complex64(1), np.array([1.0]), 10**400):
        with pytest.raises(ValueError, match="x must be"):
            check_scalar(bad, "x")
    with pytest.raises(ValueError, match="x must be below 1"):
        check_scalar(1.0, "x", below=1.0)


def test_as_real_array_rules():
    original = np.eye(2)
    assert as_real_array(original, "A") is original  # float64 passes without a copy
    converted = as_real_array(np.eye(2, dtype=np.float32), "A")
    assert converted.dtype == np.float64
    assert as_real_array([[1, 2], [3, 4]], "A").dtype == np.float64
    objects = np.array([[Fraction(1, 2), 2**70]], dtype=object)
    np.testing.assert_array_equal(as_real_array(objects, "A"), [[0.5, 2.0**70]])
    for bad, message in [
        (np.eye(2) + 0j, "A must be real, got a complex array"),
        (np.eye(2, dtype=bool), "booleans"),
        (np.array([["1.0"]]), "dtype <U3"),
        (np.array([[1.0, None]], dtype=object), "element None"),
        (np.array([[1.0, 1j]], dtype=object), "complex element"),
        (np.array([[10**400]], dtype=object), "too large"),
        (np.array([[np.datetime64("2020-01-01")]]), "dtype datetime64"),
        ([[1.0], [1.0, 2.0]], "real numeric array"),
        (np.array([[1.0, NAN]]), r"A contains NaN or inf \(first at index \(0, 1\)\)"),
        (np.ones(3), "at least 2 axes"),
    ]:
        with pytest.raises(ValueError, match=message):
            as_real_array(bad, "A")


def test_check_alpha_grid_rules():
    np.testing.assert_array_equal(check_alpha_grid([0, 1, 2], "a"), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(check_alpha_grid([0, 1, 1], "a", strict=False), [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="a must be strictly increasing"):
        check_alpha_grid([0, 1, 1], "a")
    with pytest.raises(ValueError, match="a goes beyond alpha_max = 1"):
        check_alpha_grid([0, 2], "a", alpha_max=1.0)
    # rounding of a grid computed up to alpha_max is tolerated
    check_alpha_grid(np.linspace(0, 0.3, 7), "a", alpha_max=0.1 * 3)


def test_integer_valued_floats_accepted_as_widths():
    Q0, R0_, T_ = numerics.initial_conditions(2.0, 1.0, N=10)
    assert Q0.shape == (2, 2) and R0_.shape == (2, 1) and T_.shape == (1, 1)
    assert landscape.predicted_counts("plateau", 1e3, 4.0, 2) == landscape.predicted_counts("plateau", 1000, 4, 2)
