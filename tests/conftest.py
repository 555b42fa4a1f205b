"""The `needs` marker: see tests/needs.py."""
from __future__ import annotations

import pytest

from tests.needs import CHECKS, need


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"needs(what): skip (or fail under REVOPS_STRICT_TESTS=1) without "
                                       f"one of {', '.join(CHECKS)}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        need(*mark.args)
