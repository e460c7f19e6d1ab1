"""Raw RFC 5322 bytes -> ParsedEmail, the only place that knows flanker.

Everything downstream (reply text, classification, routing) works on the frozen
dataclasses defined here, so flanker's types never leave this module. Parsing
never crashes on hostile input; only bytes with no message in them at all raise
:class:`UnparseableEmail`.

Bounded: the body is read from one parse by Python's ``email`` package, walked
without recursion, after `_bounded` has capped what the parser is given (header
block, number of parts, multipart/message nesting, which the stdlib parser follows
by recursion). flanker reads it only when that walk fails, and only for emails of a
size it parses quickly: its tokenizer alone took 2 s of CPU on 25 MB, and parsing
everything twice doubled the cost of every email. What lies past a cap stays in
the stored raw email; ``ParsedEmail.truncated`` says so.

Every string returned is valid Unicode: 8-bit header bytes (which the stdlib keeps as
lone surrogates) and odd codecs (utf-7, unicode-escape) never leak surrogates out.
"""

from __future__ import annotations

import binascii
import codecs
import email
import html as html_lib
import email.errors
import email.generator
import email.header
import io
import email.parser
import email.policy
import email.utils
import logging
import re
import warnings
from dataclasses import dataclass, field
from email.message import Message
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from inbound.html_text import parse_html, render
from inbound.sender import sender_from_headers

logger = logging.getLogger(__name__)

# Parts that clients add for their own machinery, never something a person attached.
_IGNORED_TYPES = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/ms-tnef",
        "application/vnd.ms-tnef",
        "application/pgp-keys",
    }
)
_IGNORED_NAMES = frozenset({"winmail.dat", "smime.p7s", "signature.asc", "smime.p7m"})
# RFC 3464 and RFC 6533 (internationalised) per-recipient delivery results.
_DELIVERY_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
# Read receipts (RFC 8098): machine-made, never a person's words; not delivery results.
_REPORT_TYPES = _DELIVERY_STATUS_TYPES | {"message/disposition-notification"}
_ID_RE = re.compile(r"<([^<>\s]+)>")


class UnparseableEmail(ValueError):
    """The bytes hold no email at all (empty, or no header and no body)."""


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    content: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    sender_address: str | None
    sender_name: str
    recipients: tuple[str, ...]
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    text: str | None = field(repr=False)
    html: str | None = field(repr=False)
    attachments: tuple[ParsedAttachment, ...] = ()
    # lowercase header name -> every value, decoded (RFC 2047), in order.
    headers: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, repr=False
    )
    content_type: str = "text/plain"
    report_type: str | None = None  # e.g. "delivery-status" for a DSN
    delivery_status: str | None = field(default=None, repr=False)
    # The fields of an RFC 8098 message/disposition-notification part (a read receipt, or
    # a filter's refusal: "Disposition: automatic-action/MDN-sent-automatically; deleted").
    disposition_notification: str | None = field(default=None, repr=False)
    reported_message_id: str | None = None  # Message-ID of the mail a report is about
    # Why the From is not one person's address (several From headers or addresses, a
    # group, a malformed header): such an email is quarantined (`inbound.sender`).
    sender_problem: str | None = None
    truncated: bool = False  # parts past a cap were not read (the raw email has them)

    @property
    def is_report(self) -> bool:
        return self.report_type is not None

    def header(self, name: str) -> str | None:
        """First value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def header_values(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())


@dataclass
class _Body:
    """Mutable collector used while walking the MIME tree."""

    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    # Inline text in reading order: one (text, html) pair per alternative or lone part.
    inline: list[list[str | None]] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    report_type: str | None = None
    delivery_status: str | None = None
    disposition_notification: str | None = None
    reported_message_id: str | None = None
    truncated: bool = False


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw message bytes; raise UnparseableEmail only when nothing is there."""
    if not raw or not raw.strip():
        raise UnparseableEmail("empty message")
    bounded, truncated = _bounded(raw)
    msg = _python_message(bounded)
    headers = _headers(msg)
    try:
        body = _python_body(msg)
    except Exception:  # noqa: BLE001 - a walk the stdlib cannot finish: flanker's turn
        logger.warning("stdlib walk failed; trying flanker", exc_info=True)
        body = (_flanker_body(bounded) if len(bounded) <= _FLANKER_MAX_BYTES else None) or _Body()
    body.truncated = body.truncated or truncated
    return _build(headers, body, msg)


