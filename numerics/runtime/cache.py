"""The user cache of generated modules: verified before they run, regenerated when they are not intact.

Models without a committed module are generated on first use into
:func:`cache_dir` (``$WICKODE_CACHE_DIR``, else ``$XDG_CACHE_HOME/wickode``,
else ``~/.cache/wickode``), one file per model and kind,
``<kind>_<input-hash>.py``. :func:`load_generated` is the only way such a file
is loaded, and it never executes a file it has not verified:

1. The entry is read as bytes and decoded as strict UTF-8; the text is checked
   by :func:`derive.codegen.artefacts.verify_generated_text` (generated-file marker,
   a header of comments and one docstring only, ``input-hash`` equal to the
   expected key, body SHA-256 equal to the recorded ``body-sha256``, body
   constants agreeing with the header).
2. The verified *text* is compiled and executed (the file is not read a second
   time, so it cannot change between the check and the execution).
3. Anything else - a missing entry, a directory, a truncated, garbled,
   non-UTF-8, unreadable or edited file, or a verified file whose execution
   fails (e.g. it imports a runtime helper that no longer exists) - makes
   the module be generated again, written atomically over the bad entry, and
   the fresh text executed. If the fresh text fails too, :class:`ImportError`
   says so.

An entry that is a directory is removed when it is empty; a non-empty one is
renamed to ``<name>.invalid-<random>`` (its contents are kept, never deleted)
and the module is written under the usual name.

Files are written ``0o644`` and a cache directory this module creates is
``0o755``, so a cache shared between users is readable by all of them; when the
cache cannot be written (another user's directory), the freshly generated text
is executed from memory and a :class:`RuntimeWarning` says so. Two processes
generating the same model at once both succeed: writes go through a unique
temporary file and an atomic rename, so a reader never sees a partial file, and
where ``fcntl`` exists an advisory lock on ``.<name>.lock`` makes the second
process wait and reuse the first one's file instead of deriving it again.

The digest catches corruption and accidental edits. It is not a signature:
whoever can write the cache can also recompute the digest. The cache lives in
the user's own directory, so that is the accepted threat model.

Each module is executed under its own name, derived from its kind and input
hash (``wickode_generated_<key>``, ``wickode_generated_hessian_<key>``), so two
models never share a module name. Modules are not entered in ``sys.modules``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import linecache
import os
import secrets
import stat
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

try:  # POSIX only; elsewhere concurrent processes may both generate (still correct, only slower)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Permissions of the files and of a directory this module creates (world-readable).
FILE_MODE = 0o644
DIR_MODE = 0o755


def cache_dir() -> Path:
    """Directory for generated modules of models that are not committed."""
    if os.environ.get("WICKODE_CACHE_DIR"):
        return Path(os.environ["WICKODE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wickode"


def cache_path(kind: str, key: str) -> Path:
    """Where the generated module of ``kind`` (``"model"``, ``"hessian"``) for input hash ``key`` lives."""
    return cache_dir() / f"{kind}_{key}.py"


def load_generated(kind: str, key: str, generate: Callable[[], str], module_name: str) -> ModuleType:
    """The cached module ``<kind>_<key>.py``, verified, or generated afresh when it is not intact.

    Parameters
    ----------
    kind : str
        File-name prefix, e.g. ``"model"`` or ``"hessian"``.
    key : str
        The model's input hash (``Model.codegen_hash()``); the file must record it.
    generate : callable
        Returns the module's source text; called only when the entry is missing
        or not intact (it derives with sympy and can take seconds).
    module_name : str
        Name the module is executed under (unique per kind and key).

    Returns
    -------
    module
        The executed module.

    Raises
    ------
    ImportError
        When a freshly generated module fails to execute.
    RuntimeError
        When the generator's own output does not pass verification (a bug).
    """
    path = cache_path(kind, key)
    module = _load_existing(path, key, module_name)
    if module is not None:
        return module
    _ensure_directory(path.parent)
    with _generation_lock(path):
        # while this process waited for the lock another one may have written the file
        module = _load_existing(path, key, module_name)
        if module is not None:
            return module
        text = generate()
        _check_fresh(text, key, path)
        _store(path, text)
    try:
        return _execute(text, path, module_name)
    except Exception as error:
        raise ImportError(f"freshly generated module {path} (input hash {key}) fails to import: {error}") from error


def read_verified(path: Path, key: str) -> str | None:
    """The text of ``path`` when it is an intact generated module for ``key``, else None.

    Never raises for a bad entry: unreadable (missing, not a regular file, no
    permission), non-UTF-8, truncated or edited entries all give None.
    """
    from derive.codegen.artefacts import InvalidArtefact, verify_generated_text

    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a directory, or a FIFO that would block the read
            return None
        text = path.read_bytes().decode("utf-8", errors="strict")
        verify_generated_text(text, key)
    except (OSError, UnicodeDecodeError, InvalidArtefact):
        return None
    return text


def _load_existing(path: Path, key: str, module_name: str) -> ModuleType | None:
    """The module from a verified entry, or None when there is none or it fails to execute."""
    text = read_verified(path, key)
    if text is None:
        return None
    try:
        return _execute(text, path, module_name)
    except Exception:  # verified but stale (e.g. a runtime helper it imports is gone): regenerate
        return None


def _check_fresh(text: str, key: str, path: Path) -> None:
    from derive.codegen.artefacts import InvalidArtefact, verify_generated_text

    try:
        verify_generated_text(text, key)
    except InvalidArtefact as error:
        # otherwise every later load would regenerate again
        raise RuntimeError(f"the generator's output for {path.name} does not pass verification: {error}") from error


def _execute(text: str, path: Path, module_name: str) -> ModuleType:
    """Execute verified source ``text`` as a module named ``module_name`` whose ``__file__`` is ``path``."""
    spec = importlib.util.spec_from_loader(module_name, loader=None, origin=str(path))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    code = compile(text, str(path), "exec", dont_inherit=True)
    # tracebacks show the text that ran, even if the file changes afterwards
    linecache.cache[str(path)] = (len(text), None, text.splitlines(keepends=True), str(path))
    exec(code, module.__dict__)
    return module


def _store(path: Path, text: str) -> None:
    """Write ``text`` over the entry at ``path``; warn (and go on from memory) when that is impossible."""
    from derive.codegen.artefacts import write_atomically

    try:
        _clear_directory_entry(path)
        write_atomically(path, text, mode=FILE_MODE)
    except OSError as error:
        warnings.warn(
            f"cannot write the generated module {path} ({error}); using it from memory",
            RuntimeWarning,
            stacklevel=3,
        )


def _clear_directory_entry(path: Path) -> None:
    """Make room for a file where a directory sits: remove it when empty, else rename it aside."""
    if path.is_symlink() or not path.is_dir():
        return
    try:
        path.rmdir()
    except FileNotFoundError:  # another process cleared it first
        return
    except OSError:
        # not empty: keep whatever is inside, out of the way
        aside = path.with_name(f"{path.name}.invalid-{secrets.token_hex(4)}")
        with contextlib.suppress(FileNotFoundError):
            path.rename(aside)


def _ensure_directory(directory: Path) -> None:
    if directory.is_dir():
        return
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask; other users must be able to read the cache
        os.chmod(directory, DIR_MODE)
    except OSError:
        pass  # _store warns if the file cannot be written


@contextlib.contextmanager
def _generation_lock(path: Path) -> Iterator[None]:
    """Advisory exclusive lock on ``.<name>.lock`` next to ``path``; a no-op when unavailable.

    The lock only avoids duplicate work: correctness rests on the atomic rename.
    """
    if fcntl is None:
        yield
        return
    try:
        fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDONLY | os.O_CREAT, FILE_MODE)
    except OSError:  # read-only or foreign cache directory: generate without the lock
        yield
        return
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)  # the umask may have narrowed it; fails harmlessly if not ours
        with contextlib.suppress(OSError):  # e.g. no lock support on a network file system
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


__all__ = ["DIR_MODE", "FILE_MODE", "cache_dir", "cache_path", "load_generated", "read_verified"]
