"""Print derived quantities into a plain NumPy module: the module source and its header.

Each function of :data:`derive.codegen.functions.FUNCTIONS` is planned by
:mod:`derive.codegen.plan` (matrix-product chains, one joint ``sympy.cse``) and printed
here with the printer of :mod:`derive.codegen.printer`. The ODE functions get an
unbatched branch for 2-d inputs besides the batched one; ``rhs_terms`` folds
the learning-rate coefficients into the scalar coefficient of every matrix
monomial, so ``dQ`` is one sum of distinct products, each scaled once. The
array helpers the printed code calls are the hand-written
:mod:`numerics.kernels.helpers`.

The header records two hashes: ``input-hash`` (the model and generator
version: what the module is keyed by) and ``result-hash`` (the canonical
``srepr`` of the symbolic result, independent of how sympy prints or
eliminates subexpressions), plus ``body-sha256`` of the printed code so a hand
edit is detected too.

Two layouts print the same functions. ``"full"`` (the committed modules) plans each
function on its own. ``"compact"`` plans the costly sum once, in ``rhs_terms``, and prints
``all_terms`` from it: ``diffusion_Q`` is ``rhs_terms`` at ``c_drift = c_noise = 0``,
``c_diffusion = 1`` (the zero coefficients add exact zeros), the drift comes from
``first_order_terms`` and ``noise_Q`` from a small planned function of its own,
``noise_terms``. The diffusion of a dense degree-6 activation has about 6,000 matrix
monomials; planning and printing them a second time was a third of its first use, while
``rhs_terms``, what the ODE calls, is unchanged. ``"auto"`` (the layout of a module
generated on first use, :data:`FIRST_USE_LAYOUT`) is compact from
:data:`COMPACT_FROM_TERMS` diffusion monomials on. The layouts agree to rounding (1e-12
relative in the tests).

The names other generators print with (:class:`NumpyPrinter`,
:func:`assignment`, :func:`runtime_import`, :data:`HEADER_MARK`) and the
planning entry points are importable from here too.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import sympy as sp

from derive.algebra.matrix_expr import Q, R, T, canonical_text

# the file-level helpers live in derive/codegen/artefacts.py (sympy-free, shared with the
# numerics cache loader); re-exported here for existing imports
from derive.codegen.artefacts import (
    HEADER_MARK,
    body_is_intact,
    generated_module_text,
    read_header,
    write_atomically,
)
from derive.codegen.functions import C_DIFFUSION, C_DRIFT, C_NOISE, FUNCTIONS, OUTPUT_SHAPES, FunctionSpec
from derive.codegen.plan import PRODUCTS, Plan, pair_transposes, plan_function
from derive.codegen.printer import (
    RUNTIME_HELPERS,
    RUNTIME_MODULE,
    SUM_CHUNK,
    NumpyPrinter,
    assignment,
    join_lines,
    runtime_import,
    sum_pieces,
)
from derive.model.model import Model, k, p
from derive.quantities.ode import QUANTITY_NAMES, derive_quantities

_BATCHED_TAILS = {(p, p): "Q.shape[-2:]", (p, k): "R.shape[-2:]", (sp.Integer(1), sp.Integer(1)): "(1, 1)"}
_UNBATCHED_SHAPES = {(p, p): "Q.shape", (p, k): "R.shape", (sp.Integer(1), sp.Integer(1)): "(1, 1)"}

#: Layouts of a generated module (see the module docstring).
LAYOUTS = ("full", "compact", "auto")
#: The layout of a module generated on first use (uncommitted models); the committed ones are ``"full"``.
FIRST_USE_LAYOUT = "auto"
#: ``"auto"`` prints the compact layout when ``diffusion_Q`` has at least this many matrix monomials
#: (with teacher x**2: 600 for the bench's dense degree-4 activation, 2,000 for degree 5, 6,000 for
#: degree 6; the paper model 14).
COMPACT_FROM_TERMS = 1000

#: The extra function of the compact layout: ``noise_Q`` alone (its ``all_terms`` calls it).
NOISE_SPEC = FunctionSpec("noise_terms", (), (("noise_Q", ((sp.Integer(1), "noise_Q"),)),), "noise_Q alone.")

# all_terms of the compact layout: the diffusion is rhs_terms with the other coefficients zero
_COMPACT_ALL_TERMS_BODY = (
    "drift_Q, drift_R = first_order_terms(Q, R, T)",
    "diffusion_Q = rhs_terms(Q, R, T, 0.0, 1.0, 0.0)[0]",
    "return drift_Q, drift_R, diffusion_Q, noise_terms(Q, R, T)",
)


def resolve_layout(layout: str, derived: dict) -> str:
    """``"full"`` or ``"compact"`` for ``layout`` and the derived quantities ``derived``.

    Raises
    ------
    ValueError
        For a layout not in :data:`LAYOUTS`.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown module layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    return "compact" if len(sp.Add.make_args(derived["diffusion_Q"])) >= COMPACT_FROM_TERMS else "full"