# --- bounds: what the stdlib parser is given ---

# Past these the rest of the email is not read (it stays in the stored raw email).
_MAX_BOUNDARY_LINES = 1000  # lines starting with "--": at most ~500 parts
_MAX_NESTED_TYPES = 48  # multipart/* and message/* parts: the stdlib nests a frame set per level
_FLANKER_MAX_BYTES = 1_000_000
_BOUNDARY_LINE_RE = re.compile(rb"\n--")
_NESTED_TYPE_RE = re.compile(rb"\ncontent-type:[ \t]*(?:multipart|message)/", re.IGNORECASE)


def _bounded(raw: bytes) -> tuple[bytes, bool]:
    """The raw email cut so the stdlib parser stays linear and shallow; True when cut.

    A header block past `_HEADER_BLOCK_CAP` keeps its first fields (what follows the
    blank line is still the body); the email ends before the boundary line or the
    nested Content-Type past its cap.
    """
    truncated = False
    end = _header_end(raw)
    if end > _HEADER_BLOCK_CAP:
        keep = raw.rfind(b"\n", 0, _HEADER_BLOCK_CAP) + 1
        raw = raw[:keep] + b"\r\n" + raw[end:].lstrip(b"\r\n")
        truncated = True
    cut = len(raw)
    top = parse_headers(raw).content_type
    if not top.startswith(("multipart/", "message/")):
        return raw, truncated  # one part: no boundary or nesting to follow
    for pattern, cap in ((_BOUNDARY_LINE_RE, _MAX_BOUNDARY_LINES), (_NESTED_TYPE_RE, _MAX_NESTED_TYPES)):
        for count, match in enumerate(pattern.finditer(raw, 0, cut), 1):
            if count > cap:
                cut = match.start() + 1
                break
    if cut < len(raw):
        raw, truncated = raw[:cut], True
    return raw, truncated


def _header_end(raw: bytes) -> int:
    """Offset of the blank line that ends the header block (len(raw) when none)."""
    found = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(found) if found else len(raw)


# --- headers (always from Python's parser, which never refuses a header block) ---


# A header block longer than this is not a reply; what follows is read as body anyway.
_HEADER_BLOCK_CAP = 256 * 1024


