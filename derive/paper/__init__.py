"""The paper's results derived and checked: conservation of Omega, the plateau and its escape, the landscape's
closed forms, the erf/relu kernel equations, the explicit-index cross-check, and the equations document.
"""
