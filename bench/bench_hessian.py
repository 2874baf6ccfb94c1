"""Hessian spectrum: ``numerics.analyses.spectra.hessian_spectrum`` at large N, and against dense ``eigvalsh``.

Paper model, p = 8, k = 2, Gaussian weights (a generic point: the weights
span a (p + k)-dimensional space).

* N = 10**6: the exact spectrum costs one pass over the weights (their Gram
  matrix) plus O((p (p + k))**3) dense work, so the baseline is that pass
  alone: ``V V^T`` for the stacked weights ``V = [W; W*]`` (already stacked,
  one BLAS call), the least any method that looks at every weight must do.
  Target: under 50 ms. A second row times a rank-deficient point (the
  tabula-rasa stationary point, ``W = 0``), where the null directions of the
  Gram matrix take a second pass over the weights to decide the rank.
* N = 200: ``hessian_spectrum`` against ``numpy.linalg.eigvalsh`` of the dense
  (pN x pN) Hessian (built beforehand by ``numerics.analyses.gradient_hessian.hessian`` and not
  timed); the two spectra are checked to agree.
"""

from __future__ import annotations

import numpy as np

from bench.common import row, time_pair

P, K = 8, 2
LARGE_N, DENSE_N = 10**6, 200
SMOKE_LARGE_N, SMOKE_DENSE_N = 10**4, 20


def weights(p: int, k: int, N: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian student (p, N) and teacher (k, N) weights with unit-order overlaps."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((p, N)), rng.standard_normal((k, N))


def spectrum_error(W: np.ndarray, W_star: np.ndarray) -> float:
    """max |expanded spectrum - dense eigenvalues| / max |eigenvalue|."""
    from numerics.analyses.gradient_hessian import hessian
    from numerics.analyses.spectra import hessian_spectrum

    dense = np.linalg.eigvalsh(hessian(W, W_star))
    exact = np.sort(hessian_spectrum(W, W_star).expanded())
    return float(np.max(np.abs(exact - dense)) / np.max(np.abs(dense)))


def large_rows(smoke: bool) -> list[dict]:
    from numerics.analyses.spectra import hessian_spectrum
    from numerics.analyses.stationary_points import tabula_rasa

    N = SMOKE_LARGE_N if smoke else LARGE_N
    options = {"repeats": 3 if smoke else 7, "min_seconds": 0.01 if smoke else 0.2}
    rows = []
    W, W_star = weights(P, K, N)
    cases = [("generic point", W, W_star, 0.05)]
    point = tabula_rasa(N, P, K, seed=0)
    cases.append(("rank-deficient point (W = 0)", point.W, point.W_star, 0.05))
    for label, W, W_star, target in cases:
        V = np.concatenate([W, W_star])
        spectrum = hessian_spectrum(W, W_star)
        cand, base = time_pair(lambda W=W, W_star=W_star: hessian_spectrum(W, W_star), lambda V=V: V @ V.T,
                               **options)
        rows.append(row("hessian", f"spectrum N={N},p={P},k={K}, {label}", seconds=cand.best,
                        baseline_seconds=base.best, baseline="V V^T (one pass over the weights)",
                        target=None if smoke else target, target_kind="seconds<=", rank=spectrum.rank,
                        distinct=len(spectrum.eigenvalues)))
    return rows


def dense_row(smoke: bool) -> dict:
    from numerics.analyses.gradient_hessian import hessian
    from numerics.analyses.spectra import hessian_spectrum

    N = SMOKE_DENSE_N if smoke else DENSE_N
    W, W_star = weights(P, K, N, seed=1)
    error = spectrum_error(W, W_star)
    if error > 1e-10:
        raise AssertionError(f"structured and dense spectra disagree at N={N}: {error:.2e}")
    dense = hessian(W, W_star)
    cand, base = time_pair(lambda: hessian_spectrum(W, W_star), lambda: np.linalg.eigvalsh(dense),
                           repeats=3 if smoke else 5, min_seconds=0.01 if smoke else 0.2)
    return row("hessian", f"spectrum vs dense N={N},p={P},k={K}", seconds=cand.best, baseline_seconds=base.best,
               baseline=f"numpy eigvalsh of the dense {P * N}x{P * N} Hessian", rel_error=error)


def run(smoke: bool = False) -> list[dict]:
    """Rows: large-N spectrum (generic and rank-deficient point), then structured vs dense."""
    return large_rows(smoke) + [dense_row(smoke)]


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
