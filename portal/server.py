"""Serving the portal: gunicorn on POSIX (production), werkzeug's threaded server elsewhere.

Each gunicorn worker builds its own app (and database engine) after the fork, so no
connection is shared across processes. gunicorn stops gracefully on SIGTERM: workers finish
the requests in flight within `graceful_timeout`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from clikit.heap import freeze_startup_heap
from pawpost.settings import Settings
from portal import create_app

logger = logging.getLogger(__name__)


def default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 1) * 2))


def serve(settings: Settings, *, workers: int | None = None, threads: int = 4) -> None:
    """Serve on `settings.web_listen` until stopped (SIGTERM or Ctrl-C)."""
    host, port = settings.web_listen
    if sys.platform == "win32":  # gunicorn needs fork
        serve_development(settings)
        return
    from gunicorn.app.base import BaseApplication

    class PortalApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            options = {
                "bind": bind,
                "workers": workers or default_workers(),
                "threads": threads,
                "worker_class": "gthread",
                "graceful_timeout": 20,
                "timeout": 60,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "info",
                "proc_name": "pawpost-web",
            }
            # gunicorn ≥ 24 opens a control socket at one fixed per-user path, so two
            # `pawpost web` on a host would take it from each other; Pawpost needs none.
            if "control_socket_disable" in self.cfg.settings:
                options["control_socket_disable"] = True
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            app = create_app(settings)
            freeze_startup_heap()
            return app

    logger.info("portal listening on http://%s:%s (gunicorn)", host, port)
    PortalApplication().run()


def serve_development(settings: Settings) -> None:
    """werkzeug's threaded server: for platforms without fork, and `pawpost up`-style embedding."""
    from werkzeug.serving import make_server

    host, port = settings.web_listen
    server = make_server(host, port, create_app(settings), threaded=True)
    logger.info("portal listening on http://%s:%s", host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextmanager
def background_server(settings: Settings) -> Iterator[tuple[str, int]]:
    """The portal on werkzeug's threaded server in a background thread (`pawpost up`, tests).

    Yields the bound (host, port), so `settings.web_listen` may ask for port 0; stops and
    releases the database engine on exit.
    """
    from werkzeug.serving import make_server

    host, port = settings.web_listen
    app = create_app(settings)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pawpost-web", daemon=True)
    thread.start()
    logger.info("portal listening on http://%s:%s", host, server.server_port)
    try:
        yield host, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.extensions["pawpost"].engine.dispose()
