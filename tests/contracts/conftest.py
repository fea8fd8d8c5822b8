"""Contract fixtures. Each test runs in its own chain snapshot (ape's isolation), so state never leaks."""

from __future__ import annotations

import pytest


@pytest.fixture
def model_registry(project, deployer):  # type: ignore[no-untyped-def]
    return deployer.deploy(project.ModelRegistry)