@dataclass(frozen=True)
class HeaderSummary:
    """What the SMTP server reads before `250`: threading ids and the top-level type."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    content_type: str


# A header block where every line is a field or a continuation (the usual case) is read
# with two regular expressions; anything else goes through Python's parser.
_PLAIN_BLOCK_RE = re.compile(rb"(?:(?:[\x21-\x39\x3b-\x7e]+:|[ \t])[^\n]*\n)*")
_FIELD_RE = re.compile(
    rb"^(message-id|in-reply-to|references|content-type):([^\n]*\n(?:[ \t][^\n]*\n)*)", re.IGNORECASE | re.MULTILINE
)


def parse_headers(raw: bytes) -> HeaderSummary:
    """Only the header block, with the same rules as `parse_email` (no flanker, no body).

    Cheap enough to run on the SMTP server's event loop before answering `250`: a few
    microseconds for a reply's header block.
    """
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    block = raw[: min(end, _HEADER_BLOCK_CAP)] + b"\n"
    if _PLAIN_BLOCK_RE.fullmatch(block) is None:
        return _parse_headers_slowly(block)
    fields: dict[str, list[str]] = {}
    for name, value in _FIELD_RE.findall(block):
        fields.setdefault(name.lower().decode(), []).append(_unfold(value.decode("ascii", "surrogateescape")))
    message_ids = _ids(" ".join(fields.get("message-id", ())))
    reply_ids = _ids(" ".join(fields.get("in-reply-to", ())))
    content_type = "text/plain"
    if "content-type" in fields:
        declared = fields["content-type"][0].split(";", 1)[0].strip().lower()
        if declared.count("/") == 1:
            content_type = declared
    return HeaderSummary(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=reply_ids[0] if reply_ids else None,
        references=tuple(dict.fromkeys(_ID_RE.findall(" ".join(fields.get("references", ()))))),
        content_type=content_type,
    )


def _parse_headers_slowly(block: bytes) -> HeaderSummary:
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(block + b"\n")
    message_ids = _ids(_raw_header(msg, "Message-ID"))
    reply_ids = _ids(_raw_header(msg, "In-Reply-To"))
    try:
        # Unfolded, as the fast path reads it: a folded type must not read two ways.
        content_type = _unfold(msg.get_content_type() or "text/plain").lower()
    except Exception:  # a header block odd enough to break the stdlib: treat as plain
        content_type = "text/plain"
    return HeaderSummary(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=reply_ids[0] if reply_ids else None,
        references=tuple(dict.fromkeys(_ID_RE.findall(_raw_header(msg, "References")))),
        content_type=content_type,
    )


def _python_message(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _decode_header(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        value = str(value)
    text = str(value)
    if _SURROGATE_RE.search(text):  # raw 8-bit header bytes, kept by the stdlib as surrogates
        try:
            text = _decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
        except UnicodeEncodeError:  # a surrogate that is not an escaped byte
            text = _no_surrogates(text)
    try:
        parts = email.header.decode_header(text)
    except Exception:  # malformed encoded-word: the lenient reading below
        return _unfold(_no_surrogates(_lenient_words(text)))
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    decoded = "".join(out)
    if _BROKEN_WORD_RE.search(decoded):  # a word the stdlib left encoded (no `?=`, bad padding)
        decoded = _lenient_words(text)
    return _unfold(_no_surrogates(decoded))


# An RFC 2047 encoded-word as senders really write them: the closing `?=` may be missing
# (the word then ends at white space or the end), the text may be cut mid-quantum.
_BROKEN_WORD_RE = re.compile(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]{0,2000})(?:\?=|\?(?=\s|$)|(?=\s|$))")
_BASE64_JUNK_RE = re.compile(r"[^A-Za-z0-9+/]")
_WORD_GAP_RE = re.compile(r"[ \t\r\n]{0,40}")


def _lenient_words(text: str) -> str:
    """Encoded-words decoded however broken (missing `?=`, bad padding, stray characters),
    adjacent words of one charset joined as bytes first (a character split across two
    words), so a bounce's or auto-reply's subject reads as words, never as `=?utf-8?B?...`."""
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(_decode_bytes(b"".join(pending), pending_charset))
        pending, pending_charset = [], None

    for match in _BROKEN_WORD_RE.finditer(text[:8192]):
        between = text[position : match.start()]
        if not (pending and _WORD_GAP_RE.fullmatch(between)):
            flush()
            out.append(between)
        charset = match.group(1).split("*", 1)[0]  # RFC 2231 language suffix
        if pending and charset.lower() != (pending_charset or "").lower():
            flush()
        pending.append(_word_bytes(match.group(2), match.group(3)))
        pending_charset = charset
        position = match.end()
    flush()
    out.append(text[position:8192])
    return "".join(out)


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding.lower() == "q":
        raw = payload.replace("_", " ").encode("ascii", "replace")
        return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    data = _BASE64_JUNK_RE.sub("", payload)
    data = data[: len(data) - 1] if len(data) % 4 == 1 else data  # a lone sextet holds no byte
    return binascii.a2b_base64(data + "=" * (-len(data) % 4))


def _unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()


def _headers(msg: Message) -> Mapping[str, tuple[str, ...]]:
    collected: dict[str, list[str]] = {}
    for name, value in msg.raw_items():  # raw: compat32 would turn 8-bit bytes into U+FFFD
        collected.setdefault(name.lower(), []).append(_decode_header(value))
    return MappingProxyType({k: tuple(v) for k, v in collected.items()})


def _raw_header(msg: Message, name: str) -> str:
    values = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
    return " ".join(_unfold(str(v)) for v in values)


def _ids(value: str) -> tuple[str, ...]:
    found = _ID_RE.findall(value)
    if found:
        return tuple(found)
    bare = value.strip().strip("<>").strip()
    return (bare,) if bare and " " not in bare else ()


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    try:
        pairs = email.utils.getaddresses(list(values))
    except Exception:
        return []
    return [(name.strip(), addr.strip().lower()) for name, addr in pairs if "@" in addr]


# --- bodies: flanker first, its recovery parser next, Python's email last ---


def _flanker_mime() -> Any:
    """flanker, imported lazily (slow) and without its stdlib deprecation noise (cgi, imghdr)."""
    # Its address grammar is built at import and warns "Symbol … is unreachable" for rules
    # flanker never starts from: a page of noise on the first email, nothing to act on.
    # (Set again after the import: the lexer module sets its own logger's level.)
    _quiet_flanker_grammar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from flanker import mime
    _quiet_flanker_grammar()
    return mime


def _quiet_flanker_grammar() -> None:
    for name in ("flanker.addresslib._parser.parser", "flanker.addresslib._parser.lexer"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _flanker_body(raw: bytes) -> _Body | None:
    mime = _flanker_mime()
    for loader in (mime.from_string, mime.recover):
        try:
            root = loader(raw)
            body = _Body()
            _walk_flanker(root, body)
            return body
        except Exception as exc:  # flanker raises many types on broken MIME
            logger.debug("flanker %s failed: %s", loader.__name__, type(exc).__name__)
    return None


def _walk_flanker(root: Any, body: _Body) -> None:
    """flanker's tree, walked with a stack (no recursion)."""
    stack = [root]
    while stack:
        part = stack.pop()
        ctype = str(part.content_type.value).lower()
        if part.content_type.is_multipart():
            if ctype == "multipart/report":
                body.report_type = (part.content_type.params.get("report-type") or "").lower() or "unknown"
            stack.extend(reversed(list(part.parts)))
            continue
        if ctype in _REPORT_TYPES:
            if ctype in _DELIVERY_STATUS_TYPES:
                body.delivery_status = _flanker_text(part)
            else:
                body.disposition_notification = _flanker_text(part)
            continue
        if ctype in ("message/rfc822", "text/rfc822-headers") and body.report_type:
            body.reported_message_id = _reported_id(_flanker_bytes(part))
            continue
        disposition = (part.content_disposition[0] or "").lower()
        filename = _clean_filename(part.detected_file_name) if _has_name(part) else ""
        if ctype in _TEXT_TYPES and disposition != "attachment" and not filename:
            text = _no_surrogates(_flanker_text(part))
            (body.texts if ctype == "text/plain" else body.htmls).append(text)
            body.inline.append([text, None] if ctype == "text/plain" else [None, text])
            continue
        content = _flanker_bytes(part)
        _add_attachment(body, ctype, filename, content, part.headers.get("Content-Id"), disposition)


