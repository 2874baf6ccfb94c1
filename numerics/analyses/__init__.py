"""Analyses of the dynamics: the plateau and its escape, the symmetric fixed point, finite-N corrections, the
implicit bias, the weight-space landscape, Monte Carlo checks of generated code.
"""
