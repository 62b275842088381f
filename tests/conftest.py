"""Fixtures shared by the HashGrid tests."""

from __future__ import annotations

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> None:
    """Let Home Assistant load custom_components/hashgrid in every test."""


@pytest.fixture
def loopback(socket_enabled: None) -> None:
    """Allow connections to all of 127.0.0.0/8 (simulated miners live there).

    HA's test plugin allows 127.0.0.1 only; the simulators give each device its
    own loopback address, as on a real network.
    """
    pytest_socket.socket_allow_hosts(["127.0.0.0/8"], allow_unix_socket=True)
