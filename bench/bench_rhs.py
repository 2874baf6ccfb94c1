"""ODE right-hand side: generated code against the block-matrix closed form.

The baseline is the algorithm of hand-written implementations of this model
(paper default, ``sigma = sigma* = x**2``, readouts ``a = 1/p``, ``b = 1/k``):
with ``z = (lambda, nu) ~ N(0, C)``, ``C = [[Q, R], [R^T, T]]``, the residual
is the quadratic form ``g = y - f = z^T K z``, ``K = diag(-a I_p, b I_k)``, and
Isserlis' theorem gives, with ``m = tr(KC)``,

    <g z z^T>   = m C + 2 C K C
    <g^2 z z^T> = (m^2 + 2 tr(KCKC)) C + 4 m CKC + 8 CKCKC

so ``dR = 2 a eta <g lambda nu^T>``,
``dQ = 4 a eta <g lambda lambda^T> + 4 a^2 eta^2 <g^2 lambda lambda^T>``,
all evaluated with dense (p+k) x (p+k) products. The candidate is what
:func:`numerics.integrate` calls: ``numerics.ode.overlaps.rhs_unchecked`` on
the generated module (its ``rhs_terms``, unbatched branch).

Multiplications: ``bench.products.multiply_counts`` lists the matrix products
the generated function calls at each size with the scalar multiplications of
the kernel used (gemm ``m l n``, syrk ``m (m+1) l / 2``, the blocked
symmetric product's block rows) and the minimum for the same products (every
distinct entry once: half of a symmetric result). The baseline does three
dense (p+k)**3 products (``K C``, ``C (K C)``, ``(C K C)(K C)``). Entry-wise
O(p**2) work is not counted.
"""

from __future__ import annotations

import numpy as np

from bench.common import row, time_pair

SIZES = ((8, 2), (64, 4), (256, 8), (1024, 8))
ETA = 0.3


def baseline_rhs(Q: np.ndarray, R: np.ndarray, T: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """Block-matrix closed form of ``(dQ, dR)`` for the paper model, shapes (p, p), (p, k)."""
    p, k = R.shape
    a, b = 1.0 / p, 1.0 / k
    C = np.block([[Q, R], [R.T, T]])
    K = np.diag(np.concatenate([np.full(p, -a), np.full(k, b)]))
    KC = K @ C
    m = np.trace(KC)
    CKC = C @ KC
    CKCKC = CKC @ KC
    first = m * C + 2 * CKC
    second = (m**2 + 2 * np.sum(KC * KC.T)) * C + 4 * m * CKC + 8 * CKCKC
    dQ = 4 * a * eta * first[:p, :p] + 4 * a**2 * eta**2 * second[:p, :p]
    dR = 2 * a * eta * first[:p, p:]
    return dQ, dR


def overlaps(p: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A generic point: Q (p, p) and T (k, k) symmetric positive definite, R (p, k)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p + k, 4 * (p + k))) / np.sqrt(4 * (p + k))
    C = W @ W.T
    return C[:p, :p].copy(), C[:p, p:].copy(), C[p:, p:].copy()


def generated_rhs():
    """The function integrate calls per step, bound to the paper model."""
    from numerics.ode.overlaps import rhs_unchecked
    from numerics.runtime.registry import resolve

    resolved = resolve(None)

    def call(Q, R, T, eta):
        return rhs_unchecked(Q, R, T, eta, resolved, True)

    return call


def max_relative_error(p: int, k: int) -> float:
    """Largest |generated - baseline| / max|baseline| over dQ and dR at one point."""
    Q, R, T = overlaps(p, k)
    candidate = generated_rhs()(Q, R, T, ETA)
    reference = baseline_rhs(Q, R, T, ETA)
    return max(float(np.max(np.abs(c - r)) / np.max(np.abs(r))) for c, r in zip(candidate, reference))


def multiplies(p: int, k: int) -> dict[str, int]:
    """Scalar multiplications in matrix products: generated, the minimum for its products, the baseline."""
    from bench.products import multiply_counts
    from derive.model.model import PAPER

    counts = multiply_counts(PAPER, "rhs_terms", p, k)
    return {
        "mults": sum(c.generated for c in counts),
        "min_mults": sum(c.minimum for c in counts),
        "baseline_mults": 3 * (p + k) ** 3,
    }


def run(smoke: bool = False) -> list[dict]:
    """One row per (p, k): time per call of generated vs baseline, their agreement, multiply counts."""
    sizes = SIZES[:1] if smoke else SIZES
    call = generated_rhs()
    rows = []
    for p, k in sizes:
        error = max_relative_error(p, k)
        if error > 1e-12:
            raise AssertionError(f"baseline and generated rhs disagree at p={p}, k={k}: {error:.2e}")
        Q, R, T = overlaps(p, k)
        min_seconds = 0.01 if smoke else 0.2
        cand, base = time_pair(
            lambda Q=Q, R=R, T=T: call(Q, R, T, ETA),
            lambda Q=Q, R=R, T=T: baseline_rhs(Q, R, T, ETA),
            repeats=3 if smoke else 7,
            min_seconds=min_seconds,
        )
        target = 0.5 if p in (8, 1024) else None
        rows.append(row("rhs", f"p={p},k={k}", seconds=cand.best, baseline_seconds=base.best,
                        baseline="block-matrix closed form", target=target,
                        median_ratio=cand.median / base.median, rel_error=error, **multiplies(p, k)))
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
