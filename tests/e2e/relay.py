"""The outside world's mail relay: a real aiosmtpd server that keeps every envelope it accepts.

`pawpost worker` delivers to it through `PAWPOST_OUTBOUND_URL=smtp://…`, exactly as it would
to a provider's relay; the test reads what parents and staff would find in their inboxes.
aiosmtpd's `Controller` refuses port 0, so the socket is bound here first.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Delivery:
    """One accepted transaction: the envelope and the raw bytes, as a relay sees them."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

    @property
    def text(self) -> str:
        """The text/plain part a reader's client shows (decoded from QP/base64)."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, f"no text/plain part in {self.message['Subject']!r}"
        return str(part.get_content())


@dataclass
class RecordingRelay:
    """aiosmtpd handler: accept everything, remember it in arrival order."""

    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.deliveries.append(Delivery(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(raw)))
        return "250 2.0.0 Queued"

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def wait_until(self, ready: Callable[[list[Delivery]], bool], what: str, timeout: float = 30.0) -> list[Delivery]:
        """Poll until `ready(all deliveries)` holds; fail with what arrived otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.snapshot()
            if ready(seen):
                return seen
            if time.monotonic() >= deadline:
                summary = "\n".join(f"  {d.rcpt_tos} {d.message['From']} | {d.message['Subject']}" for d in seen)
                raise AssertionError(f"relay: {what} did not happen within {timeout:.0f} s; it received:\n{summary or '  nothing'}")
            time.sleep(0.1)


class _BoundController(Controller):
    def __init__(self, handler: RecordingRelay, sock: socket.socket) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, decode_data=False, data_size_limit=50 * 1024 * 1024)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


@contextmanager
def running_relay() -> Iterator[tuple[RecordingRelay, int]]:
    """A relay on 127.0.0.1 and an ephemeral port, stopped on exit."""
    relay = RecordingRelay()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    controller = _BoundController(relay, sock)
    controller.start()
    try:
        yield relay, sock.getsockname()[1]
    finally:
        controller.stop()
        sock.close()
