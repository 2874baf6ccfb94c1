"""Input checks that name the argument, BLAS thread control, activations as NumPy functions, the machine's
memory. The bottom layer of :mod:`numerics`.
"""
