"""``wickode derive`` (numerics/cli/derive_cmd.py): the right-hand sides with a model's Delta and kappa,
the equations of a model, and the check or rewrite of the committed artefacts."""

import pytest

import derive.__main__ as derive_main
from derive.model.model import HE2, PAPER
from numerics.cli import main
from numerics.cli.derive_cmd import equations_text, right_hand_sides


def test_right_hand_sides_carry_the_noise_and_the_weight_decay():
    plain = dict(right_hand_sides(PAPER))
    assert plain[r"\frac{dR}{d\alpha}"] == r"\eta\, \mathcal{D}_R"
    assert plain[r"\frac{dQ}{d\alpha}"] == r"\eta\, \mathcal{D}_Q + \eta^{2} \mathcal{V}_Q"
    assert plain[r"\varepsilon"] == r"\varepsilon_0"
    both = dict(right_hand_sides(PAPER.with_noise("1/10").with_weight_decay("1/100")))
    assert r"\frac{1}{10}\, \mathcal{N}_Q" in both[r"\frac{dQ}{d\alpha}"]
    assert both[r"\frac{dR}{d\alpha}"].endswith(r"- \frac{1}{100}\, \eta R")
    assert both[r"\frac{dQ}{d\alpha}"].endswith(r"- \frac{1}{50}\, \eta Q")
    assert both[r"\varepsilon"] == r"\varepsilon_0 + \frac{1}{20}"
    assert dict(right_hand_sides(PAPER.with_noise(1)))[r"\frac{dQ}{d\alpha}"].endswith(r"\mathcal{N}_Q\right)")


def test_equations_as_latex_lines_and_as_markdown():
    latex = equations_text(None, "paper", markdown=False).splitlines()
    assert latex[0] == f"% model paper: {PAPER.describe()}"
    assert len(latex) == 1 + 5 + 3  # five derived quantities and three right-hand sides
    markdown = equations_text(HE2, "he2", markdown=True)
    assert markdown.startswith("## Model `he2`") and markdown.count("$$") == 2 * 8


@pytest.mark.parametrize("argv, forwarded", [(["derive", "--check"], ["--check"]), (["derive"], [])])
def test_without_a_print_flag_the_committed_artefacts_are_checked_or_written(argv, forwarded, monkeypatch):
    calls = []
    monkeypatch.setattr(derive_main, "main", lambda args: calls.append(args) or 0)
    assert main(argv) == 0
    assert calls == [forwarded]


def test_a_model_without_a_print_flag_is_a_user_error(capsys):
    assert main(["derive", "--model", "he2"]) == 2
    assert "need --latex or --markdown" in capsys.readouterr().err
