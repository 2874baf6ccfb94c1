"""``wickode run``: integrate the overlap ODEs from Eq. 8 initial conditions, summarise, plot."""

from __future__ import annotations

import argparse
import time

from numerics.cli.common import (
    CommandError,
    add_model_arguments,
    add_output_arguments,
    check_seed,
    csv_metadata,
    model_from_args,
    model_text,
    output_directory,
    output_paths,
    run_digest,
    write_checked,
)
from numerics.core.memory import available_memory

DESCRIPTION = """\
Integrate the overlap ODEs from the Eq. 8 start (Q(0) = q0 I, R(0) of variance q0/N),
print the plateau, escape and final risk, and write a CSV (headed by '#' lines naming
the model, the parameters and the version) and a PNG. The file names carry a digest of
the model and of every parameter that changes the result, so different runs never share
a file; an existing file is kept unless --force is given."""

EXAMPLE = """\
example:
  wickode run --p 3 --k 2 --eta 0.5 --out runs/
  wickode run --student "x**2 + x" --teacher "x**2" --gradient-flow"""

#: Bytes per recorded float and copies of the recorded overlaps alive at once
#: (the solver's output, the unpacked Q and R, the arrays the CSV and plot are made from).
BYTES_PER_FLOAT = 8
RECORDED_COPIES = 3
#: Points recorded by the simulation of ``--simulate``.
SIMULATION_RECORD = 120


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="integrate the ODEs from Eq. 8 starts; write a CSV and a PNG",
                                   description=DESCRIPTION, epilog=EXAMPLE)
    parser.add_argument("--p", type=int, default=4, help="student width (default 4)")
    parser.add_argument("--k", type=int, default=2, help="teacher width (default 2)")
    parser.add_argument("--eta", type=float, default=0.5, help="learning rate (default 0.5)")
    parser.add_argument("--alpha-max", type=float, default=200.0, help="final time alpha (default 200)")
    parser.add_argument("--N", type=float, default=10000.0, help="input dimension setting Var R0 = q0/N")
    parser.add_argument("--q0", type=float, default=1.0, help="initial student norm Q(0) = q0 I")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initial overlaps R(0)")
    parser.add_argument("--n-points", type=int, default=400, metavar="M",
                        help="number of recorded (log-spaced) points of the trajectory")
    parser.add_argument("--gradient-flow", action="store_true", help="drop the eta**2 term")
    parser.add_argument("--batch-size", type=int, default=1, metavar="B",
                        help="mini-batch size: the eta**2 term is divided by B (default 1)")
    parser.add_argument("--simulate", type=int, default=None, metavar="N",
                        help="also simulate SGD at input dimension N; the ODE starts from its measured overlaps")
    add_output_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from numerics import initial_conditions
    from numerics.figures.plotting import plot_trajectory, save_trajectory
    from numerics.ode.integrate import integrate

    model, label = model_from_args(args)
    for flag, value in (("--batch-size", args.batch_size), ("--n-points", args.n_points),
                        ("--simulate", 1 if args.simulate is None else args.simulate)):
        if value < 1:
            raise CommandError(f"{flag} must be a positive integer, got {value}")
    check_seed(args.seed)
    if args.simulate is not None:
        check_memory(args.p, args.k, SIMULATION_RECORD, flag=None)
    else:
        check_memory(args.p, args.k, args.n_points)
    output_directory(args.out)
    parameters = run_parameters(args)
    stem = f"run_{label}_p{args.p}_k{args.k}_eta{args.eta:g}_{run_digest(model, parameters)}"
    csv_path, png_path, _ = output_paths(args.out, stem, (".csv", ".png", ".npz"), force=args.force)
    start = time.perf_counter()
    simulation = None
    if args.simulate is not None:
        from numerics.simulators.weights import compare_ode_simulation, simulate

        simulation = simulate(N=args.simulate, p=args.p, k=args.k, eta=args.eta, alpha_max=args.alpha_max,
                              model=model, q0=args.q0, seed=args.seed, record=SIMULATION_RECORD,
                              batch_size=args.batch_size)
        result = compare_ode_simulation(simulation, second_order=not args.gradient_flow).ode
        args.N = float(args.simulate)
    else:
        Q0, R0, T = initial_conditions(args.p, args.k, N=args.N, q0=args.q0, seed=args.seed)
        result = integrate(
            Q0, R0, T, eta=args.eta, alpha_max=args.alpha_max, model=model, second_order=not args.gradient_flow,
            batch_size=args.batch_size, n_points=args.n_points,
        )
    elapsed = time.perf_counter() - start
    summary = bounded_plateau_summary(result, model, args.p)
    written: list = []
    metadata = csv_metadata("run", model, label, parameters)
    write_checked(lambda path: written.extend(save_trajectory(result, path, metadata)), csv_path)
    title = f"{label}: p={args.p}, k={args.k}, eta={args.eta:g}, N={args.N:g}"
    if args.batch_size != 1:
        title += f", B={args.batch_size}"
    # closed once saved: a figure left open per call piles up when main() runs in one process
    write_checked(lambda path: plt.close(plot_trajectory(result, path, simulation=simulation, title=title)), png_path)
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


