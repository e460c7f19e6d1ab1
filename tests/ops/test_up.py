"""`pawpost up` as a newcomer runs it: one process that answers SMTP and HTTP, and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PAWPOST = Path(sys.executable).with_name("pawpost")


def test_up_serves_smtp_and_http_then_stops_on_sigint(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PAWPOST_DATA_DIR": str(tmp_path),
        "PAWPOST_SMTP_LISTEN": "127.0.0.1:0",
        "PAWPOST_WEB_LISTEN": "127.0.0.1:0",
    }
    for name in ("PAWPOST_DATABASE_URL", "PAWPOST_SECRET_KEY", "PAWPOST_DEV"):
        env.pop(name, None)
    process = subprocess.Popen(
        [str(PAWPOST), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        banner = ""
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while "Ctrl-C stops everything." not in banner:
            line = process.stdout.readline()
            assert line, f"pawpost up exited early with {process.poll()}: {banner}"
            banner += line
            assert time.monotonic() < deadline, banner
        portal = re.search(r"portal\s+(http://\S+)", banner)
        smtp = re.search(r"smtp\s+([\d.]+):(\d+)", banner)
        assert portal and smtp, banner
        assert "morgan@happytails.example" in banner and "reply+" in banner
        with smtplib.SMTP(smtp.group(1), int(smtp.group(2)), timeout=10) as client:
            code, features = client.ehlo()
            assert code == 250 and b"8BITMIME" in features
        with urllib.request.urlopen(portal.group(1) + "/healthz", timeout=10) as response:
            assert response.status == 200 and response.read() == b"ok"
        # The printed one-line reply command lands a message in the thread.
        command = banner.split("Reply as", 1)[1].splitlines()[1].strip()
        assert subprocess.run(command, shell=True, timeout=30).returncode == 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    # Development mode made its own key and keeps it for the next run (the demo's passwords
    # are derived from it); no published default signs anything.
    assert len((tmp_path / "secret_key").read_text().strip()) >= 40
    threads = subprocess.run(
        [str(PAWPOST), "threads", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert '"message_count": 1' in threads.stdout
