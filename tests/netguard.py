"""Refuse any socket connection to a non-loopback address, before a packet leaves.

Installed for every test by conftest.py, and by child processes the tests start
(``import netguard; netguard.install()``), so a test proves localrag stays offline.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

violations: list[str] = []
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_sendto = socket.socket.sendto
_original_getaddrinfo = socket.getaddrinfo


class NonLoopbackConnection(RuntimeError):
    pass


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a hostname other than localhost would need DNS: refused too


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # unix sockets stay on this machine
    host = address[0] if isinstance(address, tuple) else str(address)
    if not _is_loopback(str(host)):
        message = f"blocked a connection to non-loopback address {address!r}"
        violations.append(message)
        raise NonLoopbackConnection(message)


def _connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _original_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def _sendto(self: socket.socket, data: bytes, *args: Any) -> int:
    _check(self, args[-1])
    return _original_sendto(self, data, *args)  # type: ignore[call-overload]


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    # A lookup of any other name would send a DNS query: refuse it before it leaves.
    if host is not None and not _is_loopback(host.decode() if isinstance(host, bytes) else str(host)):
        message = f"blocked a DNS lookup of non-loopback host {host!r}"
        violations.append(message)
        raise NonLoopbackConnection(message)
    return _original_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = _sendto  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
