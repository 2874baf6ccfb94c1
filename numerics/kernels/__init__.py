"""Hand-written array code the generated modules call: the runtime helpers of printed code, per-tuple
evaluation, the relu quadrature, and the contraction of network tables.
"""
