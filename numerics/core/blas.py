"""How many threads BLAS may use inside :func:`numerics.integrate` and :func:`numerics.simulate`.

The BLAS and LAPACK calls of the overlap ODEs are small (matrices of size
p + k) and many, and a multi-threaded BLAS spends more time waking and
synchronising its threads than computing, dramatically so on a busy machine.
Measured on a shared two-core machine (OpenBLAS, default two threads against
one): a 300 x 300 Cholesky factorisation took 480 ms against 1 ms, a 300 x 300
product 16 ms against 0.9 ms, and still at 1024 x 1024 160 ms against 36 ms
(Cholesky) and 46 ms against 31 ms (product); ``integrate`` at p = 300, k = 2
took 43 s against 2.1 s, and at p = 100, k = 10 ``bench/bench_api.py`` shows the
gain. So both functions pin BLAS to one thread while they run, through
``threadpoolctl``, and restore the setting when they return.

The switch is the ``blas_threads`` keyword of both functions:

* ``"auto"`` (default): :data:`DEFAULT` threads (one) when
  ``p + k <= AUTO_MAX_WIDTH``, BLAS's own setting above, where products are
  large enough for threads to pay on an idle many-core machine;
* an integer ``n >= 1``: at most ``n`` threads;
* ``None``: leave BLAS as configured (no ``threadpoolctl`` call at all).

Set ``numerics.core.blas.DEFAULT = None`` to make ``"auto"`` leave BLAS alone
everywhere. Code that calls :func:`numerics.rhs` in its own loop at large p can
pin BLAS the same way around the loop: ``with numerics.core.blas.limited(1): ...``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import numbers
from collections.abc import Callable, Iterator
from typing import Any

#: Largest ``p + k`` for which ``blas_threads="auto"`` pins BLAS to :data:`DEFAULT` threads.
AUTO_MAX_WIDTH = 2048
#: Threads ``"auto"`` uses for small matrices (``None``: leave BLAS as configured).
DEFAULT: int | None = 1

_controller: Any = None


def check_blas_threads(value: object) -> int | str | None:
    """``value`` if it is ``"auto"``, ``None`` or an integer >= 1; else a ``ValueError`` naming ``blas_threads``."""
    if value is None or value == "auto":
        return value  # type: ignore[return-value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ValueError(f"blas_threads must be 'auto', None or an integer >= 1, got {value!r}")


def threads_for(setting: int | str | None, width: int) -> int | None:
    """The thread limit to apply for ``setting`` at matrices of size ``width = p + k`` (``None``: no limit)."""
    if setting == "auto":
        return DEFAULT if width <= AUTO_MAX_WIDTH else None
    return setting  # type: ignore[return-value]


@contextlib.contextmanager
def limited(setting: int | str | None = 1, width: int = 0) -> Iterator[None]:
    """Context in which BLAS uses the threads :func:`threads_for` gives for ``setting`` at ``width = p + k``.

    ``with limited(1):`` pins BLAS to one thread; the previous setting is restored on exit.
    """
    threads = threads_for(check_blas_threads(setting), width)
    if threads is None:
        yield
        return
    global _controller
    if _controller is None:
        # inspecting the loaded libraries costs ~0.3 ms; done once, a limit then costs ~10 us
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=threads, user_api="blas"):
        yield


def _width(arguments: Callable[[], int]) -> int:
    # the wrapped function validates its own arguments; a bad one must not fail here first
    try:
        return int(arguments())
    except Exception:  # noqa: BLE001
        return 0


def with_blas_threads(width: Callable[[inspect.BoundArguments], int]) -> Callable:
    """Decorator adding the keyword ``blas_threads="auto"`` to a function (see the module docstring).

    ``width(bound)`` gives ``p + k`` from the call's bound arguments.
    """

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: Any, blas_threads: int | str | None = "auto", **kwargs: Any) -> Any:
            check_blas_threads(blas_threads)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return function(*args, **kwargs)  # let the function report the bad call
            with limited(blas_threads, _width(lambda: width(bound))):
                return function(*args, **kwargs)

        parameters = list(signature.parameters.values())
        # keyword-only parameters come before a **keywords catch-all
        place = len(parameters) - (parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD)
        parameters.insert(place, inspect.Parameter("blas_threads", inspect.Parameter.KEYWORD_ONLY, default="auto"))
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return wrapper

    return decorate
