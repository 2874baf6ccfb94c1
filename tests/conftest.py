import os

import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")

# deterministic property tests: CI and developers see the same examples
settings.register_profile("wickode", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("wickode")


@pytest.fixture(scope="session")
def committed_models():
    from derive.model.model import COMMITTED_MODELS

    return COMMITTED_MODELS
