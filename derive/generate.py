"""Regenerate every committed artefact, or check that none is stale.

Artefacts: one NumPy module per model of :data:`derive.model.COMMITTED_MODELS`
(plus its Hessian building blocks, ``<name>_hessian.py``, see :mod:`derive.hessian`)
under ``numerics/_generated/``, the runtime helpers they all import
(``numerics/_generated/_runtime.py``), the registry ``numerics/_generated/__init__.py``
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

from .codegen import body_is_intact, generate_module, read_header, result_hash, runtime_source, write_atomically
from .hessian import generate_hessian_module, hessian_result_hash
from .model import COMMITTED_MODELS, Model

ROOT = Path(__file__).resolve().parent.parent
GENERATED_DIR = Path("numerics") / "_generated"
EQUATIONS_DOC = Path("docs") / "equations.md"


def module_path(model: Model, root: Path = ROOT) -> Path:
    return root / GENERATED_DIR / f"{model.name}.py"


def hessian_module_path(model: Model, root: Path = ROOT) -> Path:
    return root / GENERATED_DIR / f"{model.name}_hessian.py"


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
        hessian_path = hessian_module_path(model, root)
        write_atomically(hessian_path, generate_hessian_module(model))
        written.append(hessian_path)
    registry = root / GENERATED_DIR / "__init__.py"
    write_atomically(registry, registry_source(models))
    written.append(registry)
    runtime = root / GENERATED_DIR / "_runtime.py"
    write_atomically(runtime, runtime_source())
    written.append(runtime)
    doc = root / EQUATIONS_DOC
    write_atomically(doc, equations_document(models))
    written.append(doc)
    return written


def _stale_module(path: Path, root: Path, input_hash: str, symbolic_hash: str) -> str | None:
    """Why one generated module is stale, or None when it is fresh."""
    rel = path.relative_to(root)
    if not path.exists():
        return f"{rel}: missing"
    header = read_header(path)
    if header.get("input-hash") != input_hash:
        return f"{rel}: input hash {header.get('input-hash')} != {input_hash} (model changed)"
    if header.get("result-hash") != symbolic_hash:
        return f"{rel}: result hash {header.get('result-hash')} != {symbolic_hash} (derivation changed)"
    if not body_is_intact(path):
        return f"{rel}: code differs from its recorded digest (edited by hand?)"
    return None


def stale_artefacts(root: Path = ROOT, models: tuple[Model, ...] = COMMITTED_MODELS) -> list[str]:
    """Human-readable reasons, one per stale artefact (empty when all are fresh)."""
    checks = []
    for model in models:
        checks.append((module_path(model, root), model.codegen_hash(), lambda m=model: result_hash(m)))
        checks.append((hessian_module_path(model, root), model.codegen_hash(), lambda m=model: hessian_result_hash(m)))
    problems = []
    for path, input_hash, symbolic_hash in checks:
        problem = _stale_module(path, root, input_hash, symbolic_hash())
        if problem:
            problems.append(problem)
    registry = root / GENERATED_DIR / "__init__.py"
    if not registry.exists() or registry.read_text() != registry_source(models):
        problems.append(f"{registry.relative_to(root)}: registry out of date")
    runtime = root / GENERATED_DIR / "_runtime.py"
    if not runtime.exists() or runtime.read_text() != runtime_source():
        problems.append(f"{runtime.relative_to(root)}: runtime helpers out of date")
    doc = root / EQUATIONS_DOC
    try:
        marker = f"<!-- digest: {_equations_digest(models)} -->"
    except Exception as error:  # a section that cannot be derived for a changed model is stale too
        problems.append(f"{EQUATIONS_DOC}: cannot be derived ({type(error).__name__}: {error})")
    else:
        if not doc.exists() or marker not in doc.read_text():
            problems.append(f"{EQUATIONS_DOC}: equations document out of date")
    return problems
