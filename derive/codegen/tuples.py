"""The model's averages as sums over index tuples of small-block kernels, and the module that evaluates them.

With units ``u`` running over the p students and then the k teachers,
``z = (lambda, nu) ~ N(0, C)``, ``C = [[Q, R], [R^T, T]]``, per-unit readouts
``a`` (length p) and ``b`` (length k), ``c = (-a, b)`` and ``g_u`` the activation of
unit ``u`` (``sigma`` for students, ``sigma*`` for teachers), the residual is
``y0 - f = sum_u c_u g_u(z_u)`` and every quantity of :mod:`derive.quantities.ode`
is a sum over index tuples of averages of products of one-variable functions:

    drift_R[j, r]     = a_j sum_u c_u <sigma'(z_j) nu_r g_u(z_u)>
    drift_Q[j, l]     = a_j sum_u c_u <sigma'(z_j) lambda_l g_u(z_u)> + (j <-> l)
    diffusion_Q[j, l] = a_j a_l sum_{u, v} c_u c_v <sigma'(z_j) sigma'(z_l) g_u(z_u) g_v(z_v)>
    noise_Q[j, l]     = a_j a_l <sigma'(z_j) sigma'(z_l)>
    residual_risk     = 1/2 sum_{u, v} c_u c_v <g_u(z_u) g_v(z_v)>
    readout_drift[j]  = sum_u c_u <sigma(z_j) g_u(z_u)>   (da_j/dalpha = eta_a readout_drift[j])

and the increment moments of :mod:`numerics.noise.tuple_fluctuations` (``x``, ``y`` any units):

    <E_j z_x E_i z_y>         = a_j a_i sum_{u, v} c_u c_v <sigma'(z_j) sigma'(z_i) z_x z_y g_u g_v> + Delta ...
    <sigma_j (y - f) E_m z_x> = a_m sum_{u, v} c_u c_v <sigma(z_j) sigma'(z_m) z_x g_u g_v> + Delta ...
    <sigma_j sigma_m (y - f)**2> = sum_{u, v} c_u c_v <sigma(z_j) sigma(z_m) g_u g_v> + Delta ...

Each average depends only on the 2 x 2 to 6 x 6 sub-block of ``C`` of
the units involved (repeated indices give singular blocks, which every kernel
accepts). :data:`KERNELS` lists the distinct averages by the functions in their
slots; :func:`derive.gauss.kernels.block_average` gives each in closed form (Wick
counting for polynomial slots, the erf and relu forms otherwise), and
:func:`generate_tuple_module` prints them as element-wise NumPy functions of the
block entries. The gathering of the blocks for all index tuples at once and the
contraction with the readouts are done by :mod:`numerics.kernels.unit_tuples`.
"""

from __future__ import annotations

import hashlib

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from derive.codegen.artefacts import generated_module_text
from derive.codegen.kernel_printer import KernelPrinter
from derive.gauss.kernels import MissingAverage, Program, Vertex, block_average
from derive.model.activations import Activation, classify
from derive.model.model import TUPLE_GENERATOR_VERSION, Model

