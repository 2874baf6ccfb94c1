"""The documentation runs: every ```python block of README.md and docs/*.md, the README's length, docs/api.md."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
NO_TEST = "<!-- no-test -->"  # on the line before a fence: the block is not run (give the reason in the text)
SLOW = "<!-- slow -->"  # on the line before a fence: above about 5 s at the small size; still runs by default
FENCE = re.compile(r"^\s*```python\s*$")  # indented blocks (in list items) too


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """(line of the opening fence, source, slow) of every ```python block not marked ``<!-- no-test -->``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"{path.name}:{start + 1}: unterminated ```python block")
            marker = lines[start - 1].strip() if start > 0 else ""
            if marker != NO_TEST:
                blocks.append((start + 1, textwrap.dedent("\n".join(body)) + "\n", marker == SLOW))
        i += 1
    return blocks


def _cases():
    cases = []
    for path in documents():
        for line, source, slow in python_blocks(path):
            name = f"{path.relative_to(ROOT).as_posix()}:{line}"
            marks = [pytest.mark.slow] if slow else []
            cases.append(pytest.param(source, id=name, marks=marks))
    return cases


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["WICKODE_DOCS_SMALL"] = "1"
    env["MPLBACKEND"] = "Agg"
    return env


def test_every_document_has_blocks_to_run():
    assert python_blocks(ROOT / "README.md"), "the README should show runnable Python"
    assert len(_cases()) >= 10


@pytest.mark.parametrize("source", _cases())
def test_python_block_runs(source, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", source], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    message = f"block failed (exit {result.returncode}):\n{source}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, message


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines, at most {README_MAX_LINES}"


def test_readme_keeps_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && wickode run" in text
    assert 'pip install -e ".[test]" && python -m pytest' in text


def test_local_links_resolve():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    for path in documents():
        for target in link.findall(path.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link {target}"


def _api(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "docs" / "api.py"), *args], cwd=ROOT, env=_env(), capture_output=True, text=True
    )


def test_api_reference_is_up_to_date():
    result = _api("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_check_fails_on_an_edited_copy(tmp_path):
    copy = tmp_path / "api.md"
    shutil.copy(ROOT / "docs" / "api.md", copy)
    assert _api("--check", "--output", str(copy)).returncode == 0
    copy.write_text(copy.read_text(encoding="utf-8") + "\nan edit\n", encoding="utf-8")
    result = _api("--check", "--output", str(copy))
    assert result.returncode == 1
    assert "api.md" in result.stdout + result.stderr
