"""A real aiosmtpd relay on an ephemeral port that records what it accepted.

aiosmtpd's `Controller` cannot listen on port 0, so this one binds the socket itself.
`answer` makes the relay refuse the next transactions (e.g. "451 4.3.0 busy"); `refuse`
refuses only some recipients (address → answer).
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

from outbound.transport import close_idle_connections


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    at: float

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    answer: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    on_rcpt: Callable[[str], None] | None = None  # runs before each RCPT is accepted
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.answer:
            return self.answer
        if address in self.refuse:
            return self.refuse[address]
        if self.on_rcpt is not None:
            self.on_rcpt(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content, time.time()))
        return "250 2.0.0 queued"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        with self.lock:
            return list(self.received)


class BoundController(Controller):
    """A Controller listening on a socket bound to an ephemeral port by the caller."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextmanager
def running_sink(handler: RecordingHandler | None = None, port: int = 0) -> Iterator[tuple[RecordingHandler, int]]:
    """A relay on 127.0.0.1; pass `port` to come back on the same port after a stop."""
    handler = handler or RecordingHandler()
    sock = bound_socket(port)
    controller = BoundController(handler, sock, data_size_limit=50 * 1024 * 1024, decode_data=False)
    controller.start()
    try:
        yield handler, sock.getsockname()[1]
    finally:
        close_idle_connections()  # the worker's pooled connections say QUIT before the relay goes
        controller.stop()
        sock.close()
