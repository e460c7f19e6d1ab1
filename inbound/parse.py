"""Raw RFC 5322 bytes -> ParsedEmail, the only place that knows flanker.

Everything downstream (reply text, classification, routing) works on the frozen
dataclasses defined here, so flanker's types never leave this module. Parsing
never crashes on hostile input: flanker's strict parser, then its recovery
parser, then Python's ``email`` package; only bytes with no message in them at
all raise :class:`UnparseableEmail`.
"""

from __future__ import annotations

import email
import email.header
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
    delivery_status: str | None = field(default=None, repr=False)  # a message/delivery-status part
    reported_message_id: str | None = None  # Message-ID of the mail a report is about
    # Why the From is not one person's address (several From headers or addresses, a
    # group, a malformed header): such an email is quarantined (`inbound.sender`).
    sender_problem: str | None = None

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
    attachments: list[ParsedAttachment] = field(default_factory=list)
    report_type: str | None = None
    delivery_status: str | None = None
    reported_message_id: str | None = None


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw message bytes; raise UnparseableEmail only when nothing is there."""
    if not raw or not raw.strip():
        raise UnparseableEmail("empty message")
    header_msg = _python_message(raw)
    headers = _headers(header_msg)
    if not headers and not raw.strip():
        raise UnparseableEmail("no headers and no body")
    body = _flanker_body(raw)
    python_body = _python_body(header_msg)
    if body is None:
        body = python_body
    elif python_body.texts or python_body.htmls:
        # flanker falls back to a chardet guess when the declared charset fails, which
        # turns one bad byte in UTF-8 into whole-body mojibake; decode text parts from
        # the declared charset with errors="replace" instead.
        body.texts, body.htmls = python_body.texts, python_body.htmls
    body.reported_message_id = body.reported_message_id or python_body.reported_message_id
    return _build(headers, body, header_msg)


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
        content_type = (msg.get_content_type() or "text/plain").lower()
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
    if any("\udc80" <= ch <= "\udcff" for ch in text):  # raw 8-bit header bytes
        text = _decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8")
    try:
        parts = email.header.decode_header(text)
    except Exception:  # malformed encoded-word: keep the raw text
        return _unfold(text)
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    return _unfold("".join(out))


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from flanker import mime
    return mime


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


def _walk_flanker(part: Any, body: _Body) -> None:
    ctype = str(part.content_type.value).lower()
    if part.content_type.is_multipart():
        if ctype == "multipart/report":
            body.report_type = (part.content_type.params.get("report-type") or "").lower() or "unknown"
        for child in part.parts:
            _walk_flanker(child, body)
        return
    if ctype in _REPORT_TYPES:
        if ctype in _DELIVERY_STATUS_TYPES:
            body.delivery_status = _flanker_text(part)
        return
    if ctype in ("message/rfc822", "text/rfc822-headers") and body.report_type:
        body.reported_message_id = _reported_id(_flanker_bytes(part))
        return
    disposition = (part.content_disposition[0] or "").lower()
    filename = _clean_filename(part.detected_file_name) if _has_name(part) else ""
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        (body.texts if ctype == "text/plain" else body.htmls).append(_flanker_text(part))
        return
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


def _python_body(msg: Message) -> _Body:
    body = _Body()
    for part in msg.walk():
        ctype = part.get_content_type().lower()
        if part.is_multipart() and ctype != "message/rfc822":
            if ctype == "multipart/report":
                body.report_type = (part.get_param("report-type") or "unknown").lower()
            continue
        if ctype in ("message/rfc822", "text/rfc822-headers") and body.report_type:
            inner = part.get_payload(0) if ctype == "message/rfc822" and part.is_multipart() else None
            source = inner.as_bytes() if inner is not None else part.get_payload(decode=True) or b""
            body.reported_message_id = _reported_id(source)
            continue
        payload = part.get_payload(decode=True) or b""
        if ctype in _REPORT_TYPES:
            if ctype in _DELIVERY_STATUS_TYPES:
                body.delivery_status = _decode_bytes(payload, part.get_content_charset())
            continue
        disposition = (part.get_content_disposition() or "").lower()
        filename = _clean_filename(_decode_header(part.get_filename() or ""))
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = _decode_bytes(payload, part.get_content_charset())
            (body.texts if ctype == "text/plain" else body.htmls).append(text)
            continue
        _add_attachment(body, ctype, filename, payload, part.get("Content-Id"), disposition)
    return body


def _add_attachment(
    body: _Body, ctype: str, filename: str, content: bytes, content_id: Any, disposition: str
) -> None:
    if ctype in _IGNORED_TYPES or filename.lower() in _IGNORED_NAMES:
        return
    cid = str(content_id).strip().strip("<>").strip() if content_id else None
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
        if not candidate:
            continue
        try:
            return data.decode(_charset_alias(candidate))
        except (LookupError, ValueError):  # unknown charset, bad bytes, NUL in the name
            continue
    name = _charset_alias(charset) if charset else "utf-8"
    try:
        return data.decode(name, errors="replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


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
    text = "\n".join(t for t in body.texts if t is not None) if body.texts else None
    html = body.htmls[0] if body.htmls else None
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
        reported_message_id=body.reported_message_id,
        sender_problem=sender.problem,
    )
