"""Derivation: ``python -m derive`` wall time, and the moment engine against naive pairing.

``derive.gauss.wick.moment`` counts pairings by multiplicity (one term per distinct
pairing pattern); ``derive.gauss.wick.naive_moment`` enumerates all ``(2n-1)!!``
perfect pairings. Both get the same symbolic covariance ``c_ab``; sympy's
caches and the moment engine's pairing cache are cleared before every timed
call (outside the timing), so neither is measured warm. ``python -m derive``
runs in a fresh interpreter (its own caches cold), writing into a temporary
tree via ``--root``, so the committed files are untouched; its baseline is the
start-up of a fresh interpreter importing ``derive`` (sympy included), which
scales with the machine the same way. Target: under 60 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sympy as sp

from bench.common import ROOT, row

# degree 8, 10, 12 moments over 4 variables
MOMENTS = ((2, 2, 2, 2), (3, 3, 2, 2), (3, 3, 3, 3))


def _covariance():
    symbols = {}

    def covariance(a: int, b: int) -> sp.Expr:
        key = (min(a, b), max(a, b))
        if key not in symbols:
            symbols[key] = sp.Symbol(f"c{key[0]}{key[1]}")
        return symbols[key]

    return covariance


def _cold() -> None:
    from sympy.core.cache import clear_cache

    from derive.gauss import wick

    clear_cache()
    wick.pairing_counts.cache_clear()


def _time(function, budget: float) -> tuple[float, object]:
    """Best of repeated cold calls within ``budget`` seconds (at least one call)."""
    best, value, spent = float("inf"), None, 0.0
    while spent < budget or value is None:
        _cold()
        started = time.perf_counter()
        value = function()
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
    return best, value


def moment_rows(smoke: bool) -> list[dict]:
    from derive.gauss import wick

    rows = []
    for exponents in MOMENTS[:1] if smoke else MOMENTS:
        covariance = _covariance()

        def engine(exponents=exponents, covariance=covariance):
            return wick.moment(exponents, covariance)

        def naive(exponents=exponents, covariance=covariance):
            return wick.naive_moment(exponents, covariance)

        engine_seconds, fast = _time(engine, 0.05 if smoke else 0.5)
        naive_seconds, slow = _time(naive, 0.0 if smoke else 1.0)
        if sp.expand(fast - slow) != 0:
            raise AssertionError(f"moment engine and naive enumeration disagree on {exponents}")
        rows.append(row("derive", f"moment {exponents} (degree {sum(exponents)})", seconds=engine_seconds,
                        baseline_seconds=naive_seconds, baseline="naive enumeration of all pairings",
                        terms=len(sp.Add.make_args(sp.expand(fast)))))
    return rows


def derive_row() -> dict:
    """``python -m derive`` in a fresh interpreter; the baseline is that interpreter importing ``derive`` only."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import derive"], cwd=ROOT, check=True)
    import_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        command = [sys.executable, "-m", "derive", "--root", root]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"python -m derive failed: {done.stderr.strip()[-300:]}")
        written = sum(1 for path in Path(root).rglob("*") if path.is_file())
    return row("derive", "python -m derive (all committed models)", seconds=seconds, baseline_seconds=import_seconds,
               baseline="python -c 'import derive' (start-up)", target=60.0, target_kind="seconds<=",
               files_written=written)


#: Dense student activations of each degree (teacher x**2): the first-use cost of a typed model.
DEGREE_MODELS = {
    2: "x**2 - x/3 + 1",
    3: "-x**3/2 + 2*x**2 - x",
    4: "x**4/5 - x**3 + 3*x/4 - 1/2",
    5: "x**5/7 + x**4/3 - 2*x**2 + x",
    6: "x**6/11 - x**5/4 + x**3 - 3*x**2/2 + 2",
}


#: CPU seconds the first use of the dense degree-6 model may cost (issue 19).
FIRST_USE_TARGET_SECONDS = 5.0


