"""Settings come from `PAWPOST_*` variables only, with defaults for the embedded mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from pawpost.settings import ConfigError, Settings


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'pawpost.sqlite3'}"
    assert settings.queue_url.startswith("sqlite:///")
    assert settings.outbound_url == f"maildir://{tmp_path / 'outbox'}"
    assert settings.maildir_path == tmp_path / "outbox"
    assert settings.reply_domain == "reply.localhost"
    assert settings.smtp_listen == ("127.0.0.1", 2525)
    assert settings.notify_delay_seconds == 180
    assert settings.secret_key_is_default


def test_production_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PAWPOST_DATABASE_URL": "postgresql://u@db/pawpost",
            "PAWPOST_QUEUE_URL": "redis://redis:6379/0",
            "PAWPOST_REPLY_DOMAIN": "Reply.Example.COM",
            "PAWPOST_SMTP_LISTEN": "0.0.0.0:25",
            "PAWPOST_OUTBOUND_URL": "smtp://user:pw@relay:587?starttls=1",
            "PAWPOST_SECRET_KEY": "s3cret",
            "PAWPOST_NOTIFY_DELAY_SECONDS": "5",
        }
    )
    assert settings.reply_domain == "reply.example.com"
    assert settings.smtp_listen == ("0.0.0.0", 25)
    assert settings.notify_delay_seconds == 5
    assert not settings.uses_maildir and not settings.secret_key_is_default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PAWPOST_QUEUE_URL": "amqp://x"}, "PAWPOST_QUEUE_URL"),
        ({"PAWPOST_REPLY_DOMAIN": "a@b"}, "not a domain"),
        ({"PAWPOST_MAX_MESSAGE_BYTES": "10"}, "at least"),
        ({"PAWPOST_TLS_CERT": "/x.pem"}, "set together"),
        ({"PAWPOST_WEB_LISTEN": "localhost:http"}, "HOST:PORT"),
    ],
)
def test_bad_values_are_refused_with_their_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_environment_round_trips(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PAWPOST_DATA_DIR": str(tmp_path),
            "PAWPOST_DATABASE_URL": "postgresql://u@db/pawpost",
            "PAWPOST_SMTP_LISTEN": "[::1]:25",
            "PAWPOST_TLS_CERT": "/c.pem",
            "PAWPOST_TLS_KEY": "/k.pem",
            "PAWPOST_NOTIFY_DELAY_SECONDS": "7",
        }
    )
    assert Settings.from_env(settings.environment()) == settings


def test_a_missing_secret_key_is_refused_outside_development(tmp_path: Path) -> None:
    settings = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="PAWPOST_SECRET_KEY is not set"):
        settings.with_secret_key()
    assert not (tmp_path / "secret_key").exists()
    own = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path), "PAWPOST_SECRET_KEY": "k" * 40})
    assert own.with_secret_key() is own and own.with_secret_key(development=True) is own


def test_development_mode_makes_one_random_key_and_reuses_it(tmp_path: Path) -> None:
    settings = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path / "data"), "PAWPOST_DEV": "1"})
    first = settings.with_secret_key()
    again = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path / "data")}).with_secret_key(development=True)
    assert first.secret_key == again.secret_key and len(first.secret_key) >= 40
    assert not first.secret_key_is_default
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.read_text().strip() == first.secret_key
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    other = Settings.from_env({"PAWPOST_DATA_DIR": str(tmp_path / "elsewhere"), "PAWPOST_DEV": "1"}).with_secret_key()
    assert other.secret_key != first.secret_key
