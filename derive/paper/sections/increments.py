"""The fluctuations section of ``docs/equations.md``: the covariance of one step's increments.

The averages are :func:`derive.quantities.increments.derive_moments`; this module writes
their definitions, the term counts and one example block as Markdown.
"""

from __future__ import annotations

import sympy as sp

from derive.algebra.render import latex
from derive.model.model import HE2, HE3, PAPER
from derive.quantities.increments import (
    MAX_FLUCTUATION_DEGREE,
    MAX_PRINTED_DEGREE,
    MOMENT_NAMES,
    Term,
    derive_moments,
    fluctuation_result_hash,
)
from derive.quantities.network_tables import network_count

__all__ = ["section"]


def _term_latex(term: Term, coefficient: sp.Expr) -> str:
    factors = []
    for subscripts, operand in zip(term.subscripts, term.operands):
        indices = subscripts.replace("z", "")
        text = latex(operand)
        text = text if operand.is_Symbol else rf"\left({text}\right)"
        factors.append(f"{text}_{{{indices}}}")
    summed = sorted(set("".join(term.subscripts)) - set(term.output) - {"z"})
    prefix = r"\sum_{" + ",".join(summed) + "}" if summed else ""
    scalar = latex(coefficient)
    if isinstance(coefficient, sp.Add):  # a sum multiplies the whole product: bracket it
        scalar = rf"\left({scalar}\right)"
    return rf"{scalar}\, {prefix} " + " ".join(factors)


def _signed_lines(pieces: list[str]) -> str:
    """Aligned lines ``a \\ &+ b \\ &- c``: a negative term's sign joins the operator (no ``+ -``)."""
    text = pieces[0]
    for piece in pieces[1:]:
        negative = piece.startswith("-")
        text += " \\\\\n&" + ("- " + piece[1:].lstrip() if negative else "+ " + piece)
    return text


def section() -> tuple[str, str]:
    """The "Fluctuations" section of ``docs/equations.md``: definitions, assembly, term counts, one block."""
    canonical = "|".join(fluctuation_result_hash(model) for model in (PAPER, HE2, HE3))
    counts = {model.name: {name: len(terms) for name, terms in derive_moments(model).items()} for model in (PAPER, HE2)}
    networks = network_count(HE3)
    rows = "\n".join(
        f"| `{name}` | " + " | ".join(str(counts[model][name]) for model in ("paper", "he2")) + f" | {networks[name]} |"
        for name in MOMENT_NAMES
    )
    nn = derive_moments(PAPER)["NN"]
    nn_terms = _signed_lines([_term_latex(term, c) for term, c in sorted(nn.items(), key=lambda i: str(i[0]))])
    markdown = rf"""## Fluctuations: covariance of one step's increments (finite N)

One SGD step changes the overlaps by $Q \to Q + q/N$, $R \to R + r/N$ with ($|x|^2/N \to 1$)
$r_{{jr}} = \eta E_j \nu_r$ and $q_{{jl}} = \eta A_{{jl}} + \eta^2 B_{{jl}}$,
$A_{{jl}} = E_j\lambda_l + E_l\lambda_j$, $B_{{jl}} = E_j E_l$,
$E_j = a\,\sigma'(\lambda_j)(y_0 - f + \sqrt{{\Delta}}\,\xi)$.
Weight decay moves the overlaps deterministically and adds nothing to the covariance.
With the six generated averages (free student indices $j, l, i, h$, teacher indices $q, r$)

$$LL_{{jlih}} = \langle E_j\lambda_l E_i\lambda_h\rangle,\ LN_{{jlir}} = \langle E_j\lambda_l E_i\nu_r\rangle,\
NN_{{jqir}} = \langle E_j\nu_q E_i\nu_r\rangle,$$
$$LE_{{jlih}} = \langle E_j\lambda_l E_iE_h\rangle,\ EN_{{jlir}} = \langle E_jE_lE_i\nu_r\rangle,\
EE_{{jlih}} = \langle E_jE_lE_iE_h\rangle$$

and the drift terms of the ODE ($\langle A\rangle = \mathcal{{D}}_Q$,
$\langle B\rangle = \mathcal{{V}}_Q + \Delta\mathcal{{N}}_Q$,
$\langle r\rangle/\eta = \mathcal{{D}}_R$):

$$\operatorname{{Cov}}(q_{{jl}}, q_{{ih}}) = \eta^2 \left(\langle A_{{jl}}A_{{ih}}\rangle
- \langle A_{{jl}}\rangle\langle A_{{ih}}\rangle\right)
+ \eta^3 \left(\operatorname{{Cov}}(A_{{jl}}, B_{{ih}}) + \operatorname{{Cov}}(B_{{jl}}, A_{{ih}})\right)
+ \eta^4 \operatorname{{Cov}}(B_{{jl}}, B_{{ih}}),$$
$$\langle A_{{jl}}A_{{ih}}\rangle = LL_{{jlih}} + LL_{{jlhi}} + LL_{{ljih}} + LL_{{ljhi}},\quad
\langle A_{{jl}}B_{{ih}}\rangle = LE_{{jlih}} + LE_{{ljih}},\quad \langle B_{{jl}}B_{{ih}}\rangle = EE_{{jlih}},$$
$$\operatorname{{Cov}}(q_{{jl}}, r_{{ir}}) = \eta^2 \left(LN_{{jlir}} + LN_{{ljir}}
- \langle A_{{jl}}\rangle\langle r_{{ir}}\rangle/\eta\right)
+ \eta^3 \left(EN_{{jlir}} - \langle B_{{jl}}\rangle \langle r_{{ir}}\rangle/\eta\right),\quad
\operatorname{{Cov}}(r_{{jq}}, r_{{ir}})
= \eta^2 \left(NN_{{jqir}} - \mathcal{{D}}_{{R,jq}}\mathcal{{D}}_{{R,ir}}\right).$$

Each average is a sum of tensor networks from the multigraph form of Wick's theorem
(`derive/gauss/vertex.py`). For activations of degree at most {MAX_PRINTED_DEGREE} the summed indices
are removed by matrix products, and each term is one product of matrices and vectors over the
free indices (printed as one `einsum`). Above that (up to degree {MAX_FLUCTUATION_DEGREE}) each
factor of the residual $g = y_0 - f$ stays one vertex summed over all $p + k$ units with the
covariance $C$ and the vertex vector $E[\phi_u^{{(d)}}]$ ($\phi = -a\sigma$ on students,
$b\sigma^*$ on teachers), networks are collected up to permutations of the residual
vertices and of equivalent free vertices (`derive/quantities/network_tables.py`), and the generated
module is a table of numbers contracted by `numerics/kernels/network_moments.py`.
Number of printed terms (paper, he2) and of networks (he3):

| average | paper | he2 | he3 (networks) |
|---|---|---|---|
{rows}

For example, $NN$ of the paper model ($\Delta$ = `delta`):

$$\begin{{aligned}}NN_{{jqir}} &= {nn_terms}\end{{aligned}}$$
"""
    return canonical, markdown
