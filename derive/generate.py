"""Regenerate every committed artefact, or check that none is stale.

Artefacts: one NumPy module per model of :data:`derive.model.model.COMMITTED_MODELS`
(plus its Hessian building blocks, ``<name>_hessian.py``, see :mod:`derive.quantities.hessian`,
and its per-tuple module for readout vectors, ``<name>_tuples.py``, see
:mod:`derive.codegen.tuples`), the per-tuple module of every model of
:data:`derive.model.model.COMMITTED_TUPLE_MODELS` (non-polynomial activations: ``<name>.py``)
under ``numerics/_generated/``, the registry ``numerics/_generated/__init__.py``
mapping input hashes to those modules, and ``docs/equations.md``. The array
helpers the index-free modules import are the hand-written :mod:`numerics.kernels.helpers`,
not an artefact.

The check regenerates every artefact in memory and compares it with the file
on disk, as text. For the modules it first compares the hashes, whose messages
say *why* a module is stale: the recorded input hash differs (the model
changed), the symbolic-result hash differs (the derivation changed), the code
no longer matches its own recorded body digest (a hand edit). A module whose
hashes all agree but whose text differs was printed differently (the printer
changed, or a hand edit also rewrote the digest); the message names the first
differing line. The one header line ignored in the comparison is
``# sympy: <version>``: it records which sympy printed the file, and a patch
release that prints the same code must not make the tree stale (a release that
prints different code does, through the rest of the text). The equations
document is compared in full too, so a hand edit of a formula is caught, not
only a change of its digest marker. A Python file under ``numerics/_generated/``
that no generator writes (e.g. a module of a model no longer committed) is
reported as stray.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from derive.codegen.artefacts import (
    InvalidArtefact,
    body_digest,
    header_fields,
    split_header,
    write_atomically,
)
from derive.codegen.hessian_module import generate_hessian_module
from derive.codegen.increments_module import generate_fluctuation_module
from derive.codegen.module import generate_module, result_hash
from derive.codegen.tuples import (
    generate_tuple_module,
    module_input_hash,
    tuple_input_hash,
    tuple_result_hash,
)
from derive.model.model import COMMITTED_MODELS, COMMITTED_TUPLE_MODELS, Model
from derive.quantities.hessian import hessian_result_hash
from derive.quantities.increments import fluctuation_result_hash, fluctuations_supported

ROOT = Path(__file__).resolve().parent.parent
GENERATED_DIR = Path("numerics") / "_generated"
EQUATIONS_DOC = Path("docs") / "equations.md"


def module_path(model: Model, root: Path = ROOT) -> Path:
    return root / GENERATED_DIR / f"{model.name}.py"


def hessian_module_path(model: Model, root: Path = ROOT) -> Path:
    return root / GENERATED_DIR / f"{model.name}_hessian.py"


def fluctuation_module_path(model: Model, root: Path = ROOT) -> Path:
    return root / GENERATED_DIR / f"{model.name}_fluctuations.py"


def tuple_module_path(model: Model, root: Path = ROOT) -> Path:
    """Per-tuple module: the model's only module when it is not polynomial, else ``<name>_tuples.py``."""
    suffix = "_tuples" if model.is_polynomial() else ""
    return root / GENERATED_DIR / f"{model.name}{suffix}.py"


