"""Bounds on what one message may hold, shared by whoever writes or shows it.

`threads/` imports nothing from inbound/outbound, so the email extractor, the ingest and
the digests all take the bound from here.
"""

from __future__ import annotations

# The visible text of one message, in characters: a long letter is ~20,000. Beyond it the
# text is cut (the message is marked `truncated`) and the whole email stays reachable from
# the stored raw email. 24 MB of text posted whole made a 553 MB thread page.
MAX_VISIBLE_TEXT = 100_000


def cap_text(text: str, limit: int = MAX_VISIBLE_TEXT) -> tuple[str, bool]:
    """`text` cut to at most `limit` characters, at a line end when one is near; and whether it was cut."""
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    line_end = cut.rfind("\n", limit - 2000)
    return (cut[:line_end] if line_end > 0 else cut).rstrip(), True
