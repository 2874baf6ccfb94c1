"""The kernels section of ``docs/equations.md``: the closed-form kernels of erf and relu units.

The forms, checked against the engine, are :func:`derive.paper.kernel_equations.checked_forms`;
this module writes them as Markdown.
"""

from __future__ import annotations

import sympy as sp

from derive.paper.kernel_equations import checked_forms

__all__ = ["section"]


_LATEX_NAMES = {
    "I2": "I_2",
    "J2": "J_2",
    "I3": "I_3",
    "I4": "I_4",
    "K_relu": r"K_{\mathrm{relu}}",
    "K_theta": r"K_{\theta}",
    "K_drift": r"K_{\mathrm{drift}}",
}


def section() -> tuple[str, str]:
    """``(canonical, markdown)`` of the kernels section of docs/equations.md."""
    forms = checked_forms()
    canonical = "|".join(f"{name}={sp.srepr(expr)}" for name, (_, expr, _) in forms.items())
    lines = [
        "## Kernels of erf and relu units",
        "",
        "Non-polynomial models (`derive/gauss/kernels.py`, `derive/codegen/tuples.py`) write every average as a sum over",  # noqa: E501 - one line of the document
        "index tuples of kernels of the covariance block `c` of the units involved (slots 0..3, repeated",
        "indices give singular blocks). With `sigma(x) = erf(x/sqrt(2))` (any `erf(c x)` is the same",
        "function of the input `sqrt(2) c x`: the block is rescaled by `2 c**2`) the classic integrals are",
        "",
    ]
    for name, (_, expr, title) in forms.items():
        if name == "K_relu":
            lines += [
                "and for `relu(x) = max(x, 0)`, `theta = relu'` (arc-cosine kernels; the first-order terms and",
                "the risk need only these):",
                "",
            ]
        lines += [f"$${_LATEX_NAMES[name]} = {title} = {sp.latex(expr)}$$", ""]
    lines += [
        "Each line is checked against the engine's derivation (Wick contraction of the polynomial slots,",
        "Gaussian tilting of the erf derivatives) at random blocks when this document is built.",
        "",
    ]
    return canonical, "\n".join(lines)
