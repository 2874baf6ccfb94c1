"""The random draws of the exact overlap chain: what each block takes from which stream, and the chunks.

The expected blocks are rebuilt from fresh generators with the same seeds, in the order the
class docstring states: per chunk of blocks, all inputs normals (per block the ``size x P``
coordinates, then the Bartlett factor's normals below the diagonal row by row), the chi-squares
of the diagonals, then the label-noise normals.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerics.simulators.chain_draws import CHUNK_STEPS, BlockDraws


def _streams(replicas: int, seed: int):
    return [tuple(np.random.default_rng([seed, i, s]) for s in range(3)) for i in range(replicas)]


def _expected_blocks(sizes, P, dof, replica_streams):
    normals_rng, noise_rng, chi2_rng = replica_streams
    bartlett = [size for size in sizes if dof >= size]
    n_normals = sum(size * P + (size * (size - 1) // 2 if dof >= size else size * dof) for size in sizes)
    normals = normals_rng.standard_normal(n_normals)
    chi2 = chi2_rng.chisquare(np.concatenate([dof - np.arange(size) for size in bartlett])) if bartlett else []
    xi = noise_rng.standard_normal(sum(sizes))
    blocks, used, used_chi2, used_xi = [], 0, 0, 0
    for size in sizes:
        G = normals[used : used + size * P].reshape(size, P)
        used += size * P
        if dof >= size:
            L = np.zeros((size, size))
            for row in range(size):
                for col in range(row):
                    L[row, col] = normals[used]
                    used += 1
            L[np.diag_indices(size)] = np.sqrt(chi2[used_chi2 : used_chi2 + size])
            used_chi2 += size
            block = np.concatenate([G, L], axis=1)
        else:
            block = np.concatenate([G, normals[used : used + size * dof].reshape(size, dof)], axis=1)
            used += size * dof
        blocks.append((block, xi[used_xi : used_xi + size]))
        used_xi += size
    return blocks


@pytest.mark.parametrize("sizes, dof", [([3, 2, 3], 5), ([4, 1], 2)])
def test_blocks_take_their_draws_in_the_documented_order(sizes, dof):
    P, replicas = 2, 2
    draws = BlockDraws(_streams(replicas, 1), sizes, P=P, dof=dof, noise=True)
    got = [(inputs.copy(), xi.copy()) for inputs, xi in draws]
    assert len(got) == len(sizes)
    for i, replica_streams in enumerate(_streams(replicas, 1)):
        expected = _expected_blocks(sizes, P, dof, replica_streams)
        for (inputs, xi), (block, expected_xi), size in zip(got, expected, sizes):
            assert inputs.shape[1] == size
            np.testing.assert_array_equal(inputs[i, :, : block.shape[1]], block)
            assert not np.any(inputs[i, :, block.shape[1]:])
            np.testing.assert_array_equal(xi[i], expected_xi)


def test_without_label_noise_no_noise_is_drawn():
    draws = BlockDraws(_streams(1, 2), [2, 2], P=1, dof=4, noise=False)
    assert all(xi is None for _, xi in draws)


def test_chunks_cover_the_blocks_in_order_within_the_chunk_length():
    sizes = [100, 100, 100, 300, 50, 50, 200]
    draws = BlockDraws(_streams(1, 3), sizes, P=1, dof=1000, noise=False)
    assert draws.chunks[0][0] == 0 and draws.chunks[-1][1] == len(sizes)
    assert all(a[1] == b[0] for a, b in zip(draws.chunks, draws.chunks[1:]))
    for first, last in draws.chunks:
        assert last - first == 1 or sum(sizes[first:last]) <= CHUNK_STEPS
        # a chunk stops only where the next block would not fit
        if last < len(sizes):
            assert sum(sizes[first : last + 1]) > CHUNK_STEPS
