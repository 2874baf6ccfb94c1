"""The random draws of the exact overlap chain, block by block (:class:`BlockDraws`, :class:`FlipDraws`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Steps per block of the overlap chain (numerics.simulators.overlap_chain). The per-block work
#: (factorisation, draws, a few small products) is spread over s steps, but the batched s x s products cost O(s**2)
#: per step and replica: 16 balances one replica (where s = 32 is ~20 % faster) against
#: hundreds (where s = 32 is ~1.6x slower).
STEP_BLOCK = 16
#: Steps whose random draws are generated per generator call (amortises the calls; the
#: chunks follow the block sizes only, never the number of replicas).
CHUNK_STEPS = 256


class BlockDraws:
    """The random draws of every block, generated replica by replica a chunk of blocks at a time.

    A block of ``size`` inputs (steps times the mini-batch size) takes from a replica's ``inputs`` stream the
    ``size x P`` coordinates ``G`` then the ``size (size - 1) / 2`` normals
    below the diagonal of the Bartlett factor (row by row), from its
    ``chi2`` stream the ``size`` chi-squares of the diagonal, and from its
    ``noise`` stream ``size`` label-noise normals (when ``Delta > 0``). If
    ``N - P < size`` the block instead takes ``size x (N - P)`` normals for
    the orthogonal coordinates and no chi-squares. Drawing many blocks per
    generator call only amortises the call overhead; the chunks are set by the
    block sizes alone (:data:`CHUNK_STEPS`), never by the number of replicas.
    """

    def __init__(
        self,
        streams: Sequence[tuple[np.random.Generator, np.random.Generator, np.random.Generator]],
        sizes: Sequence[int],
        P: int,
        dof: int,
        noise: bool,
    ) -> None:
        self.streams, self.sizes, self.P, self.dof, self.noise = streams, list(sizes), P, dof, noise
        replicas = len(streams)
        s = max(self.sizes, default=1)
        self.inputs = np.zeros((replicas, s, P + min(s, dof)))
        self._index_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # chunks: runs of consecutive blocks of at most CHUNK_STEPS steps (at least one block)
        self.chunks = chunk_ranges(self.sizes)
        # each buffer as long as the longest use of it (a tuple max would compare lexicographically)
        counts = [self._counts(self.sizes[a:b]) for a, b in self.chunks] or [(0, 0, 0)]
        longest = tuple(max(column) for column in zip(*counts))
        self.normals = np.empty((replicas, longest[0]))
        self.chi2 = np.empty((replicas, longest[1]))
        self.xi = np.empty((replicas, longest[2]))

    def _indices(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # below-diagonal rows and columns, and the diagonal, of a size x size factor (cached)
        if size not in self._index_cache:
            rows, cols = np.tril_indices(size, -1)
            self._index_cache[size] = (rows, cols, np.arange(size))
        return self._index_cache[size]

    def _bartlett(self, size: int) -> bool:
        return self.dof >= size

    def _counts(self, sizes: Sequence[int]) -> tuple[int, int, int]:
        normals = chi2 = 0
        for size in sizes:
            if self._bartlett(size):
                normals += size * self.P + size * (size - 1) // 2
                chi2 += size
            else:
                normals += size * (self.P + self.dof)
        return normals, chi2, sum(sizes)

    def __iter__(self):
        """Yield ``(inputs, xi)`` of every block: shapes (B, size, P + m) and (B, size) or None."""
        P, dof = self.P, self.dof
        for first, last in self.chunks:
            sizes = self.sizes[first:last]
            n_normals, n_chi2, n_steps = self._counts(sizes)
            dofs = np.concatenate([dof - np.arange(size) for size in sizes if self._bartlett(size)] or [[]])
            for i, (normals, noise, chi2) in enumerate(self.streams):
                normals.standard_normal(out=self.normals[i, :n_normals])
                if n_chi2:
                    self.chi2[i, :n_chi2] = chi2.chisquare(dofs)
                if self.noise:
                    noise.standard_normal(out=self.xi[i, :n_steps])
            o_normal = o_chi2 = o_step = 0
            for size in sizes:
                block = self.inputs[:, :size]
                block[:, :, :P] = self.normals[:, o_normal : o_normal + size * P].reshape(-1, size, P)
                o_normal += size * P
                if self._bartlett(size):
                    rows, cols, diagonal = self._indices(size)
                    block[:, :, P:] = 0.0
                    block[:, rows, P + cols] = self.normals[:, o_normal : o_normal + rows.size]
                    block[:, diagonal, P + diagonal] = np.sqrt(self.chi2[:, o_chi2 : o_chi2 + size])
                    o_normal += rows.size
                    o_chi2 += size
                else:
                    orthogonal = self.normals[:, o_normal : o_normal + size * dof]
                    block[:, :, P : P + dof] = orthogonal.reshape(len(self.streams), size, dof)
                    o_normal += size * dof
                xi = self.xi[:, o_step : o_step + size] if self.noise else None
                o_step += size
                yield block, xi


class FlipDraws:
    """The label-flip signs of every block: ``-1`` with probability ``label_flip``, else ``+1``.

    Each replica draws its flips from its own generator (the chain's fifth seed child), a chunk of
    blocks at a time (:data:`CHUNK_STEPS` inputs, as :class:`BlockDraws`): uniforms ``u`` in the
    inputs' order, a flip where ``u < label_flip`` (as the weight simulator decides them). The flips
    are independent of the inputs and reproducible with the seed.

    Parameters
    ----------
    streams : sequence of numpy.random.Generator
        One generator per replica.
    sizes : sequence of int
        Inputs per block.
    label_flip : float
        The flip probability, in ``[0, 1/2]``.
    """

    def __init__(self, streams: Sequence[np.random.Generator], sizes: Sequence[int], label_flip: float) -> None:
        self.streams, self.sizes, self.label_flip = streams, list(sizes), label_flip

    def __iter__(self):
        """Yield the signs of every block, shape (B, size)."""
        for first, last in chunk_ranges(self.sizes):
            uniforms = np.stack([stream.random(sum(self.sizes[first:last])) for stream in self.streams])
            signs = np.where(uniforms < self.label_flip, -1.0, 1.0)
            offset = 0
            for size in self.sizes[first:last]:
                yield signs[:, offset : offset + size]
                offset += size


def chunk_ranges(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """``[(first, last), ...]``: runs of consecutive blocks of at most :data:`CHUNK_STEPS` steps (at least one)."""
    chunks = []
    first = 0
    while first < len(sizes):
        last, total = first, 0
        while last < len(sizes) and (last == first or total + sizes[last] <= CHUNK_STEPS):
            total += sizes[last]
            last += 1
        chunks.append((first, last))
        first = last
    return chunks


def block_steps(batch: int) -> int:
    """Steps per block for mini-batches of ``batch`` inputs: about :data:`STEP_BLOCK` inputs per block."""
    return max(1, STEP_BLOCK // batch)


def block_sizes(steps: np.ndarray, n_steps: int, block: int | None = None) -> list[int]:
    """Steps per block: blocks of ``block`` (default :data:`STEP_BLOCK`) steps, cut at every recorded step."""
    block = STEP_BLOCK if block is None else block
    sizes = []
    done = 0
    for target in [int(t) for t in steps if t > 0] + [n_steps]:
        while done < target:
            size = min(block, target - done)
            sizes.append(size)
            done += size
    return sizes


__all__ = ["CHUNK_STEPS", "STEP_BLOCK", "BlockDraws", "FlipDraws", "block_sizes", "block_steps", "chunk_ranges"]
