"""Fixtures the provider tests share: each fake upstream running on loopback, provider cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.carbonaware import fake_carbon_aware_sdk
from tests.fakes.custom_api import fake_custom_api
from tests.fakes.electricitymaps import fake_electricitymaps
from tests.unit.carbon.providers.closing import Closing

__all__ = ["closing", "fake_carbon_aware_sdk", "fake_custom_api", "fake_electricitymaps"]


@pytest.fixture
async def closing() -> AsyncIterator[Closing]:
    """Closes, after the test, every provider the test handed to it."""
    opened = Closing()
    yield opened
    await opened.close_all()
