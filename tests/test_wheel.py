"""The built wheel installs into a fresh virtual environment and runs without the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what a wheel is built from; the tests, notebooks and local caches are not part of it
SKIPPED = shutil.ignore_patterns(".git", "tests", "notebooks", "build", "dist", "*.egg-info", "__pycache__",
                                 "*.pyc", ".pytest_cache", ".ruff_cache")


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_runs_wickode_and_a_custom_model_from_a_fresh_environment(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SKIPPED)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["WICKODE_CACHE_DIR"] = str(tmp_path / "cache")  # generated custom models go here, not to the user's cache
    # the build backend (setuptools, wheel) comes into pip's isolated build environment; the wheel
    # itself is installed below with no index and no dependencies
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(tmp_path / "wheels")],
         tmp_path, env)
    (wheel,) = (tmp_path / "wheels").glob("wickode-*.whl")
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True).stdout
    assert "numerics/_generated/paper.py" in names and "numerics/_generated/he3_tuples.py" in names
    environment = tmp_path / "env"
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = environment / "bin" / "python"
    # pip of this interpreter installs into the new environment (--prefix); --ignore-installed since the
    # development install of the repository counts as installed
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
          "--prefix", str(environment), str(wheel)], tmp_path, env)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import derive, numerics; print(numerics.__file__); print(derive.__file__)"],
                 work, env)
    assert all(line.startswith(str(environment)) for line in where.split()), where
    output = _run([str(environment / "bin" / "wickode"), "run", "--alpha-max", "20"], work, env)
    assert "plateau" in output
    assert list(work.glob("run_*.csv"))
    custom = (
        "import numpy as np, derive, numerics\n"
        "model = derive.Model('x**3', 'x**2')\n"
        "Q0, R0, T = numerics.initial_conditions(2, 2, N=1e4, seed=0)\n"
        "run = numerics.integrate(Q0, R0, T, eta=0.05, alpha_max=2, model=model, second_order=False)\n"
        "assert np.all(np.isfinite(run.risk)), run.risk\n"
        "print(numerics.__file__)\n"
    )
    assert _run([str(python), "-c", custom], work, env, timeout=300).startswith(str(environment))