def _has_name(part: Any) -> bool:
    params = part.content_disposition[1] or {}
    return bool(params.get("filename") or part.content_type.params.get("name"))


def _flanker_text(part: Any) -> str:
    try:
        value = part.body
    except Exception:
        value = None
    if isinstance(value, str):
        return value
    return _decode_bytes(_flanker_bytes(part), part.content_type.params.get("charset"))


def _flanker_bytes(part: Any) -> bytes:
    try:
        value = part.body
    except Exception:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    try:  # an enclosed message/rfc822
        return value.to_string().encode("utf-8", "replace")
    except Exception:
        return b""


_TEXT_TYPES = ("text/plain", "text/html")
_HEADER_FIELD_RE = re.compile(r"[!-9;-~]{1,76}:")
_HTML_DOCUMENT_RE = re.compile(rb"\s{0,64}(?:<!doctype\s{1,8}html|<html[\s>])", re.I)


def _python_body(msg: Message) -> _Body:
    """Walk the MIME tree without recursion: inline text in order, attachments, reports.

    A forwarded email (message/rfc822) is one attachment with its own bytes: its text is
    not the reply's and its files stay inside it. Inside a delivery report it is the
    returned original, read only for its Message-ID.
    """
    body = _Body()
    # (part, the entry of the multipart/alternative it belongs to, or None)
    stack: list[tuple[Message, list[str | None] | None]] = [(msg, None)]
    while stack:
        part, entry = stack.pop()
        ctype = part.get_content_type().lower()
        if ctype == "message/rfc822" and not body.report_type:
            _add_forwarded(body, part)
            continue
        if ctype in _REPORT_TYPES and part.is_multipart():  # the stdlib reads its field groups as parts
            groups = [child for child in part.get_payload() if isinstance(child, Message)]
            fields = "\n\n".join(
                "\n".join("%s: %s" % (name, _decode_header(value)) for name, value in group.raw_items()) for group in groups
            )
            if ctype in _DELIVERY_STATUS_TYPES:
                body.delivery_status = fields
            else:
                body.disposition_notification = fields
            continue
        if part.is_multipart():
            if ctype == "message/rfc822" or ctype == "text/rfc822-headers":
                body.reported_message_id = body.reported_message_id or _reported_id(_part_bytes(part))
                continue
            if ctype == "multipart/report":
                body.report_type = (_param(part, "report-type") or "unknown").lower()
            if ctype == "multipart/alternative" and entry is None:
                entry = [None, None]
                body.inline.append(entry)
            children = part.get_payload()
            stack.extend((child, entry) for child in reversed(children) if isinstance(child, Message))
            continue
        if ctype == "text/rfc822-headers" and body.report_type:
            body.reported_message_id = body.reported_message_id or _reported_id(_payload(part))
            continue
        if part is not msg and not part.keys():
            part = _recovered_headers(part)
            ctype = part.get_content_type().lower()
        payload = _payload(part)
        if ctype in _REPORT_TYPES:
            if ctype in _DELIVERY_STATUS_TYPES:
                body.delivery_status = _decode_bytes(payload, _charset(part))
            else:
                body.disposition_notification = _decode_bytes(payload, _charset(part))
            continue
        disposition = (part.get_content_disposition() or "").lower()
        filename = _clean_filename(_filename(part))
        if ctype.startswith("multipart/") and disposition != "attachment" and not filename:
            # A multipart with no boundary line in its body: the text sits in the preamble.
            ctype = "text/html" if re.search(rb"<(?:html|body|div|p|br)\b", payload[:4096], re.I) else "text/plain"
        if ctype == "text/plain" and _HTML_DOCUMENT_RE.match(payload[:512]):
            # An HTML document under a lost or wrong Content-Type (text/plain is only the
            # default): read as HTML, never posted as markup beside its own plain twin.
            ctype = "text/html"
        if ctype in _TEXT_TYPES and disposition != "attachment" and not filename:
            text = _decode_text(payload, _charset(part)) if ctype == "text/plain" else _decode_bytes(payload, _charset(part))
            (body.texts if ctype == "text/plain" else body.htmls).append(text)
            slot = 0 if ctype == "text/plain" else 1
            if entry is None:
                body.inline.append([text, None] if slot == 0 else [None, text])
            else:
                entry[slot] = text if entry[slot] is None else entry[slot] + ("\n" if slot == 0 else "") + text
            continue
        _add_attachment(body, ctype, filename, payload, part.get("Content-Id"), disposition)
    return body


