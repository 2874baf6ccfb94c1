"""``wickode run``: integrate the overlap ODEs from Eq. 8 initial conditions, summarise, plot."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from numerics.cli.common import (
    CommandError,
    add_model_arguments,
    model_from_args,
    model_text,
    output_directory,
    write_checked,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="integrate the ODEs from Eq. 8 starts; write a CSV and a PNG")
    parser.add_argument("--p", type=int, default=4, help="student width (default 4)")
    parser.add_argument("--k", type=int, default=2, help="teacher width (default 2)")
    parser.add_argument("--eta", type=float, default=0.5, help="learning rate (default 0.5)")
    parser.add_argument("--alpha-max", type=float, default=200.0, help="final time alpha (default 200)")
    parser.add_argument("--N", type=float, default=10000.0, help="input dimension setting Var R0 = q0/N")
    parser.add_argument("--q0", type=float, default=1.0, help="initial student norm Q(0) = q0 I")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gradient-flow", action="store_true", help="drop the eta**2 term")
    parser.add_argument("--batch-size", type=int, default=1, metavar="B",
                        help="mini-batch size: the eta**2 term is divided by B (default 1)")
    parser.add_argument("--simulate", type=int, default=None, metavar="N",
                        help="also simulate SGD at input dimension N; the ODE starts from its measured overlaps")
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory (default: here)")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from numerics import initial_conditions
    from numerics.analyses.summary import plateau_summary
    from numerics.figures.plotting import plot_trajectory, save_trajectory
    from numerics.ode.integrate import integrate

    model, label = model_from_args(args)
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be a positive integer, got {args.batch_size}")
    output_directory(args.out)
    start = time.perf_counter()
    simulation = None
    if args.simulate is not None:
        from numerics.simulators.weights import compare_ode_simulation, simulate

        simulation = simulate(N=args.simulate, p=args.p, k=args.k, eta=args.eta, alpha_max=args.alpha_max,
                              model=model, q0=args.q0, seed=args.seed, record=120, batch_size=args.batch_size)
        result = compare_ode_simulation(simulation, second_order=not args.gradient_flow).ode
        args.N = float(args.simulate)
    else:
        Q0, R0, T = initial_conditions(args.p, args.k, N=args.N, q0=args.q0, seed=args.seed)
        result = integrate(
            Q0, R0, T, eta=args.eta, alpha_max=args.alpha_max, model=model, second_order=not args.gradient_flow,
            batch_size=args.batch_size,
        )
    elapsed = time.perf_counter() - start
    summary = plateau_summary(result, model=model)
    stem = f"run_{label}_p{args.p}_k{args.k}_eta{args.eta:g}"
    csv_path, png_path = args.out / f"{stem}.csv", args.out / f"{stem}.png"
    written: list = []
    write_checked(lambda path: written.extend(save_trajectory(result, path)), csv_path)
    title = f"{label}: p={args.p}, k={args.k}, eta={args.eta:g}, N={args.N:g}"
    if args.batch_size != 1:
        title += f", B={args.batch_size}"
    write_checked(lambda path: plot_trajectory(result, path, simulation=simulation, title=title), png_path)
    print(f"model {model_text(model, label)}")
    print(f"p = {args.p}, k = {args.k}, eta = {args.eta:g}, Var R0 = q0/N = {args.q0 / args.N:.3g}")
    print(f"integrated to alpha = {result.alpha[-1]:g} in {elapsed:.2f} s ({result.nfev} RHS evaluations)")
    print(f"initial risk        {result.risk[0]:.6g}")
    if summary.no_plateau is not None:
        print(f"plateau             {summary.no_plateau}")
    else:
        fraction = f"{summary.threshold:g} of the plateau risk"
        print(f"plateau risk        {summary.plateau_risk:.6g} (the run's fixed point at R = 0)")
        if summary.escaped:
            print(f"plateau left at     alpha ~ {summary.escape_alpha:.4g} (risk below {fraction})")
        else:
            print(f"plateau left at     not within alpha <= {result.alpha[-1]:g} (risk never below {fraction})")
    print(f"final risk          {summary.final_risk:.3g}")
    if simulation is not None:
        gap = float(abs(simulation.risk - result.risk).max())
        print(f"simulation at N = {args.simulate}: final risk {simulation.risk[-1]:.3g}, "
              f"max_alpha |risk_sim - risk_ode| = {gap:.3g} (ODE started from the measured overlaps)")
    if len(written) > 1:
        print(f"p = {args.p}: the CSV holds mean/min/max columns; every overlap is in {written[1]}")
    print(f"wrote {', '.join(str(path) for path in written)} and {png_path}")
    return 0
