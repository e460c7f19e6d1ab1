"""Times as staff read them: in the business's time zone, "2 min ago" when recent."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def local(moment: datetime, timezone: str) -> datetime:
    return moment.astimezone(ZoneInfo(timezone))


def clock_time(moment: datetime, timezone: str) -> str:
    """"9:05 AM" in the business's zone."""
    value = local(moment, timezone)
    return f"{value.hour % 12 or 12}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"


def full_time(moment: datetime, timezone: str) -> str:
    """"Tue 4 Mar 2025, 9:05 AM EST", for tooltips and screen readers."""
    value = local(moment, timezone)
    return f"{value:%a} {value.day} {value:%b %Y}, {clock_time(moment, timezone)} {value.tzname()}"


def relative_time(moment: datetime, timezone: str, now: datetime) -> str:
    """"just now", "2 min ago", "3 h ago" within a day; then "Yesterday", a weekday or a date."""
    age = now - moment
    if age < timedelta(minutes=1):
        return "just now"
    if age < timedelta(hours=1):
        return f"{int(age.total_seconds() // 60)} min ago"
    if age < timedelta(hours=12):
        return f"{int(age.total_seconds() // 3600)} h ago"
    then, today = local(moment, timezone).date(), local(now, timezone).date()
    if then == today:
        return clock_time(moment, timezone)
    if then == today - timedelta(days=1):
        return "Yesterday"
    if today - then < timedelta(days=7):
        return f"{local(moment, timezone):%a}"
    if then.year == today.year:
        return f"{then.day} {then:%b}"
    return f"{then.day} {then:%b %Y}"


def time_range(start: datetime, end: datetime, timezone: str) -> str:
    """"9:00 AM – 10:00 AM"; a stay over several days names the days."""
    first, last = local(start, timezone), local(end, timezone)
    if first.date() == last.date():
        return f"{clock_time(start, timezone)} – {clock_time(end, timezone)}"
    return f"{first:%a} {first.day} {first:%b} {clock_time(start, timezone)} – {last:%a} {last.day} {last:%b} {clock_time(end, timezone)}"
