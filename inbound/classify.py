"""What kind of email arrived: a person's reply, an auto-reply, a bounce, or our own mail.

Pure: it reads a ParsedEmail and plain config values, never a database. RFC 3834
(Auto-Submitted), the de-facto auto-responder headers, RFC 3464 delivery status
notifications, text bounces (`inbound.bounce_text`) and out-of-office subjects in the
languages clients ship with. A report is decided before an auto-reply: many MTAs mark
their bounces Auto-Submitted or Precedence: bulk, and a bounce must be read as one.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass

from inbound.bounce_text import TextReport, html_to_plain, read_text_report
from inbound.parse import ParsedEmail
from inbound.reply_text import extract_reply

logger = logging.getLogger(__name__)

_SUMMARY_CHARS = 120


class Kind(str, enum.Enum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    LOOP = "loop"


@dataclass(frozen=True)
class FailedRecipient:
    address: str
    status: str | None  # RFC 3463 code, e.g. "5.1.1"
    action: str | None  # "failed", "delayed", ...

    @property
    def permanent(self) -> bool:
        return bool(self.status and self.status.startswith("5"))


@dataclass(frozen=True)
class Classification:
    kind: Kind
    reason: str | None = None
    failed_recipients: tuple[FailedRecipient, ...] = ()
    summary: str | None = None  # one line for a system note (auto-replies)
    # A report's own verdict (RFC 3463), for the recipient of a signed VERP address when
    # the report names nobody we can read: "5.0.0" for a text bounce, "4.0.0" for a delay.
    status: str | None = None

    @property
    def permanent(self) -> bool:
        """A bounce that means "stop mailing this address" (the report's own status when
        it names nobody: the signed VERP address says whose email failed)."""
        if not self.failed_recipients:
            return bool(self.status and self.status.startswith("5"))
        return any(r.permanent for r in self.failed_recipients)


# Machine senders: the local part of a From or Return-Path that no person writes from.
_BOUNCE_SENDERS = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|mdaemon|post[-_.]?master|ndr|imss|smtp-?gateway|mail\.?delivery"
    r"(?:\.?system|\.?subsystem)?|mail-?delivery-?(?:system|subsystem)|delivery-?(?:status|notification|failure)s?"
    r"|mail-?(?:router|gateway|admin|system))@",
    re.I,
)
_NOREPLY_SENDERS = re.compile(r"^(?:no-?reply|do-?not-?reply|donotreply|bounces?|auto-?reply)[\w.+-]*@", re.I)
# What MTAs put in a report's display name ("Mail Delivery System <MAILER-DAEMON@...>").
_DAEMON_NAMES = re.compile(
    r"^\W*(?:mail(?:er)?[- ]?daemon|mail delivery (?:system|subsystem|service)|postmaster|mail administrator"
    r"|system administrator|mail system|delivery status notification|internet mail delivery)\W*$",
    re.I,
)
# A report's subject, in the words MTAs use (never after a reply or forward prefix).
_BOUNCE_SUBJECT = re.compile(
    r"(?:undeliver(?:ed|able)|non[- ]?deliver|nondeliverable|delivery\s+(?:status\s+)?notification"
    r"|delivery\s+(?:failure|failed|has\s+failed|problem|error|report|warning|delayed|delay)"
    r"|fail(?:ure|ed)\s+(?:notice|delivery|mail|message)|mail\s+(?:delivery|system)\s+(?:error|failed|failure|problem)"
    r"|returned\s+(?:mail|message|to\s+sender)|returning\s+(?:message\s+)?to\s+sender|returning\s+message"
    r"|(?:mail|message)\s+failed|не\s+доставлен|(?:mail|message|e-?mail)\s+(?:could\s+not|couldn't"
    r"|cannot|can't|was\s+not|wasn't|not|has\s+not\s+been)\s+(?:be\s+)?(?:delivered|sent)|could\s+not\s+be\s+delivered"
    r"|could\s+not\s+send\s+(?:your\s+)?(?:message|mail)|(?:message|mail)\s+(?:delayed|delay|held|rejected|bounced)|delayed\s+(?:mail|message)|warning:\s+(?:message|mail)|unable\s+to\s+deliver"
    r"|error\s+(?:during|delivering|sending)|delivery\s+notification|unzustellbar|nicht\s+zustellbar"
    r"|nicht\s+zugestellt|non\s+remis|non\s+recapitabile|no\s+(?:se\s+pudo\s+)?entregad|onbestelbaar"
    r"|niet\s+afgeleverd|n[ãa]o\s+entregue|impossible\s+de\s+remettre|\bndr\b|\bdsn\b"
    # Exchange's and webmail providers' report subjects in other languages.
    r"|недоставлен|не\s+удалось\s+доставить|no\s+se\s+puede\s+entregar|n[ãa]o\s+(?:[ée]\s+poss[ií]vel\s+)?entregar"
    r"|olevererbar|kan\s+ikke\s+leveres|kunne\s+ikke\s+leveres|ikke\s+levert|uanbringelig|ei\s+voida?\s+toimittaa"
    r"|toimittamaton|nedoru[čc]iteln|nedoru[čc]en|niedostarczon|nie\s+dostarczono|k[ée]zbes[ií]thetetlen"
    r"|teslim\s+edilemi|iletilemedi|αδύνατη\s+η\s+παράδοση|δεν\s+παραδόθηκε|non\s+distribuable|non\s+d[ée]livr"
    r"|[ée]chec\s+de\s+(?:la\s+)?(?:remise|livraison|distribution)|mancata\s+consegna|לא\s+נמסר|تعذر\s+التسليم"
    r"|配信(?:不能|エラー|失敗)|送信(?:エラー|失敗)|未達|無法(?:投遞|傳遞|送達)|无法(?:投递|送达|传递)|退信|投递失败"
    r"|배달(?:되지\s*않음|\s*실패)|전송\s*실패|반송)",
    re.I,
)
_REPLY_PREFIX = re.compile(
    r"^\s{0,10}(?:re|aw|sv|vs|antw|odp|wg|fw|fwd|tr|rv|enc|doorst|automatic reply|auto(?:matic)?[- ]?reply"
    r"|autoreply|out of (?:the )?office|abwesend|absence)\s{0,3}(?:\[\d{1,4}\]\s{0,3})?[:：]",
    re.I,
)
# A gateway that keeps the original subject and appends its verdict to it ("RE: Your order
# : non remis (delivery failed)", "Re: Booking - Undeliverable"): a report's words after a
# separator at the end of the subject, where a person replying to a report never puts them.
_APPENDED_REPORT = re.compile(r"\S\s{0,3}[:(\[|\u2013-]\s{0,3}(?:%s)[^:]{0,80}$" % _BOUNCE_SUBJECT.pattern, re.I)
_DELAY_SUBJECT = re.compile(r"delay|warning|not\s+yet\s+delivered|still\s+trying|will\s+retry|verz[öo]gert|retard", re.I)
_AUTO_SUBJECT = re.compile(
    r"(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?reply|autoreply|auto-response|"
    r"abwesenheitsnotiz|automatische antwort|abwesend|réponse automatique|reponse automatique|"
    r"\babsence\b|absent du bureau|respuesta automática|respuesta automatica|fuera de la oficina|"
    r"risposta automatica|fuori ufficio|automatisch antwoord|afwezig|resposta automática|"
    r"ausente|frånvaro|automatiskt svar|autosvar|fraværende|poza biurem|odpowiedź automatyczna|"
    r"автоответ|on vacation|vacation reply|away from (?:the|my) office|"
    # Outlook's "Automatic reply:" and "Out of office" in the languages it ships in (the
    # ASCII spelling too: gateways drop the diacritics), and "[auto-generated]" tags.
    r"autom[aā]tisk[aā] atbilde|[aā]rpus biroja|automatinis atsakymas|automaatvastus|automaattinen vastaus|"
    r"automatick[aá] odpov[eě][dď]|automatikus v[aá]lasz|r[aă]spuns automat|otomatik (?:yan[ıi]t|cevap)|"
    r"αυτόματη απάντηση|自動応答|自動返信|自动回复|自動回覆|자동 ?응답|מענה אוטומטי|رد تلقائي|"
    r"автовідповідь|автоматический ответ|автоматичен отговор|automatski odgovor|samodejni odgovor|"
    r"balasan otomatis|tr[aả] l[oờ]i t[uự] [dđ][oộ]ng|automatisk svar|\[auto[- ]?generated\]|"
    r"auto(?:matic|mated)? ?response|automated reply|autoresponder|"
    # Lotus Notes' "AUTO: Ann is out of the office" and the OOF/OOO tags, as a prefix only.
    r"^\s{0,3}(?:auto|oof|ooo)\s{0,3}:)",
    re.I,
)
_LIST_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
# Headers only auto-responders write (vacation, procmail, cPanel, Zimbra, Yahoo, Exchange rules).
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated", "x-mail-autoreply")
# A read receipt sent as a plain email, not an RFC 8098 report: its prefix in the
# languages clients write it in, always followed by a colon.
_RECEIPT_SUBJECT = re.compile(
    r"^\s{0,3}(?:read|gelesen|lu|le[ií]do|letto|gelezen|lido|l[äæ]st|lest|luettu|p[řr]e[čc]teno|olvasva|przeczytan[ay]"
    r"|not\s+read|ungelesen|non\s+lu|no\s+le[ií]do|niet\s+gelezen"
    r"|прочитано|прочитане|已读|已讀|開封済み|읽음|return receipt|read receipt|read report|lesebest[äa]tigung"
    r"|accus[ée] de lecture|confirmaci[óo]n de lectura)\s{0,3}[:：]",
    re.I,
)
_STATUS_RE = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
# A delivery-status body beyond this holds no more recipient groups worth reading.
_DSN_CAP = 256 * 1024
_RECIPIENT_GROUP_RE = re.compile(r"^(?:final|original)-recipient[ \t]{0,10}:", re.I | re.M)


def classify(
    parsed: ParsedEmail,
    *,
    reply_domain: str,
    own_addresses: tuple[str, ...] = (),
    envelope_sender: str | None = None,
) -> Classification:
    """Decide what this email is; only ``Kind.REPLY`` may become a message.

    `envelope_sender` is the SMTP `MAIL FROM` the server stored (``"<>"`` or ``""`` for
    the null reverse-path that RFC 5321 gives every report and RFC 3834 auto-reply);
    None when unknown (`pawpost parse` on a file).
    """
    sender = (parsed.sender_address or "").lower()
    own = {a.lower() for a in own_addresses}
    if sender and (sender in own or sender.rsplit("@", 1)[-1] == reply_domain.lower()):
        return Classification(Kind.LOOP, reason="sent by Pawpost itself (%s)" % sender)
    if parsed.header("x-pawpost-thread") or parsed.header("x-pawpost-message"):
        return Classification(Kind.LOOP, reason="carries Pawpost's own headers")
    machine = _machine_origin(parsed, sender, envelope_sender)
    bounce = _bounce_verdict(parsed, sender, machine, own | {sender}, reply_domain.lower())
    if bounce is not None:
        return bounce
    reason = _auto_reply_reason(parsed, sender)
    if reason:
        return Classification(Kind.AUTO_REPLY, reason=reason, summary=_summary(parsed))
    if machine:
        # A null reverse-path or a mail daemon: a report or an auto-reply, never a person.
        return Classification(Kind.AUTO_REPLY, reason=machine, summary=_summary(parsed))
    return Classification(Kind.REPLY)


def _machine_origin(parsed: ParsedEmail, sender: str, envelope_sender: str | None) -> str | None:
    """Why this email was written by software rather than typed, from its envelope and
    headers; None when nothing says so. Alone it makes an auto-reply; with the words of
    a report it makes a bounce."""
    if envelope_sender is not None and envelope_sender.strip() in ("", "<>"):
        return "null envelope sender"
    return_path = (parsed.header("return-path") or "").strip()
    if return_path in ("<>", ""):
        if parsed.header("return-path") is not None:
            return "null Return-Path"
    elif _BOUNCE_SENDERS.match(return_path.strip("<> ")):
        return "Return-Path %s" % return_path.strip("<> ").split("@", 1)[0]
    if _BOUNCE_SENDERS.match(sender):
        return "sent from %s" % sender.split("@", 1)[0]
    return None


def _bounce_verdict(
    parsed: ParsedEmail, sender: str, machine: str | None, exclude: set[str], reply_domain: str
) -> Classification | None:
    """A Classification when the email is a delivery report, else None.

    Evidence, strongest first: an RFC 3464 delivery-status part (whatever the report-type
    says); X-Failed-Recipients; then a report's words (subject or explanation) from
    software (a machine sender, a null reverse-path, auto-reply headers, a daemon's
    display name); or a report's subject over an explanation naming a recipient with an
    SMTP status. A person's email needs two of these at once, and a subject after
    "Re:"/"Fwd:" never counts: a parent writing about a failed delivery stays a reply.
    """
    dsn = _dsn_recipients(parsed.delivery_status or "") if parsed.delivery_status is not None else None
    if dsn is not None or parsed.report_type == "delivery-status" or parsed.header("x-failed-recipients"):
        failed = _keep(_merge(dsn or (), _x_failed_recipients(parsed)), exclude, reply_domain)
        report = None
        if not failed and not _RECIPIENT_GROUP_RE.search((parsed.delivery_status or "")[:_DSN_CAP]):
            # Only a report whose delivery-status part names nobody is read as text: one
            # whose recipients were all delivered or relayed has said all there is.
            report = _text_report(parsed, exclude, subject=parsed.subject or "")
            failed = _keep(_text_recipients(report), exclude, reply_domain)
        status = _overall_status(failed, report)
        return Classification(Kind.BOUNCE, reason="delivery status notification", failed_recipients=failed, status=status)
    refusal = _mdn_refusal(parsed.disposition_notification or "") if parsed.disposition_notification else None
    if refusal is not None:
        failed = _keep(refusal, exclude, reply_domain)
        return Classification(
            Kind.BOUNCE, reason="refused unread (disposition notification)", failed_recipients=failed, status="5.0.0"
        )
    subject = parsed.subject or ""
    subject_says = _subject_says(subject[:300])
    software = machine or _automatic_headers(parsed) or _daemon_name(parsed) or _null_from(parsed) or _daemon_from(parsed)
    if not subject_says and not software:
        return None
    delay_subject = subject_says and bool(_DELAY_SUBJECT.search(subject[:300]))
    report = _text_report(
        parsed, exclude, delayed_hint=delay_subject, failed_hint=subject_says and not delay_subject, subject=subject
    )
    # A recipient named with an SMTP status, or listed on a line of its own under a
    # report's words ("could not be delivered to the following recipients:" and then the
    # address): what a report's subject needs beside it. A person's prose naming an
    # address after "could not be delivered to" is neither.
    named = bool(report.recipients) and (report.has_status_code or report.listed and report.has_failure_words)
    # Software saying a delivery failed (or naming a recipient with a status or a delay);
    # or a report's subject over a named recipient with an SMTP status.
    worded = (
        report.has_failure_words
        or report.mta_form
        or bool(report.recipients) and (report.has_status_code or report.delayed)
    )
    if software and (subject_says or worded) or (subject_says and named):
        failed = _keep(_text_recipients(report), exclude, reply_domain)
        reason = "delivery report (%s)" % ("subject" if subject_says else "recipients named")
        return Classification(Kind.BOUNCE, reason=reason, failed_recipients=failed, status=_overall_status(failed, report))
    return None


def _subject_says(subject: str) -> bool:
    """A report's subject: its words, never right after a reply or forward prefix (a
    person answering a report) unless a gateway appended them to the original subject."""
    if not _BOUNCE_SUBJECT.search(subject):
        return False
    if not _REPLY_PREFIX.match(subject):
        return True
    original = subject
    for _ in range(10):  # "RE: Fwd: AW: ...": the subject the prefixes were put on
        prefix = _REPLY_PREFIX.match(original)
        if prefix is None:
            break
        original = original[prefix.end() :]
    if _BOUNCE_SUBJECT.match(original.lstrip()):
        return False  # "Re: Undeliverable: ...": a person answering or forwarding a report
    appended = _APPENDED_REPORT.search(original)
    return bool(appended) and not _DELAY_SUBJECT.search(appended.group(0))


def _mdn_refusal(fields: str) -> tuple[FailedRecipient, ...] | None:
    """The recipient of an RFC 8098 disposition notification that says the email was
    refused unread, else None (a read receipt: "displayed", "processed", "dispatched").

    Refused: a "denied" or "failed" disposition (RFC 3798), an "error" modifier, or
    "deleted" by an automatic action (a Sieve reject, RFC 5429; Dovecot over quota). A
    person deleting an email unread ("manual-action/...; deleted") refuses nothing.
    """
    groups = _status_groups(fields[:_DSN_CAP])
    merged: dict[str, str] = {}
    for group in groups:
        for name, value in group.items():
            merged.setdefault(name, value)
    disposition = (merged.get("disposition") or "").lower()
    mode, _, rest = disposition.partition(";")
    kind, _, modifiers = rest.strip().partition("/")
    kind = kind.strip()
    refused = (
        kind in ("denied", "failed")
        or "error" in modifiers
        or (kind == "deleted" and mode.strip().startswith("automatic-action"))
    )
    if not refused:
        return None
    address = _address_field(merged.get("original-recipient") or "") or _address_field(
        merged.get("final-recipient") or ""
    )
    return (FailedRecipient(address, "5.0.0", "failed"),) if address else ()


def _automatic_headers(parsed: ParsedEmail) -> str | None:
    """The auto-reply header a report carries too (Exim, Sendmail and many gateways add
    Auto-Submitted or Precedence: bulk): evidence of software, never a verdict alone."""
    auto_submitted = (parsed.header("auto-submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return "Auto-Submitted"
    for name in _AUTO_HEADERS:
        if parsed.header(name) is not None:
            return name
    return "Precedence" if _precedence(parsed) in _LIST_PRECEDENCE else None


def _precedence(parsed: ParsedEmail) -> str:
    """Precedence, or X-Precedence where a gateway renamed it."""
    return (parsed.header("precedence") or parsed.header("x-precedence") or "").strip().lower()


def _null_from(parsed: ParsedEmail) -> str | None:
    """`From: Mail Delivery System <>`: an MTA copying the null reverse-path into From.
    Evidence for a report only: a From with no address is otherwise quarantined."""
    value = parsed.header("from")
    return "empty From" if value is not None and re.search(r"<\s{0,5}>", value[:500]) else None


def _daemon_from(parsed: ParsedEmail) -> str | None:
    """A From too malformed to yield an address that still names a mail daemon
    (`<Postmaster\\@host@host>`): evidence for a report only, like a display name."""
    if parsed.sender_address:
        return None
    value = (parsed.header("from") or "")[:500]
    match = re.search(r"(?<![\w.-])(mailer[-_.]?daemon|post[-_.]?master|mail[-_.]?daemon)(?![\w-])", value, re.I)
    return "From %s" % match.group(1) if match else None


def _daemon_name(parsed: ParsedEmail) -> str | None:
    """A report's display name ("Mail Delivery Subsystem") over any address; forgeable,
    so it only counts beside a report's words."""
    name = (parsed.sender_name or "").strip()
    return name if name and _DAEMON_NAMES.match(name[:80]) else None


