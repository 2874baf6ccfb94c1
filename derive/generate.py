"""Regenerate every committed artefact, or check that none is stale.

Artefacts: one NumPy module per model of :data:`derive.model.COMMITTED_MODELS`
under ``numerics/_generated/``, the registry ``numerics/_generated/__init__.py``
mapping input hashes to those modules, and ``docs/equations.md``.

Staleness is judged on hashes, not on printed text: a module is stale when its
recorded input hash or symbolic-result hash differs from what the current
derivation produces, or when its code no longer matches its own recorded body
digest (a hand edit). So a different sympy version that prints the same
result differently does not make the tree stale; a changed derivation does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .codegen import body_is_intact, generate_module, read_header, result_hash, write_atomically
from .model import COMMITTED_MODELS, Model

ROOT = Path(__file__).resolve().parent.parent
GENERATED_DIR = Path("numerics") / "_generated"
EQUATIONS_DOC = Path("docs") / "equations.md"


def module_path(model: Model, root: Path = ROOT) -> Path:
    return root / GENERATED_DIR / f"{model.name}.py"


def registry_source(models: tuple[Model, ...] = COMMITTED_MODELS) -> str:
    lines = [
        "# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.",
        '"""Committed generated modules, keyed by the input hash of their model."""',
        "",
        "COMMITTED = {",
    ]
    for model in models:
        lines.append(f"    {model.codegen_hash()!r}: {model.name!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _equations_digest(models: tuple[Model, ...]) -> str:
    from .documents import sections_digest

    text = "|".join(f"{m.codegen_hash()}:{result_hash(m)}" for m in models)
    return hashlib.sha256(text.encode()).hexdigest()[:16] + "-" + sections_digest()


def equations_document(models: tuple[Model, ...] = COMMITTED_MODELS) -> str:
    """Markdown with the derived equations of each model in LaTeX."""
    from .documents import equations_markdown

    return equations_markdown(models, digest=_equations_digest(models))


def regenerate(root: Path = ROOT, models: tuple[Model, ...] = COMMITTED_MODELS) -> list[Path]:
    """Write every artefact; returns the paths written."""
    written = []
    for model in models:
        path = module_path(model, root)
        write_atomically(path, generate_module(model).source)
        written.append(path)
    registry = root / GENERATED_DIR / "__init__.py"
    write_atomically(registry, registry_source(models))
    written.append(registry)
    doc = root / EQUATIONS_DOC
    write_atomically(doc, equations_document(models))
    written.append(doc)
    return written


def stale_artefacts(root: Path = ROOT, models: tuple[Model, ...] = COMMITTED_MODELS) -> list[str]:
    """Human-readable reasons, one per stale artefact (empty when all are fresh)."""
    problems = []
    for model in models:
        path = module_path(model, root)
        rel = path.relative_to(root)
        if not path.exists():
            problems.append(f"{rel}: missing")
            continue
        header = read_header(path)
        if header.get("input-hash") != model.codegen_hash():
            problems.append(
                f"{rel}: input hash {header.get('input-hash')} != {model.codegen_hash()} (model changed)"
            )
        elif header.get("result-hash") != result_hash(model):
            problems.append(
                f"{rel}: result hash {header.get('result-hash')} != {result_hash(model)} (derivation changed)"
            )
        elif not body_is_intact(path):
            problems.append(f"{rel}: code differs from its recorded digest (edited by hand?)")
    registry = root / GENERATED_DIR / "__init__.py"
    if not registry.exists() or registry.read_text() != registry_source(models):
        problems.append(f"{registry.relative_to(root)}: registry out of date")
    doc = root / EQUATIONS_DOC
    marker = f"<!-- digest: {_equations_digest(models)} -->"
    if not doc.exists() or marker not in doc.read_text():
        problems.append(f"{EQUATIONS_DOC}: equations document out of date")
    return problems
