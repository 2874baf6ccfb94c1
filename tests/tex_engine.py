"""Typesetting LaTeX with KaTeX, a real TeX parser, to check that formulas compile.

KaTeX comes from the npm registry: the first test that needs it installs it with
``npm install --prefix .ci/node katex@0.16`` when ``npm`` is on the machine (``.ci/node/`` is
not committed; ``.ci/run`` runs the same command before the tests), so the README's test
command is all a clone needs. :func:`typeset_errors` runs ``tests/katex_check.js`` with Node.js
on a batch of formulas in KaTeX's strict mode (a double superscript, an unknown macro or
an unbalanced brace is an error). Without Node.js or KaTeX the calling test fails, naming the
install command; setting ``WICKODE_SKIP_TEX=1`` turns that into a skip on a developer's
machine, never under CI (``CI`` set).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where ``.ci/run`` installs KaTeX (``npm install --prefix .ci/node katex@0.16``).
NODE_MODULES = ROOT / ".ci" / "node" / "node_modules"
SCRIPT = Path(__file__).resolve().parent / "katex_check.js"
INSTALL = "npm install --prefix .ci/node katex@0.16"
SKIP_VARIABLE = "WICKODE_SKIP_TEX"

# $$ ... $$ blocks (possibly over several lines), then $ ... $ on one line outside code spans
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\$\\])\$([^$\n]+?)\$(?!\$)")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def _unavailable(reason: str) -> None:
    message = f"{reason}: install it with `{INSTALL}` (as .ci/run does)"
    if os.environ.get(SKIP_VARIABLE) == "1" and not os.environ.get("CI"):
        pytest.skip(f"{message}; skipped because {SKIP_VARIABLE}=1")
    pytest.fail(f"{message}, or set {SKIP_VARIABLE}=1 to skip the typesetting tests on this machine", pytrace=False)


def _install_katex() -> None:
    # once per clone: the same command as .ci/run, from the npm registry
    npm = shutil.which("npm")
    if npm is None:
        return
    subprocess.run([npm, "install", "--prefix", str(ROOT / ".ci" / "node"), "--no-audit", "--no-fund", "katex@0.16"],
                   capture_output=True, text=True, timeout=600, check=False)


def typeset_errors(formulas: list[str]) -> list[str | None]:
    """KaTeX's error message for each formula (display mode, strict), ``None`` where it typesets.

    Parameters
    ----------
    formulas : list of str, length n
        LaTeX math-mode sources, without ``$`` delimiters.

    Returns
    -------
    list of (str or None), length n
    """
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js (`node`) is not on PATH, so KaTeX cannot typeset the formulas")
    if not (NODE_MODULES / "katex" / "package.json").is_file():
        _install_katex()
    if not (NODE_MODULES / "katex" / "package.json").is_file():
        _unavailable(f"KaTeX is not installed under {NODE_MODULES.relative_to(ROOT)}")
    environment = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    completed = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(formulas), capture_output=True, text=True, env=environment, timeout=300
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{SCRIPT.name} failed ({completed.returncode}): {completed.stderr.strip()}")
    errors = json.loads(completed.stdout)
    if len(errors) != len(formulas):
        raise RuntimeError(f"{SCRIPT.name} answered {len(errors)} results for {len(formulas)} formulas")
    return errors


def assert_typesets(formulas: dict[str, str]) -> None:
    """Fail naming every formula (by its label) that KaTeX rejects, with KaTeX's message."""
    labels = list(formulas)
    errors = typeset_errors([formulas[label] for label in labels])
    failures = [f"{label}: {error}" for label, error in zip(labels, errors) if error is not None]
    assert not failures, f"{len(failures)} of {len(labels)} formulas do not typeset:\n" + "\n".join(failures)


def markdown_formulas(text: str, source: str) -> dict[str, str]:
    """The math of a Markdown text: ``$$`` display blocks and one-line ``$`` inline formulas.

    Code spans and fenced code blocks are left out. Keys are ``"<source>:<line> <display|inline> #<n>"``.
    """
    masked = _CODE.sub(_blank, text)
    formulas: dict[str, str] = {}
    for kind, pattern in (("display", _DISPLAY), ("inline", _INLINE)):
        for match in pattern.finditer(masked):
            line = masked.count("\n", 0, match.start()) + 1
            formulas[f"{source}:{line} {kind} #{len(formulas)}"] = match.group(1)
        masked = pattern.sub(_blank, masked)  # inline math is looked for outside the display blocks
    return formulas


def _blank(match: re.Match) -> str:
    """The matched text with every character but the line breaks replaced by a space (lines keep their numbers)."""
    return re.sub(r"[^\n]", " ", match.group(0))
