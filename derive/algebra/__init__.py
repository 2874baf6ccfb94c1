"""Index-free matrix expressions (traces, products, Hadamard products), the contraction of tensor networks
into them, and their LaTeX/text rendering. Imports :mod:`derive.gauss` and :mod:`derive.model`.
"""
