"""``wickode derive --latex`` and ``--markdown`` (numerics/cli/derive_cmd.py) print LaTeX that compiles.

Each printed equation of a grid of models (the committed ones, custom polynomial pairs, a
model with a readout, label noise and weight decay) is typeset with KaTeX (tests/tex_engine.py).
``wickode derive --student "x**3" --teacher "x**2" --latex`` used to print the double
superscript ``R R^{\\top}^{\\circ 2}``.
"""

import pytest
from tex_engine import assert_typesets, markdown_formulas

from numerics.cli import main

GRID = {
    "paper": ["--model", "paper"],
    "he2": ["--model", "he2"],
    "he3": ["--model", "he3"],
    "cube_square": ["--student", "x**3", "--teacher", "x**2"],
    "mixed": ["--student", "x**2 + x", "--teacher", "x"],
    "he4": ["--student", "x**4 - 6*x**2 + 3", "--teacher", "x**4 - 6*x**2 + 3"],
    "quartic_he3": ["--student", "x**4", "--teacher", "x**3 - 3*x"],
    "readout_noise_decay": [
        "--student", "x**3", "--teacher", "x**2 - 1", "--student-readout", "1/sqrt(p)",
        "--noise", "1/2", "--weight-decay", "1/10",
    ],
}  # fmt: skip


def _printed(argv: list[str], capsys) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_every_printed_latex_line_typesets(capsys):
    formulas = {}
    for name, flags in GRID.items():
        lines = _printed(["derive", "--latex", *flags], capsys).splitlines()
        assert lines[0].startswith("% model ") and len(lines) == 1 + 5 + 3
        formulas.update({f"{name} line {number}": line for number, line in enumerate(lines[1:], start=2)})
    assert_typesets(formulas)


@pytest.mark.parametrize("name", ["cube_square", "he3"])
def test_the_printed_markdown_typesets(name, capsys):
    formulas = markdown_formulas(_printed(["derive", "--markdown", *GRID[name]], capsys), name)
    assert len(formulas) == 5 + 3
    assert_typesets(formulas)


def test_the_cube_square_pair_prints_grouped_entrywise_powers(capsys):
    printed = _printed(["derive", "--latex", *GRID["cube_square"]], capsys)
    assert r"R^{\top}^{" not in printed
    assert r"16 \left(R R^{\top}\right)^{\circ 2}" in printed  # printed as "16 R R^{\top}^{\circ 2}" before
