"""High-degree models: the tensor networks without a matrix-product form, planned into BLAS products.

With cubic and higher activations the diffusion term contains sums like
``sum_mn Q_jm Q_jn Q_lm Q_ln Q_mn`` (two summed indices, each joined to both
free indices and to the other). The generator prints each as one matrix
product (:mod:`derive.codegen.contraction`: the stack ``Q_jn Q_ln`` times
``Q`` in one ``matmul``, then one three-operand pass); before generator
version 8 it printed one five-to-ten-operand ``einsum`` per network, which
NumPy evaluates without a matrix product. The baseline is that old route,
printed by the same generator in the same run
(``generate_module(model, planned_contractions=False)``).

Candidate and baseline: ``rhs_terms`` (what ``numerics.integrate`` calls per
step, unbatched branch) at eta = 0.3 at one generic point, p = 64, k = 4, for
the dense student activations of ``bench.bench_derive.DEGREE_MODELS`` (teacher
``x**2``) of degrees 3 to 6 and for He4 students and teachers; the two are
checked to agree to 1e-12 relative before timing.
"""

from __future__ import annotations

import types

import numpy as np

from bench.bench_derive import DEGREE_MODELS
from bench.bench_rhs import overlaps
from bench.common import row, time_pair

ETA = 0.3
P, K = 64, 4
#: (degree, student, teacher, target speed-up): the targets are at degrees 4 and 6.
MODELS = [
    *((d, DEGREE_MODELS[d], "x**2", 10.0 if d in (4, 6) else None) for d in (3, 4, 5, 6)),
    (4, "x**4 - 6*x**2 + 3", "x**4 - 6*x**2 + 3", 10.0),  # He4 students and teachers
]


def modules(student: str, teacher: str) -> tuple[types.ModuleType, types.ModuleType]:
    """The generated module of the model (planned contractions) and the same printed the old way."""
    from derive import Model
    from derive.codegen.module import generate_module

    model = Model(student_activation=student, teacher_activation=teacher)
    loaded = []
    for planned in (True, False):
        module = types.ModuleType(f"bench_contractions_{'planned' if planned else 'einsum'}")
        source = generate_module(model, planned_contractions=planned).source
        exec(compile(source, module.__name__, "exec"), module.__dict__)
        loaded.append(module)
    return loaded[0], loaded[1]


def relative_difference(planned: types.ModuleType, einsum: types.ModuleType, p: int, k: int) -> float:
    """Largest |planned - old| / max|old| over the outputs of ``rhs_terms``, unbatched and batched."""
    Q, R, T = overlaps(p, k)
    batch = [overlaps(p, k, seed) for seed in (1, 2)]
    Qb, Rb, Tb = (np.stack([point[i] for point in batch]) for i in range(3))
    worst = 0.0
    for args in ((Q, R, T), (Qb, Rb, Tb)):
        for new, old in zip(planned.rhs_terms(*args, ETA, ETA**2, 0.0), einsum.rhs_terms(*args, ETA, ETA**2, 0.0)):
            worst = max(worst, float(np.max(np.abs(new - old)) / np.max(np.abs(old))))
    return worst


def run(smoke: bool = False) -> list[dict]:
    """One row per model: time per ``rhs_terms`` call, planned against the old einsum route."""
    p, k = (8, 2) if smoke else (P, K)
    rows = []
    for degree, student, teacher, target in MODELS[:1] if smoke else MODELS:
        planned, einsum = modules(student, teacher)
        error = relative_difference(planned, einsum, p, k)
        if error > 1e-12:
            raise AssertionError(f"planned and einsum routes disagree for {student} | {teacher}: {error:.2e}")
        Q, R, T = overlaps(p, k)
        cand, base = time_pair(
            lambda Q=Q, R=R, T=T, m=planned: m.rhs_terms(Q, R, T, ETA, ETA**2, 0.0),
            lambda Q=Q, R=R, T=T, m=einsum: m.rhs_terms(Q, R, T, ETA, ETA**2, 0.0),
            # the old route takes seconds per call from degree 5 on: fewer repeats
            repeats=2 if smoke or degree >= 5 else 3,
            min_seconds=0.01 if smoke else 0.2,
        )
        rows.append(row("contractions", f"rhs_terms degree {degree} ({student} | {teacher}), p={p},k={k}",
                        seconds=cand.best, baseline_seconds=base.best, baseline="old route: one einsum per network",
                        target=None if smoke else target, target_kind="speedup>=",
                        speedup=base.best / cand.best, rel_error=error))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
