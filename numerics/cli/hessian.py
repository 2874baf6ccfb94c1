"""``wickode hessian``: exact Hessian spectrum at a stationary point, beside the closed form."""

from __future__ import annotations

import argparse

from numerics.cli.common import add_model_arguments, check_seed, model_from_args, model_text


def register(subparsers: argparse._SubParsersAction) -> None:
    from numerics.analyses.stationary_points import POINT_NAMES

    parser = subparsers.add_parser(
        "hessian",
        help="Hessian spectrum (eigenvalues x N, multiplicities) at a stationary point of the paper model",
        description="Exact Hessian spectrum at a stationary point of the paper model, beside its closed form.\n"
        "With another model (--model, --student, ...) the spectrum of that model's risk is computed at the\n"
        "same point (stationary for the paper model, not necessarily for this one) and no closed form is\n"
        "compared.",
        epilog="example:\n  wickode hessian --point zero_error --p 4 --k 2 --N 1000\n"
        "  wickode hessian --point plateau --rank 1",
    )
    parser.add_argument("--point", choices=POINT_NAMES, default="plateau", help="the stationary point")
    parser.add_argument("--p", type=int, default=4, help="student width")
    parser.add_argument("--k", type=int, default=2, help="teacher width")
    parser.add_argument("--N", type=int, default=1000, help="input dimension")
    parser.add_argument("--rank", type=int, default=None, help="plateau only: number of active students")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random teacher and student weights")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from numerics.analyses.closed_forms import predicted_counts, predicted_spectrum
    from numerics.analyses.gradient_hessian import gradient
    from numerics.analyses.spectra import hessian_spectrum
    from numerics.analyses.stationary_points import stationary_point

    model, label = model_from_args(args)
    point = stationary_point(args.point, args.N, args.p, args.k, rank=args.rank, seed=check_seed(args.seed))
    spectrum = hessian_spectrum(point.W, point.W_star, model=model)
    gradient_norm = point.gradient_norm
    if model is not None:
        gradient_norm = float(np.linalg.norm(gradient(point.W, point.W_star, model=model)))
    print(f"model {model_text(model, label)}")
    print(f"{args.point}: p={args.p}, k={args.k}, N={args.N}, |gradient| = {gradient_norm:.2e}, "
          f"rank of span(W, W*) = {spectrum.rank}")
    counts = spectrum.counts()
    if label != "paper":
        # the closed forms (App. 7.2) are the paper model's; noise and weight decay do not change the Hessian
        # of the risk (label stays "paper"), another activation or readout does
        print(f"{'N*eigenvalue':>14} {'multiplicity':>13}")
        for value, multiplicity in zip(spectrum.eigenvalues, spectrum.multiplicities):
            print(f"{value * args.N:>14.6f} {multiplicity:>13d}")
        for sign in ("negative", "null", "positive"):
            print(f"{sign:>9}: {counts[sign]:>10d}")
        print("(closed forms exist for the paper model only: not compared)")
        return 0
    predicted = predicted_spectrum(args.point, args.N, args.p, args.k, rank=args.rank)
    print(f"{'N*eigenvalue':>14} {'multiplicity':>13} | {'closed form':>14} {'multiplicity':>13}")
    rows = max(len(spectrum.eigenvalues), len(predicted))
    for i in range(rows):
        left = (f"{spectrum.eigenvalues[i] * args.N:>14.6f} {spectrum.multiplicities[i]:>13d}"
                if i < len(spectrum.eigenvalues) else " " * 28)
        right = f"{predicted[i][0] * args.N:>14.6f} {predicted[i][1]:>13d}" if i < len(predicted) else ""
        print(f"{left} | {right}")
    expected = predicted_counts(args.point, args.N, args.p, args.k, rank=args.rank)
    for sign in ("negative", "null", "positive"):
        print(f"{sign:>9}: {counts[sign]:>10d}   closed form {expected[sign]:>10d}")
    agree = counts == expected and len(predicted) == len(spectrum.eigenvalues) and bool(
        np.allclose([v for v, _ in predicted], spectrum.eigenvalues, rtol=1e-6, atol=1e-12 / args.N)
    )
    print("AGREE" if agree else "DISAGREE")
    return 0 if agree else 1
