"""The planned per-tuple routes (numerics/kernels/tuple_plan.py, numerics/kernels/unit_tuples.py) against the
unplanned algorithm they replace: every block gathered per call by advanced indexing over the full grids
``(j, l, u, v)`` (no symmetry, no merging), contracted by ``einsum``. A copy of it is kept here as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from sample_points import random_point

from derive.model.model import PAPER, SCM, Model
from numerics.core.validation import covariance
from numerics.kernels import tuple_plan, unit_tuples
from numerics.kernels.unit_tuples import gather, readout_vectors
from numerics.runtime.registry import tuple_module

ERF_MIXED = Model(student_activation="erf(x/sqrt(2))", teacher_activation="x**2 - 1", name="erf_quadratic")
PLAIN_ERF = Model(student_activation="erf(x)", teacher_activation="erf(2*x)", student_readout="1/sqrt(p)")
RELU = Model(student_activation="relu(x)", teacher_activation="relu(x)", name="relu")
MODELS = {"scm": SCM, "erf_mixed": ERF_MIXED, "plain_erf": PLAIN_ERF, "relu": RELU, "paper": PAPER}
SIZES = [(1, 1), (2, 2), (1, 3), (3, 5), (4, 2)]


# --------------------------------------------------------------------------
# the unplanned algorithm (the route before the plan), batch axes first
# --------------------------------------------------------------------------


def _old_setup(module, Q, R, T, a, b):
    p, k = R.shape[-2:]
    a, b = readout_vectors(module.readouts, p, k, a, b)
    return covariance(Q, R, T), a, b, np.arange(p), p + np.arange(k)


def old_all_terms(module, Q, R, T, a=None, b=None):
    kernels = module.KERNELS
    C, a, b, students, teachers = _old_setup(module, Q, R, T, a, b)
    p, units = len(students), np.arange(len(students) + len(teachers))
    with_students = gather(C, kernels["drift_student"], [students, units, students])
    with_teachers = gather(C, kernels["drift_teacher"], [students, units, teachers])
    half = np.einsum("...jum,...m->...ju", with_students, -a) + np.einsum("...jus,...s->...ju", with_teachers, b)
    half = half * a[..., :, None]
    both = a[..., :, None] * a[..., None, :]
    ss = gather(C, kernels["diffusion_ss"], [students] * 4)
    st = gather(C, kernels["diffusion_st"], [students, students, students, teachers])
    tt = gather(C, kernels["diffusion_tt"], [students, students, teachers, teachers])
    diffusion = (np.einsum("...jlmn,...m,...n->...jl", ss, a, a) - 2 * np.einsum("...jlms,...m,...s->...jl", st, a, b)
                 + np.einsum("...jlst,...s,...t->...jl", tt, b, b)) * both
    noise = gather(C, kernels["noise"], [students, students]) * both
    return half[..., :p] + np.swapaxes(half[..., :p], -1, -2), half[..., p:], diffusion, noise


def old_risk_and_readout_drift(module, Q, R, T, a=None, b=None):
    kernels = module.KERNELS
    C, a, b, students, teachers = _old_setup(module, Q, R, T, a, b)
    ss = gather(C, kernels["pair_ss"], [students, students])
    st = gather(C, kernels["pair_st"], [students, teachers])
    tt = gather(C, kernels["pair_tt"], [teachers, teachers])
    risk = 0.5 * (np.einsum("...m,...mn,...n->...", a, ss, a) - 2 * np.einsum("...m,...ms,...s->...", a, st, b)
                  + np.einsum("...s,...st,...t->...", b, tt, b))
    return risk, -np.einsum("...jm,...m->...j", ss, a) + np.einsum("...js,...s->...j", st, b)


def old_hessian_terms(module, Q, R, T, a=None, b=None):
    kernels = module.KERNELS
    C, a, b, students, teachers = _old_setup(module, Q, R, T, a, b)
    both, mixed = np.outer(a, a), -np.outer(a, b)

    def pairs(name, second):
        return gather(C, kernels[name], [students, second])

    def weighted(name_s, name_t):
        return -pairs(name_s, students) @ a + pairs(name_t, teachers) @ b

    return (both * pairs("noise", students), mixed * pairs("hessian_11_st", teachers),
            both * pairs("hessian_22_ss", students), mixed * pairs("hessian_22_st", teachers),
            both * pairs("hessian_13_ss", students), mixed * pairs("hessian_31_st", teachers),
            (-a * weighted("hessian_2_s", "hessian_2_t"))[:, None],
            (-a * weighted("hessian_4_s", "hessian_4_t"))[:, None])


# --------------------------------------------------------------------------


def assert_close(got, want, label="", tolerance=1e-12):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, label
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-300)
    assert float(np.max(np.abs(got - want), initial=0.0)) <= tolerance * scale, label


def points(p, k, batch, seed=0):
    """Overlaps (batch, p, p), (batch, p, k), (batch, k, k) and readouts (batch, p), (batch, k) (no batch: 0)."""
    rng = np.random.default_rng(seed)
    count = max(batch, 1)
    Q, R, T = (np.stack(parts) for parts in zip(*(random_point(p, k, rng) for _ in range(count))))
    a, b = rng.normal(size=(count, p)), rng.normal(size=(count, k))
    if batch == 0:
        return Q[0], R[0], T[0], a[0], b[0]
    return Q, R, T, a, b


def compare(module, Q, R, T, a=None, b=None, eta=0.4, diffusion_tolerance=1e-12):
    old = old_all_terms(module, Q, R, T, a, b)
    for got, want, name in zip(module.all_terms(Q, R, T, a, b), old, ("drift_Q", "drift_R", "diffusion", "noise")):
        assert_close(got, want, name, diffusion_tolerance if name == "diffusion" else 1e-12)
    dQ, dR = module.rhs_terms(Q, R, T, eta, eta**2, 0.3 * eta**2, a, b)
    assert_close(dQ, eta * old[0] + eta**2 * old[2] + 0.3 * eta**2 * old[3], "rhs dQ", diffusion_tolerance)
    assert_close(dR, eta * old[1], "rhs dR")
    first = module.first_order_terms(Q, R, T, a, b)
    assert_close(first[0], old[0], "first-order drift_Q")
    risk, readout = old_risk_and_readout_drift(module, Q, R, T, a, b)
    assert_close(module.residual_risk(Q, R, T, a, b), risk, "risk")
    assert_close(module.readout_drift(Q, R, T, a, b), readout, "readout drift")


@pytest.mark.parametrize("name", ["scm", "erf_mixed", "plain_erf", "paper"])
@pytest.mark.parametrize("p,k", SIZES)
def test_planned_route_equals_the_unplanned_one(name, p, k):
    module = tuple_module(MODELS[name])
    Q, R, T, a, b = points(p, k, 0, seed=p + 10 * k)
    compare(module, Q, R, T)
    compare(module, Q, R, T, a, b)
    compare(module, Q, R, T, a, None)


@pytest.mark.parametrize("name", ["scm", "erf_mixed", "paper"])
def test_planned_route_batched_equals_the_unplanned_one(name):
    module = tuple_module(MODELS[name])
    Q, R, T, a, b = points(2, 3, 3, seed=4)
    compare(module, Q, R, T)
    compare(module, Q, R, T, a, b)
    compare(module, Q[0], R[0], T[0], a, b)  # readouts batched, overlaps not
    # two batch axes, and one batched call equal to the single calls
    shaped = [x.reshape((3, 1) + x.shape[1:]) for x in (Q, R, T, a, b)]
    compare(module, *shaped)
    batched = module.rhs_terms(Q, R, T, 0.5, 0.25, 0.0)
    for i in range(3):
        single = module.rhs_terms(Q[i], R[i], T[i], 0.5, 0.25, 0.0)
        for got, want in zip(batched, single):
            assert_close(got[i], want)


def test_relu_planned_route_equals_the_unplanned_one():
    # relu's eta**2 term goes through one path integral per student pair (numerics/kernels/relu_pairs.py),
    # the old route through the per-block quadrature: they agree within that quadrature's stated error, 1e-10
    # per block, which the readout weights (random here) scale to about 1e-9 of the result
    module = tuple_module(RELU)
    for p, k, batch in ((1, 2, 0), (2, 2, 0), (2, 1, 2)):
        Q, R, T, a, b = points(p, k, batch, seed=p + k)
        compare(module, Q, R, T, diffusion_tolerance=1e-9)
        compare(module, Q, R, T, a, b, diffusion_tolerance=1e-9)


@pytest.mark.parametrize("name", ["scm", "plain_erf", "paper"])
def test_planned_hessian_terms_equal_the_unplanned_ones(name):
    module = tuple_module(MODELS[name])
    for p, k in ((1, 1), (3, 2), (2, 4)):
        Q, R, T, a, b = points(p, k, 0, seed=3 * p + k)
        for readouts in ((None, None), (a, b)):
            for got, want in zip(module.hessian_terms(Q, R, T, *readouts), old_hessian_terms(module, Q, R, T,
                                                                                            *readouts)):
                assert_close(got, want, name)


@pytest.mark.parametrize("listed,block", [(8192, 1 << 14), (0, 1), (0, 40), (0, 1 << 14)])
def test_every_layout_of_the_eta2_term_gives_the_same_numbers(monkeypatch, listed, block):
    # the listed tuples, the grid in blocks of one pair, of a few pairs, and whole
    monkeypatch.setattr(tuple_plan, "LISTED_ELEMENTS", listed)
    monkeypatch.setattr(tuple_plan, "BLOCK_ELEMENTS", block)
    for name in ("scm", "erf_mixed"):
        module = tuple_module(MODELS[name])
        Q, R, T, a, b = points(3, 2, 2, seed=1)
        want = old_all_terms(module, Q, R, T, a, b)[2]
        assert_close(module.all_terms(Q, R, T, a, b)[2], want, name)
        assert_close(module.all_terms(Q[0], R[0], T[0])[2], old_all_terms(module, Q[0], R[0], T[0])[2], name)


def test_flat_and_broadcast_gathers_agree(monkeypatch):
    module = tuple_module(ERF_MIXED)
    Q, R, T, a, b = points(3, 2, 0, seed=2)
    flat = module.all_terms(Q, R, T, a, b)
    monkeypatch.setattr(tuple_plan, "FLAT_ELEMENTS", 0)
    for got, want in zip(module.all_terms(Q, R, T, a, b), flat):
        assert_close(got, want)


def test_plan_is_made_once_per_sizes_and_merges_equal_kernels():
    scm, mixed = tuple_module(SCM).KERNELS, tuple_module(ERF_MIXED).KERNELS
    readouts = tuple_module(SCM).readouts
    plan = tuple_plan.tuple_plan(scm, readouts, 3, 2)
    assert tuple_plan.tuple_plan(scm, readouts, 3, 2) is plan
    assert tuple_plan.tuple_plan(scm, readouts, 2, 3) is not plan
    assert plan.merged["drift"] and plan.merged["diffusion"] and plan.merged["pairs"]
    assert not any(tuple_plan.tuple_plan(mixed, readouts, 3, 2).merged[t] for t in ("drift", "diffusion", "pairs"))
    assert plan.gather("drift") is plan.gather("drift")  # index arrays built once
    np.testing.assert_array_equal(plan.pair_of, plan.pair_of.T)
    assert sorted(plan.pair_of[np.triu_indices(3)]) == list(range(6))


def test_plan_refuses_empty_sizes_and_unknown_terms():
    module = tuple_module(SCM)
    with pytest.raises(ValueError, match="p >= 1 and k >= 1"):
        tuple_plan.tuple_plan(module.KERNELS, module.readouts, 0, 2)
    with pytest.raises(ValueError, match="unknown per-tuple term 'diffusion'"):
        tuple_plan.term_calls(tuple_plan.tuple_plan(module.KERNELS, module.readouts, 2, 2), "diffusion")
    with pytest.raises(ValueError, match="different lengths"):
        tuple_plan.kernel_call("noise", (np.arange(2), np.arange(3)))


def test_entry_indices_point_at_the_block_entries():
    call = tuple_plan.kernel_call("drift_student", np.array([0, 1]), np.array([2]), np.array([0, 3]))
    C = np.arange(16.0).reshape(4, 4)
    entries = [C.ravel()[flat] for flat in tuple_plan.entry_indices(call, 4)]
    assert [e.shape for e in entries] == [(2, 1, 1), (2, 1, 1), (2, 1, 2), (1, 1, 1), (1, 1, 2), (1, 1, 2)]
    np.testing.assert_array_equal(entries[2][:, 0, :], C[np.ix_([0, 1], [0, 3])])  # c02 = C[j, m]
    np.testing.assert_array_equal(entries[4][0, 0], C[2, [0, 3]])  # c12 = C[u, m]


def test_entry_buffers_are_not_returned_and_are_bounded():
    # a kernel returning one of its entries gets a copy: the next call reuses the buffer
    identity = {"pair_ss": lambda c00, c01, c11: c01}
    call = tuple_plan.kernel_call("pair_ss", np.arange(2), np.arange(2))
    gather_ = tuple_plan.Gather([call], 2, broadcast=True)
    C = np.array([[1.0, 0.5], [0.5, 2.0]])
    (first,) = gather_.evaluate(identity, C.ravel())
    gather_.evaluate(identity, 3 * C.ravel())
    np.testing.assert_array_equal(first, C)
    for replicas in range(1, 3 + tuple_plan.BUFFERS_PER_THREAD):
        (batched,) = gather_.evaluate(identity, np.repeat(C.ravel()[:, None], replicas, axis=1))
        assert batched.shape == (2, 2, replicas)
    assert len(gather_.buffered_tails()) == tuple_plan.BUFFERS_PER_THREAD


def test_missing_average_still_raises_only_when_needed():
    module = tuple_module(Model(student_activation="relu(x)", teacher_activation="x**2", name="relu_x2"))
    Q, R, T, _, _ = points(2, 1, 0)
    module.rhs_terms(Q, R, T, 0.5, 0.0, 0.0)  # gradient flow needs no eta**2 kernel
    with pytest.raises(ValueError, match="diffusion"):
        module.rhs_terms(Q, R, T, 0.5, 0.25, 0.0)
    assert unit_tuples.MAX_BLOCK_ELEMENTS >= 1
