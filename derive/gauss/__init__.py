"""Gaussian moments: Wick (Isserlis) counting, multigraphs up to symmetry, averages of indexed polynomials as
tensor networks, and the closed-form erf/relu kernels. Imports :mod:`derive.model` only.
"""
