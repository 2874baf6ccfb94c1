"""``wickode derive``: regenerate (or ``--check``) the committed artefacts, or print one model's equations.

``wickode derive [--check]`` is ``python -m derive [--check]``. With
``--latex`` or ``--markdown`` nothing is written: the derived equations of the
model given by ``--model`` and the model flags are printed (the index-free
drift, diffusion, noise and risk, and the right-hand sides with the model's
``eta**2``, ``Delta`` and ``kappa`` terms).
"""

from __future__ import annotations

import argparse
from typing import Any

from numerics.cli.common import CommandError, add_model_arguments, model_from_args, model_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "derive",
        help="regenerate generated modules and docs (or --check them); --latex/--markdown print one model's equations",
        description="Without a flag: regenerate every committed generated module and document (same as\n"
        "`python -m derive`); --check reports the stale ones instead. --latex/--markdown print the derived\n"
        "equations of one model (drift, diffusion, noise, risk, right-hand sides) and write nothing.",
        epilog="example:\n  wickode derive --check\n  wickode derive --student \"x**3\" --teacher \"x**2\" --latex",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 naming stale files instead of writing")
    mode.add_argument("--latex", action="store_true", help="print the model's derived equations as LaTeX")
    mode.add_argument("--markdown", action="store_true", help="print them as Markdown ($$ ... $$ blocks)")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.latex or args.markdown:
        model, label = model_from_args(args)
        print(equations_text(model, label, markdown=args.markdown))
        return 0
    if args.model != "paper" or model_overrides(args):
        raise CommandError("--model and the model flags need --latex or --markdown (derive alone rewrites the "
                           "committed artefacts, which are fixed by derive/model/model.py)")
    from derive.__main__ import main

    return main(["--check"] if args.check else [])


def right_hand_sides(model: Any) -> list[tuple[str, str]]:
    """``(left, right)`` LaTeX of dR/dalpha, dQ/dalpha and the risk with the model's Delta and kappa."""
    import sympy as sp

    delta, kappa = model.noise_variance, model.weight_decay  # exact sympy numbers
    eta = r"\eta"
    diffusion = r"\mathcal{V}_Q"
    if delta != 0:
        factor = "" if delta == 1 else sp.latex(delta) + r"\, "
        diffusion = rf"\left(\mathcal{{V}}_Q + {factor}\mathcal{{N}}_Q\right)"
    dR = rf"{eta}\, \mathcal{{D}}_R"
    dQ = rf"{eta}\, \mathcal{{D}}_Q + {eta}^{{2}} {diffusion}"
    if kappa != 0:
        dR += rf" - {_coefficient(kappa)}{eta} R"
        dQ += rf" - {_coefficient(2 * kappa)}{eta} Q"
    risk = r"\varepsilon_0" + ("" if delta == 0 else rf" + {sp.latex(delta / 2)}")
    return [(r"\frac{dR}{d\alpha}", dR), (r"\frac{dQ}{d\alpha}", dQ), (r"\varepsilon", risk)]


def _coefficient(value: Any) -> str:
    import sympy as sp

    return "" if value == 1 else sp.latex(value) + r"\, "


def equations_text(model: Any, label: str, *, markdown: bool) -> str:
    """The derived equations of ``model`` (``None``: the paper's), as LaTeX lines or a Markdown section.

    The index-free quantities are those of ``docs/equations.md`` (the same
    derivation and printer); the right-hand sides show the learning-rate,
    label-noise and weight-decay terms with this model's values.
    """
    from derive.algebra.render import latex
    from derive.model.model import PAPER
    from derive.paper.documents import TITLES
    from derive.quantities.ode import QUANTITY_NAMES, derive_quantities

    if model is None:
        model = PAPER
    derived = derive_quantities(model).as_dict()
    equations = [(TITLES[name], latex(derived[name])) for name in QUANTITY_NAMES]
    equations += right_hand_sides(model)
    if markdown:
        lines = [f"## Model `{label}`", "", model.describe(), ""]
        for left, right in equations:
            lines += [f"$${left} = {right}$$", ""]
        return "\n".join(lines).rstrip() + "\n"
    lines = [f"% model {label}: {model.describe()}"]
    lines += [f"{left} = {right}" for left, right in equations]
    return "\n".join(lines)
