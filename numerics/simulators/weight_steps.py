"""Blocks of SGD steps on the N-dimensional weights of many replicas (the kernel of :func:`numerics.simulate`).

Within a block of ``s`` steps (:data:`STEP_BLOCK`) the student weights are
``W_t = d^t W_0 + sum_{tau < t} d^(t-1-tau) e_tau x_tau^T`` (``d`` the weight-decay factor,
``e_tau`` the step's update vector), so

    lambda_t = (d^t W_0 x_t + sum_{tau < t} d^(t-1-tau) e_tau (x_tau . x_t)) / sqrt(N):

one product ``X [W_0; W*; X]^T`` per replica gives the student and teacher pre-activations of
the block's inputs ``X`` and their Gram matrix (the inputs are drawn into the same array as
the weights, and used while they are still in cache); after the sequential ``O(p s**2)``
recursion for the ``e_t`` (batched over replicas), one in-place BLAS update ``W += e X``. The
squared student norms (divergence check) follow from the same products
(:mod:`numerics.simulators.weights` has the whole story).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg.blas import dgemm as _gemm

from numerics.core.activations import activation_functions
from numerics.ode.sphere import renormalise
from numerics.results.settings import RunSettings
from numerics.runtime.registry import ResolvedModel
from numerics.simulators.common import BLOWUP, ReplicaStreams, SimulationError

#: Steps per block. The block products cost (p + k + s) N multiplies per step and the update
#: p N, so the Gram part grows with s; a few steps are enough to amortise the per-block NumPy
#: calls (s = 2 ... 16 time the same within noise).
STEP_BLOCK = 8


class WeightBlocks:
    """The weights of every replica, advanced a block of SGD steps at a time.

    Parameters
    ----------
    W : array, shape (B, p, N)
        Initial student weights (copied into the block array).
    W_star : array, shape (B, k, N)
        Teacher weights.
    streams : sequence of ReplicaStreams
        The generators of every replica (inputs and label noise are drawn here).
    settings : RunSettings
        ``eta``, ``batch_size`` and ``eta_a`` of the run.
    resolved : ResolvedModel
        The run's model (activations, ``Delta``, ``kappa``).
    a : array, shape (B, p)
        Student readout per replica (updated in place when ``settings.eta_a > 0``).
    b : array, shape (B, k)
        Teacher readout per replica.
    """

    def __init__(
        self,
        W: np.ndarray,
        W_star: np.ndarray,
        streams: Sequence[ReplicaStreams],
        settings: RunSettings,
        resolved: ResolvedModel,
        a: np.ndarray,
        b: np.ndarray,
    ) -> None:
        replicas, p, N = W.shape
        k = W_star.shape[1]
        batch = settings.batch_size
        self.p, self.k, self.N, self.batch, self.streams, self.a, self.b = p, k, N, batch, streams, a, b
        self.eta, self.eta_a, self.readout_decay = settings.eta, settings.eta_a, settings.readout_decay
        module = resolved.module
        self.sigma, self.sigma_prime = activation_functions(module, "STUDENT")
        self.sigma_star, _ = activation_functions(module, "TEACHER")
        self.noise_std = float(np.sqrt(resolved.noise_variance))
        self.label_flip = resolved.label_flip
        self.decay = 1.0 - settings.eta * resolved.weight_decay / N
        self.spherical = settings.spherical
        self.sam_radius = settings.sam_radius
        if self.spherical:
            # renormalised, d w + e x points where w + (e / d) x does: the decay only rescales the step
            self.sphere_scale, self.decay = 1.0 / self.decay, 1.0
        self.W_star_T = np.ascontiguousarray(np.swapaxes(W_star, 1, 2))  # (B, N, k)
        self.T = W_star @ self.W_star_T / N  # (B, k, k): the teacher overlaps, fixed
        # steps per block: the block holds s * batch inputs, and its Gram part costs (s * batch) N per input
        self.s = s = max(1, STEP_BLOCK // batch)
        inputs_per_block = s * batch
        # one array per replica holding the students, the teachers and the block's inputs, so
        # one product X [W; W*; X]^T gives lambda, nu and the Gram matrix of the inputs
        self.V = np.empty((replicas, p + k + inputs_per_block, N))
        self.V[:, :p] = W
        self.V[:, p : p + k] = W_star
        self.W = self.V[:, :p]
        self.sqrt_n = np.sqrt(N)
        self.coefficient = settings.eta / (self.sqrt_n * batch)  # e_t = coefficient * residual * a * sigma'(lambda_t)
        if self.spherical:
            self.coefficient *= self.sphere_scale
        # weight decay inside a block: powers d^t, and the (tau, t) weights d^(t-1-tau) of the Gram
        # matrix; inputs of one step (same t) do not see each other's updates (weight 0)
        self.step_of = np.repeat(np.arange(s), batch)  # the step of each input of a block
        self.powers = self.decay ** np.arange(s + 1)
        lags = self.step_of[None, :] - self.step_of[:, None] - 1
        self.decay_weights = np.where(lags >= 0, self.decay ** np.maximum(lags, 0), 0.0)
        self.products = np.empty((replicas, inputs_per_block, p + k + inputs_per_block))  # X [W_0; W*; X]^T
        self.e = np.empty((replicas, p, inputs_per_block))  # update vectors, one column per input
        # squared student norms, tracked from the block products (no pass over W per block)
        self.norms = np.einsum("bpn,bpn->bp", self.W, self.W)
        self.sphere_norms = self.norms.copy()  # spherical SGD keeps these

    def measure(self) -> tuple[np.ndarray, np.ndarray]:
        """``Q`` (B, p, p) and ``R`` (B, p, k) of the current weights."""
        W, N = self.W, self.N
        return W @ np.swapaxes(W, 1, 2) / N, W @ self.W_star_T / N

    def _block_products(self, n_inputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # draw the block's inputs into V and form X [W_0; W*; X]^T; lambda_0, nu and x.x' / sqrt(N)
        p, k, V = self.p, self.k, self.V
        rows = p + k + n_inputs
        for i, stream in enumerate(self.streams):
            inputs = V[i, p + k : rows]
            stream.inputs.standard_normal(out=inputs)
            # while the inputs are in cache
            np.matmul(inputs, V[i, :rows].T, out=self.products[i, :n_inputs, :rows])
        block = self.products[:, :n_inputs]
        sqrt_n = self.sqrt_n
        lam0 = block[:, :, :p] / sqrt_n  # (B, size, p): W_0 x_t / sqrt(N)
        nu = block[:, :, p : p + k] / sqrt_n  # (B, size, k)
        overlap = block[:, :, p + k : rows] / sqrt_n  # (B, size, size): x_tau . x_t / sqrt(N)
        if self.decay != 1.0:
            lam0 *= self.powers[self.step_of[:n_inputs], None]
            overlap *= self.decay_weights[:n_inputs, :n_inputs]
        return block, lam0, nu, overlap

    def _update_vectors(
        self, size: int, lam0: np.ndarray, nu: np.ndarray, overlap: np.ndarray, input_norms: np.ndarray | None = None
    ) -> None:
        # the sequential recursion for the e_t of the block (and the trained readout's steps);
        # input_norms (B, n_inputs): |x|^2 / N of each input, for sharpness-aware steps
        batch, a, e, N = self.batch, self.a, self.e, self.N
        n_inputs = size * batch
        y = np.einsum("bk,btk->bt", self.b, self.sigma_star(nu))  # (B, n_inputs)
        if self.label_flip:
            flips = np.stack([st.noise.random(n_inputs) < self.label_flip for st in self.streams])
            y = np.where(flips, -y, y)
        if self.noise_std > 0:
            y = y + self.noise_std * np.stack([st.noise.standard_normal(n_inputs) for st in self.streams])
        # spherical SGD: W_t = C_t (W_0 + sum_tau e~_tau x_tau^T) with C_t the product of the steps'
        # renormalisations and e~_tau = e_tau / C_tau, so e holds the e~ and lambda_t carries C_t
        scale = np.ones(a.shape) if self.spherical else None
        for t in range(size):
            first, last = t * batch, (t + 1) * batch  # the inputs of step t
            lam = lam0[:, first:last]  # (B, batch, p)
            if t:
                lam = lam + np.swapaxes(e[:, :, :first] @ overlap[:, :first, first:last], 1, 2)
            if scale is not None:
                lam = lam * scale[:, None, :]
            activations = self.sigma(lam)  # (B, batch, p)
            residual = y[:, first:last] - np.einsum("bp,bsp->bs", a, activations)
            if self.sam_radius:
                # the gradient at the sample's own ascent point w_j - rho (eta / sqrt N) E_j x, where
                # lambda_j moves by -rho eta E_j |x|^2 / N and nu stays
                ascent = residual[..., None] * a[:, None, :] * self.sigma_prime(lam)
                lam = lam - (self.sam_radius * self.eta) * ascent * input_norms[:, first:last, None]
                residual = y[:, first:last] - np.einsum("bp,bsp->bs", a, self.sigma(lam))
            step = self.coefficient * np.swapaxes(residual[..., None] * a[:, None, :] * self.sigma_prime(lam), 1, 2)
            if scale is not None:
                factor = self._renormalisation(step, lam, overlap[:, first:last, first:last])
                step = step / scale[:, :, None]
                scale = scale * factor
            e[:, :, first:last] = step
            if self.eta_a:
                # the readout step averages the step's samples, with the weights and readout before it
                decay = (self.eta_a * self.readout_decay / N) * a if self.readout_decay else 0.0
                a += (self.eta_a / (N * batch)) * np.einsum("bs,bsp->bp", residual, activations) - decay

    def _renormalisation(self, step: np.ndarray, lam: np.ndarray, gram: np.ndarray) -> np.ndarray:
        """``|w_j| / |w_j + sum_b e_j^b x^b|`` (B, p) for students on their spheres (``|w_j|^2 = n*_j``)."""
        # |w + sum_b e^b x^b|^2 = n* + 2 sqrt(N) e . lambda + sqrt(N) e G e, G = x.x' / sqrt(N)
        sqrt_n = self.sqrt_n
        grown = (self.sphere_norms + 2 * sqrt_n * np.einsum("bps,bsp->bp", step, lam)
                 + sqrt_n * np.einsum("bps,bst,bpt->bp", step, gram, step))
        return np.sqrt(self.sphere_norms / grown)

    def advance(self, size: int, done: int) -> None:
        """Make ``size`` (<= ``self.s``) steps; ``done`` steps were made before (for the error message).

        Raises
        ------
        SimulationError
            If a squared student norm exceeds ``BLOWUP * N`` or is not finite.
        """
        p, k, N, V, W, powers = self.p, self.k, self.N, self.V, self.W, self.powers
        n_inputs = size * self.batch
        rows = p + k + n_inputs
        block, lam0, nu, overlap = self._block_products(n_inputs)
        input_norms = None
        if self.sam_radius:
            input_norms = np.diagonal(block[:, :, p + k : rows], axis1=1, axis2=2) / N
        self._update_vectors(size, lam0, nu, overlap, input_norms)
        updates = self.e[:, :, :n_inputs]
        if self.decay != 1.0:
            updates = updates * powers[size - 1 - self.step_of[:n_inputs]]
            W *= powers[size]
        # |w_j + u_j X|^2 = |w_j|^2 + 2 u_j X w_j + u_j X X^T u_j^T, all from the block products
        cross = np.einsum("bps,bsp->bp", updates, block[:, :, :p])
        gram = block[:, :, p + k : rows]
        norms = powers[size] ** 2 * self.norms + 2 * powers[size] * cross
        norms += np.einsum("bps,bst,bpt->bp", updates, gram, updates)
        self.norms = norms
        for i in range(W.shape[0]):
            # W_i^T += X_i^T u_i^T in place (BLAS gemm with beta = 1, no temporary)
            _gemm(1.0, V[i, p + k : rows].T, updates[i].T, beta=1.0, c=W[i].T, overwrite_c=True)
        if self.spherical:
            # W now holds W_0 + sum e~ x^T, a positive multiple of the renormalised weights
            renormalise(W, self.sphere_norms)
            self.norms = norms = self.sphere_norms.copy()
        largest = np.max(norms) / N
        if not np.isfinite(largest) or largest > BLOWUP:
            raise SimulationError(
                f"the student weights diverged (|w_j|^2 / N > {BLOWUP:g} or not finite) between "
                f"alpha = {done / N:.6g} and alpha = {(done + size) / N:.6g}: the learning rate "
                f"eta = {self.eta:g} is too large for this model and start"
            )


__all__ = ["STEP_BLOCK", "WeightBlocks"]
