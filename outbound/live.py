"""Live hints for open portal tabs: published after the commit, like the queue push.

A hint names only what changed (a message id, an inbound email id, a staff id); the stream
process (`portal.live`) resolves it, checks access for each tab, and the tab refetches
through the pages' own endpoints. So a lost hint costs a tab one refresh, never a wrong dot.

Two feeds: Redis pub/sub on one channel (production: every `smtp`, `worker` and `web`
process publishes, every `live` process subscribes) and an in-process broker for
`pawpost up`, where all parts share one process and there may be no Redis at all.
Publishing never raises and never blocks long: the post is committed whatever happens here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from pawpost.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "pawpost:live"
# A publish waits at most this long for Redis; a hint is not worth holding a request for.
PUBLISH_TIMEOUT_SECONDS = 0.5

Event = dict[str, Any]
Listener = Callable[[Event], None]


class LocalBroker:
    """Hands each event to every listener in this process (listeners must be thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish_many(self, events: list[Event]) -> None:
        for event in events:
            self.publish(event)

    def publish(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # one listener's fault never stops the others
                logger.exception("live listener failed")


local_broker = LocalBroker()


def redis_channel(live_url: str) -> tuple[str, str]:
    """The Redis URL and the channel name of `PAWPOST_LIVE_URL`.

    Pub/sub channels are shared by every database of a Redis server, so deployments (or test
    runs) that share one server name their own with `?channel=NAME`.
    """
    parts = urlsplit(live_url)
    query = parse_qs(parts.query)
    channel = (query.pop("channel", [CHANNEL])[0] or CHANNEL)[:200]
    rest = urlencode(query, doseq=True)
    return urlunsplit(parts._replace(query=rest)), channel


class _RedisPublisher:
    def __init__(self, live_url: str) -> None:
        import redis

        url, self._channel = redis_channel(live_url)
        self._client = redis.Redis.from_url(
            url, socket_timeout=PUBLISH_TIMEOUT_SECONDS, socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS
        )

    def publish(self, event: Event) -> None:
        self._client.publish(self._channel, json.dumps(event, separators=(",", ":")))

    def publish_many(self, events: list[Event]) -> None:
        """Every event in one round trip (a pipeline, not a transaction)."""
        with self._client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(self._channel, json.dumps(event, separators=(",", ":")))
            pipe.execute()

    def close(self) -> None:
        self._client.close()


def redis_round_trip(live_url: str, timeout: float = 2.0) -> int:
    """Publish a probe on a side channel and read it back through a subscription; returns how
    many subscribers the live channel has (each `pawpost live` process is one). Raises when
    Redis is unreachable or the probe does not come back within `timeout` seconds."""
    import redis

    url, channel = redis_channel(live_url)
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    probe = f"{channel}:probe:{uuid.uuid4().hex}"  # never the live channel: no tab gets a stray hint
    try:
        with client.pubsub(ignore_subscribe_messages=True) as pubsub:
            pubsub.subscribe(probe)
            pubsub.get_message(timeout=timeout)  # the subscribe confirmation
            client.publish(probe, "ping")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
                if message is not None and message.get("data") == b"ping":
                    break
            else:
                raise TimeoutError(f"a published probe did not come back within {timeout:g} s")
        return int(dict(client.pubsub_numsub(channel)).get(channel.encode(), 0))
    finally:
        client.close()


class _Publisher:
    """Where this process's hints go; set once per process by `configure_live`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.target: LocalBroker | _RedisPublisher = local_broker


_publisher = _Publisher()


def configure_live(settings: Settings) -> None:
    """Send this process's hints to Redis (`settings.live_url`) or to the in-process broker."""
    target: LocalBroker | _RedisPublisher = local_broker if settings.live_is_local else _RedisPublisher(settings.live_url)
    with _publisher.lock:
        old, _publisher.target = _publisher.target, target
    if isinstance(old, _RedisPublisher):
        old.close()


def publish(event: Event) -> None:
    """Send one hint; never raises (the client's next fetch heals a lost one)."""
    try:
        _publisher.target.publish(event)
    except Exception as error:  # Redis down or slow: the committed change stands
        logger.warning("live hint %s not published: %s", event.get("kind"), type(error).__name__)


def message_posted(message_id: int) -> None:
    """A message was committed: the thread's viewers, dots and inbox order change."""
    publish({"kind": "message", "message_id": message_id})


def messages_posted(message_ids: Sequence[int]) -> None:
    """`message_posted` for several committed messages, in one round trip to Redis."""
    if len(message_ids) == 1:
        message_posted(message_ids[0])
        return
    events = [{"kind": "message", "message_id": message_id} for message_id in message_ids]
    try:
        _publisher.target.publish_many(events)
    except Exception as error:  # Redis down or slow: the committed changes stand
        logger.warning("%d live hints not published: %s", len(events), type(error).__name__)


def thread_read(staff_id: int) -> None:
    """A staff member's read cursor moved: their own tabs' dots change."""
    publish({"kind": "read", "staff_id": staff_id})


def quarantine_changed(inbound_email_id: int) -> None:
    """An email was quarantined, released or discarded: seniors' quarantine count changes."""
    publish({"kind": "quarantine", "inbound_email_id": inbound_email_id})


def signed_out(staff_id: int) -> None:
    """A staff member signed out: their open streams end and must authenticate again."""
    publish({"kind": "signout", "staff_id": staff_id})
