"""`python -m derive --check`: fresh on the committed tree, stale after a change."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def test_committed_tree_is_fresh():
    result = run_check(ROOT)
    assert result.returncode == 0, result.stderr


def test_check_fails_after_changing_a_derivation_input(tmp_path):
    root = copy_tree(tmp_path)
    model_file = root / "derive" / "model.py"
    text = model_file.read_text()
    assert 'PAPER = Model(name="paper")' in text
    changed = text.replace('PAPER = Model(name="paper")', 'PAPER = Model(student_readout=2 / p, name="paper")')
    model_file.write_text(changed)
    result = run_check(root)
    assert result.returncode == 1
    assert "numerics/_generated/paper.py" in result.stderr


def test_check_fails_after_changing_the_derivation_itself(tmp_path):
    root = copy_tree(tmp_path)
    quantities = root / "derive" / "quantities.py"
    text = quantities.read_text()
    # drop the symmetrisation of drift_Q: same inputs, different symbolic result
    changed = text.replace('expressions["drift_Q"] = half + transpose(half)', 'expressions["drift_Q"] = 2 * half')
    assert changed != text
    quantities.write_text(changed)
    result = run_check(root)
    assert result.returncode == 1
    assert "result hash" in result.stderr


def test_check_fails_after_a_hand_edit_of_generated_code(tmp_path):
    root = copy_tree(tmp_path)
    generated = root / "numerics" / "_generated" / "he3.py"
    generated.write_text(generated.read_text().replace("def residual_risk", "def residual_risk_edited"))
    result = run_check(root)
    assert result.returncode == 1
    assert "he3.py" in result.stderr and "by hand" in result.stderr


def test_check_fails_after_a_hand_edit_of_the_shared_runtime(tmp_path):
    root = copy_tree(tmp_path)
    runtime = root / "numerics" / "_generated" / "_runtime.py"
    runtime.write_text(runtime.read_text().replace("_SYM_BLOCKS = 4", "_SYM_BLOCKS = 8"))
    result = run_check(root)
    assert result.returncode == 1
    assert "_runtime.py" in result.stderr


def test_generated_modules_share_one_runtime():
    # the helpers live once, in _runtime.py; every generated module imports them from there
    from numerics._generated import _runtime, he3, paper, paper_hessian

    for module in (paper, he3, paper_hessian):
        assert module._sym is _runtime._sym and module._fill is _runtime._fill
        assert "def _sym(" not in Path(module.__file__).read_text()
