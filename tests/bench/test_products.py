"""Multiply counts of the generated matrix products (bench/products.py)."""

import pytest

from bench.products import multiply_counts
from derive.model.model import PAPER
from numerics.kernels import helpers as runtime


def test_runtime_size_thresholds_drive_the_multiply_count(monkeypatch):
    # the multiply count follows the kernels the printed code calls: syrk from GRAM_MIN on
    def kinds():
        return {count.kind for count in multiply_counts(PAPER, "rhs_terms", 200, 4)}

    assert "syrk" in kinds()
    monkeypatch.setattr(runtime, "GRAM_MIN", 10_000)
    assert "syrk" not in kinds() and "gram (plain)" in kinds()


@pytest.mark.parametrize("p_value", [3, 300])
def test_counts_follow_the_shapes_and_never_fall_below_the_minimum(p_value):
    counts = multiply_counts(PAPER, "rhs_terms", p_value, 2)
    assert counts
    for count in counts:
        full = count.rows * count.inner * count.cols
        half = count.rows * (count.rows + 1) * count.inner // 2
        assert count.minimum <= count.generated <= full
        assert count.minimum in (full, half)
        if count.kind == "gemm":
            assert count.generated == count.minimum == full
        else:  # a symmetric result: each distinct entry once
            assert count.rows == count.cols and count.minimum == half