#: Slot functions: "s" sigma, "ds" sigma', "d<n>s" its n-th derivative, "t" sigma*, "dt" and "d2t" its
#: derivatives, "x" the identity.
KERNELS: dict[str, tuple[str, ...]] = {
    "noise": ("ds", "ds"),
    "drift_student": ("ds", "x", "s"),
    "drift_teacher": ("ds", "x", "t"),
    "diffusion_ss": ("ds", "ds", "s", "s"),
    "diffusion_st": ("ds", "ds", "s", "t"),
    "diffusion_tt": ("ds", "ds", "t", "t"),
    "pair_ss": ("s", "s"),
    "pair_st": ("s", "t"),
    "pair_tt": ("t", "t"),
    # gradient and Hessian in weight space (derive/quantities/hessian.py, numerics/analyses/landscape.py)
    "hessian_11_st": ("ds", "dt"),
    "hessian_22_ss": ("d2s", "d2s"),
    "hessian_22_st": ("d2s", "d2t"),
    "hessian_13_ss": ("ds", "d3s"),
    "hessian_31_st": ("d3s", "dt"),
    "hessian_2_s": ("d2s", "s"),
    "hessian_2_t": ("d2s", "t"),
    "hessian_4_s": ("d4s", "s"),
    "hessian_4_t": ("d4s", "t"),
    # increment moments of the overlaps (numerics/noise/tuple_fluctuations.py): <E_j x E_i y> with x, y any units
    "increment_ss": ("ds", "ds", "x", "x", "s", "s"),
    "increment_st": ("ds", "ds", "x", "x", "s", "t"),
    "increment_tt": ("ds", "ds", "x", "x", "t", "t"),
    "increment_noise": ("ds", "ds", "x", "x"),
    # and those of a trained readout's increment s_j = eta_a (y - f) sigma(lambda_j)
    "readout_increment_ss": ("s", "ds", "x", "s", "s"),
    "readout_increment_st": ("s", "ds", "x", "s", "t"),
    "readout_increment_tt": ("s", "ds", "x", "t", "t"),
    "readout_increment_noise": ("s", "ds", "x"),
    "readout_square_ss": ("s", "s", "s", "s"),
    "readout_square_st": ("s", "s", "s", "t"),
    "readout_square_tt": ("s", "s", "t", "t"),
}

_IDENTITY = Activation("polynomial", coefficients=(sp.Integer(0), sp.Integer(1)))


def kernel_vertices(model: Model, slots: tuple[str, ...]) -> tuple[Vertex, ...]:
    """The :class:`~derive.gauss.kernels.Vertex` of every slot name of :data:`KERNELS`."""
    student, teacher = classify(model.student_activation), classify(model.teacher_activation)
    table = {"s": Vertex(student), "ds": Vertex(student, 1), "t": Vertex(teacher), "x": Vertex(_IDENTITY)}
    table.update({f"d{n}s": Vertex(student, n) for n in range(2, 5)})
    table.update({"dt": Vertex(teacher, 1), "d2t": Vertex(teacher, 2)})
    return tuple(table[slot] for slot in slots)


#: The kernels of the increment moments (numerics/noise/tuple_fluctuations.py): derived for erf networks (erf
#: units on both sides) only. Polynomial models take their increment moments from the network tables, relu
#: networks from truncated moments (numerics/kernels/relu_moments.py); for them, and for erf units mixed with
#: polynomials, six-slot Wick sums would only slow the module's first use (seconds per model).
INCREMENT_KERNELS = frozenset(name for name in KERNELS if "increment" in name or name.startswith("readout_square"))


def kernel_programs(model: Model) -> dict[str, Program | MissingAverage]:
    """Every kernel of :data:`KERNELS` for ``model``: its program, or the :class:`MissingAverage` it raised."""
    programs: dict[str, Program | MissingAverage] = {}
    kinds = {classify(model.student_activation).kind, classify(model.teacher_activation).kind}
    for name, slots in KERNELS.items():
        if name in INCREMENT_KERNELS and kinds != {"erf"}:
            programs[name] = MissingAverage(
                f"the increment kernel {name!r} is derived for erf networks only (polynomial models use the "
                "network tables, relu networks numerics/kernels/relu_moments.py)"
            )
            continue
        try:
            programs[name] = block_average(kernel_vertices(model, slots))
        except MissingAverage as missing:
            programs[name] = missing
    return programs


def tuple_input_hash(model: Model) -> str:
    """Key of a model's per-tuple module (activations and readouts; differs from the index-free key)."""
    text = f"tuple-generator={TUPLE_GENERATOR_VERSION}|{model.codegen_spec()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def module_input_hash(model: Model) -> str:
    """The input hash recorded in the module that :func:`generate_tuple_module` prints.

    A non-polynomial model's only module is the per-tuple one, keyed like every
    generated module by ``Model.codegen_hash()``; a polynomial model keeps its
    index-free module under that key and its per-tuple one under
    :func:`tuple_input_hash`.
    """
    return tuple_input_hash(model) if model.is_polynomial() else model.codegen_hash()


