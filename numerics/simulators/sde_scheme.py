"""The Euler-Maruyama loop of the SDE: every replica on its own time, step and status.

See :mod:`numerics.simulators.sde` (module docstring, "Scheme", "Step size" and "Replica status").
Each replica carries its own alpha, step and random stream; a loop iteration advances every
running replica by one of its own steps (the drift, the noise covariance and their factor
evaluated for those replicas together, never mixing them), so a replica follows the same
trajectory alone or batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.noise.diffusion import packed_size
from numerics.simulators.chain_start import covariance_factor
from numerics.simulators.common import BLOWUP, progress_bar
from numerics.simulators.sde_dynamics import MIN_STEPS, SdeDynamics, step_bounds

#: Steps whose Gaussian draws are generated per generator call (amortises the calls).
CHUNK_STEPS = 256
#: The Jacobian's spectral radius is re-estimated every this many steps of a replica.
RATE_EVERY = 8
#: A step longer than this many times the drift's bound (``rate h > 0.2``) triggers a warning.
STEP_WARNING = 10.0
#: An adaptive step below this fraction of ``alpha_max`` means the drift or the noise grows without bound
#: (a finite-time blow-up, which the adaptive step would approach in ever shorter steps): the replica diverged.
SMALLEST_STEP = 1e-9

RUNNING, COMPLETED, ESCAPED, DIVERGED, STALLED = "running", "completed", "escaped", "diverged", "stalled"


@dataclass
class SchemeRecord:
    """What the loop recorded.

    Attributes
    ----------
    Q, R, a : arrays, shapes (B, n, p, p), (B, n, p, k), (B, n, p)
        The states at the recorded alphas; NaN after a replica diverged or stalled.
    status : array of str, shape (B,)
        ``"completed"``, ``"escaped"``, ``"diverged"`` or ``"stalled"``.
    status_alpha : array, shape (B,)
        Where the replica ended: ``alpha_max``, or the alpha of its last good state (diverged, stalled).
    escape_alpha : array, shape (B,)
        First alpha with the risk below the escape level (linear in the step), NaN if never.
    steps_taken : array of int, shape (B,)
    largest_step : float
    projections : int
        Replica-steps whose ``S`` was projected onto the positive semi-definite cone.
    long_steps : int
        Replica-steps longer than :data:`STEP_WARNING` times the drift's bound.
    """

    Q: np.ndarray
    R: np.ndarray
    a: np.ndarray
    status: np.ndarray
    status_alpha: np.ndarray
    escape_alpha: np.ndarray
    steps_taken: np.ndarray
    largest_step: float
    projections: int
    long_steps: int


class ReplicaDraws:
    """The standard normal increments of every replica, each from its own generator in chunks of its own steps."""

    def __init__(self, generators: list, width: int) -> None:
        self.generators = generators
        self.buffer = np.empty((len(generators), CHUNK_STEPS, width))
        self.used = np.full(len(generators), CHUNK_STEPS)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """One increment for each replica of ``rows``, shape (n, width)."""
        for i in rows[self.used[rows] == CHUNK_STEPS]:
            self.buffer[i] = self.generators[i].standard_normal(self.buffer.shape[1:])
            self.used[i] = 0
        values = self.buffer[rows, self.used[rows]]
        self.used[rows] += 1
        return values


def project_to_cone(Q: np.ndarray, R: np.ndarray, T_pinv: np.ndarray) -> int:
    """Project ``S = Q - R T^+ R^T`` onto the PSD cone where it has a negative eigenvalue, in place.

    ``Q`` (n, p, p), ``R`` (n, p, k), ``T_pinv`` (k, k) or (n, k, k). Returns the number of replicas projected.
    """
    teacher = R @ T_pinv @ np.swapaxes(R, -1, -2)
    teacher = (teacher + np.swapaxes(teacher, -1, -2)) / 2
    S = Q - teacher
    S = (S + np.swapaxes(S, -1, -2)) / 2
    smallest = np.linalg.eigvalsh(S)[:, 0]
    bad = np.flatnonzero(smallest < 0)
    if bad.size:
        values, vectors = np.linalg.eigh(S[bad])
        inside = (vectors * np.maximum(values, 0.0)[:, None, :]) @ np.swapaxes(vectors, -1, -2)
        Q[bad] = (inside + np.swapaxes(inside, -1, -2)) / 2 + teacher[bad]
    return int(bad.size)


class EulerMaruyama:
    """The loop of the module docstring over a batch of replicas.

    Parameters
    ----------
    dynamics : SdeDynamics
    T : array, shape (k, k) or (B, k, k)
    N, alpha_max : float
    dalpha : float or None
        A fixed step (dividing ``alpha_max``), or ``None`` for the adaptive one.
    step_scale : float
        Multiplies every bound of the adaptive step.
    max_steps : int
        A replica stalls when it has taken this many steps.
    escape_risk : float or None
        Risk level below which a replica counts as escaped.
    """

    def __init__(self, dynamics: SdeDynamics, T: np.ndarray, *, N: float, alpha_max: float, dalpha: float | None,
                 step_scale: float, max_steps: int, escape_risk: float | None) -> None:
        self.dynamics, self.T, self.N, self.alpha_max = dynamics, T, N, alpha_max
        self.dalpha, self.step_scale, self.max_steps, self.escape_risk = dalpha, step_scale, max_steps, escape_risk
        self.n_steps = None if dalpha is None else int(round(alpha_max / dalpha))
        self.T_pinv = np.linalg.pinv(T, hermitian=True)
        # R must stay in the range of T (nu lives there); only a rank-deficient T needs the projection
        self.range_T = T @ self.T_pinv
        k = T.shape[-1]
        self.singular_T = not np.allclose(self.range_T, np.eye(k), atol=1e-12)

    def _rows(self, array: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # the per-replica entries of a shared-or-batched teacher array
        return array if array.ndim == 2 else array[rows]

    def run(self, Q: np.ndarray, R: np.ndarray, times: np.ndarray, generators: list, progress: bool,
            progress_work: float) -> SchemeRecord:
        """Integrate from ``Q`` (B, p, p), ``R`` (B, p, k) (modified in place) recording at ``times`` (n,).

        A progress display (in thousandths of ``alpha_max``, reached by the slowest replica) is shown
        when ``progress`` and the steps times replicas expected from the first step exceed ``progress_work``.
        """
        replicas, p, k = R.shape
        trained = self.dynamics.settings.eta_a > 0
        a = None if self.dynamics.a is None else self.dynamics.a.copy()
        self.draws = ReplicaDraws(generators, packed_size(p, k) + (p if trained else 0))
        n_rec = times.size
        record = SchemeRecord(
            Q=np.full((replicas, n_rec, p, p), np.nan), R=np.full((replicas, n_rec, p, k), np.nan),
            a=np.full((replicas, n_rec, p), np.nan), status=np.full(replicas, RUNNING, dtype=object),
            status_alpha=np.full(replicas, np.nan), escape_alpha=np.full(replicas, np.nan),
            steps_taken=np.zeros(replicas, dtype=np.int64), largest_step=0.0, projections=0, long_steps=0)
        alpha = np.zeros(replicas)
        next_record = np.zeros(replicas, dtype=np.int64)
        rate = np.zeros(replicas)
        risk = np.full(replicas, np.nan)
        self._record_due(record, times, alpha, next_record, np.arange(replicas), Q, R, a)
        bar, shown = None, 0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while True:
                rows = np.flatnonzero(record.status == RUNNING)
                if rows.size == 0:
                    break
                steps = self._advance(record, rows, alpha, Q, R, a, rate, risk, times, next_record)
                if progress and bar is None and steps.size:
                    expected = self.alpha_max / float(np.min(steps)) * replicas
                    bar = progress_bar(expected > progress_work, 1000, "SDE steps", unit_scale=False,
                                       unit="/1000 of alpha_max")
                    progress = bar is not None
                if bar is not None:
                    slowest = np.min(np.where(record.status == RUNNING, alpha, self.alpha_max))
                    done = int(1000 * slowest / self.alpha_max)
                    bar.update(done - shown)
                    shown = done
        if bar is not None:
            bar.close()
        record.status[(record.status == COMPLETED) & np.isfinite(record.escape_alpha)] = ESCAPED
        record.status = record.status.astype(str)
        return record

    def _advance(self, record: SchemeRecord, rows: np.ndarray, alpha: np.ndarray, Q: np.ndarray, R: np.ndarray,
                 a: np.ndarray | None, rate: np.ndarray, risk: np.ndarray, times: np.ndarray,
                 next_record: np.ndarray) -> np.ndarray:
        # one step of every running replica in rows; returns their steps
        dynamics, N = self.dynamics, self.N
        T_rows = self._rows(self.T, rows)
        Q_now, R_now = Q[rows], R[rows]
        a_now = None if a is None else a[rows]
        Sigma = dynamics.covariance(Q_now, R_now, T_rows, a_now, rows)
        drift = dynamics.drift(Q_now, R_now, T_rows, a_now, rows)
        sick = ~(np.all(np.isfinite(Sigma), axis=(-2, -1)) & _finite(drift))
        if np.any(sick):
            self._stop(record, rows[sick], alpha, DIVERGED)
            keep = ~sick
            rows, Q_now, R_now, Sigma = rows[keep], Q_now[keep], R_now[keep], Sigma[keep]
            T_rows, a_now = self._rows(self.T, rows), None if a is None else a_now[keep]
            drift = tuple(d[keep] if np.ndim(d) else d for d in drift)
            if rows.size == 0:
                return np.empty(0)
        due = rows[record.steps_taken[rows] % RATE_EVERY == 0]
        if due.size:
            where = np.searchsorted(rows, due)
            rate[due] = dynamics.rate(Q_now[where], R_now[where], T_rows if T_rows.ndim == 2 else T_rows[where],
                                      None if a_now is None else a_now[where], due)
        drift_bound, noise_bound = step_bounds(Q_now, R_now, T_rows, drift, Sigma, rate[rows], N=N, a=a_now)
        target = np.minimum(np.append(times, self.alpha_max)[np.minimum(next_record[rows], times.size)],
                            self.alpha_max)
        target = np.where(next_record[rows] < times.size, target, self.alpha_max)
        h = self._steps(drift_bound, noise_bound)
        remaining = target - alpha[rows]
        if self.dalpha is None:
            # the steps up to the next recorded alpha are made equal, so that the last lands on it exactly
            # without a short step left over
            h = remaining / np.maximum(np.ceil(remaining / h * (1 - 1e-9)), 1.0)
            land = h >= remaining * (1 - 1e-9)
        else:  # fixed steps are counted instead
            land = np.zeros(rows.size, dtype=bool)
        record.long_steps += int(np.sum(h > STEP_WARNING * drift_bound))
        collapsed = h < SMALLEST_STEP * self.alpha_max
        stalled = ~collapsed & (record.steps_taken[rows] >= self.max_steps)
        if np.any(collapsed):
            self._stop(record, rows[collapsed], alpha, DIVERGED)
        if np.any(stalled):
            self._stop(record, rows[stalled], alpha, STALLED)
        go = ~(collapsed | stalled)
        rows, h, land, target = rows[go], h[go], land[go], target[go]
        if rows.size == 0:
            return h
        noise = (covariance_factor(Sigma[go]) @ self.draws.take(rows)[..., None])[..., 0]
        noise *= np.sqrt(h / N)[:, None]
        self._move(record, rows, h, drift, go, noise, Q, R, a, alpha, land, target, risk)
        self._record_due(record, times, alpha, next_record, rows, Q, R, a)
        finished = alpha[rows] >= self.alpha_max if self.dalpha is None else record.steps_taken[rows] >= self.n_steps
        done = rows[finished & (record.status[rows] == RUNNING)]
        record.status[done] = COMPLETED
        record.status_alpha[done] = self.alpha_max
        return h

    def _steps(self, drift_bound: np.ndarray, noise_bound: np.ndarray) -> np.ndarray:
        if self.dalpha is not None:
            return np.full(drift_bound.shape, self.dalpha)
        bound = np.minimum(np.minimum(drift_bound, noise_bound), self.alpha_max / MIN_STEPS)
        return self.step_scale * bound

    def _move(self, record: SchemeRecord, rows: np.ndarray, h: np.ndarray, drift: tuple, go: np.ndarray,
              noise: np.ndarray, Q: np.ndarray, R: np.ndarray, a: np.ndarray | None, alpha: np.ndarray,
              land: np.ndarray, target: np.ndarray, risk: np.ndarray) -> None:
        # the Euler-Maruyama update of rows, the cone, divergence and escape checks
        p, k = R.shape[-2:]
        iu = np.triu_indices(p)
        n_upper, D = iu[0].size, packed_size(p, k)
        drift_Q, drift_R, drift_a = (d[go] if np.ndim(d) else d for d in drift)
        increment_Q = np.empty((rows.size, p, p))
        increment_Q[:, iu[0], iu[1]] = noise[:, :n_upper]
        increment_Q[:, iu[1], iu[0]] = noise[:, :n_upper]
        Q_new = Q[rows] + drift_Q * h[:, None, None] + increment_Q
        R_new = R[rows] + drift_R * h[:, None, None] + noise[:, n_upper:D].reshape(rows.size, p, k)
        a_new = None
        if a is not None:  # fixed readout vectors stay; a trained readout has its own noise after the D entries
            a_new = a[rows] + drift_a * h[:, None] + noise[:, D:] if noise.shape[1] > D else a[rows]
        if self.singular_T:
            R_new = R_new @ self._rows(self.range_T, rows)
        finite = (np.all(np.isfinite(Q_new), axis=(-2, -1)) & np.all(np.isfinite(R_new), axis=(-2, -1))
                  & (np.max(np.diagonal(Q_new, axis1=1, axis2=2), axis=-1) <= BLOWUP))
        if a_new is not None:
            finite &= np.all(np.isfinite(a_new), axis=-1)
        if not np.all(finite):
            # the replica is frozen at its last good state, the alpha of the step that failed reported
            self._stop(record, rows[~finite], alpha, DIVERGED, h[~finite])
            rows, h, land, target = rows[finite], h[finite], land[finite], target[finite]
            Q_new, R_new = Q_new[finite], R_new[finite]
            a_new = None if a_new is None else a_new[finite]
        record.projections += project_to_cone(Q_new, R_new, self._rows(self.T_pinv, rows))
        Q[rows], R[rows] = Q_new, R_new
        if a is not None:
            a[rows] = a_new
        record.steps_taken[rows] += 1
        if self.dalpha is None:
            alpha[rows] = np.where(land, target, alpha[rows] + h)
        else:  # whole steps: the recorded alphas are the same multiples of the step
            alpha[rows] = record.steps_taken[rows] * self.dalpha
        record.largest_step = max(record.largest_step, float(np.max(h, initial=0.0)))
        if self.escape_risk is not None and rows.size:
            self._escapes(record, rows, alpha, h, Q_new, R_new, a_new, risk)

    def _escapes(self, record: SchemeRecord, rows: np.ndarray, alpha: np.ndarray, h: np.ndarray, Q: np.ndarray,
                 R: np.ndarray, a: np.ndarray | None, risk: np.ndarray) -> None:
        # the first crossing of the escape level, interpolated linearly within the step
        new = self.dynamics.risk(Q, R, self._rows(self.T, rows), a, rows)
        old = risk[rows]
        level = self.escape_risk
        crossed = (new < level) & np.isnan(record.escape_alpha[rows])
        fraction = np.where(np.isfinite(old) & (old > new), (old - level) / np.where(old > new, old - new, 1.0), 1.0)
        start = alpha[rows] - h
        record.escape_alpha[rows[crossed]] = (start + np.clip(fraction, 0.0, 1.0) * h)[crossed]
        risk[rows] = new

    def _record_due(self, record: SchemeRecord, times: np.ndarray, alpha: np.ndarray, next_record: np.ndarray,
                    rows: np.ndarray, Q: np.ndarray, R: np.ndarray, a: np.ndarray | None) -> None:
        # store the states of rows that reached their next recorded alpha (several, for repeated alphas)
        while rows.size:
            index = next_record[rows]
            due = index < times.size
            due[due] = alpha[rows[due]] >= times[index[due]]
            if not np.any(due):
                return
            hit = rows[due]
            slot = next_record[hit]
            record.Q[hit, slot], record.R[hit, slot] = Q[hit], R[hit]
            if a is not None:
                record.a[hit, slot] = a[hit]
            next_record[hit] += 1
            rows = hit

    def _stop(self, record: SchemeRecord, rows: np.ndarray, alpha: np.ndarray, status: str,
              h: np.ndarray | None = None) -> None:
        record.status[rows] = status
        record.status_alpha[rows] = alpha[rows] if h is None else alpha[rows] + h


def _finite(drift: tuple) -> np.ndarray:
    drift_Q, drift_R, drift_a = drift
    finite = np.all(np.isfinite(drift_Q), axis=(-2, -1)) & np.all(np.isfinite(drift_R), axis=(-2, -1))
    if np.ndim(drift_a):
        finite &= np.all(np.isfinite(drift_a), axis=-1)
    return finite


def record_alphas(record: Any, alpha_max: float, dalpha: float | None, n_steps: int) -> np.ndarray:
    """The recorded alphas: with a fixed step rounded to whole steps (``n_steps`` of ``dalpha``), else as given."""
    if dalpha is None:
        return np.asarray(record, dtype=float)
    return np.unique(np.clip(np.rint(np.asarray(record) / dalpha).astype(np.int64), 0, n_steps)) * dalpha


__all__ = ["CHUNK_STEPS", "EulerMaruyama", "RATE_EVERY", "SMALLEST_STEP", "STEP_WARNING",
           "SchemeRecord", "project_to_cone", "record_alphas"]
