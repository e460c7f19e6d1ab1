"""The SMTP server: aiosmtpd on the reply domain, answering as DESIGN.md's table says.

Following Zulip's email gateway, the server does only the cheap part: recipients are
checked at RCPT, and at DATA the raw email is stored (outcome `received`, the thread its
recipient named, the Message-ID from a header-only parse) by the group-commit writer;
`250` goes out only after the commit that holds it. Parsing, routing and posting happen
in the queue worker (`inbound.tasks.process_inbound_email`), typically within a second.
Nothing blocks the event loop: the RCPT lookups and the INSERT are awaited on it
(`inbound.batching`, through psycopg's async connection; a thread per link on SQLite),
and every other database touch runs in a thread. Any fault the sender can cure by retrying
is `451 4.3.0` with a generic text: aiosmtpd's default `500` would make the sending MTA
drop the mail for good, and an exception's text can leak database details.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session as SMTPSession
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from inbound.accept import needs_lookup, received_row, route_tokenless
from inbound.parse import HeaderSummary, parse_headers
from inbound.route import ForeignDomain, NoThreadMatched, Recipient, RoutingError, UnknownRecipient
from inbound.batching import GroupCommitWriter, QueuePusher, RecipientChecker
from inbound.links import link_for
from threads.email_choice import set_email_choice
from threads.models import Contact
from inbound.tasks import dispatch, queue_is_local
from clikit.heap import give_back_memory, map_big_allocations
from pawpost.settings import Settings
from threads.db import make_engine, make_session_factory
from threads.types import utcnow

logger = logging.getLogger(__name__)

ACCEPTED = "250 2.0.0 Message accepted"
TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
TOO_BIG = "552 5.3.4 Message too big for system"
# RFC 3463: 4.7.0 (a security policy: too many connections from one client, too many
# commands), 4.3.2 (the system is not accepting more messages right now), 4.4.2 (the
# connection is closed: the session went on too long). All temporary: an MTA retries.
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections from your address, please try again later"
TOO_MANY_TRANSFERS = "451 4.3.2 Too many messages in transfer, please try again later"
SESSION_TOO_LONG = "421 4.4.2 Session too long, closing connection"

# The one table from typed routing errors to SMTP answers (RFC 5321 / RFC 3463).
ROUTING_REPLIES: dict[type[RoutingError], str] = {
    ForeignDomain: "550 5.7.1 Relaying denied",
    UnknownRecipient: "550 5.1.1 No such recipient here",
    NoThreadMatched: "550 5.1.1 No conversation found for this recipient",
}

# aiosmtpd's own canned lines that the design words differently.
_REWRITTEN_LINES = {
    "552 Error: Too much mail data": TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
}

SMTP_WORKER_THREADS = 8
# Above this, reading the header block and hashing the bytes leave the event loop too.
INLINE_ACCEPT_BYTES = 256 * 1024
# One email makes one post; more recipients than this is a mailing, not a reply.
MAX_RECIPIENTS = 20
DEFAULT_DRAIN_SECONDS = 30.0
# Bounds on what clients can hold. Each DATA in flight holds up to the size limit in
# memory (25 MB, more while it is joined and stored): 45 at once made `pawpost smtp` peak
# at 5.45 GB. So at most this many transfers at once, and at most this many bytes of
# transfers whose sender declared their size (`MAIL FROM:<…> SIZE=n`, as MTAs do).
MAX_DATA_IN_FLIGHT = 32
MAX_DATA_BYTES_IN_FLIGHT = 256 * 1024 * 1024
# After this many bytes of mail, once no DATA is in flight, free heap pages go back to
# the system (malloc_trim): what a burst of big emails left behind is not kept for good.
TRIM_AFTER_BYTES = 64 * 1024 * 1024
# Postfix's default (smtpd_client_connection_count_limit).
MAX_SESSIONS_PER_CLIENT = 50
# A session ends after this long whatever it does (aiosmtpd's timeout is per command, so
# a NOOP every few minutes kept one open forever) ...
MAX_SESSION_SECONDS = 15 * 60
# ... and after this many of one command (aiosmtpd's `command_call_limit` answers
# `421 4.7.0 <command> sent too many times` and closes). Generous for a real MTA: a
# hundred emails in one session, each to up to MAX_RECIPIENTS.
COMMAND_LIMITS = {"MAIL": 100, "RCPT": 2000, "DATA": 100, "RSET": 100, "NOOP": 20, "*": 20}
CLOSE_DATABASE_SECONDS = 10.0


def routing_reply(error: RoutingError) -> str:
    for kind, reply in ROUTING_REPLIES.items():
        if isinstance(error, kind):
            return reply
    return ROUTING_REPLIES[UnknownRecipient]


class InboundHandler:
    """aiosmtpd hooks: refuse wrong recipients at RCPT, store the raw email at DATA."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        engine = session_factory.kw.get("bind")
        if not isinstance(engine, Engine):
            raise TypeError("the session factory must be bound to an engine")
        # With a queue only this process can read, the writer processes each email in
        # place before answering; otherwise it answers, then the pusher hands the ids on.
        self.pusher = QueuePusher(self._after_commit)
        local = queue_is_local()
        self.writer = GroupCommitWriter(
            link_for(engine, "pawpost-smtp-writer"),
            self._after_commit if local else self.pusher.put,
            answer_after_hook=local,
        )
        self.recipients = RecipientChecker(
            link_for(engine, "pawpost-smtp-rcpt"), settings.reply_domain, settings.secret_key
        )
        self.stopping = False
        self._in_flight = 0
        self._bytes_in_flight = 0
        self._bytes_since_trim = 0
        self._drained: asyncio.Event | None = None
        self.sessions_per_client: dict[str, int] = {}

    def start(self) -> None:
        self.pusher.start()

    async def close_database(self) -> None:
        """On the loop, once DATA in flight is answered: close the kept connections."""
        await self.recipients.close()
        await self.writer.close()

    def close(self) -> None:
        """After the loop stopped: push what was committed, stop the pusher."""
        self.pusher.close()

    def _after_commit(self, inbound_email_ids: list[int]) -> None:
        dispatch(inbound_email_ids, self.session_factory, self.settings)

    async def handle_EHLO(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # Pawpost takes no submissions, so it never offers AUTH (not even after STARTTLS).
        session.host_name = hostname
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_MAIL(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.stopping:
            return SHUTTING_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            recipient = await self.recipients.ask(address)
        except RoutingError as error:
            logger.info("smtp recipient refused: %s for %s", type(error).__name__, shortened_address(address))
            return routing_reply(error)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        _recipients(envelope).append(recipient)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        recipients = _recipients(envelope)
        unsubscribes = [r.contact_id for r in recipients if r.kind == "unsubscribe" and r.contact_id is not None]
        if unsubscribes:
            # A List-Unsubscribe mailto: pause those contacts; the email itself is not stored.
            try:
                await asyncio.to_thread(self._unsubscribe, unsubscribes)
            except Exception as error:  # transient for the sender: retry later
                return await self.handle_exception(error)
            recipients = [r for r in recipients if r.kind != "unsubscribe"]
            if not recipients:
                return ACCEPTED
        try:
            if needs_lookup(recipients) or len(raw) > INLINE_ACCEPT_BYTES:
                row = await asyncio.to_thread(self._received_row, envelope.mail_from or "", recipients, raw)
            else:
                row = received_row(envelope.mail_from or "", recipients, raw, utcnow(), parse_headers(raw))
            inbound_email_id = await self.writer.ask(row)
        except RoutingError as error:
            logger.info("inbound refused at DATA: %s (%d bytes)", type(error).__name__, len(raw))
            return routing_reply(error)
        except Exception as error:  # anything else is transient for the sender: retry later
            return await self.handle_exception(error)
        logger.debug("inbound stored %d (%d bytes)", inbound_email_id, len(raw))
        self._bytes_since_trim += len(raw)
        return ACCEPTED

    def _unsubscribe(self, contact_ids: list[int]) -> None:
        """Pause these contacts' emails (rule 7), as the one-click POST does."""
        with self.session_factory() as session, session.begin():
            for contact in session.scalars(select(Contact).where(Contact.id.in_(contact_ids))):
                if contact.email_choice != "paused":
                    set_email_choice(session, contact, "paused", utcnow())
                    logger.info("contact %s unsubscribed by email", contact.id)

    def _received_row(self, envelope_from: str, recipients: list[Recipient], raw: bytes) -> dict[str, Any]:
        headers: HeaderSummary = parse_headers(raw)
        if not needs_lookup(recipients):
            return received_row(envelope_from, recipients, raw, utcnow(), headers)
        with self.session_factory() as session:
            thread_id, business_id = route_tokenless(session, headers, raw)
        return received_row(envelope_from, recipients, raw, utcnow(), headers, thread_id, business_id)

    async def handle_exception(self, error: Exception) -> str:
        # The traceback goes to the log (the engine hides SQL parameters, so no body);
        # the sender only learns to retry.
        logger.error("smtp transient failure (%s), answered 451", type(error).__name__, exc_info=error)
        return TEMPORARY_FAILURE

    # Bounds: sessions per client address, DATA transfers in flight.

    def session_opened(self, client: str) -> bool:
        """Count a new session from `client`; False (and not counted) beyond the limit."""
        open_now = self.sessions_per_client.get(client, 0)
        if open_now >= MAX_SESSIONS_PER_CLIENT:
            return False
        self.sessions_per_client[client] = open_now + 1
        return True

    def session_closed(self, client: str) -> None:
        left = self.sessions_per_client.get(client, 0) - 1
        if left > 0:
            self.sessions_per_client[client] = left
        else:
            self.sessions_per_client.pop(client, None)

    def reserve_transfer(self, declared: int) -> bool:
        """Take a slot for one more DATA transfer of `declared` bytes (0: not declared);
        False beyond MAX_DATA_IN_FLIGHT or MAX_DATA_BYTES_IN_FLIGHT. A transfer alone
        always fits the byte budget: the size limit already bounds it."""
        if self._in_flight >= MAX_DATA_IN_FLIGHT:
            return False
        if self._bytes_in_flight and self._bytes_in_flight + declared > MAX_DATA_BYTES_IN_FLIGHT:
            return False
        self._bytes_in_flight += declared
        return True

    def release_transfer(self, declared: int) -> None:
        self._bytes_in_flight -= declared

    # Graceful stop: the server counts DATA commands in flight and waits for them.

    def data_started(self) -> None:
        self._in_flight += 1

    def data_finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0 and self._bytes_since_trim >= TRIM_AFTER_BYTES:
            self._bytes_since_trim = 0
            # The bytes are released once their sessions let go; trimming in a thread
            # keeps the loop free (it takes a few ms on a big heap).
            asyncio.get_running_loop().run_in_executor(None, give_back_memory)
        if self._in_flight == 0 and self._drained is not None:
            self._drained.set()

    async def drain(self, timeout: float) -> bool:
        """Refuse new mail and wait for DATA in flight; False when the wait timed out."""
        self.stopping = True
        if self._in_flight == 0:
            return True
        self._drained = asyncio.Event()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True


class PawpostSMTP(SMTP):
    """aiosmtpd's protocol with the design's wording, in-flight DATA counting and the
    per-client bounds: sessions per address, DATA in flight, a session's total length."""

    event_handler: InboundHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("command_call_limit", COMMAND_LIMITS)
        super().__init__(*args, **kwargs)
        self._client: str | None = None
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._client is None and not self._refused:  # not again after STARTTLS
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
            if self.event_handler.session_opened(client):
                self._client = client
                self._deadline = self.loop.call_later(MAX_SESSION_SECONDS, self._session_over)
            else:
                self._refused = True
                logger.warning("smtp refused a session: too many from one client")
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._client is not None:
            self.event_handler.session_closed(self._client)
            self._client = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refused:
            await self.push(TOO_MANY_SESSIONS)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def _session_over(self) -> None:
        """The session's total deadline: say why, then close (from a timer, not a command)."""
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        logger.info("smtp closed a session that went on for %d s", MAX_SESSION_SECONDS)
        self._writer.write(SESSION_TOO_LONG.encode("ascii") + b"\r\n")
        self.transport.close()

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = _REWRITTEN_LINES.get(status, status)  # type: ignore[assignment]
        await super().push(status)

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.event_handler
        declared = 0
        if self.envelope is not None and self.envelope.rcpt_tos and not arg:
            declared = _declared_size(self.envelope.mail_options)
            if not handler.reserve_transfer(declared):
                await self.push(TOO_MANY_TRANSFERS)
                return
        handler.data_started()
        try:
            await super().smtp_DATA(arg)
        finally:
            handler.release_transfer(declared)
            handler.data_finished()


def _declared_size(mail_options: list[str]) -> int:
    """The SIZE=n of MAIL FROM (RFC 1870), 0 when absent or malformed."""
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0


def _recipients(envelope: Envelope) -> list[Recipient]:
    """What RCPT found for each accepted recipient, kept on aiosmtpd's per-mail envelope."""
    found: list[Recipient] = envelope.__dict__.setdefault("pawpost_recipients", [])
    return found


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The STARTTLS context when the operator gave a certificate and key."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket bound here, so port 0 gives a free port (aiosmtpd refuses 0)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class SMTPController(Controller):
    """aiosmtpd's threaded controller on a socket bound by us, with a graceful stop."""

    handler: InboundHandler

    def __init__(self, handler: InboundHandler, settings: Settings, **smtp_options: Any) -> None:
        host, port = settings.smtp_listen
        self._socket = _bind(host, port)
        self.bound_host, self.bound_port = self._socket.getsockname()[:2]
        smtp_options.setdefault("data_size_limit", settings.max_message_bytes)
        smtp_options.setdefault("tls_context", tls_context(settings))
        super().__init__(
            handler,
            hostname=self.bound_host,
            port=self.bound_port,
            server_hostname=settings.reply_domain,
            ident="Pawpost ESMTP",
            enable_SMTPUTF8=True,
            **smtp_options,
        )
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=SMTP_WORKER_THREADS, thread_name_prefix="pawpost-smtp")
        )

    def factory(self) -> SMTP:
        return PawpostSMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._socket, ssl=self.ssl_context)

    def stop_gracefully(self, timeout: float = DEFAULT_DRAIN_SECONDS) -> None:
        """No new sessions or mail; DATA already in flight finishes and is answered; then stop."""
        if self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._close_and_drain(timeout), self.loop)
        try:
            drained = future.result(timeout + 5)
        except Exception:  # a loop that cannot even drain is stopped the hard way below
            drained = False
        if not drained:
            logger.warning("smtp stopped with DATA still in flight after %.0f s", timeout)
        self.stop()

    async def _close_and_drain(self, timeout: float) -> bool:
        if self.server is not None:
            self.server.close()  # stop listening; sessions already open carry on
        drained = await self.handler.drain(timeout)
        try:
            await asyncio.wait_for(self.handler.close_database(), CLOSE_DATABASE_SECONDS)
        except Exception:  # a database that hangs now must not keep the process alive
            logger.warning("smtp could not close its database connections cleanly", exc_info=True)
        return drained