def run_parameters(args: argparse.Namespace) -> dict:
    """Every parameter of ``args`` that changes the result of ``wickode run`` (digested into the file names)."""
    parameters = {"p": args.p, "k": args.k, "eta": args.eta, "alpha_max": args.alpha_max, "N": args.N,
                  "q0": args.q0, "seed": args.seed, "gradient_flow": args.gradient_flow,
                  "batch_size": args.batch_size}
    if args.simulate is not None:
        parameters["simulate"] = args.simulate
    else:
        parameters["n_points"] = args.n_points
    return parameters




def check_memory(p: int, k: int, n_points: int, flag: str | None = "--n-points") -> None:
    """Refuse a run whose recorded overlaps would not fit in memory, before integrating.

    The trajectory keeps ``n_points`` snapshots of ``Q`` (p x p) and ``R``
    (p x k); at ``--p 1000`` the default 400 points need about 10 GB. ``flag``
    sets the number of points (``None``: fixed, only ``--p`` can be lowered).

    Raises
    ------
    CommandError
        Saying how much memory the run needs and which flag to lower.
    """
    needed = RECORDED_COPIES * BYTES_PER_FLOAT * n_points * (p * p + p * k)
    budget = available_memory()
    if budget is None or needed <= budget:
        return
    fitting = budget * n_points // needed
    advice = (f"lower {flag} (at most about {fitting} points fit) or --p" if flag and fitting >= 2
              else "lower --p")
    raise CommandError(
        f"--p {p} with {n_points} recorded points needs about {needed / 2**30:.1f} GiB of memory for the "
        f"trajectory, {budget / 2**30:.1f} GiB available: {advice}"
    )


def bounded_plateau_summary(result, model, p: int):
    """The plateau summary of ``result``, or one saying why it was not computed when it would not fit in memory.

    Locating the plateau solves for the ``p (p + 1) / 2`` entries of ``Q`` with
    a dense Jacobian: at ``--p 1000`` that is 500,500 squared floats (2 TiB).
    """
    from numerics.analyses.summary import ESCAPE_THRESHOLD, PlateauSummary, plateau_summary

    unknowns = p * (p + 1) // 2
    needed = 2 * BYTES_PER_FLOAT * unknowns**2
    budget = available_memory()
    if budget is not None and needed > budget:
        reason = (f"not computed (locating it at p = {p} needs about {needed / 2**30:.3g} GiB of memory, "
                  f"{budget / 2**30:.1f} GiB available)")
        return PlateauSummary(float("nan"), float("nan"), float(result.risk[-1]), ESCAPE_THRESHOLD, no_plateau=reason)
    return plateau_summary(result, model=model)
