"""``wickode verify``: Monte Carlo check of every generated function at random covariances."""

from __future__ import annotations

import argparse

import numpy as np

from numerics.cli.common import (
    DEFAULT_VERIFY_MODELS,
    CommandError,
    add_model_arguments,
    build_model,
    check_positive_finite,
    check_seed,
    model_overrides,
)

DESCRIPTION = """\
Check every generated function (risk, drift, diffusion, noise) against Monte Carlo averages
at random overlaps, for p, k in (1, 1), (2, 1), (3, 2), (4, 2): the table gives the largest
deviation in standard errors; exit code 1 when one exceeds --threshold."""

EXAMPLE = """\
example:
  wickode verify --model he2 --samples 50000
  wickode verify --student "x**3" --teacher "x**2 - 1"
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify", help="compare generated functions with Monte Carlo averages (errors in standard errors)",
        description=DESCRIPTION, epilog=EXAMPLE,
    )
    parser.add_argument("--samples", type=int, default=200_000, help="Gaussian samples per point (>= 2)")
    parser.add_argument("--points", type=int, default=2, help="random covariances per (model, p, k) (>= 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random overlaps and samples (>= 0)")
    parser.add_argument("--threshold", type=float, default=5.0, help="fail above this many standard errors")
    add_model_arguments(parser, several=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from numerics.analyses.montecarlo import QUANTITIES, random_overlaps, z_scores

    # a standard error needs two samples; zero points would report PASS having checked nothing
    if args.samples < 2:
        raise CommandError(f"--samples must be at least 2 (a standard error needs two samples), got {args.samples}")
    if args.points < 1:
        raise CommandError(f"--points must be at least 1, got {args.points}")
    # inf would pass every deviation, nan none
    check_positive_finite(args.threshold, "--threshold")
    check_seed(args.seed)
    overrides = model_overrides(args)
    names = args.model if args.model else (["paper"] if overrides else list(DEFAULT_VERIFY_MODELS))
    models = [build_model(name, overrides) for name in names]
    rng = np.random.default_rng(args.seed)
    header = f"{'model':6} {'p':>2} {'k':>2} " + " ".join(f"{q:>13}" for q in QUANTITIES)
    for model, label in models:
        if overrides:
            print(f"{label}: {model.describe()}")
    print("max |generated - Monte Carlo| in standard errors")
    print(header)
    worst = 0.0
    checked = 0
    for model, name in models:
        for p, k in [(1, 1), (2, 1), (3, 2), (4, 2)]:
            for _ in range(args.points):
                Q, R, T = random_overlaps(p, k, rng)
                scores = z_scores(Q, R, T, model=model, n_samples=args.samples, seed=int(rng.integers(2**31)))
                worst = max(worst, *scores.values())
                checked += 1
                print(f"{name:6} {p:>2} {k:>2} " + " ".join(f"{scores[q]:>13.2f}" for q in QUANTITIES))
    verdict = "PASS" if checked and worst <= args.threshold else "FAIL"
    print(f"{verdict}: largest deviation {worst:.2f} standard errors (threshold {args.threshold})")
    return 0 if verdict == "PASS" else 1
