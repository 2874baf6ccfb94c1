"""What is derived: the overlap-ODE right-hand sides and risk, the weight-space Hessian averages, the
increment moments of one SGD step and their network tables. Mathematics only; printing lives in
:mod:`derive.codegen`.
"""
