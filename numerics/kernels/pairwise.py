"""Contract a tensor network pairwise with batched matrix products (BLAS), leading batch axes kept.

Every operand is an array ``(*batch, *dims)`` whose trailing axes carry one letter each
(a string ``letters``); the batch axes are shared (already broadcast). :func:`fold_plan`
chooses the order in which operands are combined, two at a time, and which letters each
intermediate keeps; :func:`run_plan` executes it. One fold of ``A`` (letters ``a``) and
``B`` (letters ``b``) keeping ``out`` is a single ``np.matmul``:

* letters in both operands and kept are batch letters (a stacked matrix product),
* letters in both and not kept are contracted (the inner dimension),
* letters of one operand only are its rows or columns (summed first when not kept).

This is what ``np.einsum`` does without BLAS whenever batch letters are present; for
large operands ``matmul`` is much faster, for tiny ones its fixed cost per call dominates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from math import prod

import numpy as np

Fold = tuple[int, int, str]


def fold_plan(terms: Sequence[str], output: str, sizes: dict[str, int], common: str = "") -> list[Fold]:
    """Greedy pairwise order: ``[(i, j, kept letters), ...]`` on a list where each result is appended.

    Parameters
    ----------
    terms
        Letters of each operand (after the batch axes).
    output
        Letters of the result, in order (all must occur in some operand).
    sizes
        Size of each letter. Among the pairs that share a letter outside ``common`` (all
        pairs when none do), the one with the smallest result is folded (then the one
        keeping fewer letters).
    common
        Letters every operand carries (a stacking axis): sharing them does not make a
        pair a contraction.
    """
    terms = list(terms)
    plan: list[Fold] = []
    common_letters = set(common)
    while len(terms) > 1:
        counts = Counter(c for t in terms for c in set(t))
        pairs = [(i, j) for i in range(len(terms)) for j in range(i + 1, len(terms))
                 if (set(terms[i]) & set(terms[j])) - common_letters]
        # no contraction left: outer products (of the smallest operands first)
        pairs = pairs or [(i, j) for i in range(len(terms)) for j in range(i + 1, len(terms))]
        best = None
        for i, j in pairs:
            union = set(terms[i]) | set(terms[j])
            # a letter is kept when the output or another operand still holds it
            kept = "".join(sorted(c for c in union
                                  if c in output or counts[c] - (c in terms[i]) - (c in terms[j]) > 0))
            key = (prod(sizes[c] for c in kept), len(kept))
            if best is None or key < best[0]:
                best = (key, i, j, kept)
        _, i, j, kept = best
        plan.append((i, j, kept))
        terms = [t for n, t in enumerate(terms) if n not in (i, j)] + [kept]
    return plan


def fold(A: np.ndarray, a: str, B: np.ndarray, b: str, kept: str, batch_ndim: int) -> tuple[np.ndarray, str]:
    """``sum over the letters not kept of A * B`` as one matrix product; returns the result and its letters."""
    A, a = _sum_out(A, a, set(b) | set(kept), batch_ndim)
    B, b = _sum_out(B, b, set(a) | set(kept), batch_ndim)
    stacked = [c for c in a if c in b and c in kept]
    inner = [c for c in a if c in b and c not in kept]
    rows = [c for c in a if c not in b]
    columns = [c for c in b if c not in a]
    lead = tuple(range(batch_ndim))
    A = np.transpose(A, lead + tuple(batch_ndim + a.index(c) for c in stacked + rows + inner))
    B = np.transpose(B, lead + tuple(batch_ndim + b.index(c) for c in stacked + inner + columns))
    batch_shape = A.shape[:batch_ndim]
    dims = {**{c: A.shape[batch_ndim + n] for n, c in enumerate(stacked + rows + inner)},
            **{c: B.shape[batch_ndim + n] for n, c in enumerate(stacked + inner + columns)}}
    s, r, i, c = (prod(dims[x] for x in group) for group in (stacked, rows, inner, columns))
    product = np.matmul(A.reshape(batch_shape + (s, r, i)), B.reshape(batch_shape + (s, i, c)))
    letters = "".join(stacked + rows + columns)
    return product.reshape(batch_shape + tuple(dims[x] for x in letters)), letters


def run_plan(operands: list[np.ndarray], terms: Sequence[str], plan: Sequence[Fold], output: str,
             batch_ndim: int) -> np.ndarray:
    """Execute :func:`fold_plan`'s folds; the result with its axes in ``output`` order."""
    operands, terms = list(operands), list(terms)
    for i, j, kept in plan:
        result, letters = fold(operands[i], terms[i], operands[j], terms[j], kept, batch_ndim)
        operands = [o for n, o in enumerate(operands) if n not in (i, j)] + [result]
        terms = [t for n, t in enumerate(terms) if n not in (i, j)] + [letters]
    result, letters = _sum_out(operands[0], terms[0], set(output), batch_ndim)
    lead = tuple(range(batch_ndim))
    return np.transpose(result, lead + tuple(batch_ndim + letters.index(c) for c in output))


def _sum_out(A: np.ndarray, letters: str, needed: set[str], batch_ndim: int) -> tuple[np.ndarray, str]:
    """Sum ``A`` over its letters outside ``needed``."""
    drop = tuple(batch_ndim + n for n, c in enumerate(letters) if c not in needed)
    if not drop:
        return A, letters
    return A.sum(axis=drop), "".join(c for c in letters if c in needed)


__all__ = ["fold", "fold_plan", "run_plan"]
