"""Outbound connections to submitted endpoints: where they may go, how long and how much they may read.

A submitted base URL is attacker-controlled. Checking it once before connecting is not enough: DNS can
answer differently a moment later (rebinding), and a redirect can point anywhere. So the check lives in
the connection itself. ``GuardedConnection`` resolves the host once per connect, checks every address with
``AddressPolicy`` and connects to exactly the checked address; the URL's host name still goes into the Host
header and the TLS server name, so certificates are verified against it. ``GuardedPool`` keeps those
connections, follows no redirect and refuses replies over a byte limit while they stream in;
``GuardedTransport`` puts the pool under an httpx client; ``call_deadline`` caps the total time of a call
across connects, reads and retries.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import http.client
import io
import ipaddress
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

# Ranges that are not globally routable, refused explicitly on top of ``is_global`` (whose coverage differs
# between Python releases): "this network", shared address space (carrier NAT, where some clouds put their
# metadata service), IETF protocol assignments, the 6to4 relay anycast, benchmarking, multicast, reserved;
# for IPv6 the local-use NAT64 prefix, site-local, multicast, discard-only, IETF protocol assignments
# (Teredo among them), documentation, unique local and link-local.
_REFUSED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "64:ff9b:1::/48", "fec0::/10", "ff00::/8", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The endpoint's host resolves to an address the policy does not allow."""

    def __init__(self, host: str, addresses: Sequence[str]):
        self.host = host
        self.addresses = list(addresses)
        shown = ", ".join(self.addresses)
        super().__init__(
            f"'{host}' resolves to a private, loopback or link-local address ({shown}); "
            "only publicly routable endpoints are allowed on this server"
        )


class ReplyTooLarge(Exception):
    """The reply grew past the byte limit while it was read; reading stopped there."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"the endpoint's reply is over the limit of {limit:,} bytes")


class CompressedReply(Exception):
    """The reply is compressed although none was asked for: its size after decoding would be unbounded."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        super().__init__(f"the endpoint sent a '{encoding}'-encoded reply although it was asked for an uncompressed one")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is where packets end up."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; IPv6 wrappers are judged by the IPv4 inside."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return is_public_address(inner)
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        return False
    return not any(ip in network for network in _REFUSED_NETWORKS if network.version == ip.version)


def system_resolver(host: str, port: int) -> list[str]:
    """The host's TCP addresses in the order the system resolver gives them, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a connection may reach.

    By default only globally routable ones. ``allow_private`` lifts the rule (local runs, tests);
    ``allowed_hosts`` lifts it for named hosts (a model server on the operator's own network);
    ``allowed_networks`` admits addresses in the given networks whatever the name.
    """

    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    def restricts(self, host: str) -> bool:
        """False when any address is fine for ``host``, so there is nothing to check."""
        return not (self.allow_private or host.lower() in self.allowed_hosts)

    def permits(self, ip: IPAddress) -> bool:
        return is_public_address(ip) or any(ip in network for network in self.allowed_networks)

    def addresses_for(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once; return the addresses a connection may use, or raise ``AddressRefused``.

        Every address is checked: a name with one public and one private address is refused, as a
        connection could land on either.
        """
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = list(self.resolver(host, port))
        if not addresses:
            raise OSError(f"the host '{host}' has no addresses")
        if not self.restricts(host):
            return addresses
        refused = [a for a in addresses if not self.permits(ipaddress.ip_address(a))]
        if refused:
            raise AddressRefused(host, refused)
        return addresses


# Trusted, operator-configured endpoints (local runs, command-line tools, tests) go anywhere.
UNRESTRICTED = AddressPolicy(allow_private=True)


# -- one time budget per call, across connects, reads and retries ----------------------------------------

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("endpoint_call_deadline", default=None)


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[float]:
    """Cap every network wait in this thread for ``seconds`` from now; yields the monotonic deadline."""
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def _time_left(timeout: float | None) -> float | None:
    """``timeout`` shortened to what is left of the current call's budget; ``TimeoutError`` once none is."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the call's time budget ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineSocket:
    """A connected socket whose every send and receive waits at most ``timeout`` and never past the current
    call's deadline. A connection outlives calls (keep-alive), so the deadline is looked up on each operation,
    and a reply that trickles in a byte at a time is stopped at the deadline, not one timeout per byte.

    Like a socket, it stays open while a file made of it is (``http.client`` closes the connection of a
    ``Connection: close`` reply before its body is read)."""

    def __init__(self, sock: socket.socket, timeout: float):
        self._sock = sock
        self._timeout = timeout
        self._files = 0
        self._closing = False

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_time_left(self._timeout))
        self._sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        self._sock.settimeout(_time_left(self._timeout))
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        self._files += 1
        return io.BufferedReader(_SocketReader(self))

    def dropped(self) -> bool:
        """Whether an idle keep-alive connection was closed by the endpoint (or sent what nobody asked for):
        either way it is readable, and it cannot carry the next request."""
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self._closing = True
        if not self._files:
            self._sock.close()

    def file_closed(self) -> None:
        self._files -= 1
        if self._closing and not self._files:
            self._sock.close()


