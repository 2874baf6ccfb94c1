"""The overlap ODE: right-hand sides and risk from generated code, readouts, initial conditions (Eq. 8) and the
adaptive integration.
"""