def first_use_seconds(student: str, layout: str | None = None) -> tuple[float, float]:
    """CPU and wall seconds of generating ``student | x**2``'s module, in a fresh interpreter.

    ``layout=None`` is the layout the numerics use on first use
    (``derive.codegen.module.FIRST_USE_LAYOUT``); imports are outside the timing.
    """
    layout_text = "FIRST_USE_LAYOUT" if layout is None else repr(layout)
    code = (
        "import time; from derive import Model; "
        "from derive.codegen.module import FIRST_USE_LAYOUT, generate_module; "
        f"m = Model(student_activation={student!r}, teacher_activation='x**2'); "
        "c, t = time.process_time(), time.perf_counter(); "
        f"generate_module(m, {layout_text}); "
        "print(time.process_time() - c, time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    cpu, wall = (float(value) for value in done.stdout.split())
    return cpu, wall


def first_use_rows(smoke: bool) -> list[dict]:
    """Derive and print the module of an uncommitted model of each degree, in a fresh interpreter.

    This is what the first ``numerics.rhs(..., model=Model(...))`` of a new model costs (the
    module is then cached). Times are CPU seconds (the wall time is in the notes: on a shared
    machine it includes waiting for a core). Baseline: the same for the paper model (degree 2),
    timed in the same run. The degree-6 row has the target; one more row gives degree 6 in the
    full layout of the committed modules (each function planned on its own).
    """
    baseline_cpu, baseline_wall = first_use_seconds("x**2")
    rows = []
    for degree, student in DEGREE_MODELS.items():
        if smoke and degree > 2:
            break
        cpu, wall = first_use_seconds(student)
        target = FIRST_USE_TARGET_SECONDS if degree == 6 else None
        rows.append(row("derive", f"first use of a degree-{degree} model ({student} | x**2)", seconds=cpu,
                        baseline_seconds=baseline_cpu, baseline="first use of the paper model (x**2 | x**2)",
                        target=target, target_kind="seconds<=", clock="cpu", wall_seconds=round(wall, 3),
                        baseline_wall_seconds=round(baseline_wall, 3)))
    if not smoke:
        student = DEGREE_MODELS[6]
        cpu, wall = first_use_seconds(student, "full")
        rows.append(row("derive", f"degree-6 model in the full layout ({student} | x**2)", seconds=cpu,
                        baseline_seconds=baseline_cpu, baseline="first use of the paper model (x**2 | x**2)",
                        clock="cpu", wall_seconds=round(wall, 3), baseline_wall_seconds=round(baseline_wall, 3)))
    return rows


#: The quartic model of docs/finite_n.md's table, whose increment moments are network tables.
QUARTIC = ("x**4 - 6*x**2 + 3", "x**2 + x")


def fluctuation_seconds(student: str, teacher: str) -> tuple[float, float]:
    """CPU and wall seconds of generating the increment-moment module of ``student | teacher``, fresh interpreter."""
    code = (
        "import time; from derive import Model; "
        "from derive.codegen.increments_module import generate_fluctuation_module; "
        f"m = Model(student_activation={student!r}, teacher_activation={teacher!r}); "
        "c, t = time.process_time(), time.perf_counter(); generate_fluctuation_module(m); "
        "print(time.process_time() - c, time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    cpu, wall = (float(value) for value in done.stdout.split())
    return cpu, wall


def fluctuation_first_use_row() -> dict:
    """First use of the quartic model's increment moments (network tables), CPU seconds; baseline the paper model's."""
    baseline_cpu, baseline_wall = fluctuation_seconds("x**2", "x**2")
    cpu, wall = fluctuation_seconds(*QUARTIC)
    return row("derive", f"first use of the quartic fluctuation tables ({QUARTIC[0]} | {QUARTIC[1]})", seconds=cpu,
               baseline_seconds=baseline_cpu, baseline="the paper model's increment moments (printed einsums)",
               clock="cpu", wall_seconds=round(wall, 3), baseline_wall_seconds=round(baseline_wall, 3))


def run(smoke: bool = False) -> list[dict]:
    """Moment-engine rows (degree 8 only when ``smoke``), first use per degree; not in smoke: the quartic
    fluctuation tables and the full derivation."""
    rows = moment_rows(smoke) + first_use_rows(smoke)
    if not smoke:
        rows.append(fluctuation_first_use_row())
        rows.append(derive_row())
    return rows


if __name__ == "__main__":
    from bench.common import script_main

    raise SystemExit(script_main(run))
