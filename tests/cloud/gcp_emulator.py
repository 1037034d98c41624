"""Pytest fixtures shared by the GCP test modules: one emulator per module, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.sandbox.gcp import GcpEmulator
from tests.cloud.gcp_world import World


@pytest.fixture(scope="module")
def emulator() -> Iterator[GcpEmulator]:
    """Start a seeded emulator for the module, and stop it after."""
    running = GcpEmulator.start(seed=True)
    yield running
    running.stop()


@pytest.fixture
def world(emulator: GcpEmulator) -> World:
    """Reset the emulator to its seed and address it."""
    emulator.reset()
    return World(emulator)
