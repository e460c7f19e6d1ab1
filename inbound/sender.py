"""Who an email says it is from: one address, read per RFC 5322 from the raw header.

The address decides who may post, so it is read the way the standard defines it and
never from anything a person could put in a display name: encoded-words are decoded only
inside the display name (`"=?utf-8?q?emma@example.com?=" <evil@attacker.example>` is
evil's), and comments, quoted strings and group names never yield an address. A From
that does not name exactly one mailbox (several addresses, several From headers, a
group, text around the address that the parser had to guess at) is not one person's: it
gets a `problem`, and the email goes to quarantine for a human to read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import errors
from email.policy import default

# A real From is a few hundred characters; the parser is not built for megabytes.
MAX_FROM_CHARS = 2000

# Defects the parser reports about a display name (clients that put encoded-words inside
# quotes, or spaces inside them): the address itself was parsed cleanly.
_DISPLAY_NAME_DEFECTS = ("encoded word", "encoded-word")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


@dataclass(frozen=True)
class Sender:
    """The From mailbox: its address (lowercase), its display name, or why there is none."""

    address: str | None
    name: str
    problem: str | None = None


def sender_from_headers(raw_values: Sequence[str]) -> Sender:
    """The one mailbox of the email's From header(s), as raw (undecoded) header values."""
    if not raw_values:
        return Sender(None, "", "the email has no From header")
    if len(raw_values) > 1:
        return Sender(None, "", f"the email has {len(raw_values)} From headers")
    value = _FOLD.sub("", _as_text(raw_values[0])).strip()
    if len(value) > MAX_FROM_CHARS:
        return Sender(None, "", "the From header is too long")
    try:
        header = default.header_factory("From", value)
        mailboxes = list(header.addresses)
        groups = list(header.groups)
        defects = list(header.defects)
    except Exception:  # the stdlib parser has raised on odd input before; not one person
        return Sender(None, "", "the From header cannot be read")
    if not mailboxes:
        return Sender(None, "", "the From header has no address")
    # An encoded-word in an unknown charset decodes to surrogates: never let them out.
    name = _as_text(mailboxes[0].display_name or "")
    if len(mailboxes) > 1:
        return Sender(None, name, f"the From header has {len(mailboxes)} addresses")
    if any(group.display_name is not None for group in groups):
        return Sender(None, name, "the From header uses group syntax")
    mailbox = mailboxes[0]
    if not mailbox.username or not mailbox.domain:
        return Sender(None, name, "the From header has no complete address")
    broken = [d for d in defects if isinstance(d, errors.InvalidHeaderDefect) and not _about_display_name(d)]
    if broken:
        # e.g. `emma@example.com <evil@attacker.example>`: the parser keeps the first,
        # a mail client may show the second; neither can be trusted as the author.
        return Sender(None, name, f"the From header is malformed ({broken[0]})")
    return Sender(mailbox.addr_spec.lower(), name)


def _about_display_name(defect: errors.MessageDefect) -> bool:
    return any(marker in str(defect) for marker in _DISPLAY_NAME_DEFECTS)


def _as_text(value: object) -> str:
    """compat32 keeps 8-bit header bytes as surrogates: read them as UTF-8 (RFC 6532)."""
    text = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text