def _text_report(
    parsed: ParsedEmail, exclude: set[str], *, delayed_hint: bool = False, failed_hint: bool = False, subject: str = ""
) -> TextReport:
    """The text part's report; the HTML part's when the text names nobody (an HTML-only
    report whose returned message brought the only text/plain part)."""
    hints = {"delayed_hint": delayed_hint, "failed_hint": failed_hint, "subject": subject}
    report = read_text_report(parsed.text or "", exclude=frozenset(exclude), **hints)
    if report.recipients or not parsed.html:
        return report
    from_html = read_text_report(html_to_plain(parsed.html), exclude=frozenset(exclude), **hints)
    if from_html.recipients or not (report.has_failure_words or report.delayed):
        return from_html
    return report


def _text_recipients(report: TextReport | None) -> tuple[FailedRecipient, ...]:
    """A text report's recipients in the DSN's terms (no status: neither failed nor delayed)."""
    if report is None:
        return ()
    return tuple(
        FailedRecipient(address, status, None if status is None else "failed" if status.startswith("5") else "delayed")
        for address, status in report.recipients
    )


def _keep(
    found: tuple[FailedRecipient, ...], exclude: set[str], reply_domain: str
) -> tuple[FailedRecipient, ...]:
    """Never our own addresses (a report quotes them as the sender), nor the report's."""
    return tuple(
        r for r in found if r.address not in exclude and r.address.rsplit("@", 1)[-1] != reply_domain
    )


