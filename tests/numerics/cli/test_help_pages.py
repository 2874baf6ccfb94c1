"""The help of the ``wickode`` command line (numerics/cli/__init__.py): ``--version``, a description, an example
and the defaults on every sub-command's page, every committed model a ``--model`` choice."""

from importlib.metadata import version

import pytest

import numerics
from derive.model.model import COMMITTED_MODELS, COMMITTED_TUPLE_MODELS
from numerics.cli import build_parser, main
from numerics.cli.common import MODEL_CHOICES


def test_version_is_the_installed_distribution(capsys):
    assert numerics.__version__ == version("wickode")
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"wickode {numerics.__version__}"


def _subcommands():
    parser = build_parser()
    (action,) = [action for action in parser._actions if action.dest == "command"]
    return action.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_page_has_a_description_and_an_example(name):
    page = _subcommands()[name].format_help()
    description = _subcommands()[name].description
    assert description and description.split()[0] in page
    assert "example:\n  wickode " + name in page


@pytest.mark.parametrize("name, flag", [("run", "--N"), ("run", "--q0"), ("run", "--seed"), ("simulate", "--record"),
                                        ("simulate", "--seed"), ("verify", "--seed"), ("hessian", "--seed")])
def test_flags_have_help_and_show_their_default(name, flag):
    parser = _subcommands()[name]
    (action,) = [action for action in parser._actions if flag in action.option_strings]
    assert action.help
    page = " ".join(parser.format_help().split())
    assert f"(default: {action.default})" in page or f"(default {action.default}" in page


def test_every_committed_model_is_a_choice(tmp_path, capsys):
    committed = COMMITTED_MODELS + COMMITTED_TUPLE_MODELS
    assert set(MODEL_CHOICES) == {"paper"} | {model.name for model in committed}
    # the soft committee machine (erf units, committed per-tuple modules) runs from the command line
    assert main(["run", "--model", "scm", "--p", "2", "--k", "2", "--alpha-max", "5", "--out", str(tmp_path)]) == 0
    assert "model scm (sigma(x) = erf(" in capsys.readouterr().out
