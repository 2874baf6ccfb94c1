"""What the three simulators share: random streams per replica, step grids, divergence, errors."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.core.memory import physical_memory
from numerics.core.validation import check_alpha_grid, check_int, check_scalar
from numerics.ode.integrate import default_grid
from numerics.results.settings import RunSettings

logger = logging.getLogger("numerics.simulators")

#: A replica counts as diverged when a squared student norm (divided by N) exceeds this.
BLOWUP = 1e8



#: Largest number of steps a simulator (weights, overlap chain, SDE) accepts, checked before the run
#: starts: at about a microsecond per step at best this is already hours of computing.
MAX_STEPS = 10**10

#: Fraction of the machine's physical memory one run may allocate before it is refused.
MEMORY_FRACTION = 0.5



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





def check_memory(nbytes: float, what: str) -> None:
    """Raise ``ValueError`` saying how much memory ``what`` needs when it exceeds :data:`MEMORY_FRACTION`.

    Called before large allocations, so a run too large for the machine is refused
    with the amount it needs instead of failing with a ``MemoryError`` part way.
    """
    limit = MEMORY_FRACTION * physical_memory()
    if nbytes > limit:
        raise ValueError(
            f"{what} needs about {nbytes / 2**30:.3g} GiB of memory, more than the {limit / 2**30:.3g} GiB "
            f"allowed ({MEMORY_FRACTION:g} of this machine's memory); reduce it"
        )


def check_steps(n_steps: float, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``n_steps`` exceeds :data:`MAX_STEPS`."""
    if not n_steps <= MAX_STEPS:
        raise ValueError(f"{what} gives {n_steps:g} steps, more than the maximum MAX_STEPS = {MAX_STEPS:g}")


def record_points(record: Any, n_steps: int) -> int:
    """Upper bound on the number of recorded points of ``record`` (a count or an array of alphas)."""
    if np.ndim(record) == 0:
        return min(check_int(record, "record", minimum=2), n_steps + 1)
    return int(np.size(record))


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
        one or more than :data:`MAX_STEPS` steps, a bad ``record``, ``second_order=False``, recorded
        overlaps needing more memory than :func:`check_memory` allows.
    """
    check_sgd_settings(settings, where)
    p = check_count(p, "p", 1)
    k = check_count(k, "k", 1)
    N = check_count(N, "N", 1)
    if N < p + k:
        raise ValueError(f"N must be >= p + k = {p + k} (orthonormal students and teachers), got N = {N}")
    replicas = check_count(replicas, "replicas", 1)
    alpha_max = check_scalar(alpha_max, "alpha_max", positive=True)
    try:
        total = alpha_max * N
    except OverflowError:  # an integer N beyond the float range
        raise ValueError(f"N (an integer of {len(str(N))} digits) is beyond the float range") from None
    check_steps(total, f"alpha_max * N = {alpha_max:g} * {N}")
    n_steps = int(round(alpha_max * N))
    if n_steps < 1:
        raise ValueError(f"alpha_max * N must be at least one step, got {alpha_max * N:g}")
    if np.ndim(record) == 0:
        # the grid of a huge record count is built before duplicates are dropped
        check_memory(16.0 * check_int(record, "record", minimum=2), f"record = {record}")
    points = record_points(record, n_steps)
    check_memory(8.0 * points * replicas * (p * p + p * k + k * k),
                 f"recording {points} points of {replicas} replicas (record, replicas)")
    return N, p, k, replicas, n_steps, record_steps(N, alpha_max, record)


def interactive_output() -> bool:
    """Whether progress bars can be drawn: stderr is a terminal, or the code runs in a Jupyter kernel."""
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            if get_ipython() is not None and hasattr(get_ipython(), "kernel"):
                return True
        except ImportError:
            pass
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


class LogProgress:
    """Progress as a log line per tenth of the work (logger ``numerics.simulators``), for non-interactive output.

    A stand-in for a tqdm bar (``update``, ``close``) when stderr is a pipe or a file, where
    carriage-return refreshes would pile up as hundreds of lines.
    """

    def __init__(self, total: int, description: str) -> None:
        self.total, self.description, self.done, self.reported = max(int(total), 1), description, 0, 0
        self.started = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        tenths = min(10, 10 * self.done // self.total)
        if tenths > self.reported:
            self.reported = tenths
            elapsed = time.perf_counter() - self.started
            logger.info("%s: %d%% (%d of %d) after %.1f s", self.description, 10 * tenths, self.done, self.total,
                        elapsed)

    def close(self) -> None:
        """Nothing to release (the tqdm interface)."""


def progress_bar(show: bool, total: int, description: str, unit_scale: bool = True, unit: str = "step") -> Any:
    """A progress display over ``total`` steps when ``show``, else ``None``.

    On a terminal or in a notebook a ``tqdm.auto`` bar; otherwise (stderr redirected to a
    pipe or a file) a :class:`LogProgress` logging one line per 10 % at level INFO.
    """
    if not show:
        return None
    if not interactive_output():
        return LogProgress(total, description)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, unit_scale=unit_scale, leave=False)