def _merge(*groups: tuple[FailedRecipient, ...]) -> tuple[FailedRecipient, ...]:
    """One entry per address, the first source's winning (the DSN before X-Failed-Recipients)."""
    found: dict[str, FailedRecipient] = {}
    for group in groups:
        for recipient in group:
            found.setdefault(recipient.address, recipient)
    return tuple(found.values())


def _overall_status(failed: tuple[FailedRecipient, ...], report: TextReport | None) -> str | None:
    """The report's verdict for a recipient it does not name: its first permanent status,
    else its first status, else what its words say (a delay notice is 4.0.0)."""
    statuses = [r.status for r in failed if r.status]
    if statuses:
        return next((s for s in statuses if s.startswith("5")), statuses[0])
    return report.status if report is not None else None


def _auto_reply_reason(parsed: ParsedEmail, sender: str) -> str | None:
    auto_submitted = (parsed.header("auto-submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return "Auto-Submitted: %s" % auto_submitted
    for name in _AUTO_HEADERS:
        if parsed.header(name) is not None:
            return "%s header" % name
    precedence = _precedence(parsed)
    if precedence in _LIST_PRECEDENCE:
        return "Precedence: %s" % precedence
    if parsed.header("x-ms-exchange-inbox-rules-loop"):
        return "X-MS-Exchange-Inbox-Rules-Loop header"
    if parsed.header("x-ms-exchange-generated-message-source") or parsed.header("x-autoreply-from"):
        return "generated by a server rule"
    if parsed.report_type:
        return "report (%s)" % parsed.report_type
    if _BOUNCE_SENDERS.match(sender) or _NOREPLY_SENDERS.match(sender):
        return "sent from %s" % sender.split("@", 1)[0]
    if _AUTO_SUBJECT.search(parsed.subject or ""):
        return "out-of-office subject"
    if _RECEIPT_SUBJECT.match(parsed.subject or ""):
        return "read receipt subject"
    return None


def _summary(parsed: ParsedEmail) -> str | None:
    """First sentence of the auto-reply's visible text, for a system note."""
    text = extract_reply(parsed.text, parsed.html).visible
    flat = " ".join(text.split())
    if not flat:
        return parsed.subject[:_SUMMARY_CHARS] or None
    match = re.match(r"(.+?[.!?])(?:\s|$)", flat)
    sentence = match.group(1) if match else flat
    if len(sentence) > _SUMMARY_CHARS:
        sentence = sentence[: _SUMMARY_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return sentence


def failed_recipients(parsed: ParsedEmail) -> tuple[FailedRecipient, ...]:
    """Per-recipient results of a DSN, plus any X-Failed-Recipients addresses."""
    return _merge(_dsn_recipients(parsed.delivery_status or ""), _x_failed_recipients(parsed))


def _dsn_recipients(text: str) -> tuple[FailedRecipient, ...]:
    """The per-recipient groups of an RFC 3464 body that did not succeed.

    Original-Recipient (the address as we sent it) wins over Final-Recipient, which a
    receiving server may have rewritten (an alias, a forward, an internal mailbox name).
    A group without Status takes its Action's meaning: failed is 5.0.0, delayed 4.0.0.
    """
    found: dict[str, FailedRecipient] = {}
    for fields in _status_groups(text[:_DSN_CAP]):
        address = _address_field(fields.get("original-recipient") or "") or _address_field(
            fields.get("final-recipient") or ""
        )
        if not address:
            continue
        action = (fields.get("action") or "").strip().lower() or None
        if action in ("delivered", "relayed", "expanded"):
            continue
        status_match = _STATUS_RE.search(fields.get("status") or "")
        status = status_match.group(1) if status_match else None
        if status is None:
            # Some MTAs write an SMTP reply ("553 ...") or nothing: its class, else the
            # Action's meaning ("failure" is what a few write for "failed").
            basic = re.match(r"\s{0,5}([45])[0-5]\d\b", fields.get("status") or "")
            status = "%s.0.0" % basic.group(1) if basic else None
        if status is None:
            status = {"failed": "5.0.0", "failure": "5.0.0", "delayed": "4.0.0"}.get(action or "")
        found.setdefault(address, FailedRecipient(address, status, action))
    return tuple(found.values())


def _x_failed_recipients(parsed: ParsedEmail) -> tuple[FailedRecipient, ...]:
    """Exim's header: it lists only permanent failures."""
    found: list[FailedRecipient] = []
    for value in parsed.header_values("x-failed-recipients"):
        for address in re.split(r"[,\s]+", value[:4096]):
            address = address.strip("<>").lower()
            if "@" in address:
                found.append(FailedRecipient(address, "5.0.0", "failed"))
    return tuple(found)


def _status_groups(text: str) -> list[dict[str, str]]:
    """RFC 3464 body: blank-line separated header groups; the first is per-message."""
    groups: list[dict[str, str]] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields[current] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep:
                current = name.strip().lower()
                fields[current] = value.strip()
        if fields:
            groups.append(fields)
    return groups


def _address_field(value: str) -> str | None:
    """'rfc822; bob@example.com' -> 'bob@example.com' (None for 'unknown; ...' or no address)."""
    kind, sep, rest = value.partition(";")
    if sep and kind.strip().lower() not in ("rfc822", "utf-8", ""):
        return None
    address = (rest if sep else value).strip().strip("<>").strip().lower()
    return address if "@" in address and " " not in address and len(address) <= 320 else None
