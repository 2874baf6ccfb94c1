"""``wickode simulate``: finite-N one-pass SGD, compared with the ODE started from the same overlaps."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

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

DESCRIPTION = """\
Simulate one-pass SGD of the student network at input dimension N and compare every
replica with the ODE started from its own measured overlaps. Writes a CSV (headed by '#'
lines naming the model, the parameters and the version) and a PNG; the file names carry
a digest of the model and of every parameter that changes the result, and an existing
file is kept unless --force is given."""

EXAMPLE = """\
example:
  wickode simulate --N 2000 --p 4 --k 2 --eta 0.5 --replicas 8 --out runs/
  wickode simulate --model he3 --noise 0.1 --N 500"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="simulate one-pass SGD at finite N; write a CSV and a PNG overlaid on the ODE",
        description=DESCRIPTION, epilog=EXAMPLE,
    )
    parser.add_argument("--N", type=int, default=2000, help="input dimension (default 2000)")
    parser.add_argument("--p", type=int, default=4, help="student width (default 4)")
    parser.add_argument("--k", type=int, default=2, help="teacher width (default 2)")
    parser.add_argument("--eta", type=float, default=0.5, help="learning rate (default 0.5)")
    parser.add_argument("--alpha-max", type=float, default=60.0, help="final time alpha (default 60)")
    parser.add_argument("--replicas", type=int, default=1, help="independent runs simulated together (default 1)")
    parser.add_argument("--q0", type=float, default=1.0, help="initial student norm Q(0) = q0 I")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights and of the samples")
    parser.add_argument("--record", type=int, default=120, help="number of recorded (log-spaced) points")
    parser.add_argument("--batch-size", type=int, default=1, metavar="B",
                        help="mini-batch size: each step averages B fresh samples (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_output_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt
    import numpy as np

    from numerics.figures.plotting import plot_trajectory
    from numerics.simulators.weights import compare_ode_simulation, simulate

    model, label = model_from_args(args)
    for flag, value in (("--replicas", args.replicas), ("--record", args.record), ("--batch-size", args.batch_size)):
        if value < 1:
            raise CommandError(f"{flag} must be a positive integer, got {value}")
    check_seed(args.seed)
    output_directory(args.out)
    parameters = {"N": args.N, "p": args.p, "k": args.k, "eta": args.eta, "alpha_max": args.alpha_max,
                  "replicas": args.replicas, "q0": args.q0, "seed": args.seed, "record": args.record,
                  "batch_size": args.batch_size}
    stem = f"simulate_{label}_N{args.N}_p{args.p}_k{args.k}_eta{args.eta:g}_{run_digest(model, parameters)}"
    csv_path, png_path = output_paths(args.out, stem, (".csv", ".png"), force=args.force)
    # IntegrationError and SimulationError (a diverging run) are reported by the caller as user errors
    sim = simulate(
        N=args.N,
        p=args.p,
        k=args.k,
        eta=args.eta,
        alpha_max=args.alpha_max,
        model=model,
        q0=args.q0,
        seed=args.seed,
        replicas=args.replicas,
        record=args.record,
        progress=not args.no_progress,
        batch_size=args.batch_size,
    )
    # every replica against the ODE from its own measured start (one batched integration)
    comparison = compare_ode_simulation(sim)
    metadata = csv_metadata("simulate", model, label, parameters)
    write_checked(lambda path: write_simulation_csv(sim, comparison.ode, path, metadata), csv_path)
    title = f"{label}: N={args.N}, p={args.p}, k={args.k}, eta={args.eta:g}, replicas={args.replicas}"
    if args.batch_size > 1:
        title += f", B={args.batch_size}"
    if args.replicas > 1:
        # markers: the replica mean of SGD; lines: the replica mean of the ODEs, each from its replica's start
        title += " (means over replicas)"
    write_checked(
        lambda path: plt.close(plot_trajectory(_replica_mean(comparison.ode), path, simulation=sim,
                                               title=title + " (lines ODE, markers SGD)")),
        png_path,
    )
    steps = sim.nfev * args.replicas
    seconds = sim.extra["seconds"]
    print(f"model {model_text(model, label)}")
    print(f"N = {args.N}, p = {args.p}, k = {args.k}, eta = {args.eta:g}, replicas = {args.replicas}")
    print(f"simulated {sim.nfev} steps (alpha = {sim.alpha[-1]:g}) x {args.replicas} replicas in {seconds:.2f} s "
          f"({1e6 * seconds / steps:.1f} us per step and replica)")
    risk_final = sim.risk[..., -1]
    print(f"initial risk        {float(sim.risk[..., 0].mean()):.6g}")
    print(f"final risk          {float(risk_final.mean()):.4g} (simulation), "
          f"{float(comparison.ode.risk[..., -1].mean()):.4g} (ODE from the measured start)")
    if args.replicas > 1:
        print("each replica against the ODE from its own measured start: mean (worst) over replicas")
    distances = [("risk", comparison.risk_distance), ("Q", comparison.Q_distance), ("R", comparison.R_distance)]
    for name, distance in distances:
        worst = f" ({float(np.max(distance)):.4g})" if args.replicas > 1 else ""
        print(f"max_alpha |{name}_sim - {name}_ode|  {float(np.mean(distance)):.4g}{worst}")
    print(f"wrote {csv_path} and {png_path}")
    return 0


def _replica_mean(result):
    """``result`` averaged over its replica axis (itself when it has none)."""
    from dataclasses import replace

    import numpy as np

    if np.ndim(result.Q) != 4:
        return result
    T = result.T.mean(0) if np.ndim(result.T) == 3 else result.T
    return replace(result, Q=result.Q.mean(0), R=result.R.mean(0), risk=result.risk.mean(0), T=T)


def write_simulation_csv(sim, ode, path: Path, metadata: Sequence[str] = ()) -> None:
    """Columns: replica, alpha, Q (upper triangle), R, risk of the simulation, then risk of the ODE.

    ``metadata`` lines (model, parameters, version) head the file after ``#``.
    """
    import numpy as np

    from numerics.figures.plotting import csv_header

    p, k = sim.Q.shape[-1], sim.R.shape[-1]
    Q, R, risk, risk_ode = (np.asarray(a) for a in (sim.Q, sim.R, sim.risk, ode.risk))
    if Q.ndim == 3:
        Q, R, risk, risk_ode = Q[None], R[None], risk[None], risk_ode[None]
    iu = np.triu_indices(p)
    names = ["replica", "alpha"] + [f"Q_{j + 1}_{l + 1}" for j, l in zip(*iu)]
    names += [f"R_{j + 1}_{r + 1}" for j in range(p) for r in range(k)] + ["risk", "risk_ode"]
    rows = []
    for b in range(Q.shape[0]):
        n = sim.alpha.size
        rows.append(
            np.column_stack(
                [np.full(n, b), sim.alpha, Q[b][:, iu[0], iu[1]], R[b].reshape(n, -1), risk[b], risk_ode[b]]
            )
        )
    np.savetxt(path, np.vstack(rows), delimiter=",", header=csv_header(names, metadata), comments="")
