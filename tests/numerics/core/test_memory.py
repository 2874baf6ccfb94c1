"""The machine's memory as the run checks read it (numerics/core/memory.py)."""

from numerics.core.memory import available_memory, physical_memory


def test_available_memory_is_at_most_the_physical_memory():
    physical = physical_memory()
    assert physical > 2**20
    available = available_memory()
    # None where the system does not say (no /proc/meminfo); otherwise a byte count within the machine's
    assert available is None or 0 < available <= physical
