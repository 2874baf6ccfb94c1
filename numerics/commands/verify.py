"""``wickode verify``: Monte Carlo check of every generated function at random covariances."""

from __future__ import annotations

import argparse

import numpy as np

from . import MODEL_CHOICES, model_by_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify", help="compare generated functions with Monte Carlo averages (errors in standard errors)"
    )
    parser.add_argument("--model", choices=MODEL_CHOICES, nargs="*", default=list(MODEL_CHOICES))
    parser.add_argument("--samples", type=int, default=200_000, help="Gaussian samples per point")
    parser.add_argument("--points", type=int, default=2, help="random covariances per (model, p, k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=5.0, help="fail above this many standard errors")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..montecarlo import QUANTITIES, random_overlaps, z_scores

    rng = np.random.default_rng(args.seed)
    header = f"{'model':6} {'p':>2} {'k':>2} " + " ".join(f"{q:>13}" for q in QUANTITIES)
    print("max |generated - Monte Carlo| in standard errors")
    print(header)
    worst = 0.0
    for name in args.model:
        model = model_by_name(name)
        for p, k in [(1, 1), (2, 1), (3, 2), (4, 2)]:
            for _ in range(args.points):
                Q, R, T = random_overlaps(p, k, rng)
                scores = z_scores(Q, R, T, model=model, n_samples=args.samples, seed=int(rng.integers(2**31)))
                worst = max(worst, *scores.values())
                print(f"{name:6} {p:>2} {k:>2} " + " ".join(f"{scores[q]:>13.2f}" for q in QUANTITIES))
    verdict = "PASS" if worst <= args.threshold else "FAIL"
    print(f"{verdict}: largest deviation {worst:.2f} standard errors (threshold {args.threshold})")
    return 0 if verdict == "PASS" else 1