def start_smtp_server(
    settings: Settings, session_factory: sessionmaker[Session] | None = None
) -> tuple[SMTPController, Callable[[], None]]:
    """Start listening in a background thread; returns the controller and a cleanup.

    With no `session_factory`, the server owns an engine that hides SQL parameters from
    error messages (they would carry message bodies into logs).
    """
    # aiosmtpd logs every command at INFO, full reply tokens included; keep only its warnings.
    protocol_log = logging.getLogger("mail.log")
    if protocol_log.level == logging.NOTSET:
        protocol_log.setLevel(logging.WARNING)
    engine = None
    if session_factory is None:
        # One pooled connection per thread that may read or write (the executor's threads
        # route token-less mail; on SQLite the RCPT and writer links keep one each).
        engine = make_engine(settings.database_url, hide_parameters=True, pool_size=SMTP_WORKER_THREADS + 2)
        session_factory = make_session_factory(engine)
    handler = InboundHandler(settings, session_factory)
    try:
        controller = SMTPController(handler, settings)
        handler.start()
        controller.start()
    except BaseException:
        handler.close()
        if engine is not None:
            engine.dispose()
        raise

    def cleanup() -> None:
        # After the graceful stop: DATA in flight has been answered and its links closed.
        handler.close()
        if engine is not None:
            engine.dispose()

    return controller, cleanup


