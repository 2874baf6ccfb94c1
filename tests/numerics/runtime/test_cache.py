"""The user cache of generated modules: verified before use, regenerated when not intact."""

import multiprocessing
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import numerics
from derive.codegen.artefacts import (
    GENERATED_MARKER,
    HEADER_MARK,
    InvalidArtefact,
    body_digest,
    split_header,
    verify_generated_text,
)
from derive.model.model import Model
from numerics.runtime import registry as models
from numerics.runtime.cache import cache_path, load_generated, read_verified

#: Not committed, so it goes through the cache; its generation takes a fraction of a second.
MODEL = Model(student_activation="x**2 + x", teacher_activation="x**2")
KEY = MODEL.codegen_hash()
Q, R, T = numerics.initial_conditions(3, 2, N=50, seed=1)


def risk() -> np.ndarray:
    return np.atleast_1d(numerics.risk(Q, R, T, model=MODEL))


def hessian_terms() -> np.ndarray:
    return np.concatenate([np.ravel(t) for t in models.hessian_module(MODEL).hessian_terms(Q, R, T)])


# kind -> (evaluate through the public entry point, function a tamper wraps, how the wrapper scales its result)
KINDS = {
    "model": (risk, "residual_risk", "1.5 * _untampered(Q, R, T)"),
    "hessian": (hessian_terms, "hessian_terms", "tuple(1.5 * t for t in _untampered(Q, R, T))"),
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory and empty in-process module tables."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("WICKODE_CACHE_DIR", str(directory))
    monkeypatch.setattr(models, "_LOADED", {})
    return directory


def forget_loaded(monkeypatch):
    """Drop the in-process tables so the next call loads from the cache directory again."""
    monkeypatch.setattr(models, "_LOADED", {})


def fresh(kind):
    """Reference values and the pristine cached text of ``kind``."""
    evaluate = KINDS[kind][0]
    values = evaluate()
    return values, cache_path(kind, KEY).read_text(encoding="utf-8")


def appended(text: str, code: str) -> str:
    """``text`` with ``code`` appended to its body, header (and recorded digest) untouched."""
    return text + "\n" + code


def execute_text(text: str) -> dict:
    namespace: dict = {}
    exec(compile(text, "<tampered>", "exec"), namespace)
    return namespace


# --------------------------------------------------------------------------
# damaged entries are regenerated, and the numbers are right again
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_coefficient_is_regenerated(kind, cache, monkeypatch):
    evaluate, function, scaled = KINDS[kind]
    reference, pristine = fresh(kind)
    tamper = f"_untampered = {function}\n\n\ndef {function}(Q, R, T):\n    return {scaled}\n"
    tampered = appended(pristine, tamper)
    # the tamper matters: run by hand, the edited module gives other numbers
    namespace = execute_text(tampered)
    result = namespace[function](Q, R, T)
    by_hand = np.concatenate([np.ravel(t) for t in result]) if isinstance(result, tuple) else np.atleast_1d(result)
    assert not np.allclose(by_hand, reference)
    path = cache_path(kind, KEY)
    path.write_text(tampered, encoding="utf-8")
    forget_loaded(monkeypatch)
    np.testing.assert_array_equal(evaluate(), reference)
    assert path.read_text(encoding="utf-8") == pristine


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path, text: path.write_text(text[: len(text) // 2], encoding="utf-8"), id="truncated"),
        pytest.param(lambda path, text: path.write_bytes(b""), id="empty"),
        pytest.param(lambda path, text: path.write_bytes(b"\xff\xfe\x00\x81garbage\x00" * 50), id="garbage"),
        pytest.param(
            # one byte that is not UTF-8 in an otherwise intact file (a comment of the body)
            lambda path, text: path.write_bytes(text.encode().replace(b"# noqa: F401", b"# noqa: F401 \xe9", 1)),
            id="not-utf8",
        ),
        pytest.param(lambda path, text: path.write_text(text.replace("# input-hash", "# input-hash-x")), id="no-key"),
    ],
)
def test_damaged_entry_is_regenerated(kind, damage, cache, monkeypatch):
    evaluate = KINDS[kind][0]
    reference, pristine = fresh(kind)
    path = cache_path(kind, KEY)
    damage(path, pristine)
    assert path.read_bytes() != pristine.encode()
    forget_loaded(monkeypatch)
    np.testing.assert_array_equal(evaluate(), reference)
    assert path.read_text(encoding="utf-8") == pristine


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("contents", ["empty", "not-empty"])
def test_directory_entry_is_replaced_by_the_module(kind, contents, cache, monkeypatch):
    evaluate = KINDS[kind][0]
    reference, pristine = fresh(kind)
    path = cache_path(kind, KEY)
    path.unlink()
    path.mkdir()
    if contents == "not-empty":
        (path / "keep.txt").write_text("not ours to delete")
    forget_loaded(monkeypatch)
    np.testing.assert_array_equal(evaluate(), reference)
    assert path.is_file() and path.read_text(encoding="utf-8") == pristine
    # an empty directory is removed; a non-empty one is renamed aside with its contents
    aside = list(cache.glob(f"{path.name}.invalid-*"))
    if contents == "empty":
        assert aside == []
    else:
        assert len(aside) == 1 and (aside[0] / "keep.txt").read_text() == "not ours to delete"


@pytest.mark.parametrize("kind", KINDS)
def test_unreadable_entry_is_regenerated(kind, cache, monkeypatch):
    # tests may run as root, which ignores file modes: make the read fail instead
    evaluate = KINDS[kind][0]
    reference, pristine = fresh(kind)
    path = cache_path(kind, KEY)
    path.write_text("# stale\n")
    original = Path.read_bytes
    failures = []

    def read_bytes(self):
        if self == path and not failures:
            failures.append(self)
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    forget_loaded(monkeypatch)
    np.testing.assert_array_equal(evaluate(), reference)
    assert failures == [path]
    assert path.read_text(encoding="utf-8") == pristine


def test_unwritable_cache_runs_the_fresh_text_from_memory(cache, monkeypatch):
    import derive.codegen.artefacts

    def refuse(path, text, *, mode=0o644):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(derive.codegen.artefacts, "write_atomically", refuse)
    with pytest.warns(RuntimeWarning, match="cannot write"):
        value = risk()
    assert not cache_path("model", KEY).exists()
    assert np.isfinite(value).all()


# --------------------------------------------------------------------------
# a file that is not intact is never executed
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["body", "header"])
def test_tampered_file_is_never_executed(kind, where, cache, monkeypatch, tmp_path):
    evaluate = KINDS[kind][0]
    reference, pristine = fresh(kind)
    marker = tmp_path / "executed"
    payload = f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n"
    header, body = split_header(pristine)
    if where == "body":
        tampered = appended(pristine, payload)
    else:
        # code in the header, outside what the body digest covers: the recorded digest still matches
        tampered = header + payload + HEADER_MARK + "\n\n" + body
    # the payload does run when the file is executed as is
    execute_text(tampered)
    assert marker.exists()
    marker.unlink()
    path = cache_path(kind, KEY)
    path.write_text(tampered, encoding="utf-8")
    forget_loaded(monkeypatch)
    np.testing.assert_array_equal(evaluate(), reference)
    assert not marker.exists()
    assert path.read_text(encoding="utf-8") == pristine