def _recovered_headers(part: Message) -> Message:
    """A body part whose header block the parser could not read (its first line garbled,
    so every header became body text): the header lines that are still well formed,
    read as its headers. Otherwise its Content-Transfer-Encoding and type would be
    lost, and quoted-printable HTML posted as text."""
    raw = part.get_payload()
    if not isinstance(raw, str) or not any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in part.defects):
        return part
    raw = raw.replace("\r\n", "\n")
    head, sep, rest = raw[:8192].partition("\n\n")
    lines = head.split("\n")
    if not sep or len(lines) < 2 or len(lines) > 40:
        return part
    # The first line is the damaged one; every other line must be a field or a fold.
    kept = [line for line in lines[1:] if line.strip()]
    if not kept or not all(_HEADER_FIELD_RE.match(line) or line[:1] in (" ", "\t") for line in kept):
        return part
    if not _HEADER_FIELD_RE.match(kept[0]):
        kept = kept[1:]  # a fold of the damaged line
    while kept and kept[0][:1] in (" ", "\t"):
        kept = kept[1:]
    if not kept:
        return part
    return email.message_from_string("\n".join(kept) + "\n\n" + rest + raw[8192:], policy=email.policy.compat32)


def _add_forwarded(body: _Body, part: Message) -> None:
    """A forwarded email kept whole, as an attachment: its real bytes, never its text."""
    content = _part_bytes(part)
    inner = part.get_payload(0) if part.is_multipart() else None
    subject = _decode_header(inner.get("Subject", "")) if isinstance(inner, Message) else ""
    name = _clean_filename(_filename(part)) or (
        re.sub(r"[^\w .,()&'-]+", "", subject).strip()[:80] + ".eml" if subject.strip() else ""
    )
    disposition = (part.get_content_disposition() or "").lower()
    _add_attachment(body, "message/rfc822", name, content, part.get("Content-Id"), disposition)


