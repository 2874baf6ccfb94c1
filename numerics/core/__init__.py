"""Input checks that name the argument, BLAS thread control, activations as NumPy functions. The bottom layer
of :mod:`numerics`.
"""
