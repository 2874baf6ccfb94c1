"""Finite-N one-pass SGD three ways: on the weights, on the overlaps alone (exact chain), and the diffusion
approximation (SDE); the shared replica streams and result assembly.
"""
