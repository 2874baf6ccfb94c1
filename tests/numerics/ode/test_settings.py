"""RunSettings: one description of a run's dynamics, taken by every solver and carried by every result."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

import numerics
from derive.model.model import HE2, SCM
from numerics import RunSettings
from numerics.simulators.overlap_chain import simulate_overlaps

#: Every function that takes the settings (as ``settings=`` or as keywords).
TAKERS = {
    "integrate": numerics.integrate,
    "simulate": numerics.simulate,
    "simulate_sde": numerics.simulate_sde,
    "simulate_overlaps": simulate_overlaps,
    "rhs": numerics.rhs,
    "risk": numerics.risk,
    "increment_covariance": numerics.increment_covariance,
    "packed_covariance": numerics.packed_covariance,
    "plateau_fixed_point": numerics.plateau_fixed_point,
}
Q2, R2, T1 = 0.8 * np.eye(2), np.array([[0.1], [0.05]]), np.eye(1)


def sde_run(settings=None, **keywords):
    return numerics.simulate_sde(Q2, R2, T1, settings, N=100, alpha_max=0.5, seed=3, replicas=2, record=5,
                                 progress=False, **keywords)


def sim_run(settings=None, **keywords):
    return numerics.simulate(settings, N=40, p=2, k=1, alpha_max=0.5, seed=3, replicas=2, record=5, progress=False,
                             **keywords)


def overlaps_run(settings=None, **keywords):
    return simulate_overlaps(settings, N=40, p=2, k=1, alpha_max=0.5, seed=3, replicas=2, record=5, progress=False,
                             **keywords)


def ode_run(settings=None, **keywords):
    return numerics.integrate(Q2, R2, T1, settings, alpha_max=2.0, n_points=6, **keywords)


RUNS = {"integrate": ode_run, "simulate": sim_run, "simulate_sde": sde_run, "simulate_overlaps": overlaps_run}


def assert_identical(first, second):
    for name in ("alpha", "Q", "R", "risk", "T"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    if first.a is not None or second.a is not None:
        np.testing.assert_array_equal(first.a, second.a)


# --- one set of defaults -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TAKERS))
def test_no_solver_repeats_a_default_of_the_settings(name):
    parameters = inspect.signature(TAKERS[name]).parameters
    assert parameters["settings"].default is None
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for field in RunSettings.field_names():
        if field in parameters:
            # only the positional learning rate of the evaluation functions, with no default of its own
            assert field == "eta" and parameters[field].default is None, (name, field)


def test_simulators_share_the_defaults_of_their_run_arguments():
    signatures = [inspect.signature(f).parameters for f in (numerics.simulate, numerics.simulate_sde,
                                                            simulate_overlaps)]
    for argument in ("replicas", "seed", "record", "progress"):
        assert len({s[argument].default for s in signatures}) == 1, argument


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_solver_runs_with_the_same_defaults(name):
    # keyword calls naming only eta: the result's settings are RunSettings' defaults
    assert RUNS[name](eta=0.3).settings == RunSettings(eta=0.3)


def test_the_readout_default_means_fixed_everywhere():
    assert RunSettings.defaults()["eta_a"] == 0.0
    for run in (ode_run, sim_run, sde_run, overlaps_run):
        result = run(eta=0.3)
        assert result.eta_a == 0.0 and result.settings.eta_a == 0.0 and result.a is None


# --- keyword form == settings form ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "keywords"),
    [
        ("integrate", {"eta": 0.4, "model": SCM, "batch_size": 2}),
        ("integrate", {"eta": 0.3, "model": SCM, "a": [0.5, 1.0], "eta_a": 0.4, "second_order": False}),
        ("simulate", {"eta": 0.5, "batch_size": 2}),
        ("simulate", {"eta": 0.5, "model": SCM, "a": [0.5, 1.0], "b": [0.7], "eta_a": 0.3}),
        ("simulate_sde", {"eta": 0.3}),
        ("simulate_sde", {"eta": 0.3, "batch_size": 3, "second_order": False}),
        ("simulate_sde", {"eta": 0.3, "model": HE2, "a": [0.7, -0.4], "eta_a": 0.8}),
        ("simulate_overlaps", {"eta": 0.5, "model": SCM, "batch_size": 2}),
    ],
)
def test_keyword_form_equals_settings_form_bit_for_bit(name, keywords):
    settings = RunSettings(**keywords)
    by_keywords = RUNS[name](**keywords)
    by_settings = RUNS[name](settings)
    assert_identical(by_keywords, by_settings)
    assert by_settings.settings is settings  # the object passed
    assert by_keywords.settings == settings
    assert by_keywords.eta == settings.eta and by_keywords.batch_size == settings.batch_size


def test_keywords_override_entries_of_the_settings():
    settings = RunSettings(eta=0.2, model=SCM)
    result = ode_run(settings, eta=0.4)
    assert result.settings == settings.replace(eta=0.4) and result.eta == 0.4
    assert_identical(result, ode_run(eta=0.4, model=SCM))


def test_rhs_and_covariances_take_settings():
    a = np.array([0.5, -0.25])
    settings = RunSettings(eta=0.3, model=HE2, a=a, eta_a=0.6, batch_size=2)
    by_settings = numerics.rhs(Q2, R2, T1, settings=settings)
    by_keywords = numerics.rhs(Q2, R2, T1, 0.3, model=HE2, a=a, eta_a=0.6, batch_size=2)
    assert len(by_settings) == 3  # the settings train the readout: da is part of the result
    for x, y in zip(by_settings, by_keywords):
        np.testing.assert_array_equal(x, y)
    assert len(numerics.rhs(Q2, R2, T1, settings=settings.replace(eta_a=0.0))) == 2
    for x, y in zip(numerics.increment_covariance(Q2, R2, T1, settings=settings),
                    numerics.increment_covariance(Q2, R2, T1, 0.3, model=HE2, a=a, eta_a=0.6, batch_size=2)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(numerics.packed_covariance(Q2, R2, T1, settings=RunSettings(eta=0.3, model=HE2)),
                                  numerics.packed_covariance(Q2, R2, T1, 0.3, model=HE2))
    assert numerics.risk(Q2, R2, T1, settings) == numerics.risk(Q2, R2, T1, model=HE2, a=a)
    with pytest.raises(ValueError, match="increment_covariance"):
        numerics.packed_covariance(Q2, R2, T1, settings=settings)


def test_plateau_takes_settings():
    plateau = numerics.plateau_fixed_point(3, 2, settings=RunSettings(eta=0.5, second_order=False))
    assert plateau == numerics.plateau_fixed_point(3, 2, 0.5, second_order=False)
    batched = numerics.plateau_fixed_point(3, 2, settings=RunSettings(eta=1.0, batch_size=2))
    assert batched.eta == 0.5  # the single-sample ODE at eta / B
    # readout vectors are settings of the plateau too: the paper model's own readout 1/p gives its plateau
    vectors = numerics.plateau_fixed_point(2, 1, 0.1, a=[0.5, 0.5], b=[1.0])
    np.testing.assert_allclose(vectors.Q, numerics.plateau_fixed_point(2, 1, 0.1).Q, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="length p"):
        numerics.plateau_fixed_point(2, 1, 0.5, a=[1.0, 1.0, 1.0])


# --- refused names and values --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RUNS))
def test_unknown_keywords_are_named_with_the_valid_settings(name):
    with pytest.raises(TypeError, match=r"'etaa'.*settings are eta, model, second_order, batch_size, eta_a"):
        RUNS[name](eta=0.3, etaa=0.1)


@pytest.mark.parametrize("name", ["rhs", "risk", "increment_covariance", "packed_covariance"])
def test_evaluation_functions_refuse_unknown_keywords(name):
    with pytest.raises(TypeError, match="'secnd_order'"):
        TAKERS[name](Q2, R2, T1, secnd_order=False) if name == "risk" else TAKERS[name](Q2, R2, T1, 0.3,
                                                                                       secnd_order=False)


def test_a_missing_learning_rate_is_a_type_error():
    with pytest.raises(TypeError, match="eta"):
        ode_run(model=SCM)
    with pytest.raises(TypeError, match="eta"):
        numerics.rhs(Q2, R2, T1)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"eta": -0.1}, "eta"),
        ({"eta": float("nan")}, "eta"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"second_order": "yes"}, "second_order"),
        ({"eta_a": -0.1}, "eta_a"),
        ({"a": [1.0, np.nan]}, r"\ba\b"),
        ({"b": "one"}, r"\bb\b"),
        ({"model": "paper"}, "model"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        RunSettings(**{"eta": 0.3, **changes})
    with pytest.raises(ValueError, match=match):
        ode_run(**{"eta": 0.3, **changes})
    with pytest.raises(ValueError, match=match):
        RunSettings(eta=0.3).replace(**changes)


def test_settings_that_are_not_run_settings_are_refused():
    with pytest.raises(ValueError, match="settings must be a RunSettings"):
        ode_run({"eta": 0.3})


def test_sgd_simulators_refuse_what_sgd_does_not_have():
    with pytest.raises(ValueError, match="second_order"):
        sim_run(eta=0.3, second_order=False)
    with pytest.raises(ValueError, match="method='weights' only"):
        overlaps_run(eta=0.3, a=[1.0, 1.0], eta_a=0.1)


# --- the object ------------------------------------------------------------------------------------


def test_value_semantics_hash_and_read_only_readouts():
    a = np.array([0.5, -0.0])
    first = RunSettings(eta=0.3, model=SCM, a=a)
    a[0] = 9.0  # the settings hold their own copy
    second = RunSettings(eta=0.3, model=SCM, a=[0.5, 0.0])
    assert first == second and hash(first) == hash(second) and len({first, second}) == 1
    assert first != first.replace(a=[0.5, 0.1]) and first != first.replace(a=None)
    assert first != RunSettings(eta=0.3, model=SCM, a=[[0.5, 0.0]])  # shapes differ
    with pytest.raises(ValueError, match="read-only"):
        first.a[0] = 1.0
    with pytest.raises(AttributeError):
        first.eta = 0.5  # frozen
    assert pickle.loads(pickle.dumps(first)) == first


def test_replace_validates_and_names_unknown_settings():
    settings = RunSettings(eta=0.3)
    assert settings.replace(batch_size=4).batch_size == 4 and settings.batch_size == 1
    with pytest.raises(TypeError, match="'batchsize'"):
        settings.replace(batchsize=4)


def test_repr_is_short_and_shows_what_differs_from_the_defaults():
    assert repr(RunSettings(eta=0.3)) == "RunSettings(eta=0.3)"
    text = repr(RunSettings(eta=0.3, model=SCM, eta_a=0.5, a=np.ones((100, 3))))
    assert "eta_a=0.5" in text and "<array (100, 3)>" in text and "second_order" not in text
    assert len(text) < 120


def test_dict_round_trip_with_a_custom_model_and_readouts():
    settings = RunSettings(eta=0.3, model=SCM, second_order=False, batch_size=3, eta_a=0.25,
                           a=np.array([[0.1, 1 / 3], [0.7, -2.5]]), b=[1.0])
    data = settings.to_dict()
    assert isinstance(data["model"], dict) and data["a"] == [[0.1, 1 / 3], [0.7, -2.5]]
    back = RunSettings.from_dict(data)
    assert back == settings and back.model == SCM
    with pytest.raises(ValueError, match="'weight_decay'"):
        RunSettings.from_dict({**data, "weight_decay": 0.1})
