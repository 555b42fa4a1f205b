"""Tests that need something the repository does not hold: they skip, saying how to get it, or fail when
REVOPS_STRICT_TESTS=1 (`.ci/run` sets it under CI, so CI never silently skips them).

Use `@pytest.mark.needs("shared")` / `@pytest.mark.needs("prometheus")` (tests/conftest.py), or call
`need(...)` where the need is discovered inside a helper.
"""
from __future__ import annotations

import os
import shutil

import pytest

from revops.sim import schemas

STRICT_ENV = "REVOPS_STRICT_TESTS"


def _shared() -> str | None:
    where = schemas.shared_dir()
    if (where / "cln-schemas").is_dir() and (where / "cln-fixtures").is_dir():
        return None
    return (f"needs Core Lightning's schemas and fixtures in {where} (cln-schemas/, cln-fixtures/): put the "
            "project's shared/ directory beside the repository (../shared) or set REVOPS_SHARED_DIR to it")


def _prometheus() -> str | None:
    if shutil.which("prometheus") and shutil.which("promtool"):
        return None
    return ("needs prometheus and promtool on PATH: as root, `apt-get install prometheus` "
            "(bash .ci/run does it when run as root)")


def _chromium() -> str | None:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return None
    return ("needs chromium and chromedriver on PATH: as root, `apt-get install chromium chromium-driver` "
            "(bash .ci/run does it when run as root)")


CHECKS = {"shared": _shared, "prometheus": _prometheus, "chromium": _chromium}


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def need(what: str) -> None:
    """Skip the running test when `what` is missing (fail instead under REVOPS_STRICT_TESTS=1)."""
    reason = CHECKS[what]()
    if reason is None:
        return
    if strict():
        pytest.fail(f"{reason} ({STRICT_ENV} is set: required here)", pytrace=False)
    pytest.skip(reason)