def test_verified_file_that_fails_to_import_is_regenerated(cache, monkeypatch):
    # intact by its digest, but it imports a helper module that does not exist (e.g. a runtime that was moved)
    reference, pristine = fresh("model")
    header, body = split_header(pristine)
    broken_body = body.replace("from numerics.kernels.helpers import", "from numerics._gone import", 1)
    assert broken_body != body
    broken = header.replace(body_digest(body), body_digest(broken_body)) + HEADER_MARK + "\n\n" + broken_body
    verify_generated_text(broken, KEY)
    path = cache_path("model", KEY)
    path.write_text(broken, encoding="utf-8")
    forget_loaded(monkeypatch)
    np.testing.assert_array_equal(risk(), reference)
    assert path.read_text(encoding="utf-8") == pristine


def synthetic_module(key: str, body: str) -> str:
    header = "\n".join(
        [
            GENERATED_MARKER,
            f"# input-hash: {key}",
            "# result-hash: 0123456789abcdef",
            f"# body-sha256: {body_digest(body)}",
            '"""Synthetic."""',
            HEADER_MARK,
            "",
        ]
    )
    return header + "\n" + body


def test_fresh_text_that_fails_to_import_raises_once(cache):
    key = "00000000000000aa"
    calls = []

    def generate():
        calls.append(1)
        body = f"raise ValueError('broken generator')\nINPUT_HASH = {key!r}\nRESULT_HASH = '0123456789abcdef'\n"
        return synthetic_module(key, body)

    with pytest.raises(ImportError, match="freshly generated module .* fails to import: broken generator"):
        load_generated("model", key, generate, "wickode_test_broken")
    assert calls == [1]


