"""BLAS thread limits (numerics/core/blas.py): pinned inside, restored after, checked arguments."""

import inspect

import pytest
from threadpoolctl import threadpool_info

from numerics.core import blas


def blas_thread_counts():
    return [entry["num_threads"] for entry in threadpool_info() if entry["user_api"] == "blas"]


def test_blas_limited_inside_and_restored_after():
    before = blas_thread_counts()
    with blas.limited("auto", 10):
        assert set(blas_thread_counts()) == {1}
    assert blas_thread_counts() == before
    with blas.limited("auto", blas.AUTO_MAX_WIDTH + 1):  # large matrices: BLAS as configured
        assert blas_thread_counts() == before
    with blas.limited(None, 10):
        assert blas_thread_counts() == before


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "many"])
def test_bad_thread_settings_name_blas_threads(value):
    with pytest.raises(ValueError, match="blas_threads"):
        blas.check_blas_threads(value)
    with pytest.raises(ValueError, match="blas_threads"):
        with blas.limited(value, 10):
            pass


def test_auto_pins_small_matrices_only():
    assert blas.threads_for("auto", blas.AUTO_MAX_WIDTH) == blas.DEFAULT
    assert blas.threads_for("auto", blas.AUTO_MAX_WIDTH + 1) is None
    assert blas.threads_for(3, 10**6) == 3 and blas.threads_for(None, 10) is None
    assert [blas.check_blas_threads(v) for v in ("auto", None, 4)] == ["auto", None, 4]


def test_decorator_adds_a_keyword_and_limits_while_the_function_runs():
    seen = []

    @blas.with_blas_threads(lambda bound: bound.arguments["width"])
    def work(width: int) -> int:
        seen.append(set(blas_thread_counts()))
        return 2 * width

    parameter = inspect.signature(work).parameters["blas_threads"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default == "auto"
    before = blas_thread_counts()
    assert work(10) == 20 and work(10, blas_threads=None) == 20
    assert seen[0] == {1} and seen[1] == set(before)
    assert blas_thread_counts() == before
    with pytest.raises(ValueError, match="blas_threads"):
        work(10, blas_threads=0)
    with pytest.raises(TypeError):  # a bad call is reported by the function itself
        work(10, 11)
