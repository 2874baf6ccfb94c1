"""`python -m derive --check`: fresh on the committed tree, stale after a change."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from derive.codegen.artefacts import HEADER_MARK, body_digest, split_header
from derive.generate import stale_artefacts

ROOT = Path(__file__).resolve().parents[3]


def run_check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "derive", "--check", "--root", str(root)],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def copy_tree(tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    for folder in ("derive", "numerics", "docs"):
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_committed_tree_is_fresh():
    result = run_check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_check_fails_after_changing_a_derivation_input(tmp_path):
    root = copy_tree(tmp_path)
    model_file = root / "derive" / "model" / "model.py"
    text = model_file.read_text()
    assert 'PAPER = Model(name="paper")' in text
    changed = text.replace('PAPER = Model(name="paper")', 'PAPER = Model(student_readout=2 / p, name="paper")')
    model_file.write_text(changed)
    result = run_check(root)
    assert result.returncode == 1
    assert "numerics/_generated/paper.py" in result.stderr


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_check_fails_after_changing_the_derivation_itself(tmp_path):
    root = copy_tree(tmp_path)
    quantities = root / "derive" / "quantities" / "ode.py"
    text = quantities.read_text()
    # drop the symmetrisation of drift_Q: same inputs, different symbolic result
    changed = text.replace('expressions["drift_Q"] = half + transpose(half)', 'expressions["drift_Q"] = 2 * half')
    assert changed != text
    quantities.write_text(changed)
    result = run_check(root)
    assert result.returncode == 1
    assert "result hash" in result.stderr


@pytest.fixture(scope="module")
def hand_edited(tmp_path_factory):
    """One in-process check of a copy with a hand edit in each of several artefacts.

    Each artefact is judged on its own, so one check covers all the edits (the
    check regenerates everything in memory: running it once per edit would be slow).
    """
    root = copy_tree(tmp_path_factory.mktemp("hand"))
    generated = root / "numerics" / "_generated"
    edit(generated / "he3.py", "def residual_risk", "def residual_risk_edited")
    # a file no generator writes (e.g. the runtime helpers from before they were hand-written)
    (generated / "_runtime.py").write_text((root / "numerics" / "kernels" / "helpers.py").read_text())
    # an edit that also rewrites the recorded body digest: only the text comparison sees it
    text = (generated / "paper_hessian.py").read_text()
    header, body = split_header(text)
    changed = body.replace("def hessian_terms(Q, R, T):", "def hessian_terms(Q, R, T):  # edited", 1)
    assert changed != body
    header = header.replace(body_digest(body), body_digest(changed))
    (generated / "paper_hessian.py").write_text(header + HEADER_MARK + "\n\n" + changed)
    # a byte that is not UTF-8
    hessian = generated / "he2_hessian.py"
    hessian.write_bytes(hessian.read_bytes().replace(b"# GENERATED", b"# \xe9GENERATED", 1))
    # a formula of the equations document
    doc = root / "docs" / "equations.md"
    formula = next(line for line in doc.read_text().splitlines() if line.startswith("$$\\mathcal{D}_R = "))
    edit(doc, formula, formula.replace("Q R", "Q R^{\\top}", 1))
    problems = stale_artefacts(root)
    return {problem.split(":", 1)[0]: problem for problem in problems}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text and old != new
    path.write_text(text.replace(old, new, 1))


@pytest.mark.slow  # > 5 s: outside `pytest -m "not slow"`
def test_check_fails_after_a_hand_edit_of_generated_code(hand_edited):
    assert "by hand" in hand_edited["numerics/_generated/he3.py"]


def test_check_reports_a_stray_file_among_the_generated_modules(hand_edited):
    assert "stray file" in hand_edited["numerics/_generated/_runtime.py"]


def test_check_compares_the_printed_code_even_when_the_digest_was_rewritten(hand_edited):
    problem = hand_edited["numerics/_generated/paper_hessian.py"]
    assert "printed code differs" in problem and "# edited" in problem


def test_check_reports_a_file_that_is_not_utf8(hand_edited):
    assert "unreadable" in hand_edited["numerics/_generated/he2_hessian.py"]


def test_check_fails_after_a_hand_edit_of_a_formula_in_the_equations_document(hand_edited):
    problem = hand_edited["docs/equations.md"]
    assert "text differs from the regenerated document" in problem and "line " in problem


def test_check_flags_nothing_it_was_not_asked_to(hand_edited):
    assert sorted(hand_edited) == [
        "docs/equations.md",
        "numerics/_generated/_runtime.py",
        "numerics/_generated/he2_hessian.py",
        "numerics/_generated/he3.py",
        "numerics/_generated/paper_hessian.py",
    ]


def test_check_fails_after_a_printer_change(monkeypatch):
    # a printer that drops a transpose in the unbatched branch: the inputs and the symbolic
    # result are the same, so only the printed code tells
    from derive.codegen.module import NumpyPrinter

    original = NumpyPrinter._print_unbatched

    def drop_transpose(self, expr):
        text = original(self, expr)
        return text[:-2] if text is not None and text.endswith(".T") else text

    monkeypatch.setattr(NumpyPrinter, "_print_unbatched", drop_transpose)
    problems = stale_artefacts(ROOT)
    paper = [problem for problem in problems if problem.startswith("numerics/_generated/paper.py")]
    assert paper and "printed code differs (printer changed or hand edit)" in paper[0]
    assert ".T" in paper[0] and "line " in paper[0]
    assert not any("docs/equations.md" in problem for problem in problems)


def test_the_printer_imports_exactly_the_runtime_helpers():
    # the import block of every generated module lists RUNTIME_HELPERS: a helper missing from
    # the runtime would fail the import, one missing from the list would be unusable
    import ast
    import inspect

    from derive.codegen.printer import RUNTIME_HELPERS, runtime_import
    from numerics.kernels import helpers as runtime

    assert list(RUNTIME_HELPERS) == runtime.__all__
    functions = [name for name, value in vars(runtime).items() if inspect.isfunction(value)]
    assert sorted(functions) == sorted(RUNTIME_HELPERS)
    imports = [node for node in ast.parse(runtime_import()).body if isinstance(node, ast.ImportFrom)]
    assert [node.module for node in imports] == [runtime.__name__]
    assert [alias.name for alias in imports[0].names] == list(RUNTIME_HELPERS)


def test_derive_check_covers_the_committed_network_module(tmp_path):
    """The committed He3 tables are fresh; an edited weight is caught even with its digest rewritten."""
    from derive.codegen.increments_module import generate_fluctuation_module
    from derive.generate import fluctuation_module_path, stale_module
    from derive.model.model import HE3
    from derive.quantities.increments import fluctuation_result_hash

    def stale(root):
        return stale_module(fluctuation_module_path(HE3, root), root, HE3.codegen_hash(),
                             lambda: fluctuation_result_hash(HE3), lambda: generate_fluctuation_module(HE3))

    assert stale(ROOT) is None
    copy = tmp_path / "numerics" / "_generated" / "he3_fluctuations.py"
    copy.parent.mkdir(parents=True)
    header, body = split_header(fluctuation_module_path(HE3, ROOT).read_text())
    line = next(line for line in body.splitlines() if line.lstrip().startswith("('") and "), (" in line)
    edited_line = line.replace("((", "((1", 1)  # one network's weight gains a leading digit
    assert edited_line != line
    changed = body.replace(line, edited_line, 1)
    copy.write_text(header.replace(body_digest(body), body_digest(changed)) + HEADER_MARK + "\n\n" + changed)
    problem = stale(tmp_path)
    assert problem is not None and "printed code differs" in problem
