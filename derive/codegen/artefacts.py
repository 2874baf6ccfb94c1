"""Files written by the generator: header fields, body digest, strict verification, atomic writes.

A generated module is a header of comment lines (``# key: value`` fields) and
one docstring, the line :data:`HEADER_MARK`, a blank line, then the body. The
header records ``input-hash`` (model + generator version), ``result-hash``
(the symbolic result) and ``body-sha256`` (the SHA-256 of the body text), so a
reader can tell, without sympy, whether a file is the one the generator wrote
for a given model.

This module imports nothing from sympy: the numerics-side cache
(:mod:`numerics.runtime.cache`) verifies files with it before executing them.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import tempfile
from pathlib import Path

#: First line of every generated file.
GENERATED_MARKER = "# GENERATED FILE - DO NOT EDIT. Regenerate with `python -m derive`."
#: Line closing the header of a generated module (the body follows after one blank line).
HEADER_MARK = "# --- end of header ---"
#: Header fields every generated module carries.
REQUIRED_FIELDS = ("input-hash", "result-hash", "body-sha256")

_HASH = re.compile(r"[0-9a-f]{16}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# characters a printed header never contains but that Python or str.splitlines treat as
# line breaks or invisible separators: reject rather than reason about how each is parsed
_FORBIDDEN_IN_HEADER = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")


class InvalidArtefact(ValueError):
    """A file (or text) is not an intact generated module for the expected model."""


def split_header(text: str) -> tuple[str, str]:
    """``(header, body)`` of a generated module's text.

    ``header`` ends with the line before :data:`HEADER_MARK`; ``body`` is what
    follows the mark and its blank line, i.e. exactly the text the recorded
    ``body-sha256`` covers.

    Raises
    ------
    InvalidArtefact
        When the mark line or the blank line after it is missing.
    """
    header, mark, rest = text.partition(HEADER_MARK + "\n")
    if not mark or (header and not header.endswith("\n")):
        raise InvalidArtefact(f"no {HEADER_MARK!r} line")
    if not rest.startswith("\n"):
        raise InvalidArtefact(f"no blank line after {HEADER_MARK!r}")
    return header, rest[1:]


def header_fields(text: str) -> dict[str, str]:
    """The ``# key: value`` fields of a generated file's header (lenient: no checks)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line == HEADER_MARK:
            break
        if line.startswith("# ") and ": " in line:
            key, value = line[2:].split(": ", 1)
            fields[key.strip()] = value.strip()
    return fields


def body_digest(body: str) -> str:
    """SHA-256 (hex) of a generated module's body, as recorded in its header."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def generated_module_text(
    body: str, *, about: list[str], model: object, input_hash: str, result_hash: str, docstring: str
) -> str:
    """A generated module: the header (marker, what generated it, the model, hashes, digest) then ``body``.

    ``about`` holds the comment lines saying what the module is and which generator wrote it;
    ``model`` is a :class:`derive.model.model.Model` (its name, activations and readouts are recorded).
    """
    import sympy  # only the generators write modules; the numerics read them without sympy

    header = [
        GENERATED_MARKER,
        *about,
        f"#   name: {model.name}",
        f"#   student activation: {model.student_activation}",
        f"#   teacher activation: {model.teacher_activation}",
        f"#   student readout: {model.student_readout}",
        f"#   teacher readout: {model.teacher_readout}",
        f"# input-hash: {input_hash}",
        f"# result-hash: {result_hash}",
        f"# body-sha256: {body_digest(body)}",
        f"# sympy: {sympy.__version__}",
        f'"""{docstring}"""',
        HEADER_MARK,
        "",
    ]
    return "\n".join(header) + "\n" + body


def verify_generated_text(text: str, input_hash: str) -> dict[str, str]:
    """Check that ``text`` is an intact generated module for the model keyed ``input_hash``.

    Checked: the first line is :data:`GENERATED_MARKER`; the header holds only
    comments and one docstring (so nothing outside the digested body can run);
    the ``input-hash`` field equals ``input_hash``; ``result-hash`` and
    ``body-sha256`` are well formed; the body's SHA-256 equals ``body-sha256``;
    and the body's ``INPUT_HASH`` / ``RESULT_HASH`` constants agree with the
    header.

    The digest guards against corruption and accidental edits, not against a
    deliberate edit that also rewrites the digest: anyone who can write the
    file can recompute it. That is the intended threat model for a cache in the
    user's own directory.

    Parameters
    ----------
    text : str
        The decoded file contents.
    input_hash : str
        The key the file must have been generated for (``Model.codegen_hash()``).

    Returns
    -------
    dict of str to str
        The header fields.

    Raises
    ------
    InvalidArtefact
        Naming the first check that failed.
    """
    if not text.startswith(GENERATED_MARKER + "\n"):
        raise InvalidArtefact("first line is not the generated-file marker")
    header, body = split_header(text)
    if _FORBIDDEN_IN_HEADER.search(header):
        raise InvalidArtefact("control characters in the header")
    try:
        statements = ast.parse(header).body
    except SyntaxError as error:
        raise InvalidArtefact(f"header is not valid Python ({error.msg})") from None
    docstring_only = all(
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)
        for s in statements
    )
    if len(statements) > 1 or not docstring_only:
        raise InvalidArtefact("header holds code, not only comments and a docstring")
    fields = header_fields(header)
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        raise InvalidArtefact(f"header lacks {', '.join(missing)}")
    if fields["input-hash"] != input_hash:
        raise InvalidArtefact(f"input hash {fields['input-hash']!r} != {input_hash!r}")
    if not _HASH.fullmatch(fields["result-hash"]):
        raise InvalidArtefact(f"malformed result hash {fields['result-hash']!r}")
    if not _SHA256.fullmatch(fields["body-sha256"]):
        raise InvalidArtefact(f"malformed body digest {fields['body-sha256']!r}")
    if body_digest(body) != fields["body-sha256"]:
        raise InvalidArtefact("body differs from its recorded digest (edited or corrupted)")
    body_lines = body.splitlines()
    for name, value in (("INPUT_HASH", input_hash), ("RESULT_HASH", fields["result-hash"])):
        if f"{name} = {value!r}" not in body_lines:
            raise InvalidArtefact(f"body lacks {name} = {value!r}")
    return fields


def read_header(path: Path) -> dict[str, str]:
    """The ``key: value`` fields of a generated file's header."""
    return header_fields(path.read_text(encoding="utf-8"))


def body_is_intact(path: Path) -> bool:
    """True when the code below the header matches the digest the header records."""
    text = path.read_text(encoding="utf-8")
    try:
        _, body = split_header(text)
    except InvalidArtefact:
        return False
    return header_fields(text).get("body-sha256") == body_digest(body)


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` via a temporary file and ``os.replace``.

    Readers see either the old file or the complete new one, never a partial
    write: the temporary file has a unique name in the same directory (so
    concurrent writers never share it) and is flushed to disk before the rename.
    Its permissions are set to ``mode`` (default ``0o644``, regardless of the
    umask) before the rename, because ``mkstemp`` creates files ``0o600`` and a
    shared cache must be readable by other users.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # newline="" keeps "\n": the body digest is over exactly these characters on every platform
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = [
    "GENERATED_MARKER",
    "HEADER_MARK",
    "REQUIRED_FIELDS",
    "InvalidArtefact",
    "body_digest",
    "body_is_intact",
    "header_fields",
    "generated_module_text",
    "read_header",
    "split_header",
    "verify_generated_text",
    "write_atomically",
]
