"""Sending one webhook delivery: SSRF-safe, bounded in time, signed, never redirected.

Where a URL points is checked when sending (DNS answers change after an endpoint is saved):
every address the host resolves to must be public; the connection then goes to the checked
address itself (the host name only names it in TLS and `Host`), so a second, different DNS
answer cannot slip in. Redirects are answers like any other (3xx: not a success), never
followed. In development (`pawpost up`, PAWPOST_DEV=1) http:// to a loopback address is
allowed too, to try it out against a local receiver.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from threads.webhooks import Outcome, sign

TIMEOUT_SECONDS = 10
READ_BYTES = 500
USER_AGENT = "Pawpost-Webhooks/1"
# Cloud metadata services that are not caught by "private" or "link-local" alone.
METADATA = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))


class Refused(Exception):
    """The URL may not be sent to (scheme, or an address that is not public)."""


def allowed_address(address: str, *, development: bool) -> bool:
    """Public unicast only; loopback as well in development."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in METADATA):
        return False
    if development and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast


def resolve(url: str, *, development: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, checked address) for `url`, or `Refused`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    scheme = parts.scheme
    if scheme not in ("https", "http") or not host:
        raise Refused("only https:// URLs are sent to")
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise Refused(f"{host} does not resolve ({error.strerror})") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if not allowed_address(address, development=development):
            raise Refused(f"{host} resolves to {address}, which is not a public address")
    if scheme == "http" and not (development and all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)):
        raise Refused("only https:// URLs are sent to (http:// only to loopback, in development)")
    return scheme, host, port, addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Signed:
    """A delivery ready to send: its URL, headers and body."""

    url: str
    headers: dict[str, str]
    body: str


def signed_request(url: str, secret: str, event_id: str, body: str, now: float) -> Signed:
    """The Standard Webhooks headers for `body`, timestamped `now` (seconds)."""
    timestamp = int(now)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event_id, timestamp, body),
    }
    return Signed(url, headers, body)


def send(request: Signed, *, development: bool, timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """POST once; whatever happens becomes an `Outcome` (never raises for the receiver's faults)."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, address = resolve(request.url, development=development)
    except Refused as error:
        return Outcome(None, elapsed(), f"refused: {error}")
    parts = urlsplit(request.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    connection = kind(host, port, address, timeout)
    try:
        connection.request("POST", path, body=request.body.encode(), headers=request.headers)
        answer = connection.getresponse()
        excerpt = answer.read(READ_BYTES).decode("utf-8", "replace")
        return Outcome(answer.status, elapsed(), excerpt)
    except (OSError, http.client.HTTPException) as error:
        return Outcome(None, elapsed(), f"no answer: {type(error).__name__}: {error}"[:READ_BYTES])
    finally:
        connection.close()
