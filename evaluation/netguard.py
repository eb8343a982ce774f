"""Outbound connections to submitted endpoints: where they may go, how long and how much they may read.

A submitted base URL is attacker-controlled. Checking it once before connecting is not enough: DNS can
answer differently a moment later (rebinding), and a redirect can point anywhere. So the check lives in
the connection itself. ``GuardedBackend`` (an httpcore network backend) resolves the host once, checks
every address with ``AddressPolicy`` and connects to exactly the checked address; the URL's host name still
goes into the Host header and the TLS server name, so certificates are verified against it.
``GuardedTransport`` puts that backend under httpx, refuses replies over a byte limit while they stream in,
and ``call_deadline`` caps the total time of a call across connects, reads and retries.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore2
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


def _within_deadline(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shortened to what is left of the current call's budget; ``expired`` once none is."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the call's time budget ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read and write waits at most until the current call's deadline.

    A connection outlives calls (keep-alive), so the deadline is looked up on each operation.
    """

    def __init__(self, stream: httpcore2.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within_deadline(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within_deadline(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore2.NetworkStream:
        # server_hostname is the URL's host (httpcore passes the origin), so SNI and the certificate
        # check are against the name, not the address connected to.
        tls = self._stream.start_tls(ssl_context, server_hostname, _within_deadline(timeout, httpcore2.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore2.NetworkBackend):
    """Resolves once, checks with the policy, connects to the checked address and nothing else."""

    def __init__(self, policy: AddressPolicy):
        self._policy = policy
        self._sockets = httpcore2.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        try:
            addresses = self._policy.addresses_for(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"the host '{host}' does not resolve ({exc})") from exc
        failure: httpcore2.ConnectError | httpcore2.ConnectTimeout | None = None
        for address in addresses:  # in resolver order, as the system's own connect would
            try:
                stream = self._sockets.connect_tcp(address, port, _within_deadline(timeout, httpcore2.ConnectTimeout),
                                                   local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        raise httpcore2.ConnectError("endpoints are reached over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the trust store takes ~0.1 s; one verifying context serves every client of the process.
    return httpx2.create_ssl_context()


class _BoundedBody(httpx2.SyncByteStream):
    def __init__(self, stream: httpx2.SyncByteStream, limit: int):
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise ReplyTooLarge(self._limit)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class GuardedTransport(httpx2.HTTPTransport):
    """httpx transport for submitted endpoints: guarded connections, replies read to ``max_body_bytes``.

    Send requests with ``Accept-Encoding: identity`` (see ``guarded_client``): the limit counts bytes on
    the wire, and a compressed reply is refused rather than decoded to an unknown size.
    """

    def __init__(self, policy: AddressPolicy, *, max_body_bytes: int, pool_size: int):
        limits = httpx2.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        ssl_context = _ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        # httpx takes no network backend, so its pool (no connections yet) is replaced by one with ours.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )
        self._max_body_bytes = max_body_bytes

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        assert isinstance(response.stream, httpx2.SyncByteStream)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        declared = response.headers.get("content-length", "")
        problem: Exception | None = None
        if encoding not in ("", "identity"):
            problem = CompressedReply(encoding)
        elif declared.isdigit() and int(declared) > self._max_body_bytes:
            problem = ReplyTooLarge(self._max_body_bytes)
        if problem is not None:
            response.stream.close()  # without reading it: the connection is dropped
            raise problem
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_BoundedBody(response.stream, self._max_body_bytes),
            extensions=response.extensions,
        )


def guarded_client(policy: AddressPolicy, *, timeout: httpx2.Timeout, max_body_bytes: int, pool_size: int) -> httpx2.Client:
    """An httpx client that follows no redirect and takes no proxy or credentials from the environment."""
    return httpx2.Client(
        transport=GuardedTransport(policy, max_body_bytes=max_body_bytes, pool_size=pool_size),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )
