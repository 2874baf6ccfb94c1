"""Every benchmark runs at its smallest size and yields well-formed rows (no timing assertions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import (
    bench_api,
    bench_contractions,
    bench_covariance,
    bench_derive,
    bench_erf_higher,
    bench_hessian,
    bench_noise,
    bench_reduced,
    bench_relu,
    bench_relu_higher,
    bench_rhs,
    bench_sde,
    bench_simulator,
    bench_solve,
    bench_stiff,
    bench_sweep,
    bench_tuples,
)
from bench.__main__ import table
from bench.common import discover, run_in_subprocess, time_call


def _check_row(entry: dict) -> None:
    assert entry["benchmark"] and entry["case"]
    assert entry["seconds"] > 0 and math.isfinite(entry["seconds"])
    if entry["baseline_seconds"] is not None:
        assert entry["baseline_seconds"] > 0
        assert entry["ratio"] == pytest.approx(entry["seconds"] / entry["baseline_seconds"])
    assert entry["met"] in (True, False, None)


@pytest.mark.parametrize("p,k", [(8, 2), (64, 4)])
def test_baseline_matches_generated_rhs(p, k):
    assert bench_rhs.max_relative_error(p, k) < 1e-12


def test_baseline_detects_a_wrong_formula():
    # the check is not vacuous: dropping the 8 CKCKC term of the eta**2 moment breaks agreement
    Q, R, T = bench_rhs.overlaps(8, 2)
    dQ, _ = bench_rhs.baseline_rhs(Q, R, T, bench_rhs.ETA)
    generated, _ = bench_rhs.generated_rhs()(Q, R, T, bench_rhs.ETA)
    a = 1 / 8
    C = np.block([[Q, R], [R.T, T]])
    K = np.diag([-a] * 8 + [0.5] * 2)
    wrong = dQ - 4 * a**2 * bench_rhs.ETA**2 * 8 * (C @ K @ C @ K @ C)[:8, :8]
    assert np.max(np.abs(wrong - generated)) > 1e-6 * np.max(np.abs(generated))


MODULES = [
    bench_api,
    bench_rhs,
    bench_solve,
    bench_derive,
    bench_simulator,
    bench_hessian,
    bench_reduced,
    bench_sweep,
    bench_sde,
    bench_covariance,
    bench_relu,
    bench_contractions,
    bench_tuples,
    bench_stiff,
    bench_noise,
    bench_erf_higher,
    bench_relu_higher,
]


def test_every_benchmark_module_is_smoke_tested():
    assert {f"bench.{m.__name__.split('.')[-1]}" for m in MODULES} == set(discover())


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.split(".")[-1])
def test_benchmark_smoke_rows(module):
    rows = module.run(smoke=True)
    assert rows
    for entry in rows:
        _check_row(entry)
    assert "| " + rows[0]["benchmark"] + " |" in table(rows)


@pytest.mark.parametrize("p,k", [(2, 2), (3, 5)])
def test_erf_closed_form_matches_the_generated_rhs(p, k):
    assert bench_tuples.max_relative_error(p, k) < 1e-12


def test_erf_closed_form_check_covers_the_eta2_term():
    # the check is not vacuous: without its eta**2 term the generated rhs is far from the closed form
    from derive.model.model import SCM
    from numerics.ode.overlaps import rhs_unchecked
    from numerics.runtime.registry import resolve

    Q, R, T = bench_tuples.overlaps(3, 2)
    closed_form = bench_tuples.closed_form_rhs(Q, R, T, bench_tuples.ETA)[0]
    gradient_flow = rhs_unchecked(Q, R, T, bench_tuples.ETA, resolve(SCM), False)[0]
    assert np.max(np.abs(closed_form - gradient_flow)) > 1e-3 * np.max(np.abs(closed_form))


def test_multiply_counts_of_the_generated_rhs():
    counts = bench_rhs.multiplies(1024, 8)
    # generated <= 1.25 x the minimum for its products, well below the baseline's 3 (p+k)**3
    assert counts["min_mults"] <= counts["mults"] <= 1.25 * counts["min_mults"]
    assert counts["mults"] < 0.5 * counts["baseline_mults"]


def test_structured_hessian_spectrum_matches_dense():
    assert bench_hessian.spectrum_error(*bench_hessian.weights(3, 2, 12)) < 1e-10


def test_runner_discovers_modules_and_runs_one_in_a_pinned_subprocess():
    names = discover()
    assert {"bench.bench_rhs", "bench.bench_solve", "bench.bench_derive", "bench.bench_simulator",
            "bench.bench_hessian"} <= set(names)
    rows = run_in_subprocess("bench.bench_derive", smoke=True, threads=1)
    assert rows and rows[0]["blas_threads"] == "1"
    _check_row(rows[0])


def test_missing_module_is_reported_as_skipped():
    rows = run_in_subprocess("bench.bench_does_not_exist", smoke=True, threads=1)
    assert rows[0]["skipped"]
    assert "skipped" in table(rows)


def test_time_call_rejects_bad_repeats():
    with pytest.raises(ValueError, match="repeats"):
        time_call(lambda: None, repeats=0)


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_derivation_row_runs_python_m_derive_into_a_temporary_tree():
    entry = bench_derive.derive_row()
    _check_row(entry)
    assert entry["files_written"] >= 8