def registry_source(
    models: tuple[Model, ...] = COMMITTED_MODELS, tuple_models: tuple[Model, ...] = COMMITTED_TUPLE_MODELS
) -> str:
    lines = [
        "# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`.",
        '"""Committed generated modules, keyed by the input hash of their model."""',
        "",
        "COMMITTED = {",
    ]
    for model in models + tuple_models:
        lines.append(f"    {model.codegen_hash()!r}: {model.name!r},")
    lines.append("}")
    lines.append("")
    lines.append("#: per-tuple modules of the polynomial models (readout vectors, trained readouts), by input hash")
    lines.append("COMMITTED_TUPLES = {")
    for model in models:
        lines.append(f"    {tuple_input_hash(model)!r}: {model.name + '_tuples'!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _equations_digest(models: tuple[Model, ...], results: list[tuple[str, str]] | None = None) -> str:
    from derive.paper.documents import sections_digest

    text = "|".join(f"{m.codegen_hash()}:{result_hash(m)}" for m in models)
    return hashlib.sha256(text.encode()).hexdigest()[:16] + "-" + sections_digest(results)


def equations_document(models: tuple[Model, ...] = COMMITTED_MODELS) -> str:
    """Markdown with the derived equations of each model in LaTeX."""
    from derive.paper.documents import equations_markdown, section_results

    results = section_results()  # the slow part: derived once, for both the digest and the text
    return equations_markdown(models, digest=_equations_digest(models, results), results=results)


def generated_paths(root: Path = ROOT, models: tuple[Model, ...] = COMMITTED_MODELS) -> list[Path]:
    """The Python files under ``numerics/_generated/`` that :func:`regenerate` writes."""
    paths = [root / GENERATED_DIR / "__init__.py"]
    for model in models:
        paths += [module_path(model, root), hessian_module_path(model, root)]
        if fluctuations_supported(model):
            paths.append(fluctuation_module_path(model, root))
    paths += [tuple_module_path(model, root) for model in models + COMMITTED_TUPLE_MODELS]
    return paths


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
        if fluctuations_supported(model):
            fluctuation_path = fluctuation_module_path(model, root)
            write_atomically(fluctuation_path, generate_fluctuation_module(model))
            written.append(fluctuation_path)
    for model in models + COMMITTED_TUPLE_MODELS:
        path = tuple_module_path(model, root)
        write_atomically(path, generate_tuple_module(model))
        written.append(path)
    registry = root / GENERATED_DIR / "__init__.py"
    write_atomically(registry, registry_source(models))
    written.append(registry)
    doc = root / EQUATIONS_DOC
    write_atomically(doc, equations_document(models))
    written.append(doc)
    return written


#: Header line that records the printing sympy version; not compared (see the module docstring).
_SYMPY_LINE = re.compile(r"^# sympy: .*$", flags=re.MULTILINE)
_SNIPPET = 36


def _comparable(text: str) -> str:
    return _SYMPY_LINE.sub("# sympy: *", text)


def _snippet(line: str, column: int) -> str:
    """``line`` around ``column``, shortened for a message."""
    start = max(column - _SNIPPET, 0)
    end = column + _SNIPPET
    return ("..." if start else "") + line[start:end] + ("..." if end < len(line) else "")


def first_difference(actual: str, expected: str, *, skip: tuple[str, ...] = ()) -> str:
    """Where ``actual`` (on disk) first differs from ``expected`` (regenerated), for a message.

    Lines starting with one of ``skip`` are passed over when locating the
    difference (e.g. the body digest, which differs whenever the body does and
    would hide the line that matters); only if nothing else differs are they
    reported.
    """

    def numbered(text: str, skipping: bool) -> list[tuple[int, str]]:
        lines = enumerate(text.split("\n"), start=1)
        return [(n, line) for n, line in lines if not (skipping and line.startswith(skip))]

    for skipping in (True, False) if skip else (False,):
        ours, theirs = numbered(actual, skipping), numbered(expected, skipping)
        for (number, have), (_, want) in zip(ours, theirs):
            if have != want:
                column = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
                return f"line {number}: file has {_snippet(have, column)!r}, generated {_snippet(want, column)!r}"
        if len(ours) != len(theirs):
            if len(ours) > len(theirs):
                number = ours[len(theirs)][0]
            else:
                number = ours[-1][0] + 1 if ours else 1
            return f"from line {number}: file has {len(ours)} lines, generated {len(theirs)}"
    return "only line endings or encoding differ"


def _read(path: Path) -> str:
    # bytes first: a file that is not UTF-8 is reported as such, not as a crash of the check
    return path.read_bytes().decode("utf-8")


def stale_module(
    path: Path, root: Path, input_hash: str, symbolic_hash: Callable[[], str], source: Callable[[], str]
) -> str | None:
    """Why one generated module is stale, or None when it is fresh.

    The hash comparisons come first (they say why, and are cheaper than
    printing); the printed text is compared last.
    """
    rel = path.relative_to(root)
    if not path.exists():
        return f"{rel}: missing"
    try:
        text = _read(path)
    except (OSError, UnicodeDecodeError) as error:
        return f"{rel}: unreadable ({type(error).__name__}: {error})"
    header = header_fields(text)
    if header.get("input-hash") != input_hash:
        return f"{rel}: input hash {header.get('input-hash')} != {input_hash} (model changed)"
    try:
        expected_hash = symbolic_hash()
    except Exception as error:  # a derivation that fails for a changed model is stale too
        return f"{rel}: cannot be derived ({type(error).__name__}: {error})"
    if header.get("result-hash") != expected_hash:
        return f"{rel}: result hash {header.get('result-hash')} != {expected_hash} (derivation changed)"
    try:
        _, body = split_header(text)
    except InvalidArtefact as error:
        return f"{rel}: not a generated module ({error})"
    if header.get("body-sha256") != body_digest(body):
        return f"{rel}: code differs from its recorded digest (edited by hand?)"
    try:
        expected = source()
    except Exception as error:
        return f"{rel}: cannot be generated ({type(error).__name__}: {error})"
    if _comparable(text) != _comparable(expected):
        where = first_difference(text, expected, skip=("# body-sha256: ", "# sympy: "))
        return f"{rel}: printed code differs (printer changed or hand edit), {where}"
    return None


def _stale_text(path: Path, root: Path, expected: str, what: str) -> str | None:
    """Why a file that must equal ``expected`` exactly is stale, or None."""
    rel = path.relative_to(root)
    if not path.exists():
        return f"{rel}: missing"
    try:
        text = _read(path)
    except (OSError, UnicodeDecodeError) as error:
        return f"{rel}: unreadable ({type(error).__name__}: {error})"
    if text != expected:
        return f"{rel}: {what} out of date, {first_difference(text, expected)}"
    return None


def _stale_document(path: Path, root: Path, models: tuple[Model, ...]) -> str | None:
    rel = path.relative_to(root)
    try:
        expected = equations_document(models)
    except Exception as error:  # a section that cannot be derived for a changed model is stale too
        return f"{rel}: cannot be derived ({type(error).__name__}: {error})"
    if not path.exists():
        return f"{rel}: missing"
    try:
        text = _read(path)
    except (OSError, UnicodeDecodeError) as error:
        return f"{rel}: unreadable ({type(error).__name__}: {error})"
    marker = expected.rstrip("\n").rsplit("\n", 1)[-1]
    if marker not in text:
        return f"{rel}: equations document out of date (digest of the derived content changed)"
    if text != expected:
        where = first_difference(text, expected)
        return f"{rel}: text differs from the regenerated document (hand edit or renderer changed), {where}"
    return None


def stale_artefacts(root: Path = ROOT, models: tuple[Model, ...] = COMMITTED_MODELS) -> list[str]:
    """Human-readable reasons, one per stale artefact (empty when all are fresh).

    Every artefact is regenerated in memory and compared with its file; nothing is written.
    """
    problems = []
    for model in models:
        checks = [
            (module_path(model, root), lambda m=model: result_hash(m), lambda m=model: generate_module(m).source),
            (
                hessian_module_path(model, root),
                lambda m=model: hessian_result_hash(m),
                lambda m=model: generate_hessian_module(m),
            ),
        ]
        if fluctuations_supported(model):
            checks.append(
                (
                    fluctuation_module_path(model, root),
                    lambda m=model: fluctuation_result_hash(m),
                    lambda m=model: generate_fluctuation_module(m),
                )
            )
        for path, symbolic_hash, source in checks:
            problems.append(stale_module(path, root, model.codegen_hash(), symbolic_hash, source))
    for model in models + COMMITTED_TUPLE_MODELS:
        problems.append(
            stale_module(
                tuple_module_path(model, root),
                root,
                module_input_hash(model),
                lambda m=model: tuple_result_hash(m),
                lambda m=model: generate_tuple_module(m),
            )
        )
    generated = root / GENERATED_DIR
    problems.append(_stale_text(generated / "__init__.py", root, registry_source(models), "registry"))
    expected = set(generated_paths(root, models))
    for path in sorted(generated.glob("*.py")):
        if path not in expected:
            problems.append(f"{path.relative_to(root)}: not written by `python -m derive` (stray file: remove it)")
    problems.append(_stale_document(root / EQUATIONS_DOC, root, models))
    return [problem for problem in problems if problem]
