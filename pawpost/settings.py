"""The one place that reads `PAWPOST_*` environment variables.

Every part of Pawpost receives a `Settings` object instead of reading `os.environ`, so
tests build one explicitly and a bad value fails once, at start-up, with one clear line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SECRET_KEY = "pawpost-development-secret-key-change-me"
# Where development mode keeps the random key it made (under PAWPOST_DATA_DIR).
DEVELOPMENT_KEY_FILE = "secret_key"


class ConfigError(ValueError):
    """A `PAWPOST_*` variable holds a value Pawpost cannot use."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable about one Pawpost deployment."""

    data_dir: Path
    database_url: str
    queue_url: str
    reply_domain: str
    mail_domain: str
    secret_key: str
    smtp_listen: tuple[str, int]
    web_listen: tuple[str, int]
    public_url: str
    outbound_url: str
    notify_delay_seconds: int
    escalate_after_minutes: int
    max_message_bytes: int
    tls_cert: Path | None
    tls_key: Path | None
    trusted_authserv_id: str | None
    attachment_email_cap_bytes: int
    # Emails a minute into one thread, and from one sender; the excess is held in quarantine.
    inbound_rate_per_minute: int = 50
    development: bool = False
    metrics_token: str | None = None
    trusted_proxies: int = 0
    live_url: str = "local"
    live_listen: tuple[str, int] = ("127.0.0.1", 5001)
    # DKIM signing by Pawpost itself (outbound.signing); unset: the relay must sign.
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None

    @property
    def secret_key_is_default(self) -> bool:
        return self.secret_key == DEFAULT_SECRET_KEY

    @property
    def uses_maildir(self) -> bool:
        return self.outbound_url.startswith("maildir:")

    @property
    def maildir_path(self) -> Path | None:
        if not self.uses_maildir:
            return None
        return Path(urlsplit(self.outbound_url).path)

    @property
    def live_is_local(self) -> bool:
        """Live hints stay inside this process (`pawpost up`): no Redis between the parts."""
        return self.live_url == "local"

    @property
    def notifications_address(self) -> str:
        return f"notifications@{self.mail_domain}"

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and `pawpost up` use it)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def environment(self) -> dict[str, str]:
        """These settings as `PAWPOST_*` variables: `from_env` of them gives them back.

        For starting another Pawpost process (a worker, a test's subprocess) on exactly
        the settings this one runs with.
        """
        optional = {
            "TLS_CERT": self.tls_cert,
            "TLS_KEY": self.tls_key,
            "TRUSTED_AUTHSERV_ID": self.trusted_authserv_id,
            "METRICS_TOKEN": self.metrics_token,
            "DEV": "1" if self.development else None,
            "DKIM_SELECTOR": self.dkim_selector,
            "DKIM_DOMAIN": self.dkim_domain,
            "DKIM_KEY_FILE": self.dkim_key_file,
        }
        values = {
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database_url,
            "QUEUE_URL": self.queue_url,
            "REPLY_DOMAIN": self.reply_domain,
            "MAIL_DOMAIN": self.mail_domain,
            "SECRET_KEY": self.secret_key,
            "SMTP_LISTEN": f"{self.smtp_listen[0]}:{self.smtp_listen[1]}",
            "WEB_LISTEN": f"{self.web_listen[0]}:{self.web_listen[1]}",
            "PUBLIC_URL": self.public_url,
            "OUTBOUND_URL": self.outbound_url,
            "NOTIFY_DELAY_SECONDS": str(self.notify_delay_seconds),
            "ESCALATE_AFTER_MINUTES": str(self.escalate_after_minutes),
            "MAX_MESSAGE_BYTES": str(self.max_message_bytes),
            "ATTACHMENT_EMAIL_CAP_BYTES": str(self.attachment_email_cap_bytes),
            "INBOUND_RATE_PER_MINUTE": str(self.inbound_rate_per_minute),
            "TRUSTED_PROXIES": str(self.trusted_proxies),
            "LIVE_URL": self.live_url,
            "LIVE_LISTEN": f"{self.live_listen[0]}:{self.live_listen[1]}",
            **{name: str(value) for name, value in optional.items() if value is not None},
        }
        return {f"PAWPOST_{name}": value for name, value in values.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(f"PAWPOST_{name}")
            if value is None or value.strip() == "":
                return default
            return value.strip()

        data_dir = Path(get("DATA_DIR", "./var") or "./var").expanduser().absolute()
        database_url = get("DATABASE_URL") or f"sqlite:///{data_dir / 'pawpost.sqlite3'}"
        _check_url("PAWPOST_DATABASE_URL", database_url, ("sqlite", "postgresql", "postgres"))
        queue_url = get("QUEUE_URL") or f"sqlite:///{data_dir / 'queue.sqlite3'}"
        _check_url("PAWPOST_QUEUE_URL", queue_url, ("sqlite", "redis", "rediss", "memory"))
        outbound_url = get("OUTBOUND_URL") or f"maildir://{data_dir / 'outbox'}"
        _check_url("PAWPOST_OUTBOUND_URL", outbound_url, ("smtp", "smtps", "maildir"))
        reply_domain = _domain("PAWPOST_REPLY_DOMAIN", get("REPLY_DOMAIN", "reply.localhost"))
        mail_domain = _domain("PAWPOST_MAIL_DOMAIN", get("MAIL_DOMAIN", reply_domain))
        web_listen = _listen("PAWPOST_WEB_LISTEN", get("WEB_LISTEN", "127.0.0.1:5000"))
        # Live hints ride the queue's Redis unless told otherwise; without Redis they stay
        # in the one process of `pawpost up`.
        live_url = get("LIVE_URL") or (queue_url if queue_url.startswith(("redis:", "rediss:")) else "local")
        if live_url != "local":
            _check_url("PAWPOST_LIVE_URL", live_url, ("redis", "rediss"))
        tls_cert, tls_key = get("TLS_CERT"), get("TLS_KEY")
        if bool(tls_cert) != bool(tls_key):
            raise ConfigError("PAWPOST_TLS_CERT and PAWPOST_TLS_KEY must be set together")
        dkim = (get("DKIM_SELECTOR"), get("DKIM_DOMAIN"), get("DKIM_KEY_FILE"))
        if any(dkim) and not all(dkim):
            raise ConfigError("PAWPOST_DKIM_SELECTOR, PAWPOST_DKIM_DOMAIN and PAWPOST_DKIM_KEY_FILE must be set together")
        if dkim[0] is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", dkim[0]):
            raise ConfigError("PAWPOST_DKIM_SELECTOR must be a DNS label")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            queue_url=queue_url,
            reply_domain=reply_domain,
            mail_domain=mail_domain,
            secret_key=get("SECRET_KEY", DEFAULT_SECRET_KEY) or DEFAULT_SECRET_KEY,
            smtp_listen=_listen("PAWPOST_SMTP_LISTEN", get("SMTP_LISTEN", "127.0.0.1:2525")),
            web_listen=web_listen,
            public_url=(get("PUBLIC_URL") or f"http://{web_listen[0]}:{web_listen[1]}").rstrip("/"),
            outbound_url=outbound_url,
            notify_delay_seconds=_int("PAWPOST_NOTIFY_DELAY_SECONDS", get("NOTIFY_DELAY_SECONDS", "180"), 0),
            escalate_after_minutes=_int(
                "PAWPOST_ESCALATE_AFTER_MINUTES", get("ESCALATE_AFTER_MINUTES", "30"), 1
            ),
            max_message_bytes=_int(
                "PAWPOST_MAX_MESSAGE_BYTES", get("MAX_MESSAGE_BYTES", str(25 * 1024 * 1024)), 1024
            ),
            tls_cert=Path(tls_cert) if tls_cert else None,
            tls_key=Path(tls_key) if tls_key else None,
            trusted_authserv_id=get("TRUSTED_AUTHSERV_ID"),
            attachment_email_cap_bytes=_int(
                "PAWPOST_ATTACHMENT_EMAIL_CAP_BYTES",
                get("ATTACHMENT_EMAIL_CAP_BYTES", str(5 * 1024 * 1024)),
                0,
            ),
            inbound_rate_per_minute=_int(
                "PAWPOST_INBOUND_RATE_PER_MINUTE", get("INBOUND_RATE_PER_MINUTE", "50"), 1
            ),
            development=_flag("PAWPOST_DEV", get("DEV", "0")),
            metrics_token=get("METRICS_TOKEN"),
            trusted_proxies=_int("PAWPOST_TRUSTED_PROXIES", get("TRUSTED_PROXIES", "0"), 0),
            live_url=live_url,
            live_listen=_listen("PAWPOST_LIVE_LISTEN", get("LIVE_LISTEN", "127.0.0.1:5001")),
            dkim_selector=dkim[0],
            dkim_domain=_domain("PAWPOST_DKIM_DOMAIN", dkim[1]) if dkim[1] else None,
            dkim_key_file=Path(dkim[2]).expanduser() if dkim[2] else None,
        )

    def with_secret_key(self, *, development: bool = False) -> Settings:
        """These settings with a key fit to sign sessions and links, or a ConfigError.

        A key set in the environment always wins. Without one, development mode (`pawpost up`,
        or `PAWPOST_DEV=1` for the separate processes) uses a random key kept under the data
        directory, made on first use; anything else refuses to start: with a key everyone can
        read, anyone could forge sessions and attachment links.
        """
        if not self.secret_key_is_default:
            return self
        if development or self.development:
            return self.replace(secret_key=development_secret_key(self.data_dir))
        raise ConfigError(
            "PAWPOST_SECRET_KEY is not set: set it to a long random value "
            "(`pawpost doctor` suggests one), or PAWPOST_DEV=1 for development"
        )


