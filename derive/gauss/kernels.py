"""Gaussian averages of products of one-variable functions over a small covariance block, in closed form.

For ``z ~ N(0, C)`` with ``C`` an ``n x n`` block (``n <= 4``) and one function
per slot (a polynomial, ``erf(s z)`` or ``relu(z)``, possibly differentiated),
:func:`block_average` returns ``E[prod_a f_a(z_a)]`` as a straight-line program
in the entries ``c_ab`` of the block. Three steps, each exact:

1. **Polynomial vertices are contracted** onto the others by Gaussian integration
   by parts (the multigraph formula of :mod:`derive.gauss.vertex`, with edges only
   between pairs that contain a polynomial): ::

       E[F(z_S) prod_{b in P} P_b(z_b)]
           = sum_M prod_{edges} c_ab**M_ab / M_ab!  prod_{b in P} E[P_b^(d_b)(u_b)]
             * E[prod_{a in S} f_a^(d_a)(z_a)],

   ``u_b ~ N(0, c_bb)``, ``d`` the degrees of the multigraph ``M``; edges between
   two non-polynomial slots are not expanded (they stay in the covariance).

2. **erf vertices with a derivative are Gaussians** times Hermite polynomials:
   with ``sigma(w) = erf(w / sqrt(2))``,
   ``sigma^(n)(w) = sqrt(2/pi) (-1)**(n-1) He_{n-1}(w) exp(-w**2/2)`` (``n >= 1``).
   The Gaussian factors of the set ``G`` of differentiated slots tilt the measure:
   ``E_K[prod_G exp(-w_a**2/2) h(w)] = det(I + K_GG)**(-1/2) E_K'[h(w)]`` with
   ``K' = K - K_{.G} (I + K_GG)^-1 K_{G.}`` (valid for singular ``K``). The
   Hermite polynomials are then polynomial vertices under ``K'`` and step 1
   applies again; every round removes the slots of ``G``.
3. **What is left** is the average of plain erfs, ``0`` for one or three of them
   (odd), and for two the arcsine law
   ``E[sigma(w_1) sigma(w_2)] = (2/pi) arcsin(K_12 / sqrt((1 + K_11)(1 + K_22)))``;
   four are left as the function :data:`ERF_ERF_ERF_ERF` (a path quadrature).
   relu vertices (``relu``, ``theta = relu'``, ``delta = relu''``, ...) have
   closed forms for one slot and for two slots up to ``delta`` (arc-cosine
   kernels); ``E[theta theta relu relu]`` (the eta**2 term of relu networks) is
   left as the function :data:`THETA_THETA_RELU_RELU`, evaluated by the
   deterministic quadrature of :mod:`numerics.kernels.relu_quadrature`; other relu
   products have none here, and :class:`MissingAverage` names the average. ``sign``
   (teachers: classification labels) is the limit of ``erf(s z)`` for ``s -> oo``: plain
   sign slots take the arcsine law without the ``1`` of the erf regularisation,
   ``E[sigma(w_1) sign(w_2)] = (2/pi) arcsin(K_12 / sqrt((1 + K_11) K_22))``, and a
   differentiated one, ``sign^(o) = 2 delta^(o-1)``, conditions the rest on ``w = 0``.

The program is a list of assignments ``(symbol, expression)`` followed by the
result, so nested tilts do not blow up into one huge expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import factorial

import sympy as sp

from derive.gauss.vertex import derivative_moments
from derive.model.activations import Activation

#: Largest block handled (the eta**2 term needs 4 x 4 blocks; the increment moments of the overlaps
#: have two more, linear, slots: :mod:`derive.codegen.tuples`).
MAX_SLOTS = 6


#: ``E[theta(z0) theta(z1) relu(z2) relu(z3)]`` as a function of the block entries ``c_ab`` (a <= b):
#: evaluated by the deterministic quadrature of :mod:`numerics.kernels.relu_quadrature` (no closed form).
THETA_THETA_RELU_RELU = sp.Function("theta_theta_relu_relu")

#: ``E[sigma(w0) sigma(w1) sigma(w2) sigma(w3)]``, ``sigma(w) = erf(w / sqrt(2))``, ``w ~ N(0, K)``, as a function of
#: the entries ``K_ab`` (a <= b): evaluated by the path quadrature of :mod:`numerics.kernels.tuple_moments`
#: (four plain erfs have no closed form; their Price derivatives do).
ERF_ERF_ERF_ERF = sp.Function("erf_erf_erf_erf")


class MissingAverage(ValueError):
    """No closed form for a Gaussian average; the message names it."""


@dataclass(frozen=True)
class Vertex:
    """One slot of a product: an activation differentiated ``order`` times."""

    activation: Activation
    order: int = 0

    def describe(self) -> str:
        kind = self.activation.kind
        if kind == "polynomial":
            x = sp.Symbol("x")
            poly = sum(c * x**n for n, c in enumerate(self.activation.coefficients))
            return str(sp.diff(poly, x, self.order)) if self.order else str(poly)
        if kind == "erf":
            name = f"erf({self.activation.scale}*x)"
        elif kind == "sign":
            name = "sign(x)"
        else:
            name = "relu(x)"
        return name + "'" * self.order if self.order <= 3 else f"{name}^({self.order})"


def covariance_symbols(n: int) -> list[list[sp.Symbol]]:
    """Symmetric matrix of symbols ``c<a><b>`` (``a <= b``), the block entries a kernel takes."""
    symbols = {(a, b): sp.Symbol(f"c{a}{b}", real=True) for a in range(n) for b in range(a, n)}
    return [[symbols[min(a, b), max(a, b)] for b in range(n)] for a in range(n)]


@dataclass
class Program:
    """A straight-line program: ``assignments`` in order, then ``result``."""

    assignments: list[tuple[sp.Symbol, sp.Expr]] = field(default_factory=list)
    result: sp.Expr = sp.Integer(0)

    def fresh(self, expr: sp.Expr, prefix: str = "t") -> sp.Expr:
        """A new symbol standing for ``expr`` (``expr`` itself when it is a symbol or a number)."""
        if expr.is_Symbol or expr.is_Number:
            return expr
        symbol = sp.Symbol(f"{prefix}{len(self.assignments)}", real=True)
        self.assignments.append((symbol, expr))
        return symbol

    def pruned(self) -> Program:
        """The same program without the assignments the result does not use."""
        needed = set(self.result.free_symbols)
        kept = []
        for symbol, value in reversed(self.assignments):
            if symbol in needed:
                kept.append((symbol, value))
                needed |= value.free_symbols
        return Program(list(reversed(kept)), self.result)

    def inline(self) -> sp.Expr:
        """The result with every assignment substituted.

        Forward substitution: each value is inlined once, in order, so every
        subexpression is rebuilt once (substituting from the last assignment back
        rebuilds the growing expression once per assignment).
        """
        inlined: dict[sp.Symbol, sp.Expr] = {}
        for symbol, value in self.assignments:
            inlined[symbol] = value.xreplace(inlined)
        return self.result.xreplace(inlined)

    def canonical(self) -> str:
        """Printer-independent text of the program (enters the generated module's result hash)."""
        lines = [f"{s}={sp.srepr(e)}" for s, e in self.assignments]
        return "\n".join(lines + [f"result={sp.srepr(self.result)}"])


def _polynomial_derivative(coefficients: tuple, order: int) -> tuple:
    out = list(coefficients)
    for _ in range(order):
        out = [n * c for n, c in enumerate(out)][1:]
    return tuple(out) or (sp.Integer(0),)


def _edge_multiplicities(poly: list[bool], caps: list[int]):
    """Multiplicities of the edges ``(a, b)`` (``a < b``, at least one polynomial end), as dicts."""
    n = len(poly)
    edges = [(a, b) for a in range(n) for b in range(a + 1, n) if poly[a] or poly[b]]

    def recurse(i: int, remaining: list[int], chosen: dict):
        if i == len(edges):
            yield dict(chosen)
            return
        a, b = edges[i]
        top = min(remaining[a], remaining[b])
        for m in range(top + 1):
            if m:
                chosen[(a, b)] = m
            remaining[a] -= m
            remaining[b] -= m
            yield from recurse(i + 1, remaining, chosen)
            remaining[a] += m
            remaining[b] += m
            chosen.pop((a, b), None)

    yield from recurse(0, list(caps), {})


def _average(vertices: list[Vertex], K: list[list[sp.Expr]], program: Program) -> sp.Expr:
    """``E[prod f_a(w_a)]`` for ``w ~ N(0, K)``; erf vertices are in the sigma convention (scale 1/sqrt(2))."""
    n = len(vertices)
    if n == 0:
        return sp.Integer(1)
    poly = [v.activation.kind == "polynomial" for v in vertices]
    coefficients = [
        _polynomial_derivative(v.activation.coefficients, v.order) if poly[a] else () for a, v in enumerate(vertices)
    ]
    big = 10**6
    caps = [len(c) - 1 if poly[a] else big for a, c in enumerate(coefficients)]
    if not any(poly):
        return _special_average(vertices, K, program)
    total = sp.Integer(0)
    special = [a for a in range(n) if not poly[a]]
    for edges in _edge_multiplicities(poly, caps):
        degrees = [0] * n
        weight = sp.Integer(1)
        for (a, b), m in edges.items():
            degrees[a] += m
            degrees[b] += m
            weight = weight * K[a][b] ** m / factorial(m)
        # polynomial vertex factors E[P^(d)(u)], u ~ N(0, K_aa)
        for a in range(n):
            if not poly[a]:
                continue
            moments = derivative_moments(coefficients[a], degrees[a])
            weight = weight * sum((c * K[a][a] ** t for t, c in moments), sp.Integer(0))
        if weight == 0:
            continue
        rest = [Vertex(vertices[a].activation, vertices[a].order + degrees[a]) for a in special]
        block = [[K[a][b] for b in special] for a in special]
        total += weight * _special_average(rest, block, program)
    return total


def _special_average(vertices: list[Vertex], K: list[list[sp.Expr]], program: Program) -> sp.Expr:
    kinds = {v.activation.kind for v in vertices}
    if not vertices:
        return sp.Integer(1)
    if kinds <= {"erf", "sign"}:
        signs = [a for a, v in enumerate(vertices) if v.activation.kind == "sign" and v.order]
        if signs:
            return _sign_derivative_average(vertices, K, program, signs[0])
        return _erf_average(vertices, K, program)
    if kinds == {"relu"}:
        return _relu_average(vertices, K, program)
    raise MissingAverage(
        f"no closed form for the Gaussian average of a product of {' and '.join(sorted(kinds))} units: E["
        + " * ".join(v.describe() for v in vertices)
        + "]"
    )


SQRT_2_OVER_PI = sp.sqrt(2 / sp.pi)


def _hermite_coefficients(m: int) -> tuple:
    """Coefficients of the probabilists' Hermite polynomial He_m, ascending."""
    x = sp.Symbol("x")
    return tuple(reversed(sp.Poly(sp.hermite_prob(m, x), x).all_coeffs()))


def _derivative_spreads(counts: int, slots: int):
    """Every way to spread ``counts`` derivatives over ``slots`` slots, with its multinomial coefficient."""
    if slots == 0:
        if counts == 0:
            yield (), 1
        return
    for first in range(counts + 1):
        for rest, weight in _derivative_spreads(counts - first, slots - 1):
            yield (first, *rest), weight * sp.binomial(counts, first)


def _sign_derivative_average(vertices: list[Vertex], K: list[list[sp.Expr]], program: Program, s: int) -> sp.Expr:
    """Average with ``sign^(o)(w_s) = 2 delta^(o-1)(w_s)``, ``o >= 1``, by conditioning on ``w_s = 0``.

    With ``g(w) = E[h(w_rest) | w_s = w]``, ``w_rest | w_s = w`` Gaussian with mean ``mu w``
    (``mu = K_{rest,s} / K_ss``) and covariance ``K' = K_rr - K_rs K_sr / K_ss``:
    ``E[delta^(m)(w_s) h] = (-1)^m sum_j binom(m, j) p^(m-j)(0) g^(j)(0)``, ``p`` the density of
    ``w_s``, ``p^(i)(0) = (-1)^i K_ss^(-i/2) He_i(0) p(0)`` and ``g^(j)(0) = E'[(mu . grad)^j h]``:
    the derivatives go onto the other slots.
    """
    m = vertices[s].order - 1
    variance = K[s][s]
    rest = [a for a in range(len(vertices)) if a != s]
    conditional = [[program.fresh(K[a][b] - K[a][s] * K[s][b] / variance) for b in rest] for a in rest]
    slopes = [program.fresh(K[a][s] / variance) for a in rest]
    density = program.fresh(1 / sp.sqrt(2 * sp.pi * variance))
    total = sp.Integer(0)
    for j in range(m + 1):
        hermite = _hermite_coefficients(m - j)[0]  # He_{m-j}(0)
        if hermite == 0:
            continue
        density_derivative = (-1) ** (m - j) * hermite * density / sp.sqrt(variance) ** (m - j)
        for spread, weight in _derivative_spreads(j, len(rest)):
            factor = weight * density_derivative
            for slope, count in zip(slopes, spread):
                factor *= slope**count
            moved = [Vertex(vertices[a].activation, vertices[a].order + count) for a, count in zip(rest, spread)]
            total += sp.binomial(m, j) * factor * _special_average(moved, conditional, program)
    return 2 * (-1) ** m * total


def _regulariser(vertex: Vertex) -> sp.Expr:
    # sigma(w) = erf(w / sqrt 2) = E_g[sign(w + g)], g ~ N(0, 1): the 1 is the variance of g; sign has none
    return sp.Integer(0) if vertex.activation.kind == "sign" else sp.Integer(1)


def _erf_average(vertices: list[Vertex], K: list[list[sp.Expr]], program: Program) -> sp.Expr:
    n = len(vertices)
    tilted = [a for a in range(n) if vertices[a].order >= 1]
    plain = [a for a in range(n) if vertices[a].order == 0]
    if not tilted:
        if n % 2:
            return sp.Integer(0)  # sigma is odd
        if n == 2:
            argument = K[0][1] / sp.sqrt((_regulariser(vertices[0]) + K[0][0]) * (_regulariser(vertices[1]) + K[1][1]))
            return 2 / sp.pi * sp.asin(program.fresh(argument))
        if n == 4 and not any(v.activation.kind == "sign" for v in vertices):
            return ERF_ERF_ERF_ERF(*(K[a][b] for a in range(4) for b in range(a, 4)))
        raise MissingAverage(
            f"no closed form for the Gaussian average of {n} erf units without derivatives: E["
            + " * ".join(v.describe() for v in vertices)
            + "]"
        )
    g = len(tilted)
    # I + K_GG, its determinant and inverse (as fresh symbols)
    shifted = sp.Matrix(g, g, lambda i, j: K[tilted[i]][tilted[j]] + (1 if i == j else 0))
    determinant = program.fresh(sp.expand(shifted.det(method="berkowitz")) if g > 1 else shifted[0, 0])
    adjugate = shifted.adjugate() if g > 1 else sp.Matrix([[1]])
    inverse = [[adjugate[i, j] / determinant for j in range(g)] for i in range(g)]
    order = tilted + plain
    new_K = [[None] * n for _ in range(n)]
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            if j < i:
                new_K[i][j] = new_K[j][i]
                continue
            correction = sum(
                (K[a][tilted[r]] * inverse[r][s] * K[tilted[s]][b] for r in range(g) for s in range(g)),
                sp.Integer(0),
            )
            new_K[i][j] = program.fresh(K[a][b] - correction)
    prefactor = sp.Integer(1)
    for a in tilted:
        prefactor *= SQRT_2_OVER_PI * (-1) ** (vertices[a].order - 1)
    prefactor /= sp.sqrt(determinant)
    rest = [
        Vertex(Activation("polynomial", coefficients=_hermite_coefficients(vertices[a].order - 1)))
        for a in tilted
    ] + [vertices[a] for a in plain]
    return prefactor * _average(rest, new_K, program)


def _relu_average(vertices: list[Vertex], K: list[list[sp.Expr]], program: Program) -> sp.Expr:
    n = len(vertices)
    orders = [v.order for v in vertices]
    if n == 1:
        variance = K[0][0]
        d = orders[0]
        if d == 0:
            return sp.sqrt(variance) / sp.sqrt(2 * sp.pi)
        if d == 1:
            return sp.Rational(1, 2)
        # E[delta^(m)(u)] = He_m(0) v**(-m/2) / sqrt(2 pi v), m = d - 2
        m = d - 2
        return sp.hermite_prob(m, 0) * variance ** (-sp.Rational(m, 2)) / sp.sqrt(2 * sp.pi * variance)
    if n == 2 and max(orders) <= 2:
        # order the pair so that the first has the lower order
        if orders[0] > orders[1]:
            vertices = vertices[::-1]
            K = [[K[1][1], K[1][0]], [K[0][1], K[0][0]]]
            orders = orders[::-1]
        u, uv, v = K[0][0], K[0][1], K[1][1]
        gram = program.fresh(u * v - uv**2)  # determinant of the block, >= 0
        root = sp.sqrt(gram)
        if orders == [0, 0]:
            # arc-cosine kernel of degree 1
            angle = sp.acos(program.fresh(uv / sp.sqrt(u * v)))
            return (root + uv * (sp.pi - angle)) / (2 * sp.pi)
        if orders == [0, 1]:
            # E[u theta(u) theta(v)] by Stein's lemma: u E[delta(u) theta(v)] + uv E[theta(u) delta(v)]
            return (sp.sqrt(u) + uv / sp.sqrt(v)) / (2 * sp.sqrt(2 * sp.pi))
        if orders == [1, 1]:
            return sp.Rational(1, 4) + sp.asin(program.fresh(uv / sp.sqrt(u * v))) / (2 * sp.pi)
        if orders == [0, 2]:
            # density of v at 0 times E[relu(u) | v = 0]
            return root / (2 * sp.pi * v)
        if orders == [1, 2]:
            return 1 / (2 * sp.sqrt(2 * sp.pi * v))
        if orders == [2, 2]:
            return 1 / (2 * sp.pi * root)
    if n == 4 and sorted(orders) == [0, 0, 1, 1]:
        # no closed form (a four-variate orthant probability): numerics/kernels/relu_quadrature.py
        order = [a for a in range(4) if orders[a] == 1] + [a for a in range(4) if orders[a] == 0]
        entries = [K[order[a]][order[b]] for a in range(4) for b in range(a, 4)]
        return THETA_THETA_RELU_RELU(*entries)
    raise MissingAverage(
        "no closed form for the Gaussian average of relu units E["
        + " * ".join(v.describe() for v in vertices)
        + "] (closed forms exist for one relu slot and for two with at most two derivatives each)"
    )


def _scaled(vertices: list[Vertex], C: list[list[sp.Expr]]) -> tuple[list[Vertex], list[list[sp.Expr]], sp.Expr]:
    """erf(s z) as sigma(t z), t = sqrt(2) s: vertices in the sigma convention, the rescaled block, the factor."""
    t = [sp.sqrt(2) * v.activation.scale if v.activation.kind == "erf" else sp.Integer(1) for v in vertices]
    factor = sp.Integer(1)
    for v, scale in zip(vertices, t):
        factor *= scale**v.order
    n = len(vertices)
    K = [[t[a] * t[b] * C[a][b] if t[a] != 1 or t[b] != 1 else C[a][b] for b in range(n)] for a in range(n)]
    return vertices, K, factor


def block_average(vertices: tuple[Vertex, ...]) -> Program:
    """``E[prod_a f_a(z_a)]`` over ``z ~ N(0, C)`` as a program in the symbols of :func:`covariance_symbols`.

    Parameters
    ----------
    vertices
        One :class:`Vertex` per slot (at most :data:`MAX_SLOTS`).

    Returns
    -------
    Program
        Assignments and a result in the entries ``c<a><b>`` of the block.

    Raises
    ------
    MissingAverage
        When the average has no closed form here; the message names it.
    """
    if not 1 <= len(vertices) <= MAX_SLOTS:
        raise ValueError(f"block_average takes 1 to {MAX_SLOTS} slots, got {len(vertices)}")
    C = covariance_symbols(len(vertices))
    program = Program()
    vertices, K, factor = _scaled(list(vertices), C)
    n = len(K)
    K = [[program.fresh(sp.expand(K[a][b])) if K[a][b] != C[a][b] else C[a][b] for b in range(n)] for a in range(n)]
    program.result = factor * _average(list(vertices), K, program)
    return program.pruned()


__all__ = ["ERF_ERF_ERF_ERF", "MAX_SLOTS", "MissingAverage", "Program", "Vertex", "block_average", "covariance_symbols"]