class _SocketReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket):
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock.file_closed()


class GuardedConnection(http.client.HTTPConnection):
    """An HTTP/1.1 keep-alive connection that resolves its host once per connect, checks every address
    with the policy and connects to a checked address and nothing else. The URL's host name still goes into
    the Host header and the TLS server name, so certificates are verified against it."""

    def __init__(self, host: str, port: int, *, policy: AddressPolicy, timeout: float, connect_timeout: float,
                 tls: ssl.SSLContext | None):
        super().__init__(host, port, timeout=timeout)
        self._policy = policy
        self._connect_timeout = connect_timeout
        self._tls = tls

    def connect(self) -> None:
        try:
            addresses = self._policy.addresses_for(self.host, self.port)
        except (OSError, UnicodeError) as exc:
            raise ConnectionError(f"the host '{self.host}' does not resolve ({exc})") from exc
        failure: OSError | None = None
        for address in addresses:  # in resolver order, as the system's own connect would
            try:
                sock = socket.create_connection((address, self.port), _time_left(self._connect_timeout))
            except OSError as exc:
                failure = exc
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go out as separate writes
                if self._tls is not None:
                    sock.settimeout(_time_left(self._connect_timeout))
                    sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            self.sock = _DeadlineSocket(sock, self.timeout)  # type: ignore[assignment]
            return
        assert failure is not None
        raise failure


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the trust store takes ~0.1 s; one verifying context serves every client of the process.
    return httpx2.create_ssl_context()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), default)


# Bytes asked of the socket at a time while a body is read (and counted against the limit).
_READ_CHUNK = 1 << 16


@functools.lru_cache(maxsize=64)
def _origin_and_target(url: str) -> tuple[tuple[str, str, int], str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (parts.scheme, parts.hostname, port), (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class GuardedPool:
    """Connections to submitted endpoints: one keep-alive connection per calling thread and endpoint (each
    thread waits on its own call, so a thread never needs two and never waits for another's), made by
    ``GuardedConnection``; replies read at most to ``max_body_bytes`` and refused if compressed.

    Thread-safe. A plain exchange over ``http.client``: on the worker's hot path, a general HTTP client's
    request and response models and its shared pool cost more CPU per call than the exchange itself.
    """

    def __init__(self, policy: AddressPolicy, *, timeout: float, connect_timeout: float, max_body_bytes: int):
        self._policy = policy
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_body_bytes = max_body_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[GuardedConnection] = []

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> Reply:
        """One exchange; raises ``TimeoutError``, ``OSError`` (connection), ``http.client.HTTPException``
        (a reply that is not HTTP), ``AddressRefused``, ``ReplyTooLarge`` or ``CompressedReply``."""
        origin, target = _origin_and_target(url)
        connection = self._connection(origin)
        response: http.client.HTTPResponse | None = None
        try:
            connection.request(method, target, body=body, headers={**headers, "Accept-Encoding": "identity"})
            response = connection.getresponse()
            encoding = (response.getheader("content-encoding") or "identity").strip().lower()
            declared = response.getheader("content-length") or ""
            if encoding not in ("", "identity"):
                raise CompressedReply(encoding)
            if declared.isdigit() and int(declared) > self._max_body_bytes:
                raise ReplyTooLarge(self._max_body_bytes)
            return Reply(response.status, response.getheaders(), self._read(response))
        except BaseException:
            if response is not None:
                response.close()
            connection.close()  # mid-exchange: what is left on it is not the next reply
            raise

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        chunks, received = [], 0
        while chunk := response.read(_READ_CHUNK):
            received += len(chunk)
            if received > self._max_body_bytes:
                raise ReplyTooLarge(self._max_body_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    def _connection(self, origin: tuple[str, str, int]) -> GuardedConnection:
        connections: dict[tuple[str, str, int], GuardedConnection] = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(origin)
        if connection is None:
            scheme, host, port = origin
            connection = connections[origin] = GuardedConnection(
                host, port, policy=self._policy, timeout=self._timeout, connect_timeout=self._connect_timeout,
                tls=_ssl_context() if scheme == "https" else None)
            with self._lock:
                self._opened.append(connection)
        elif connection.sock is not None and connection.sock.dropped():  # type: ignore[attr-defined]
            connection.close()  # the request below connects again, through the policy
        return connection

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()


class GuardedTransport(httpx2.BaseTransport):
    """The pool under an httpx client (the ``openai`` SDK's), so that the SDK's calls are guarded alike. What
    the pool raises passes through; the SDK wraps it, with the original as the cause."""

    def __init__(self, pool: GuardedPool):
        self._pool = pool

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        reply = self._pool.request(request.method, str(request.url), dict(request.headers), request.read() or None)
        return httpx2.Response(reply.status, headers=reply.headers, content=reply.body, request=request)

    def close(self) -> None:
        self._pool.close()
