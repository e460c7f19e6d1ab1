"""Handing finished emails to the world: an SMTP relay or a local Maildir. The only smtplib user.

`PAWPOST_OUTBOUND_URL`:
- `smtp://user:pass@host:587?starttls=1` or `smtps://user:pass@host:465`: a relay.
- `maildir:///path` (the embedded default): files the portal's development mailbox shows.

A send raises `TemporaryFailure` (4xx, connection trouble: retry later) or
`PermanentFailure` (5xx: final); callers decide what that means for the outbox row.
"""

from __future__ import annotations

import atexit
import logging
import mailbox
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30
IDLE_SECONDS = 10
MAX_IDLE_CONNECTIONS = 8


class DeliveryError(Exception):
    """A send did not succeed; `code` is the SMTP reply code when there was one."""

    def __init__(self, message: str, code: int | None = None, enhanced: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced


class TemporaryFailure(DeliveryError):
    """4xx or no connection: the same email may succeed later."""


class PermanentFailure(DeliveryError):
    """5xx: sending it again would fail again."""

    @property
    def bad_address(self) -> bool:
        """RFC 3463 5.1.x: the address itself is wrong (unknown user, bad domain…)."""
        return (self.enhanced or "").startswith("5.1.")


class Connection(Protocol):
    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> None: ...


@dataclass(frozen=True)
class SmtpRelay:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False


@dataclass(frozen=True)
class MaildirTarget:
    path: Path


Target = SmtpRelay | MaildirTarget


def parse_outbound_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme == "maildir":
        return MaildirTarget(Path(unquote(parts.path)))
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"unsupported outbound URL scheme {parts.scheme!r}")
    options = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    return SmtpRelay(
        host=parts.hostname or "localhost",
        port=parts.port or (465 if implicit_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit_tls,
        starttls=options.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
    )


@contextmanager
def open_connection(target: Target) -> Iterator[Connection]:
    """One session for a batch of emails: one SMTP connection reused, or the Maildir.

    A relay connection that ends the batch healthy goes back to this process's idle pool
    for the next batch: opening one costs a TCP handshake, the greeting, EHLO (often a
    delayed-ACK stall of ~40 ms) and QUIT, more than the sends of a one-thread digest.
    """
    if isinstance(target, MaildirTarget):
        yield _MaildirConnection(target.path)
        return
    connection = _idle.take(target) or _SmtpConnection(target)
    try:
        yield connection
    except BaseException:
        connection.close()
        raise
    _idle.give(connection)


def close_idle_connections() -> None:
    """QUIT every pooled relay connection (a worker shutting down, tests between relays)."""
    _idle.close_all()


class _IdlePool:
    """Relay connections of this process between batches, each kept at most `IDLE_SECONDS`
    (relays drop idle clients; a dropped one is reconnected by `_SmtpConnection.send`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections: list[tuple[float, _SmtpConnection]] = []

    def take(self, relay: SmtpRelay) -> _SmtpConnection | None:
        expired, found = [], None
        with self.lock:
            now = time.monotonic()
            kept = []
            for since, connection in self.connections:
                if now - since > IDLE_SECONDS:
                    expired.append(connection)
                elif found is None and connection.relay == relay:
                    found = connection
                else:
                    kept.append((since, connection))
            self.connections = kept
        for connection in expired:
            connection.close()
        return found

    def give(self, connection: _SmtpConnection) -> None:
        if connection.client is None:
            return
        with self.lock:
            if len(self.connections) < MAX_IDLE_CONNECTIONS:
                self.connections.append((time.monotonic(), connection))
                return
        connection.close()

    def close_all(self) -> None:
        with self.lock:
            connections, self.connections = self.connections, []
        for _since, connection in connections:
            connection.close()


def send_raw(host: str, port: int, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
    """Plain SMTP submission of a finished email (the portal's development mailbox uses it)."""
    with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS) as client:
        refused = client.sendmail(mail_from, rcpt_tos, raw)
    if refused:
        raise PermanentFailure(f"refused recipients: {', '.join(sorted(refused))}")


class _MaildirConnection:
    def __init__(self, path: Path) -> None:
        self.box = mailbox.Maildir(path, create=True)

    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> None:
        # What a local delivery agent adds, so the development mailbox shows the envelope.
        trace = f"Return-Path: <{mail_from}>\r\nDelivered-To: {rcpt_to}\r\n".encode("ascii", "replace")
        try:
            self.box.add(trace + raw)
        except OSError as error:
            raise TemporaryFailure(f"maildir: {error}") from error


_idle = _IdlePool()
atexit.register(close_idle_connections)


class _SmtpConnection:
    """A lazily opened relay connection, reopened once if the relay dropped it."""

    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay
        self.client: smtplib.SMTP | None = None

    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> None:
        for attempt in (1, 2):
            try:
                client = self._connected()
            except (OSError, smtplib.SMTPException) as error:
                # Greeting, TLS or login trouble is the relay's or the operator's to fix:
                # never a reason to give up on the email itself.
                self.close()
                raise TemporaryFailure(f"relay unavailable: {error}") from error
            try:
                client.sendmail(mail_from, [rcpt_to], raw)
                return
            except smtplib.SMTPRecipientsRefused as error:
                code, reply = error.recipients.get(rcpt_to, (None, b""))
                self._reset()
                raise _failure(code, reply) from error
            except smtplib.SMTPServerDisconnected as error:
                # A reused connection the relay closed while idle: reconnect once.
                self.close()
                if attempt == 2:
                    raise TemporaryFailure(f"relay disconnected: {error}") from error
            except smtplib.SMTPResponseException as error:
                self._reset()
                raise _failure(error.smtp_code, error.smtp_error) from error
            except (OSError, smtplib.SMTPException) as error:
                self.close()
                raise TemporaryFailure(f"relay connection failed: {error}") from error

    def _connected(self) -> smtplib.SMTP:
        if self.client is not None:
            return self.client
        relay = self.relay
        if relay.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                relay.host, relay.port, timeout=SMTP_TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=SMTP_TIMEOUT_SECONDS, local_hostname=socket.getfqdn())
        try:
            client.ehlo()
            if relay.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if relay.username:
                client.login(relay.username, relay.password or "")
        except BaseException:
            _quietly_close(client)
            raise
        self.client = client
        return client

    def _reset(self) -> None:
        if self.client is None:
            return
        try:
            self.client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                _quietly_close(client)