def tuple_result_hash(model: Model, programs: dict[str, Program | MissingAverage] | None = None) -> str:
    """Hash of the canonical symbolic kernels (printer-independent); ``programs``: those of ``model``, if known."""
    parts = []
    for name, program in (kernel_programs(model) if programs is None else programs).items():
        text = f"missing: {program}" if isinstance(program, MissingAverage) else program.canonical()
        parts.append(f"{name}:\n{text}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def kernel_statements(program: Program) -> tuple[list[tuple[sp.Symbol, sp.Expr]], sp.Expr]:
    """The straight-line statements and the result expression that :func:`generate_tuple_module` prints.

    The derivation's programs name intermediate results one at a time, so the same
    subexpression (a determinant's inverse, a product of two block entries) recurs in
    several assignments; the program inlined into one expression and passed through one
    joint ``sympy.cse`` shares it (the erf diffusion kernel: 54 operations instead of 67,
    the six-slot increment kernels: about a fifth). Where the joint form is not shorter
    (counted by ``sympy.count_ops``) the program is kept, with a ``cse`` of its result.

    Returns
    -------
    statements : list of (symbol, expression), in evaluation order
    result : the expression returned, in those symbols and the block entries
    """
    replacements, (result,) = sp.cse([program.result], symbols=sp.numbered_symbols("e"), order="canonical")
    stepwise = (list(program.assignments) + replacements, result)
    if not program.assignments:
        return stepwise
    replacements, (result,) = sp.cse([program.inline()], symbols=sp.numbered_symbols("e"), order="canonical")
    joint = (replacements, result)

    def operations(form: tuple[list[tuple[sp.Symbol, sp.Expr]], sp.Expr]) -> int:
        return sp.count_ops([expr for _, expr in form[0]] + [form[1]])

    return joint if operations(joint) < operations(stepwise) else stepwise


def _kernel_source(name: str, slots: tuple[str, ...], program: Program | MissingAverage) -> list[str]:
    n = len(slots)
    arguments = [f"c{a}{b}" for a in range(n) for b in range(a, n)]
    lines = [f"def kernel_{name}({', '.join(arguments)}):"]
    lines.append(f'    """E[{" * ".join(_SLOT_TEXT[s] + f"(z{i})" for i, s in enumerate(slots))}], z ~ N(0, c)."""')
    if isinstance(program, MissingAverage):
        message = f"{program} (needed for the kernel {name!r})"
        lines.append(f"    raise ValueError({message!r})")
        return lines
    printer = KernelPrinter()
    statements, result = kernel_statements(program)
    for symbol, expr in statements:
        lines.append(f"    {printer.statement(symbol, expr)}")
    lines.append(f"    return {printer.doprint(result)}")
    return lines


_SLOT_TEXT = {"s": "sigma", "t": "sigma*", "x": "id", "ds": "sigma'", "dt": "sigma*'", "d2t": "sigma*''"}
_SLOT_TEXT.update({f"d{n}s": "sigma" + "'" * n for n in range(2, 5)})


def _activation_constant(name: str, activation: Activation, expr: sp.Expr) -> list[str]:
    """``<NAME>_KIND`` and its parameters, read by the simulators (no sympy needed there)."""
    lines = [f"{name}_KIND = {activation.kind!r}"]
    if activation.kind == "polynomial":
        lines.append(f"{name}_ACTIVATION = {tuple(float(c) for c in activation.coefficients)!r}")
    elif activation.kind == "erf":
        lines.append(f"{name}_SCALE = {float(activation.scale)!r}  # {name.lower()}(x) = erf(scale * x)")
    return lines


_WRAPPERS = '''

def first_order_terms(Q, R, T, a=None, b=None):
    """Coefficients of eta in dQ/dalpha and dR/dalpha: (drift_Q, drift_R); readout vectors optional."""
    return _tuples.first_order_terms(KERNELS, readouts, Q, R, T, a, b)


def all_terms(Q, R, T, a=None, b=None):
    """(drift_Q, drift_R, diffusion_Q, noise_Q); readout vectors optional."""
    return _tuples.all_terms(KERNELS, readouts, Q, R, T, a, b)


def rhs_terms(Q, R, T, c_drift, c_diffusion, c_noise, a=None, b=None):
    """c_drift * drift + c_diffusion * diffusion_Q + c_noise * noise_Q, as (dQ, dR)."""
    return _tuples.rhs_terms(KERNELS, readouts, Q, R, T, c_drift, c_diffusion, c_noise, a, b)


def residual_risk(Q, R, T, a=None, b=None):
    """Population risk without label noise, shape (...)."""
    return _tuples.residual_risk(KERNELS, readouts, Q, R, T, a, b)


def readout_drift(Q, R, T, a=None, b=None):
    """<(y0 - f) sigma(lambda_j)>, shape (..., p): da_j/dalpha = eta_a readout_drift[j]."""
    return _tuples.readout_drift(KERNELS, readouts, Q, R, T, a, b)


def hessian_terms(Q, R, T, a=None, b=None):
    """The averages of derive/quantities/hessian.py (M11_ss, M11_st, M22_ss, M22_st, M13_ss, M31_st, V2, V4)."""
    return _tuples.hessian_terms(KERNELS, readouts, Q, R, T, a, b)
'''


def generate_tuple_module(model: Model) -> str:
    """Source of the per-tuple NumPy module of ``model`` (header with hashes, kernels, wrappers)."""
    programs = kernel_programs(model)
    input_hash = module_input_hash(model)
    res_hash = tuple_result_hash(model, programs)
    printer = PythonCodePrinter()
    student, teacher = classify(model.student_activation), classify(model.teacher_activation)
    parts = [
        "import math  # noqa: F401 - used by some readouts, e.g. 1/sqrt(p)\n\n"
        "import numpy  # noqa: F401\n\n"
        "from numerics.kernels import relu_quadrature as _relu  # noqa: F401 - used by relu kernels\n"
        "from numerics.kernels import tuple_moments as _moments  # noqa: F401 - used by erf kernels\n"
        "from numerics.kernels import unit_tuples as _tuples\n"
    ]
    # kernels with one printed body (a teacher activation equal to the student's) share one function in
    # KERNELS: numerics.kernels.unit_tuples then evaluates their student and teacher blocks in one call
    first_with_body: dict[tuple[str, ...], str] = {}
    shared = {}
    for name, slots in KERNELS.items():
        source = _kernel_source(name, slots, programs[name])
        parts.append("\n".join(source) + "\n")
        signature = source[0].split("(", 1)[1]  # the arguments: kernels of different arity never share
        shared[name] = first_with_body.setdefault((signature, *source[2:]), name)
    parts.append(
        "#: kernel functions by name (derive.codegen.tuples.KERNELS gives their slots)\n"
        "KERNELS = {\n"
        + "".join(f"    {name!r}: kernel_{shared[name]},\n" for name in KERNELS)
        + "}\n"
        + _WRAPPERS
    )
    readout_lines = [
        "def readouts(p, k):",
        '    """Second-layer weights (a, b) shared by all student / teacher units (the default vectors)."""',
        f"    return float({printer.doprint(model.student_readout)}), float({printer.doprint(model.teacher_readout)})",
    ]
    parts.append(
        "\n".join(
            _activation_constant("STUDENT", student, model.student_activation)
            + _activation_constant("TEACHER", teacher, model.teacher_activation)
            + ["", ""]
            + readout_lines
        )
        + "\n"
    )
    parts.append(
        "MODEL_DESCRIPTION = " + repr(model.describe()) + "\n"
        "PER_TUPLE = True\n"
        f"INPUT_HASH = {input_hash!r}\n"
        f"RESULT_HASH = {res_hash!r}\n"
    )
    body = "\n\n".join(parts)
    text = generated_module_text(
        body,
        about=["# Generated by wickode's derive package (per-tuple kernels, derive/codegen/tuples.py) from the model:"],
        model=model,
        input_hash=input_hash,
        result_hash=res_hash,
        docstring='Generated per-tuple kernels of the overlap ODEs and the risk (see header and derive/codegen/tuples.py).',  # noqa: E501 - the printed docstring
    )
    return text


__all__ = [
    "INCREMENT_KERNELS",
    "KERNELS",
    "TUPLE_GENERATOR_VERSION",
    "generate_tuple_module",
    "kernel_programs",
    "kernel_statements",
    "kernel_vertices",
    "module_input_hash",
    "tuple_input_hash",
    "tuple_result_hash",
]
