"""The one huey instance, and where its storage and the tasks' settings come from.

The instance is built bare at import time (tasks need it for their decorators) on an
in-memory storage; `configure_queue(settings)` gives it its real storage once per process
(`pawpost web/smtp/worker/up`, tests). Tasks never read `os.environ`: they ask this module
for the settings and the database that `configure_queue` remembered, so a worker, the web
app and a test each run with exactly the settings they were started with.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from huey import Huey
from huey.storage import MemoryStorage, PriorityRedisStorage, SqliteStorage
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pawpost.settings import Settings
from threads.db import make_engine, make_session_factory

logger = logging.getLogger(__name__)

QUEUE_NAME = "pawpost"

# Results are never read (tasks report through the outbox), so none are stored.
huey = Huey(QUEUE_NAME, results=False, utc=True, storage_class=MemoryStorage)


class QueueNotConfigured(RuntimeError):
    """A task ran in a process that never called `configure_queue`."""


class _Runtime:
    """What `configure_queue` remembers for the tasks of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.settings: Settings | None = None
        self.engine: Engine | None = None
        self.sessions: sessionmaker[Session] | None = None


_runtime = _Runtime()


def configure_queue(settings: Settings) -> Huey:
    """Point the huey instance at `settings.queue_url` and remember `settings` for the tasks.

    `sqlite:///path` (embedded default), `redis://…` (production, with priorities so staff
    alerts overtake a sweep's backlog) or `memory://` (tests: tasks are stored, never run
    unless the test runs them). Calling it again reconfigures (tests switch databases).
    """
    storage = _storage_for(settings.queue_url)
    with _runtime.lock:
        old_storage, huey.storage = huey.storage, storage
        huey.storage_class = type(storage)
        old_engine = _runtime.engine
        _runtime.settings = settings
        _runtime.engine = None
        _runtime.sessions = None
    if old_storage is not storage:
        _close_quietly(old_storage)
    if old_engine is not None:
        old_engine.dispose()
    # Live hints leave each process by the same after-commit doors as the queue pushes.
    from outbound.live import configure_live

    configure_live(settings)
    # Registering the tasks is part of configuring: a consumer must know every task name.
    import outbound.tasks  # noqa: F401

    logger.info("queue configured: %s", _describe(settings.queue_url))
    return huey


def configured_settings() -> Settings:
    if _runtime.settings is None:
        raise QueueNotConfigured("outbound.queue.configure_queue(settings) was not called in this process")
    return _runtime.settings


def session_factory() -> sessionmaker[Session]:
    """One engine per process for the tasks, built on first use from the remembered settings."""
    with _runtime.lock:
        if _runtime.sessions is None:
            settings = configured_settings()
            _runtime.engine = make_engine(settings.database_url)
            _runtime.sessions = make_session_factory(_runtime.engine)
        return _runtime.sessions


def _storage_for(url: str) -> MemoryStorage | SqliteStorage | PriorityRedisStorage:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "memory":
        return MemoryStorage(QUEUE_NAME)
    if scheme == "sqlite":
        path = Path(url[len("sqlite:///") :] if url.startswith("sqlite:///") else parts.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStorage(QUEUE_NAME, filename=str(path), timeout=30)
    if scheme in ("redis", "rediss"):
        options = parse_qs(parts.query)
        read_timeout = int(options.get("read_timeout", ["1"])[0])
        return PriorityRedisStorage(QUEUE_NAME, url=url, read_timeout=read_timeout)
    raise ValueError(f"unsupported queue URL scheme {parts.scheme!r}")


def _describe(url: str) -> str:
    """The queue URL without credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _close_quietly(storage: object) -> None:
    close = getattr(storage, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # a storage that cannot close cleanly must not stop reconfiguring
        logger.debug("closing the previous queue storage failed", exc_info=True)
