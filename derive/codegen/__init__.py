"""From derived expressions to plain NumPy modules: the functions a module exposes, the plan of its matrix
products, the printer, one printer entry per kind of module, and the header/digest of every generated file
(:mod:`derive.codegen.artefacts`, sympy-free, also used by the numerics' cache).
"""