def development_secret_key(data_dir: Path) -> str:
    """The development key under `data_dir`, created (readable by its owner only) on first use."""
    path = data_dir / DEVELOPMENT_KEY_FILE
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    key = random_secret()
    # Written aside, then linked into place: of two processes starting at once, one key wins
    # and both read it whole.
    draft = data_dir / f".{DEVELOPMENT_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(key + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
    finally:
        draft.unlink()
    return key


def random_secret() -> str:
    """A fresh secret for operators who ask `pawpost doctor` what to set."""
    return secrets.token_urlsafe(32)


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    scheme = urlsplit(value).scheme.split("+", 1)[0]
    if scheme not in schemes:
        raise ConfigError(f"{name}={value!r}: the scheme must be one of {', '.join(schemes)}")


def _domain(name: str, value: str | None) -> str:
    domain = (value or "").strip().lower()
    if not domain or "@" in domain or " " in domain or domain.startswith("."):
        raise ConfigError(f"{name}={value!r} is not a domain name")
    return domain


def _listen(name: str, value: str | None) -> tuple[str, int]:
    host, sep, port = (value or "").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{name}={value!r} must look like HOST:PORT, e.g. 127.0.0.1:2525")
    return host.strip("[]"), int(port)


def _flag(name: str, value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={value!r} must be 1 or 0")


def _int(name: str, value: str | None, minimum: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise ConfigError(f"{name}={value!r} must be a whole number") from None
    if number < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum}")
    return number
