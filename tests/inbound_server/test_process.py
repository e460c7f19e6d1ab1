"""The server as operators run it: STARTTLS, `pawpost smtp`, and a graceful SIGTERM."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from inbound.server import running_smtp_server
from tests.factories import MAIL_DOMAIN, make_business, make_family
from tests.inbound_server import queries
from tests.inbound_server.conftest import World, make_settings
from tests.inbound_server.mail import reply_email
from threads.addresses import reply_address
from threads.db import make_engine

PAWPOST = Path(sys.executable).with_name("pawpost")


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MAIL_DOMAIN)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert, key_file = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key_file


def test_starttls_is_offered_with_a_certificate_and_mail_flows_over_it(
    database_url: str, tmp_path: Path, world: World, engine: Engine
) -> None:
    cert, key = self_signed(tmp_path)
    settings = make_settings(database_url, tmp_path, PAWPOST_TLS_CERT=str(cert), PAWPOST_TLS_KEY=str(key))
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.check_hostname = False
    with running_smtp_server(settings) as (host, port), smtplib.SMTP(host, port, timeout=30) as client:
        client.ehlo("tests.local")
        assert client.has_extn("starttls")
        client.starttls(context=client_context)
        client.ehlo("tests.local")
        assert not client.has_extn("auth")  # Pawpost takes no submissions, even over TLS
        client.sendmail(world.primary_email, [world.reply_to], reply_email(world.primary_email, world.reply_to))

    assert len(queries.messages(engine, world.thread_id)) == 1


def _read_until_listening(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for line in process.stderr:
        match = re.search(r"smtp listening on [\d.]+:(\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"pawpost smtp exited with {process.wait()} before listening")


def _refuses_connections(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def test_pawpost_smtp_stops_on_sigterm_after_finishing_the_data_in_flight(sqlite_template: Path, tmp_path: Path) -> None:
    database = tmp_path / "pawpost.sqlite3"
    shutil.copy(sqlite_template, database)
    engine = make_engine(f"sqlite:///{database}")
    with Session(engine) as session, session.begin():
        family = make_family(session, make_business(session), contacts=("Emma Johnson",))
        sender, to, thread_id = family.contacts[0].email or "", reply_address(family.thread, MAIL_DOMAIN), family.thread.id
    env = dict(
        os.environ,
        PAWPOST_DATA_DIR=str(tmp_path),
        PAWPOST_DATABASE_URL=f"sqlite:///{database}",
        PAWPOST_QUEUE_URL="memory://",
        PAWPOST_REPLY_DOMAIN=MAIL_DOMAIN,
        PAWPOST_SMTP_LISTEN="127.0.0.1:0",
        PAWPOST_SECRET_KEY="inbound-process-test-secret-0123456789",
    )
    process = subprocess.Popen([str(PAWPOST), "smtp"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        port = _read_until_listening(process)
        raw = reply_email(sender, to, "Half sent when the stop came.")
        head, tail = raw[: len(raw) // 2], raw[len(raw) // 2 :]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn, conn.makefile("rb") as replies:
            assert replies.readline().startswith(b"220")
            for command in (b"EHLO tests.local", f"MAIL FROM:<{sender}>".encode(), f"RCPT TO:<{to}>".encode(), b"DATA"):
                conn.sendall(command + b"\r\n")
                line = replies.readline()
                while line[3:4] == b"-":
                    line = replies.readline()
            assert line.startswith(b"354")
            conn.sendall(head)

            process.send_signal(signal.SIGTERM)
            assert _refuses_connections(port, time.monotonic() + 20), "still accepting new sessions after SIGTERM"

            conn.sendall(tail + b"\r\n.\r\n")
            assert replies.readline().startswith(b"250 2.0.0")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    assert [m.body for m in queries.messages(engine, thread_id)] == ["Half sent when the stop came."]
    engine.dispose()
