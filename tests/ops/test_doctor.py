"""`pawpost doctor` tells an operator what is wrong, one line per part, and fails on what matters."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import redis
from click.testing import CliRunner

from pawpost.cli import main
from tests.conftest import REDIS_URL, require


def doctor(env: dict[str, str], *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["doctor", "--json", *args], env=env, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def by_name(report: dict) -> dict[str, dict]:
    return {c["check"]: c for c in report["checks"]}


def test_a_migrated_deployment_with_a_secret_passes(database_url: str, tmp_path: Path) -> None:
    env = {
        "PAWPOST_DATABASE_URL": database_url,
        "PAWPOST_DATA_DIR": str(tmp_path),
        "PAWPOST_SECRET_KEY": "x" * 40,
        "PAWPOST_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.sqlite3'}",
    }
    code, report = doctor(env)
    checks = by_name(report)
    assert code == 0 and report["ok"]
    assert checks["database"]["status"] == "ok"
    assert checks["queue"]["status"] == "ok"
    assert checks["outbound mail"]["status"] == "warn"  # the local Maildir: nothing leaves
    assert "MX" in checks["reply domain"]["detail"]


def test_default_secret_unmigrated_database_and_dead_relay_fail(tmp_path: Path) -> None:
    env = {
        "PAWPOST_DATA_DIR": str(tmp_path),
        "PAWPOST_OUTBOUND_URL": "smtp://127.0.0.1:9",  # discard port: nothing listens
    }
    code, report = doctor(env)
    checks = by_name(report)
    assert code == 1 and not report["ok"]
    assert checks["secret key"]["status"] == "fail"
    assert checks["database"]["status"] == "fail" and "pawpost db upgrade" in checks["database"]["detail"]
    assert checks["outbound mail"]["status"] == "fail"
    quiet = CliRunner().invoke(main, ["doctor", "--quiet"], env=env)
    assert quiet.exit_code == 1 and quiet.stdout == ""


def test_unreachable_queue_fails(tmp_path: Path) -> None:
    env = {"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_QUEUE_URL": "redis://127.0.0.1:9/0"}
    code, report = doctor(env)
    assert code == 1 and by_name(report)["queue"]["status"] == "fail"


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        require(False, f"Redis unreachable at {REDIS_URL}: {error}")
    return client


def test_live_updates_over_redis_say_whether_a_live_process_listens(tmp_path: Path) -> None:
    client = _redis_or_skip()
    channel = f"doctor-test-{uuid.uuid4().hex}"  # pub/sub spans the server: a channel of our own
    env = {"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_LIVE_URL": f"{REDIS_URL}?channel={channel}"}
    try:
        _, report = doctor(env)
        alone = by_name(report)["live updates"]
        assert alone["status"] == "warn" and "no `pawpost live` process is subscribed" in alone["detail"]
        with client.pubsub() as listener:  # what a `pawpost live` process holds open
            listener.subscribe(channel)
            _, report = doctor(env)
        heard = by_name(report)["live updates"]
        assert heard["status"] == "ok" and "1 `pawpost live` process(es) subscribed" in heard["detail"]
    finally:
        client.close()


def test_live_updates_fail_when_redis_is_unreachable_and_are_local_for_pawpost_up(tmp_path: Path) -> None:
    code, report = doctor({"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_LIVE_URL": "redis://127.0.0.1:9/0"})
    live = by_name(report)["live updates"]
    assert code == 1 and live["status"] == "fail" and "Redis pub/sub unreachable" in live["detail"]
    _, report = doctor({"PAWPOST_DATA_DIR": str(tmp_path)})
    local = by_name(report)["live updates"]
    assert local["status"] == "ok" and "in-process broker" in local["detail"]
    _, report = doctor({"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_QUEUE_URL": "redis://127.0.0.1:9/0", "PAWPOST_LIVE_URL": "local"})
    assert by_name(report)["live updates"]["status"] == "warn"
