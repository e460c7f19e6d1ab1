"""Issue 14, point 3: digests DKIM-signed by Pawpost when given a key, verified with dkimpy
against the public key `pawpost doctor` tells the operator to publish; unsigned without one."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import undefer

from outbound import digests
from pawpost.cli import main
from pawpost.settings import ConfigError, Settings
from tests.outbound.conftest import make_settings
from tests.outbound.world import T0, build_world, post
from threads.models import OutboundEmail


def _key_file(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _digest(settings: Settings, sessions) -> bytes:  # type: ignore[no-untyped-def]
    world = build_world(sessions)
    post(sessions, world, ("staff", world.walker_id), "Bella had a lovely walk", T0)
    with sessions() as session, session.begin():
        ids = digests.plan_digest_batch(session, settings, [world.thread_id], T0 + timedelta(minutes=5)).outbox_ids
    with sessions() as session:
        row = session.query(OutboundEmail).options(undefer(OutboundEmail.raw)).filter(OutboundEmail.id == ids[0]).one()
        return row.raw or b""


def test_a_digest_is_signed_over_its_unsubscribe_headers_and_verifies(database_url: str, tmp_path: Path, sessions) -> None:
    key = _key_file(tmp_path)
    env = {"PAWPOST_DKIM_SELECTOR": "pawpost1", "PAWPOST_DKIM_DOMAIN": "happytails.example", "PAWPOST_DKIM_KEY_FILE": str(key)}
    settings = make_settings(database_url, tmp_path, **env)
    raw = _digest(settings, sessions)
    assert raw.startswith(b"DKIM-Signature:")
    signature = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "d=happytails.example" in signature and "s=pawpost1" in signature
    assert "list-unsubscribe" in signature.lower() and "list-unsubscribe-post" in signature.lower()

    result = CliRunner().invoke(
        main, ["doctor", "--json"], env={"PAWPOST_DATABASE_URL": database_url, "PAWPOST_DATA_DIR": str(tmp_path), **env},
        catch_exceptions=False,
    )
    check = next(c for c in json.loads(result.stdout)["checks"] if c["check"] == "dkim")
    assert check["status"] == "ok" and "pawpost1._domainkey.happytails.example" in check["detail"]
    record = check["detail"].split('"')[1]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"pawpost1._domainkey.happytails.example."
        return record.encode()

    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing")
    assert tampered != raw and not dkim.verify(tampered, dnsfunc=dns)
    assert base64.b64decode(record.split("p=")[1])  # a real key, not an empty record


def test_without_a_key_nothing_is_signed_and_half_a_configuration_is_refused(database_url: str, tmp_path: Path, sessions) -> None:
    assert not _digest(make_settings(database_url, tmp_path), sessions).startswith(b"DKIM-Signature:")
    with pytest.raises(ConfigError):
        make_settings(database_url, tmp_path, PAWPOST_DKIM_SELECTOR="s1")