def _quietly_close(client: smtplib.SMTP) -> None:
    try:
        client.close()
    except OSError:
        logger.debug("closing an SMTP connection failed", exc_info=True)


def _failure(code: int | None, reply: bytes | str | None) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else (reply or "")
    text = " ".join(text.split())[:500]
    enhanced = text.split(" ", 1)[0] if text[:2] in ("4.", "5.") else None
    if code is not None and 500 <= code < 600:
        return PermanentFailure(f"{code} {text}", code, enhanced)
    return TemporaryFailure(f"{code} {text}", code, enhanced)


def check_relay(outbound_url: str) -> str:
    """Reach the configured target without sending anything (`pawpost doctor`).

    Raises `TemporaryFailure` when the relay cannot be reached, greeted or logged in to.
    """
    target = parse_outbound_url(outbound_url)
    if isinstance(target, MaildirTarget):
        mailbox.Maildir(target.path, create=True)
        return f"maildir {target.path} writable"
    connection = _SmtpConnection(target)
    try:
        client = connection._connected()
        client.noop()
    except (OSError, smtplib.SMTPException) as error:
        raise TemporaryFailure(f"relay {target.host}:{target.port} unavailable: {error}") from error
    finally:
        connection.close()
    return f"relay {target.host}:{target.port} answers" + (" (STARTTLS)" if target.starttls else "")
