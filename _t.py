import numpy as np
from derive.model.model import Model
from numerics.kernels import relu_moments
from numerics.noise.fluctuations import increment_covariance
RELU_MODEL = Model(student_activation="relu(x)", teacher_activation="relu(x)")
rng = np.random.default_rng(31)
p, k, N, eta, eta_a = 2, 2, 200, 0.8, 0.6
a, b = np.array([1.0, -0.7]), np.array([1.1, 0.6])
W = rng.standard_normal((p, N)) * 0.9; W_star = rng.standard_normal((k, N))
Q, R, T = W @ W.T / N, W @ W_star.T / N, W_star @ W_star.T / N
bl = increment_covariance(Q, R, T, eta, model=RELU_MODEL, a=a, b=b, eta_a=eta_a)
probability = relu_moments.orthant_probability
calls=[0]
def f(rows):
    calls[0]+=1
    if len(rows) < 4: return probability(rows)
    return probability(rows[:2]) * probability(rows[2:])
relu_moments.orthant_probability = f
bl2 = increment_covariance(Q, R, T, eta, model=RELU_MODEL, a=a, b=b, eta_a=eta_a)
print(calls, [float(np.max(np.abs(x-y))) for x,y in zip(bl,bl2)], [float(np.max(np.abs(x))) for x in bl])
import sys; sys.path.insert(0,"tests"); sys.path.insert(0,"tests/numerics/noise")
from sgd_steps import z_scores
from test_tuple_fluctuations import _steps, RELU
relu_moments.orthant_probability = probability
q, r, s = _steps(rng, W, W_star, eta, eta_a, a, b, 100_000, RELU)
samples = ((q, q), (q, r), (r, r), (s, q), (s, r), (s, s))
def zs(blocks): return [round(float(np.max(np.abs(z_scores(x, y, bb)))),1) for (x, y), bb in zip(samples, blocks)]
print(zs(bl))
def g(rows):
    if len(rows) == 3: return 0.125 + 0*rows[0][...,0]
    return probability(rows)
relu_moments.orthant_probability = g
print("P3 arcsines dropped", zs(increment_covariance(Q, R, T, eta, model=RELU_MODEL, a=a, b=b, eta_a=eta_a)))
relu_moments.orthant_probability = f
print("P4 path dropped", zs(increment_covariance(Q, R, T, eta, model=RELU_MODEL, a=a, b=b, eta_a=eta_a)))