def result_hash(model: Model) -> str:
    """Hash of the canonical symbolic result (not of its printed form)."""
    derived = derive_quantities(model).as_dict()
    text = "\n".join(f"{name}={canonical_text(derived[name])}" for name in QUANTITY_NAMES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _DirectPrinter(NumpyPrinter):
    """:class:`NumpyPrinter` whose ``doprint`` prints the expression straight away.

    sympy's ``CodePrinter.doprint`` first rebuilds the whole expression (sympify, and a
    ``replace`` walk for unevaluated sub-expressions, which planned expressions never hold);
    for the ~10^4 small expressions of a high-degree module that was a third of the printing.
    The text is the same: whenever the printer would add declarations or
    "not supported" comments, the inherited ``doprint`` prints the expression instead.

    The two branches of a function print the same expressions, and those without a function
    call (``x3*x7``, ``Q**2``: most scalar coefficients) print the same in both: printers given
    one ``shared`` dictionary print each of those once.
    """

    def __init__(self, *, unbatched: bool = False, shared: dict | None = None) -> None:
        super().__init__(unbatched=unbatched)
        self.shared = shared

    def doprint(self, expr, assign_to=None):  # noqa: D102 - as NumpyPrinter.doprint
        if assign_to is not None or not isinstance(expr, sp.Basic):
            return super().doprint(expr, assign_to)
        if self.shared is not None and expr in self.shared:
            return self.shared[expr]
        self._not_supported = set()
        self._number_symbols = set()
        text = self._print(expr)
        if self._not_supported or self._number_symbols:
            return super().doprint(expr)
        if self.shared is not None and not calls_functions(expr):
            self.shared[expr] = text
        return text


def calls_functions(expr: sp.Basic) -> bool:
    """True when ``expr`` (a sympy expression) holds a function node: the unbatched branch prints
    those differently (array methods, float scalars); an expression without one prints the same
    in both branches."""
    return any(isinstance(node, sp.Function) for node in sp.preorder_traversal(expr))


def _output_sums(spec: FunctionSpec, plan: Plan) -> list[list[tuple[sp.Expr, sp.Expr]]]:
    """Each output's (coefficient, monomial) pairs after cse, transposed pairs merged (for both branches)."""
    sums, position = [], 0
    for terms in plan.collected:
        pairs = [(plan.reduced[position + 2 * i], plan.reduced[position + 2 * i + 1]) for i in range(len(terms))]
        position += 2 * len(terms)
        sums.append(pair_transposes(pairs))
    return sums


def _body(
    spec: FunctionSpec, plan: Plan, *, unbatched: bool, sums: list | None = None, shared: dict | None = None
) -> list[str]:
    """Statements computing and returning the outputs (unindented); ``sums`` as :func:`_output_sums` gives
    them, ``shared`` the texts both branches print alike (:class:`_DirectPrinter`)."""
    printer = _DirectPrinter(unbatched=unbatched, shared=shared)
    used = set().union(*[e.free_symbols for e in plan.reduced], *[e.free_symbols for _, e in plan.replacements])
    lines = []
    if p in used:
        lines.append("p = Q.shape[-1]")
    if k in used:
        lines.append("k = T.shape[-1]")
    for symbol, expr in plan.replacements:
        if isinstance(expr, sp.Add) and len(expr.args) > SUM_CHUNK:
            lines.extend(assignment(str(symbol), [" + " + printer.doprint(term) for term in expr.args]))
        else:
            lines.append(f"{symbol} = {printer.doprint(expr)}")
    if sums is None:
        sums = _output_sums(spec, plan)
    for (output, _), pairs, full in zip(spec.outputs, sums, plan.full):
        pieces = sum_pieces(printer, pairs, paired=True)
        if len(pieces) > SUM_CHUNK:
            lines.extend(assignment(output, pieces))
            value = output
        else:
            value = join_lines(pieces)
        out_shape = OUTPUT_SHAPES[output]
        if not unbatched:
            lines.append(f"{output} = _fill({value}, {_BATCHED_TAILS[out_shape]}, Q, R, T)")
        elif full:
            lines.append(f"{output} = {value}")
        else:
            lines.append(f"{output} = _full({value}, {_UNBATCHED_SHAPES[out_shape]})")
    names = [output for output, _ in spec.outputs]
    if names == ["residual_risk"]:
        lines.append("return residual_risk[..., 0, 0]")
    else:
        lines.append(f"return {', '.join(names)}")
    return lines


def _function_source(spec: FunctionSpec, derived: dict, layout: str = "full", planned_contractions: bool = True) -> str:
    signature = ", ".join(("Q", "R", "T") + spec.parameters)
    lines = [f"def {spec.name}({signature}):", f'    """{spec.doc}"""']
    if layout == "compact" and spec.name == "all_terms":
        lines.extend("    " + line for line in _COMPACT_ALL_TERMS_BODY)
        return "\n".join(lines) + "\n"
    plan = plan_function(spec, derived, planned_contractions=planned_contractions)
    sums, shared = _output_sums(spec, plan), {}
    if spec.fast_path:
        lines.append("    if Q.ndim == 2 and R.ndim == 2 and T.ndim == 2:")
        lines.extend("        " + line for line in _body(spec, plan, unbatched=True, sums=sums, shared=shared))
    lines.extend("    " + line for line in _body(spec, plan, unbatched=False, sums=sums, shared=shared))
    return "\n".join(lines) + "\n"


def _coefficients(polynomial: sp.Expr) -> tuple[float, ...]:
    from derive.model.model import x

    return tuple(float(c) for c in reversed(sp.Poly(polynomial, x).all_coeffs()))


def _model_constants(model: Model) -> str:
    """Activation coefficients and readouts, so simulators need no sympy."""
    printer = NumpyPrinter()
    return "\n".join(
        [
            "# activation polynomials, coefficients of x**0, x**1, ...",
            f"STUDENT_ACTIVATION = {_coefficients(model.student_activation)!r}",
            f"TEACHER_ACTIVATION = {_coefficients(model.teacher_activation)!r}",
            "",
            "",
            "def readouts(p, k):",
            '    """Second-layer weights (a, b) shared by all student / teacher units."""',
            f"    return float({printer.doprint(model.student_readout)}), "
            f"float({printer.doprint(model.teacher_readout)})",
            "",
        ]
    )


@dataclass(frozen=True)
class GeneratedModule:
    """Source text of a generated module and the hashes in its header."""

    source: str
    input_hash: str
    result_hash: str


def generate_module(model: Model, layout: str = "full", *, planned_contractions: bool = True) -> GeneratedModule:
    """Derive and print the NumPy module for ``model``.

    Parameters
    ----------
    model : Model
        A polynomial model.
    layout : str
        ``"full"`` (default; the committed modules), ``"compact"`` or ``"auto"``
        (:data:`LAYOUTS`, module docstring). Every layout defines the functions of
        :data:`FUNCTIONS` (the compact one also ``noise_terms``), with outputs that agree
        to rounding: ``(p, p)`` and ``(p, k)`` arrays (with any leading batch axes) and the
        risk of shape ``(...)``.
    planned_contractions : bool
        ``False`` prints the tensor networks without a matrix-product form as one
        multi-operand einsum each (the route before generator version 8: a benchmark
        baseline only, its header is that of the planned module).

    Returns
    -------
    GeneratedModule
        The module's source text and the hashes of its header.

    Raises
    ------
    ValueError
        For an unknown layout, or a model with erf or relu units.
    """
    with _cyclic_gc_paused():
        return _generate_module(model, layout, planned_contractions)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (restored after it, even on error).

    Deriving a degree-6 model allocates hundreds of thousands of sympy objects, and the
    collector's passes over them were about 8% of its CPU time; without them the peak memory
    grows by a few MB (cycles left are collected afterwards, as usual).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _generate_module(model: Model, layout: str, planned_contractions: bool) -> GeneratedModule:
    derived = derive_quantities(model).as_dict()
    layout = resolve_layout(layout, derived)
    res_hash = result_hash(model)
    body_parts = [runtime_import()]
    for spec in FUNCTIONS + ((NOISE_SPEC,) if layout == "compact" else ()):
        body_parts.append(_function_source(spec, derived, layout, planned_contractions))
    body_parts.append(_model_constants(model))
    body_parts.append(
        "MODEL_DESCRIPTION = " + repr(model.describe()) + "\n"
        f"INPUT_HASH = {model.codegen_hash()!r}\n"
        f"RESULT_HASH = {res_hash!r}\n"
    )
    body = "\n\n".join(body_parts)
    text = generated_module_text(
        body,
        about=["# Generated by wickode's derive package from the model:"],
        model=model,
        input_hash=model.codegen_hash(),
        result_hash=res_hash,
        docstring='Generated overlap-ODE terms and population risk (see header).',
    )
    return GeneratedModule(text, model.codegen_hash(), res_hash)


__all__ = [
    "C_DIFFUSION",
    "C_DRIFT",
    "COMPACT_FROM_TERMS",
    "C_NOISE",
    "FIRST_USE_LAYOUT",
    "FUNCTIONS",
    "HEADER_MARK",
    "LAYOUTS",
    "NOISE_SPEC",
    "OUTPUT_SHAPES",
    "PRODUCTS",
    "RUNTIME_HELPERS",
    "RUNTIME_MODULE",
    "SUM_CHUNK",
    "FunctionSpec",
    "GeneratedModule",
    "body_is_intact",
    "canonical_text",
    "generate_module",
    "plan_function",
    "read_header",
    "resolve_layout",
    "result_hash",
    "runtime_import",
    "write_atomically",
    "Q",
    "R",
    "T",
]
