"""Exact one-step increments of finite-N SGD from actual weights, and Monte Carlo z-scores of their covariance.

Independent of the toolkit: the step is written plainly from docs/model.md, so the generated
increment covariance can be checked against it.
"""

import numpy as np


def step_increments(rng, W, W_star, eta, samples, *, sigma, sigma_prime, sigma_star, a, b, eta_a=None,
                    chunk=2000, label_flip=0.0):
    """``q = N (Q' - Q)``, ``r = N (R' - R)`` (and ``s = N (a' - a)`` when ``eta_a`` is given) of one SGD step.

    ``sigma``, ``sigma_prime``, ``sigma_star`` act elementwise; ``a`` (scalar or length p) and ``b``
    (scalar or length k) are the readouts. ``q`` keeps ``|x|^2 / N`` exactly (finite N); no label
    noise, no weight decay; the first layer's step uses the readout before its own update. With
    ``label_flip`` each label is replaced by ``-y`` with that probability (drawn after the inputs).
    Shapes: ``q`` (samples, p, p), ``r`` (samples, p, k), ``s`` (samples, p).
    """
    p, N = W.shape
    k = W_star.shape[0]
    a = np.broadcast_to(np.asarray(a, dtype=float), (p,))
    b = np.broadcast_to(np.asarray(b, dtype=float), (k,))
    q_samples, r_samples, s_samples = [], [], []
    for _ in range(samples // chunk):
        X = rng.standard_normal((chunk, N))
        lam = X @ W.T / np.sqrt(N)
        nu = X @ W_star.T / np.sqrt(N)
        label = sigma_star(nu) @ b
        if label_flip:
            label = np.where(rng.random(chunk) < label_flip, -label, label)
        residual = label - sigma(lam) @ a
        E = residual[:, None] * a * sigma_prime(lam)
        rho = (X**2).sum(axis=1) / N
        q = eta * (E[:, :, None] * lam[:, None, :] + lam[:, :, None] * E[:, None, :])
        q_samples.append(q + eta**2 * rho[:, None, None] * E[:, :, None] * E[:, None, :])
        r_samples.append(eta * E[:, :, None] * nu[:, None, :])
        if eta_a is not None:
            s_samples.append(eta_a * residual[:, None] * sigma(lam))
    out = (np.concatenate(q_samples), np.concatenate(r_samples))
    return out + (np.concatenate(s_samples),) if eta_a is not None else out


def z_scores(samples_a, samples_b, predicted):
    """(sample covariance of the two increments - ``predicted``) / its standard error, entry by entry."""
    n = len(samples_a)
    a = samples_a.reshape(n, -1) - samples_a.reshape(n, -1).mean(axis=0)
    b = samples_b.reshape(n, -1) - samples_b.reshape(n, -1).mean(axis=0)
    products = a[:, :, None] * b[:, None, :]
    standard_error = products.std(axis=0) / np.sqrt(n)
    return (products.mean(axis=0) - predicted.reshape(products.shape[1:])) / standard_error



def largest_z_scores(samples, blocks):
    """The largest ``|z_scores|`` per block (``samples``: pairs of increments; ``blocks``: predicted covariances)."""
    return [float(np.max(np.abs(z_scores(x, y, block)))) for (x, y), block in zip(samples, blocks)]


def square(x):
    return x**2


def double(x):
    return 2 * x


def he3(x):
    return x**3 - 3 * x


def he3_prime(x):
    return 3 * x**2 - 3


#: ``sigma, sigma_prime, sigma_star`` of the paper model and of He3.
PAPER_ACTIVATIONS = dict(sigma=square, sigma_prime=double, sigma_star=square)
HE3_ACTIVATIONS = dict(sigma=he3, sigma_prime=he3_prime, sigma_star=he3)
