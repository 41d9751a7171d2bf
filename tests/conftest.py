"""Fixtures shared by the test modules; helpers live in helpers.py, what each optimizer class needs in
optim_db.py."""

import pytest
from hypothesis import settings

import optimizers

# Deterministic examples and no example database on disk: a failure reproduces on every run.
settings.register_profile("suite", max_examples=25, deadline=None, derandomize=True, database=None)
settings.load_profile("suite")


def pytest_report_header(config):
    return f"optimizers extension loaded: {optimizers.extension_available()}"


@pytest.fixture(params=[True, False], ids=["fused", "reference"])
def fused(request):
    """Every numeric check runs on the C++ kernel (fused=True) and the plain-PyTorch path (False)."""
    if request.param and not optimizers.extension_available():
        pytest.fail("optimizers._C is not built: the fused path cannot be tested")
    return request.param
