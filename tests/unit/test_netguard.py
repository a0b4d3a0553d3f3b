"""The guard that keeps the suite honest: non-loopback connections fail before a packet is sent."""

from __future__ import annotations

import socket

import netguard
import pytest


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            assert client.getpeername() == server.getsockname()


@pytest.mark.parametrize("address", [("192.0.2.1", 9), ("example.invalid", 80)])
def test_non_loopback_is_refused_before_connecting(address: tuple[str, int]) -> None:
    before = len(netguard.violations)
    with socket.socket() as sock, pytest.raises(netguard.NonLoopbackConnection, match="non-loopback"):
        sock.connect(address)  # TEST-NET-1 documentation address / an unresolvable name: never contacted
    assert len(netguard.violations) == before + 1
    del netguard.violations[before:]  # expected here; any other test that trips the guard fails


def test_dns_lookup_of_a_remote_name_is_refused() -> None:
    before = len(netguard.violations)
    with pytest.raises(netguard.NonLoopbackConnection, match="DNS lookup"):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    assert socket.getaddrinfo("localhost", 80)
    del netguard.violations[before:]
