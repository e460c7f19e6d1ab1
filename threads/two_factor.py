"""Two-factor sign-in: TOTP (RFC 6238, via pyotp) and single-use recovery codes.

Turning it on takes a code from the authenticator (so a mistyped secret cannot lock anyone
out) and hands out ten recovery codes, shown once and stored as SHA-256 (each is 50 random
bits, so a fast hash is enough). A TOTP code is accepted for the current 30-second step or
one either side, and never twice: `totp_last_step` remembers the newest step used.
Functions take a session and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from threads.models import RecoveryCode, Staff

RECOVERY_CODE_COUNT = 10
ISSUER = "Pawpost"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper and typed


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, staff: Staff) -> str:
    """What the QR code holds: the authenticator app's entry for this account."""
    return pyotp.TOTP(secret).provisioning_uri(name=staff.email, issuer_name=f"{ISSUER} ({staff.business.name})")


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (within one of now) whose code this is, else None."""
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), digits):
            return candidate
    return None


def enable(session: Session, staff: Staff, secret: str, code: str, now: datetime) -> list[str] | None:
    """Turn TOTP on when `code` proves the authenticator holds `secret`; the recovery codes
    (shown once), or None when the code is wrong."""
    step = matching_step(secret, code, now)
    if step is None:
        return None
    staff.totp_secret = secret
    staff.totp_enabled_at = now
    staff.totp_last_step = step
    return replace_recovery_codes(session, staff, now)


def disable(session: Session, staff: Staff) -> None:
    staff.totp_secret = None
    staff.totp_enabled_at = None
    staff.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.staff_id == staff.id))


def replace_recovery_codes(session: Session, staff: Staff, now: datetime) -> list[str]:
    """Ten fresh codes (the old ones stop working); only their hashes are stored."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.staff_id == staff.id))
    codes = ["-".join("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(2)) for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(RecoveryCode(staff_id=staff.id, code_hash=_hash(code), created_at=now) for code in codes)
    session.flush()
    return codes


def verify_second_factor(session: Session, staff: Staff, code: str, now: datetime) -> bool:
    """A TOTP code not used before, or an unused recovery code (used up by this call)."""
    if not staff.has_two_factor or not code or len(code) > 64:
        return False
    step = matching_step(staff.totp_secret or "", code, now)
    if step is not None:
        if staff.totp_last_step is not None and step <= staff.totp_last_step:
            return False  # replayed, or older than a code already used
        staff.totp_last_step = step
        return True
    row = session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.staff_id == staff.id, RecoveryCode.code_hash == _hash(code), RecoveryCode.used_at.is_(None)
        )
    )
    if row is None:
        return False
    row.used_at = now
    return True


def recovery_codes_left(session: Session, staff: Staff) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(RecoveryCode.staff_id == staff.id, RecoveryCode.used_at.is_(None))).all())


def _hash(code: str) -> str:
    normal = "".join(code.lower().split()).replace("-", "")
    return hashlib.sha256(normal.encode()).hexdigest()
