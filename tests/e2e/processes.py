"""Pawpost's production processes as an operator runs them: one `pawpost …` command each.

Each process writes its log to a file (read back for readiness lines and, on failure,
shown in the test report). Stopping is SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PAWPOST = Path(sys.executable).with_name("pawpost")
STOP_SECONDS = 15.0
LOG_TAIL_CHARS = 6000

T = TypeVar("T")


def free_port() -> int:
    """An ephemeral port for a process that must know its own URL before it binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0, every: float = 0.2) -> T:
    """Poll `probe` until it returns something other than None (or False); bounded."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
            if result is not None and result is not False:
                return result
        except Exception as error:  # a service still starting refuses connections
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s{detail}")
        time.sleep(every)


def run_cli(env: Mapping[str, str], *args: str, timeout: float = 60.0) -> str:
    """`pawpost ARGS…` as a one-shot command; its standard output."""
    done = subprocess.run([str(PAWPOST), *args], env=dict(env), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"pawpost {' '.join(args)} exited {done.returncode}:\n{done.stderr[-LOG_TAIL_CHARS:]}")
    return done.stdout


def run_json(env: Mapping[str, str], *args: str) -> Any:
    """`pawpost ARGS… --json`, parsed."""
    return json.loads(run_cli(env, *args, "--json"))


@dataclass
class Service:
    """One long-running `pawpost` command."""

    name: str
    args: tuple[str, ...]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: Mapping[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PAWPOST), *self.args],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on pytest does not hit it half-way
            )

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        text = self.log()
        return text if len(text) <= LOG_TAIL_CHARS else "…" + text[-LOG_TAIL_CHARS:]

    def check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"pawpost {self.name} exited with {code}:\n{self.log_tail()}")

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of `pattern` in the log, once the process wrote it."""

        def probe() -> re.Match[str] | None:
            self.check_alive()
            return re.search(pattern, self.log())

        try:
            return eventually(probe, f"pawpost {self.name} logging /{pattern}/", timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- pawpost {self.name} log ---\n{self.log_tail()}") from None

    def wait_until(self, probe: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        def checked() -> bool:
            self.check_alive()
            return probe()

        try:
            eventually(checked, f"pawpost {self.name}: {what}", timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- pawpost {self.name} log ---\n{self.log_tail()}") from None

    def terminate(self) -> None:
        """SIGTERM: every Pawpost command stops gracefully on it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def reap(self) -> int | None:
        """Wait for the exit after `terminate`; SIGKILL its process group if it hangs."""
        process = self.process
        if process is None:
            return None
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own group: start_new_session above
            process.wait(timeout=STOP_SECONDS)
        return process.returncode


def stop_all(services: list[Service]) -> dict[str, int | None]:
    """Stop them side by side (each drains for a moment), returning the exit codes."""
    for service in services:
        service.terminate()
    return {service.name: service.reap() for service in services}


def smtp_answers(host: str, port: int) -> bool:
    with smtplib.SMTP(host, port, timeout=5) as client:
        code, _ = client.ehlo("e2e.test")
        return code == 250


def port_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except urllib.error.URLError:
        return False
