"""The kernels section states every checked closed-form kernel of derive.paper.kernel_equations."""

import sympy as sp

from derive.paper.kernel_equations import checked_forms
from derive.paper.sections.kernel_equations import section


def test_section_states_every_form_in_latex():
    forms = checked_forms()
    canonical, markdown = section()
    assert markdown.startswith("## Kernels of erf and relu units")
    for name, (_, expr, _) in forms.items():
        assert f"{name}={sp.srepr(expr)}" in canonical
        assert sp.latex(expr) in markdown
