import time, sys
import numerics.kernels.network_plan as plan
from derive.model.model import Model
from numerics.runtime.registry import resolve
from bench.bench_noise import QUARTIC, HE3 if False else QUARTIC
plan.REFINEMENTS = int(sys.argv[1])
import numpy as np, numerics
m = Model(**QUARTIC)
Q=np.eye(2)*1.0; R=np.zeros((2,2))+0.1; T=np.eye(2)
numerics.increment_covariance(Q,R,T,eta=0.1,model=m)  # tables
from numerics.kernels import network_moments
ev = [v for v in vars(network_moments).values()]
import gc
# time the plan build directly
res = resolve(m, sizes=(2,2))
