"""Connections to submitted endpoints, against real servers on loopback.

Loopback stands in for the public internet here: the strict policy admits 127.0.0.1 through
``allowed_networks`` (the operator setting for a trusted network) and nothing else that is not public, so
127.0.0.2, where the "internal" servers listen, is as forbidden as any private address in production.
Names resolve through an injected resolver, which is how DNS rebinding is played.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import ipaddress
import time
import tracemalloc

import pytest

from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from evaluation.netguard import AddressPolicy, AddressRefused, is_public_address, system_resolver
from tests.fault_server import FaultServer, completion

PUBLIC_STAND_IN = "127.0.0.1"
INTERNAL = "127.0.0.2"
HI = [{"role": "user", "content": "hi"}]


def strict_policy(resolver=system_resolver) -> AddressPolicy:
    return AddressPolicy(allowed_networks=(ipaddress.ip_network(f"{PUBLIC_STAND_IN}/32"),), resolver=resolver)


class RebindingResolver:
    """Answers the checked address on the first lookup and an internal one on every later lookup."""

    def __init__(self, first: str, then: str):
        self.answers = [first, then]
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [self.answers[min(len(self.lookups), 2) - 1]]


@pytest.fixture
def internal_server(fault_server):
    """A server on 127.0.0.2 that must never be reached; the test reads its request log."""

    def make(port: int = 0) -> FaultServer:
        return fault_server(lambda n, r: (200, {}, completion("internal secret")), host=INTERNAL, port=port,
                            get_reply=(200, {}, b'{"object": "list", "data": [{"id": "internal secret"}]}'))

    return make


def client_for(base_url: str, policy: AddressPolicy, **config) -> EndpointClient:
    config = {"max_retries": 0, "timeout": 5, **config}
    return EndpointClient(EndpointConfig(base_url, "fault-model", address_policy=policy, **config), sleep=lambda s: None)


# -- which addresses are public ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.100.100.200",
        "0.0.0.0", "0.1.2.3", "192.0.0.9", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1", "224.0.0.1",
        "239.255.255.250", "240.0.0.1", "255.255.255.255", "::", "::1", "fe80::1", "fc00::1", "fd00:ec2::254",
        "ff02::1", "ff0e::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::",
        "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::1", "2001:db8::1", "fec0::1",
        "::127.0.0.1", "100::1", "2001::1",
    ],
)
def test_not_globally_routable_addresses_are_refused(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "2002:808:808::1", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert is_public_address(ipaddress.ip_address(address))


def test_a_name_with_any_private_address_is_refused_whole():
    policy = AddressPolicy(resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(AddressRefused) as info:
        policy.addresses_for("mixed.example", 443)
    assert info.value.addresses == ["10.0.0.7"]
    assert AddressPolicy(resolver=lambda host, port: ["93.184.216.34"]).addresses_for("ok.example", 443) == ["93.184.216.34"]


def test_allowed_hosts_and_allow_private_lift_the_rule():
    resolver = lambda host, port: ["10.0.0.7"]  # noqa: E731
    assert AddressPolicy(allowed_hosts=frozenset({"llm.internal"}), resolver=resolver).addresses_for("LLM.internal", 80) == ["10.0.0.7"]
    assert AddressPolicy(allow_private=True, resolver=resolver).addresses_for("any.example", 80) == ["10.0.0.7"]
    with pytest.raises(AddressRefused):
        AddressPolicy(allowed_hosts=frozenset({"llm.internal"}), resolver=resolver).addresses_for("other.internal", 80)


# -- the connection goes to the checked address, or nowhere ----------------------------------------------


def test_refused_address_is_never_connected_to(internal_server):
    internal = internal_server()
    with client_for(internal.base_url, strict_policy()) as client, pytest.raises(EndpointError) as info:
        client.chat(HI)
    assert info.value.code == "address_refused" and not info.value.retryable
    assert "127.0.0.2" in info.value.message and "internal secret" not in info.value.message
    assert internal.requests == []


def test_metadata_address_in_shared_space_is_refused_before_any_packet():
    resolver = RebindingResolver("100.64.0.1", "100.64.0.1")
    with client_for("http://metadata.example/v1", AddressPolicy(resolver=resolver)) as client, pytest.raises(EndpointError) as info:
        client.list_models()
    assert info.value.code == "address_refused" and "100.64.0.1" in info.value.message


def test_dns_rebinding_cannot_move_a_checked_connection(fault_server, internal_server):
    public = fault_server(lambda n, r: (200, {}, completion("public answer")))
    internal = internal_server(port=public.port)  # same port: only the address tells them apart
    resolver = RebindingResolver(PUBLIC_STAND_IN, INTERNAL)
    url = f"http://model.example:{public.port}/v1"

    # The probe and the calls after it share the one connection made to the checked address.
    with client_for(url, strict_policy(resolver)) as client:
        client.check()
        assert client.chat(HI).content == "public answer"
        assert client.chat(HI).content == "public answer"
    assert resolver.lookups == ["model.example"]

    # A later client (the next batch) resolves again, now to the internal address: refused, not connected.
    with client_for(url, strict_policy(resolver)) as client, pytest.raises(EndpointError) as info:
        client.chat(HI)
    assert info.value.code == "address_refused"
    assert internal.requests == [] and [r.method for r in public.requests] == ["GET", "POST", "POST"]
    assert all(r.headers["host"] == f"model.example:{public.port}" for r in public.requests)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_to_loopback_are_not_followed(fault_server, internal_server, status):
    internal = internal_server()
    hop = {"Location": f"{internal.base_url}/chat/completions"}
    public = fault_server(lambda n, r: (status, hop, b"moved; see the internal page"),
                          get_reply=(status, {"Location": f"{internal.base_url}/models"}, b"moved"))
    # Even the permissive policy of local runs: a redirect is an error, never a second request.
    for policy in (strict_policy(), AddressPolicy(allow_private=True)):
        with client_for(public.base_url, policy, max_retries=3) as client:
            with pytest.raises(EndpointError) as chat_error:
                client.chat(HI)
            with pytest.raises(EndpointError) as list_error:
                client.list_models()
        for err in (chat_error.value, list_error.value):
            assert err.code == "redirect" and err.status == status and not err.retryable
            assert "redirects are not followed" in err.message and "moved;" not in err.message
    assert internal.requests == []
    assert public.calls == 2  # one chat request per policy, none retried


# -- bounded reads and time ----------------------------------------------------------------------------


def _peak_traced_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
    except EndpointError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_50_mb_reply_is_cut_off_while_streaming_on_every_attempt(fault_server):
    chunk = b"x" * (1 << 20)
    sent: list[int] = []

    def fifty_megabytes():
        for i in range(50):
            sent.append(i)
            yield chunk

    server = fault_server(lambda n, r: (200, {}, fifty_megabytes()))
    with client_for(server.base_url, strict_policy(), max_retries=2, max_body_bytes=2_000_000) as client:
        with pytest.raises(EndpointError) as info:
            client.chat(HI)
        peak = _peak_traced_bytes(lambda: client.chat(HI))
    assert info.value.code == "bad_response" and "over the limit of 2,000,000 bytes" in info.value.message
    assert server.calls == 6
    assert peak < 8_000_000  # the limit plus buffers, not 50 MB
    assert len(sent) < 6 * 50  # the server was cut off, not read to the end


def test_declared_length_over_the_limit_is_refused_before_the_body(fault_server):
    server = fault_server(lambda n, r: (200, {"Content-Length": str(50 << 20)}, b"{"))
    with client_for(server.base_url, strict_policy(), max_body_bytes=1000) as client, pytest.raises(EndpointError) as info:
        client.chat(HI)
    assert info.value.code == "bad_response" and "over the limit of 1,000 bytes" in info.value.message


def test_compressed_reply_is_refused_not_inflated(fault_server):
    bomb = gzip.compress(b"0" * (20 << 20))  # 20 kB on the wire, 20 MB inflated
    server = fault_server(lambda n, r: (200, {"Content-Encoding": "gzip"}, bomb))
    with client_for(server.base_url, strict_policy()) as client, pytest.raises(EndpointError) as info:
        client.chat(HI)
    assert info.value.code == "bad_response" and "'gzip'-encoded" in info.value.message
    assert server.requests[0].headers["accept-encoding"] == "identity"


def test_trickling_reply_is_stopped_at_the_call_budget(fault_server):
    def trickle():
        yield b'{"choices": ['
        for _ in range(100):
            time.sleep(0.1)
            yield b" "

    server = fault_server(lambda n, r: (200, {}, trickle()))
    started = time.monotonic()
    # Each read answers well within the 1 s timeout, so only the budget across the call can stop it.
    with client_for(server.base_url, strict_policy(), timeout=1, deadline=0.6) as client, pytest.raises(EndpointError) as info:
        client.chat(HI)
    assert info.value.code == "timeout" and "the time budget of 0.6 s per call ran out" in info.value.message
    assert time.monotonic() - started < 1.0


# -- TLS: the name, not the address, is what the certificate is checked against -------------------------


def _self_signed(name: str, directory) -> tuple[str, str]:
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def trusted_certificate(tmp_path, monkeypatch):
    """A certificate for model.example that this process trusts (through SSL_CERT_FILE, as an operator would)."""
    from evaluation import netguard

    cert, key = _self_signed("model.example", tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    netguard._ssl_context.cache_clear()
    yield cert, key
    netguard._ssl_context.cache_clear()


def test_tls_keeps_the_host_name_for_sni_and_the_certificate(fault_server, trusted_certificate):
    cert, key = trusted_certificate
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = fault_server(lambda n, r: (200, {}, completion("over tls")), tls=tls)
    policy = strict_policy(resolver=lambda host, port: [PUBLIC_STAND_IN])

    with client_for(f"https://model.example:{server.port}/v1", policy) as client:
        assert client.chat(HI).content == "over tls"
    assert server.server_names == ["model.example"] and server.requests[0].headers["host"] == f"model.example:{server.port}"

    # Same address, another name: the certificate does not match it, so nothing is sent.
    with client_for(f"https://other.example:{server.port}/v1", policy) as client, pytest.raises(EndpointError) as info:
        client.chat(HI)
    assert info.value.code == "connection" and "certificate is not valid for 'other.example'" in info.value.message
    assert len(server.requests) == 1


# -- keep-alive: a connection the endpoint dropped is not used again -----------------------------------


class OneReplyPerConnection:
    """A raw HTTP/1.1 server that answers one request per connection as if keeping it alive, then closes it
    without a word (as a server does to idle connections), and a request sent on it would fail."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                reply = completion(f"connection {self.connections}")
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply))


def test_a_connection_the_endpoint_closed_while_idle_is_replaced_not_failed():
    server = OneReplyPerConnection()
    try:
        with client_for(server.base_url, strict_policy()) as client:  # no retries: a failed call would raise
            answers = []
            for _ in range(3):
                answers.append(client.chat(HI).content)
                time.sleep(0.05)  # the endpoint's close reaches this side
        assert answers == ["connection 1", "connection 2", "connection 3"]
    finally:
        server.sock.close()