@contextmanager
def running_smtp_server(
    settings: Settings, session_factory: sessionmaker[Session] | None = None
) -> Iterator[tuple[str, int]]:
    """The real server for tests and `pawpost up`: yields (host, port), stops gracefully.

    With a `memory://` queue (tests), each email is processed in place after its commit
    and before its `250`, since no worker could read that queue; with a real queue the
    outcome follows in the worker.
    """
    controller, cleanup = start_smtp_server(settings, session_factory)
    try:
        yield controller.bound_host, controller.bound_port
    finally:
        controller.stop_gracefully()
        cleanup()


def serve_forever(settings: Settings, *, drain_seconds: float = DEFAULT_DRAIN_SECONDS) -> None:
    """`pawpost smtp`: listen until SIGTERM or Ctrl-C, then stop gracefully."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        logger.info("smtp received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    map_big_allocations()
    controller, cleanup = start_smtp_server(settings)
    try:
        logger.info(
            "smtp listening on %s:%d for @%s (STARTTLS %s, limit %d bytes)",
            controller.bound_host,
            controller.bound_port,
            settings.reply_domain,
            "on" if settings.tls_cert else "off",
            settings.max_message_bytes,
        )
        while not stop.wait(1.0):
            pass
        started = time.monotonic()
        controller.stop_gracefully(drain_seconds)
        logger.info("smtp stopped in %.1f s", time.monotonic() - started)
    finally:
        cleanup()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def shortened_address(address: str, *, keep: int = 4, limit: int = 80) -> str:
    """A recipient as a log line may show it: a reply token (after `+`) cut to its first
    `keep` characters (enough to tell two apart, not to use one), control characters
    dropped, at most `limit` characters (the address is whatever a stranger typed)."""
    text = "".join(c for c in address if c.isprintable())
    local, at, domain = text.rpartition("@")
    if not at:
        local, domain = text, ""
    base, plus, tag = local.partition("+")
    if plus and len(tag) > keep:
        local = f"{base}+{tag[:keep]}…"
    shown = f"{local}{at}{domain}"
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