def test_generator_output_that_does_not_verify_is_a_clear_error(cache):
    with pytest.raises(RuntimeError, match="does not pass verification"):
        load_generated("model", "00000000000000bb", lambda: "x = 1\n", "wickode_test_unverified")


def test_loaded_module_runs_the_verified_text(cache):
    key = "00000000000000cc"
    body = f"VALUE = 1\nINPUT_HASH = {key!r}\nRESULT_HASH = '0123456789abcdef'\n"
    module = load_generated("model", key, lambda: synthetic_module(key, body), "wickode_test_value")
    assert module.VALUE == 1 and module.__name__ == "wickode_test_value"
    assert module.__file__ == str(cache_path("model", key))


# --------------------------------------------------------------------------
# verification itself
# --------------------------------------------------------------------------


def test_verification_accepts_the_generator_output_and_names_each_defect(cache):
    _, pristine = fresh("model")
    assert verify_generated_text(pristine, KEY)["input-hash"] == KEY
    header, body = split_header(pristine)
    defects = {
        "marker": pristine.replace(GENERATED_MARKER, "# generated", 1),
        "end of header": pristine.replace(HEADER_MARK, "# end", 1),
        "input hash": pristine.replace(f"# input-hash: {KEY}", "# input-hash: 0000000000000000", 1),
        "digest": pristine.replace("import numpy as np", "import numpy  as np", 1),
        "holds code": header + "x = 1\n" + HEADER_MARK + "\n\n" + body,
        "control characters": header + "# \x0c\n" + HEADER_MARK + "\n\n" + body,
    }
    for reason, text in defects.items():
        assert text != pristine
        with pytest.raises(InvalidArtefact, match=reason):
            verify_generated_text(text, KEY)
    assert read_verified(cache, KEY) is None  # a directory
    assert read_verified(cache / "missing.py", KEY) is None


# --------------------------------------------------------------------------
# permissions and concurrency
# --------------------------------------------------------------------------


def test_files_are_world_readable_and_the_directory_too(cache):
    previous = os.umask(0o077)  # a strict umask must not make the shared cache private
    try:
        risk()
        hessian_terms()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o755
    for kind in KINDS:
        assert stat.S_IMODE(cache_path(kind, KEY).stat().st_mode) == 0o644


def _generate_in_child(directory: str, barrier, results) -> None:
    os.environ["WICKODE_CACHE_DIR"] = directory
    import numerics
    from numerics.runtime.registry import hessian_module

    Q, R, T = numerics.initial_conditions(3, 2, N=50, seed=1)
    barrier.wait(timeout=120)  # both processes start generating at the same moment
    value = numerics.risk(Q, R, T, model=MODEL)
    terms = hessian_module(MODEL).hessian_terms(Q, R, T)
    results.put((value, [np.asarray(t).tolist() for t in terms]))


def test_two_processes_generating_the_same_model_both_succeed(tmp_path):
    directory = tmp_path / "shared"
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_generate_in_child, args=(str(directory), barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert outcomes[0] == outcomes[1]
    files = sorted(f.name for f in directory.iterdir() if not f.name.endswith(".lock"))
    assert files == [f"hessian_{KEY}.py", f"model_{KEY}.py"]  # no temporary files left behind
    for name in files:
        verify_generated_text((directory / name).read_text(encoding="utf-8"), KEY)