def _part_bytes(part: Message) -> bytes:
    """The bytes of an enclosed message (message/rfc822), as the stdlib regenerates them."""
    if not part.is_multipart():
        return _payload(part)
    inner = part.get_payload(0)
    out = io.BytesIO()
    try:
        email.generator.BytesGenerator(out, mangle_from_=False, maxheaderlen=0).flatten(inner, unixfrom=False)
    except Exception:  # noqa: BLE001 - an enclosed message too broken to write back
        return b""
    return out.getvalue()


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a transfer encoding the stdlib chokes on: raw bytes
        raw = part.get_payload()
        payload = raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
    return payload if isinstance(payload, bytes) else b""


def _charset(part: Message) -> str | None:
    """The declared charset, or None (the stdlib raises on NUL and 8-bit RFC 2231 values)."""
    try:
        charset = part.get_content_charset()
    except (ValueError, LookupError, UnicodeError):
        return None
    return charset if charset and charset.isascii() else None


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except (ValueError, LookupError, UnicodeError):
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return _no_surrogates(str(value)) if value else None


def _filename(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except (ValueError, LookupError, UnicodeError):
        return ""


def _add_attachment(
    body: _Body, ctype: str, filename: str, content: bytes, content_id: Any, disposition: str
) -> None:
    if ctype in _IGNORED_TYPES or filename.lower() in _IGNORED_NAMES:
        return
    cid = _decode_header(content_id).strip("<>").strip() if content_id else None
    if not filename:
        filename = _default_name(ctype)
    inline = bool(cid) and disposition != "attachment"
    body.attachments.append(
        ParsedAttachment(
            filename=filename,
            content_type=ctype,
            size=len(content),
            content=content,
            content_id=cid or None,
            inline=inline,
        )
    )


def _default_name(ctype: str) -> str:
    if ctype == "message/rfc822":
        return "forwarded-message.eml"
    subtype = ctype.split("/", 1)[-1] if "/" in ctype else "bin"
    return "attachment." + re.sub(r"[^a-z0-9]+", "", subtype.replace("jpeg", "jpg"))[:8] or "bin"


def _clean_filename(name: Any) -> str:
    text = _decode_header(name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[\x00-\x1f]", "", text).strip()


def _reported_id(raw: bytes) -> str | None:
    msg = _python_message(raw)
    ids = _ids(_raw_header(msg, "Message-ID"))
    return ids[0] if ids else None


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate or not _text_codec(candidate):
            continue
        try:
            return _no_surrogates(data.decode(_charset_alias(candidate)))
        except (LookupError, ValueError):  # unknown charset, bad bytes, NUL in the name
            continue
    name = _charset_alias(charset) if charset and _text_codec(charset) else "utf-8"
    try:
        return _no_surrogates(data.decode(name, errors="replace"))
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


# Codecs that are not a charset of text (base64, rot13...) or that turn bytes into any
# code point, lone surrogates included (unicode-escape, utf-7): never a mail charset.
_NOT_CHARSETS = frozenset({"unicode_escape", "raw_unicode_escape", "utf_7", "idna", "punycode", "undefined"})
_DETECT_BYTES = 64 * 1024  # what charset detection reads of a part (bounded time)


def _text_codec(charset: str) -> bool:
    try:
        info = codecs.lookup(_charset_alias(charset))
    except (LookupError, ValueError):
        return False
    return getattr(info, "_is_text_encoding", True) and info.name.replace("-", "_") not in _NOT_CHARSETS


def _decode_text(data: bytes, charset: str | None) -> str:
    """A text/plain part: its declared charset, else detected when the label is missing,
    plain ASCII over 8-bit bytes, or ASCII over ISO-2022 escape sequences."""
    declared = (charset or "").strip().strip('"').lower()
    escapes = b"\x1b" in data and not declared.startswith("iso-2022")
    if declared and declared not in ("us-ascii", "ascii") and not escapes:
        return _decode_bytes(data, charset)
    if not escapes:
        try:
            return _no_surrogates(data.decode("ascii" if declared else "utf-8"))
        except UnicodeDecodeError:
            pass
    detected = _detect_charset(data)
    return _decode_bytes(data, detected or charset)


def _detect_charset(data: bytes) -> str | None:
    """charset-normalizer's guess from the first `_DETECT_BYTES` (None when unsure)."""
    from charset_normalizer import from_bytes

    try:
        best = from_bytes(data[:_DETECT_BYTES], steps=8, chunk_size=512).best()
    except Exception:  # noqa: BLE001 - detection is a guess; never fail a parse on it
        return None
    return best.encoding if best is not None else None


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    """Valid Unicode: lone surrogates (undecodable bytes, odd codecs) become U+FFFD."""
    return _SURROGATE_RE.sub("\ufffd", text)


def _charset_alias(charset: str) -> str:
    name = charset.strip().strip('"').lower()
    # Mail clients label windows-1252 as latin-1 and GB18030 as GB2312 all the time.
    return {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "gb2312": "gb18030",
            "gbk": "gb18030", "ks_c_5601-1987": "cp949", "unknown-8bit": "cp1252",
            "x-unknown": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252"}.get(name, name)


def _build(headers: Mapping[str, tuple[str, ...]], body: _Body, msg: Message) -> ParsedEmail:
    sender = sender_from_headers([v for k, v in msg.raw_items() if k.lower() == "from"])
    recipients = tuple(
        dict.fromkeys(addr for _, addr in _addresses(headers.get("to", ()) + headers.get("cc", ())))
    )
    message_ids = _ids(_raw_header(msg, "Message-ID"))
    reply_ids = _ids(_raw_header(msg, "In-Reply-To"))
    text, html = _inline_text(body.inline)
    content_type = (msg.get_content_type() or "text/plain").lower()
    return ParsedEmail(
        sender_address=sender.address,
        sender_name=sender.name,
        recipients=recipients,
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=reply_ids[0] if reply_ids else None,
        references=tuple(dict.fromkeys(_ID_RE.findall(_raw_header(msg, "References")))),
        subject=(headers.get("subject") or ("",))[0],
        text=text,
        html=html,
        attachments=tuple(body.attachments),
        headers=headers,
        content_type=content_type,
        report_type=body.report_type,
        delivery_status=body.delivery_status,
        disposition_notification=body.disposition_notification,
        reported_message_id=body.reported_message_id,
        sender_problem=sender.problem,
        truncated=body.truncated,
    )


def _pair_alternatives(inline: list[list[str | None]]) -> list[list[str | None]]:
    """A text part next to an HTML part with the same words is one alternative, whatever
    the multipart around them is called (a damaged or unknown subtype reads as mixed)."""
    paired: list[list[str | None]] = []
    for entry in inline:
        previous = paired[-1] if paired else None
        if previous is not None and _complement(previous, entry):
            text = previous[0] if previous[0] is not None else entry[0]
            html = previous[1] if previous[1] is not None else entry[1]
            if _words(text) == _words(render(parse_html(html or "").root)[0]):
                paired[-1] = [text, html]
                continue
        paired.append(entry)
    return paired


def _complement(a: list[str | None], b: list[str | None]) -> bool:
    return (a[1] is None and a[0] is not None and b[0] is None and b[1] is not None) or (
        a[0] is None and a[1] is not None and b[1] is None and b[0] is not None
    )


def _words(text: str | None) -> str:
    """The first words of a text, for telling two renderings of one message apart."""
    return " ".join(re.findall(r"\w+", text or "")[:30]).lower()


def _inline_text(inline: list[list[str | None]]) -> tuple[str | None, str | None]:
    """One text and one HTML body from the inline parts, every one of them, in order.

    One alternative (the usual case) gives its text and HTML as they are. Several
    parts (Apple Mail around an inline picture, a text part and an HTML part side by
    side in multipart/mixed) are joined: the text from each part's text (or its HTML
    rendered), the HTML from each part's HTML (or its text, escaped), so whichever body
    the reply extractor reads holds all of them.
    """
    if not inline:
        return None, None
    inline = _pair_alternatives(inline)
    if len(inline) == 1:
        return inline[0][0], inline[0][1]
    if all(html is None for _, html in inline):
        return "\n".join(text or "" for text, _ in inline), None
    if all(text is None for text, _ in inline):
        return None, "".join(html or "" for _, html in inline)
    texts = [text if text is not None else render(parse_html(html or "").root)[0] for text, html in inline]
    htmls = [
        html if html is not None else "<div style=\"white-space: pre-wrap\">%s</div>" % html_lib.escape(text or "")
        for text, html in inline
    ]
    return "\n\n".join(texts), "".join(htmls)
