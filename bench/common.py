"""Timing helpers shared by the benchmarks, and the per-module worker.

Every benchmark reports ratios against a baseline timed in the same process
right next to it, because the machine is shared and absolute times drift.
Each benchmark module runs in its own subprocess whose
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` are set
before NumPy starts, so that every BLAS call of the module (not only those
inside ``integrate`` and ``simulate``, which pin their own threads through
``numerics.core.blas``) runs with the same setting: ``python -m bench.common MODULE [--smoke]`` prints that
module's rows as JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Timing:
    """Wall times of repeated calls, in seconds per call."""

    best: float
    median: float
    repeats: int
    calls_per_repeat: int


def time_call(
    function: Callable[[], object],
    *,
    repeats: int = 7,
    min_seconds: float = 0.05,
    max_calls: int = 100_000,
) -> Timing:
    """Time ``function()``: calibrate calls per repeat to ``min_seconds``, then repeat.

    Returns the best (least disturbed by other processes) and the median
    seconds per call over ``repeats`` repeats.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    function()  # warm caches, einsum paths, lazy imports
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds or calls >= max_calls:
            break
        calls = min(max_calls, calls * max(2, int(min_seconds / max(elapsed, 1e-9))))
    per_call = [elapsed / calls]
    for _ in range(repeats - 1):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        per_call.append((time.perf_counter() - started) / calls)
    return Timing(min(per_call), statistics.median(per_call), repeats, calls)


def time_pair(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int = 7,
    min_seconds: float = 0.05,
) -> tuple[Timing, Timing]:
    """Time two functions interleaved (candidate, baseline, candidate, ...).

    Interleaving makes a burst of load from other processes hit both.
    """
    cand, base = [], []
    for _ in range(repeats):
        cand.append(time_call(candidate, repeats=1, min_seconds=min_seconds))
        base.append(time_call(baseline, repeats=1, min_seconds=min_seconds))

    def merge(timings: list[Timing]) -> Timing:
        values = [t.best for t in timings]
        return Timing(min(values), statistics.median(values), len(values), timings[0].calls_per_repeat)

    return merge(cand), merge(base)


def blas_threads() -> str:
    """The BLAS thread setting this process started with ('default' when unset)."""
    for name in THREAD_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return "default"


def row(
    benchmark: str,
    case: str,
    *,
    seconds: float,
    baseline_seconds: float | None,
    baseline: str,
    target: float | None = None,
    target_kind: str = "ratio<=",
    **extra: object,
) -> dict:
    """One result row. ``ratio = seconds / baseline_seconds`` (lower is faster).

    ``target`` is checked against the ratio when ``target_kind`` is
    ``"ratio<="``, against ``1/ratio`` (a speed-up) for ``"speedup>="`` and
    against ``seconds`` for ``"seconds<="``.
    """
    ratio = None if baseline_seconds in (None, 0) else seconds / baseline_seconds
    met: bool | None = None
    if target is not None:
        if target_kind == "ratio<=":
            met = ratio is not None and ratio <= target
        elif target_kind == "speedup>=":
            met = ratio is not None and 1 / ratio >= target
        elif target_kind == "seconds<=":
            met = seconds <= target
        else:
            raise ValueError(f"target_kind: unknown {target_kind!r}")
    return {
        "benchmark": benchmark,
        "case": case,
        "seconds": seconds,
        "baseline": baseline,
        "baseline_seconds": baseline_seconds,
        "ratio": ratio,
        "target": None if target is None else f"{target_kind}{target:g}",
        "met": met,
        "blas_threads": blas_threads(),
        **extra,
    }


def discover() -> list[str]:
    """Dotted names of every ``bench/bench_*.py`` module."""
    return sorted(f"bench.{path.stem}" for path in (ROOT / "bench").glob("bench_*.py"))


def run_in_subprocess(module: str, *, smoke: bool, threads: int | None, timeout: float = 3600) -> list[dict]:
    """Run ``module.run(smoke)`` in a fresh interpreter with the given BLAS threads.

    ``threads=None`` leaves the environment's (default) setting. A module whose
    dependencies do not exist yet yields one row with ``skipped`` set.
    """
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env.pop(name, None)
        if threads is not None:
            env[name] = str(threads)
    command = [sys.executable, "-m", "bench.common", module] + (["--smoke"] if smoke else [])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not last.startswith("["):
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [{"benchmark": module.split(".")[-1], "case": "-", "skipped": reason,
                 "blas_threads": "default" if threads is None else str(threads)}]
    return json.loads(last)


def script_main(run: Callable[[bool], list[dict]], argv: list[str] | None = None) -> int:
    """``python -m bench.bench_NAME [--smoke]``: run one benchmark in this process and print its table.

    The BLAS threads are whatever this process started with (set
    ``OPENBLAS_NUM_THREADS`` to pin them); ``python -m bench`` runs both settings.
    """

    smoke = "--smoke" in (sys.argv[1:] if argv is None else argv)
    print(table(run(smoke)))
    return 0


def _worker(argv: list[str]) -> int:
    module_name = argv[0]
    smoke = "--smoke" in argv[1:]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:  # an optional benchmark whose code is not there yet
        print(f"skipped: {error}", file=sys.stderr)
        return 3
    rows = module.run(smoke)
    for entry in rows:
        entry.setdefault("benchmark", module_name.split(".")[-1].removeprefix("bench_"))
        entry["blas_threads"] = blas_threads()
    print(json.dumps(rows, default=float))
    return 0


#: Keys every row has; the others are shown in the notes column.
STANDARD = ("benchmark", "case", "blas_threads", "seconds", "baseline", "baseline_seconds", "ratio", "target", "met")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)



def table(rows: list[dict]) -> str:
    """Markdown table: benchmark, case, BLAS threads, time, baseline, baseline time, ratio, target, met, notes."""
    header = ("| benchmark | case | BLAS threads | time (s) | baseline | baseline (s) | ratio | target | met "
              "| notes |")
    lines = [header, "|" + "---|" * 10]
    for entry in rows:
        if "skipped" in entry:
            lines.append(f"| {entry['benchmark']} | skipped: {entry['skipped']} | {entry.get('blas_threads', '-')} "
                         "| - | - | - | - | - | - | - |")
            continue
        notes = ", ".join(f"{key}={_fmt(value)}" for key, value in entry.items() if key not in STANDARD)
        lines.append("| " + " | ".join([*(_fmt(entry.get(key)) for key in STANDARD), notes or "-"]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(_worker(sys.argv[1:]))
