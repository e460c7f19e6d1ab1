"""docker-compose.yml stays valid and wires every Pawpost process to PostgreSQL and Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def compose_config() -> dict:
    """What `docker-compose config` resolves the file to (it fails on an invalid file)."""
    tool = shutil.which("docker-compose")
    require(tool is not None, "docker-compose (Debian package docker-compose) is not installed")
    assert tool is not None
    result = subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, "PAWPOST_SECRET_KEY": "test-only"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_complete() -> None:
    config = compose_config()
    services = config["services"]
    assert {"postgres", "redis", "migrate", "smtp", "worker", "web", "live", "proxy", "mailpit"} <= set(services)
    for name in ("smtp", "worker", "web", "live"):
        environment = services[name]["environment"]
        assert environment["PAWPOST_DATABASE_URL"].startswith("postgresql://")
        assert environment["PAWPOST_QUEUE_URL"].startswith("redis://")
        assert "healthcheck" in services[name]
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert [p["target"] for p in services["smtp"]["ports"]] == [2525]


def test_the_proxy_serves_pages_and_the_live_stream_from_one_origin() -> None:
    """The session cookie authenticates `/live`, so the stream must share the pages' origin."""
    services = compose_config()["services"]
    assert services["live"]["command"] == ["live"]
    assert [p["target"] for p in services["proxy"]["ports"]] == [80]
    assert "ports" not in services["web"] and "ports" not in services["live"]  # only via the proxy
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "handle /live" in caddyfile and "name live" in caddyfile and "name web" in caddyfile
