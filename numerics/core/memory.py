"""How much memory this machine has, read once here for the checks made before large allocations.

The simulators refuse runs that need more than a fraction of :func:`physical_memory`
(:func:`numerics.simulators.common.check_memory`); the command line compares the snapshots a
run records with :func:`available_memory`.
"""

from __future__ import annotations

import os


def physical_memory() -> float:
    """Bytes of physical memory of this machine (16 GiB when the system does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE")) * float(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 16.0 * 2**30


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux), ``None`` when unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


__all__ = ["available_memory", "physical_memory"]
