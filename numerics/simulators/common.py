"""What the three simulators share: random streams per replica, step grids, divergence, errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.core.validation import check_alpha_grid, check_int, check_scalar
from numerics.ode.integrate import default_grid
from numerics.results.settings import RunSettings

#: A replica counts as diverged when a squared student norm (divided by N) exceeds this.
BLOWUP = 1e8



#: Largest number of SGD steps accepted (exact integer step counts in float64; far beyond any run).
MAX_STEPS = 2.0**53



class SimulationError(RuntimeError):
    """The simulated weights diverged; the message says at which alpha."""



@dataclass(frozen=True)
class ReplicaStreams:
    """The three random generators of one replica."""

    init: np.random.Generator
    inputs: np.random.Generator
    noise: np.random.Generator



def child_seed(sequence: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    # What ``sequence.spawn`` would return as child ``index`` of a fresh sequence,
    # without mutating ``sequence`` (so a seed sequence can be passed twice).
    return np.random.SeedSequence(sequence.entropy, spawn_key=tuple(sequence.spawn_key) + (index,))



def as_seed_sequence(seed: Any, name: str) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.SeedSequence(seed)
    raise ValueError(f"{name} must be None, a non-negative integer or a numpy SeedSequence, got {seed!r}")



def replica_seeds(seed: Any, replicas: int) -> list[np.random.SeedSequence]:
    """Seed sequence of every replica.

    Parameters
    ----------
    seed : None, int, SeedSequence, or a sequence of those of length ``replicas``
        A single seed is the root: replica ``i`` gets its ``i``-th spawned
        child. A sequence gives every replica its own seed directly.
    replicas : int

    Returns
    -------
    list of numpy.random.SeedSequence, length ``replicas``
    """
    if isinstance(seed, (list, tuple)):
        if len(seed) != replicas:
            raise ValueError(f"seed is a sequence of {len(seed)} seeds but replicas = {replicas}")
        return [as_seed_sequence(s, f"seed[{i}]") for i, s in enumerate(seed)]
    root = as_seed_sequence(seed, "seed")
    return [child_seed(root, i) for i in range(replicas)]



def replica_streams(seed: Any, replicas: int) -> list[ReplicaStreams]:
    """The generators (initial weights, inputs, label noise) of every replica, as :func:`simulate` uses them."""
    streams = []
    for sequence in replica_seeds(seed, replicas):
        init, inputs, noise = (np.random.default_rng(child_seed(sequence, j)) for j in range(3))
        streams.append(ReplicaStreams(init, inputs, noise))
    return streams



def check_count(value: object, name: str, minimum: int) -> int:
    return check_int(value, name, minimum=minimum)



def record_steps(N: int, alpha_max: float, record: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """Step indices at which the overlaps are measured.

    ``record`` is a number of points (0, then log-spaced alphas as in
    :func:`numerics.integrate`'s default grid, rounded to whole steps, duplicates
    dropped) or a non-decreasing array of alphas in ``[0, alpha_max]``
    (rounded to the nearest step).
    """
    n_steps = int(round(alpha_max * N))
    if np.ndim(record) == 0:
        # a number of points; check_int refuses booleans and non-integral numbers
        alphas = default_grid(alpha_max, check_int(record, "record", minimum=2), "log")
    else:
        alphas = check_alpha_grid(record, "record", alpha_max=alpha_max, strict=False)
    steps = np.unique(np.clip(np.rint(alphas * N).astype(np.int64), 0, n_steps))
    return steps


def check_sgd_settings(settings: RunSettings, where: str) -> None:
    """Raise ``ValueError`` for settings an SGD simulation cannot follow (no ``eta**2`` term)."""
    if not settings.second_order:
        raise ValueError(
            f"{where} simulates SGD, whose steps have the eta**2 term: second_order=False (the gradient-flow "
            "limit) exists for the ODE (numerics.integrate) and the SDE only"
        )


def check_run(
    settings: RunSettings, N: Any, p: Any, k: Any, alpha_max: Any, replicas: Any, record: Any, where: str
) -> tuple[int, int, int, int, int, np.ndarray]:
    """The checked ``(N, p, k, replicas, n_steps, steps)`` of an SGD simulation (weights or overlap chain).

    Raises
    ------
    ValueError
        ``N < p + k``, widths or replicas below one, ``alpha_max`` not positive, fewer than
        one or more than :data:`MAX_STEPS` steps, a bad ``record``, ``second_order=False``.
    """
    check_sgd_settings(settings, where)
    p = check_count(p, "p", 1)
    k = check_count(k, "k", 1)
    N = check_count(N, "N", 1)
    if N < p + k:
        raise ValueError(f"N must be >= p + k = {p + k} (orthonormal students and teachers), got N = {N}")
    replicas = check_count(replicas, "replicas", 1)
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    if not alpha_max * N < MAX_STEPS:
        raise ValueError(f"alpha_max * N = {alpha_max * N:g} steps is more than can be simulated (max {MAX_STEPS:g})")
    n_steps = int(round(alpha_max * N))
    if n_steps < 1:
        raise ValueError(f"alpha_max * N must be at least one step, got {alpha_max * N:g}")
    return N, p, k, replicas, n_steps, record_steps(N, alpha_max, record)


def progress_bar(show: bool, total: int, description: str, unit_scale: bool = True) -> Any:
    """A tqdm bar over ``total`` steps when ``show``, else ``None``."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="step", unit_scale=unit_scale, leave=False)
