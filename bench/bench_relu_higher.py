"""A relu network's SDE step with the eta**3 and eta**4 parts of its increment covariance, against the leading order.

The candidate is the packed covariance one SDE step evaluates (``SdeDynamics.covariance``, relu
units on both sides, eta = 0.5, random points as replicas) with ``second_order=True``: the leading
order plus the parts of :mod:`numerics.noise.relu_higher_orders`. The baseline is the same call
with ``second_order=False`` (the leading order alone, what the step cost before those parts
existed), timed alternately in the same run. p = k = 1, p = k = 2 and p = 3, k = 2 (32
replicas); at p = k = 3 (above ``MAX_HIGHER_ORDER_UNITS = 5`` units) the default is the leading
order with a warning, so that row's ratio is about 1.

``python -m bench --only relu_higher`` (or ``python -m bench.bench_relu_higher``) prints the rows;
``ratio`` is with / without the higher parts, lower is cheaper.
"""

from __future__ import annotations

from bench.bench_erf_higher import random_points, size_rows

ETA = 0.5
SIZES = ((1, 1, 32), (2, 2, 32), (3, 2, 32), (3, 3, 32))
SMOKE_SIZES = ((1, 1, 2),)


def step_covariances(p: int, k: int, replicas: int):
    """``(with_parts, leading)``: the SDE step's packed covariance with and without the higher parts."""
    from derive.model.model import Model
    from numerics.results.settings import RunSettings
    from numerics.runtime.registry import resolve
    from numerics.simulators.sde_dynamics import SdeDynamics

    relu = Model(student_activation="relu(x)", teacher_activation="relu(x)")
    Q, R, T = random_points(p, k, replicas)
    resolved = resolve(relu, sizes=(p, k))
    full = SdeDynamics(RunSettings(eta=ETA, model=relu), resolved, replicas, p, k)
    leading = SdeDynamics(RunSettings(eta=ETA, model=relu, second_order=False), resolved, replicas, p, k)
    return (lambda: full.covariance(Q, R, T, None)), (lambda: leading.covariance(Q, R, T, None))


def run(smoke: bool = False) -> list[dict]:
    """Rows: the step's covariance with the higher parts against the leading order, per size."""
    from numerics.noise.relu_higher_orders import MAX_HIGHER_ORDER_UNITS

    return size_rows("relu_higher", SMOKE_SIZES if smoke else SIZES, step_covariances, MAX_HIGHER_ORDER_UNITS,
                     3 if smoke else 5)


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
