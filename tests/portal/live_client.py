"""A minimal server-sent-events client over a real socket, for the `/live` tests."""

from __future__ import annotations

import http.client
import json
from typing import Any

from portal import SESSION_COOKIE_NAME

Hint = tuple[str, dict[str, Any]]


class EventStream:
    """`GET /live` with a session cookie; reads one event at a time (comments skipped)."""

    def __init__(self, host: str, port: int, cookie: str | None = None, *, timeout: float = 15.0) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if cookie is not None:
            headers["Cookie"] = f"{SESSION_COOKIE_NAME}={cookie}"
        self.connection.request("GET", "/live", headers=headers)
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.pings = 0

    def next_event(self) -> Hint | None:
        """The next event, or None when the server ended the stream."""
        kind, data = "message", ""
        while True:
            raw = self.response.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line == "":
                if data:
                    return kind, json.loads(data)
                continue
            if line.startswith(":"):
                self.pings += 1
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                kind = value
            elif field == "data":
                data = value

    def next_hint(self) -> Hint | None:
        """The next event other than the greeting."""
        while (event := self.next_event()) is not None and event[0] == "hello":
            pass
        return event

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
