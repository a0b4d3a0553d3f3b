"""Refuse any socket connection to a non-loopback address, before a packet leaves.

Installed for every test by conftest.py, and by child processes the tests start
(``import netguard; netguard.install()``), so a test proves localrag stays offline.
"""

from __future__ import annotations

import ipaddress
import re
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


# -- the system-call level: what `strace -f -e trace=connect,sendto,sendmsg` saw ----------------------------
# The socket patches above see only Python; a native library (onnxruntime's telemetry uploader, llama.cpp)
# resolves and connects through libc. These read strace's record of every process instead.

_SYSCALL = re.compile(r"\b(connect|sendto|sendmsg)\((\d+), (.*)")
_FAMILY = re.compile(r"sa_family=(AF_\w+)")
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_IPV4 = re.compile(r'inet_addr\("([^"]+)"\)')
_IPV6 = re.compile(r'inet_pton\(AF_INET6, "([^"]+)"')
_UNIX = re.compile(r'sun_path=(@?"[^"]*"|@[^,}]*)')
# Local sockets that answer name lookups: a connection to one is a DNS query by proxy.
NAME_SERVICE_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve")


def syscall_violations(trace: str) -> list[str]:
    """Every connect/sendto/sendmsg in a strace log that leaves this machine or looks a name up.

    Allowed: IPv4/IPv6 loopback (except port 53: a query to a local resolver such as 127.0.0.53 is still a
    name lookup), Unix sockets other than the name services, netlink, and AF_UNSPEC (a UDP disconnect).
    A sendto/sendmsg without an address goes where its socket's connect said, which is checked there.
    """
    found = []
    for line in trace.splitlines():
        m = _SYSCALL.search(line)
        if m is None:
            continue
        family = _FAMILY.search(m.group(3))
        if family is None:
            continue
        kind = family.group(1)
        if kind in ("AF_INET", "AF_INET6"):
            address = _IPV4.search(line) or _IPV6.search(line)
            port = _PORT.search(line)
            host = address.group(1) if address else "?"
            if port is not None and port.group(1) == "53":
                found.append(f"DNS query ({m.group(1)} to {host} port 53): {line.strip()}")
            elif not _is_loopback(host.removeprefix("::ffff:")):
                found.append(f"non-loopback {m.group(1)} to {host}: {line.strip()}")
        elif kind == "AF_UNIX":
            path = _UNIX.search(line)
            name = path.group(1).strip('"') if path else ""
            if name in NAME_SERVICE_SOCKETS:
                found.append(f"name-service lookup via {name}: {line.strip()}")
        elif kind not in ("AF_NETLINK", "AF_UNSPEC"):
            found.append(f"{kind} {m.group(1)}: {line.strip()}")
    return found
