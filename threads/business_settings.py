"""A business's settings, changed by its admins: names, time zone and notification delays.

Names and the zone follow the import's rules (`validate_business_fields`); a delay left
empty follows the deployment's setting. Functions take a session and never commit.
"""

from __future__ import annotations

from threads.errors import FieldProblems
from threads.importing import validate_business_fields
from threads.models import Business

MAX_NOTIFY_DELAY_SECONDS = 7 * 24 * 3600
MAX_ESCALATE_AFTER_MINUTES = 7 * 24 * 60


def _whole(value: str, field: str, low: int, high: int, problems: dict[str, str]) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        problems[field] = f"must be a whole number from {low} to {high}, or empty for the default"
        return None
    return int(text)


def update_business(
    business: Business, *, name: str, sender_name: str, timezone: str, notify_delay_seconds: str, escalate_after_minutes: str
) -> None:
    """Apply the settings form, or raise `FieldProblems` and change nothing."""
    problems = validate_business_fields({"name": name, "sender_name": sender_name or name, "timezone": timezone.strip()})
    delay = _whole(notify_delay_seconds, "notify_delay_seconds", 0, MAX_NOTIFY_DELAY_SECONDS, problems)
    escalate = _whole(escalate_after_minutes, "escalate_after_minutes", 1, MAX_ESCALATE_AFTER_MINUTES, problems)
    if problems:
        raise FieldProblems(problems)
    business.name = name.strip()
    business.sender_name = (sender_name or name).strip()
    business.timezone = timezone.strip()
    business.notify_delay_seconds = delay
    business.escalate_after_minutes = escalate
