"""What a human-readable delivery report says: who failed, and whether for good.

Many MTAs (qmail, old Postfix and Exim, Sendmail, Exchange/SMTPSVC, Lotus Domino,
MDaemon, Yahoo, anti-virus gateways) send bounces as plain text with no RFC 3464
`message/delivery-status` part. Their texts share a few forms, which this module reads:

* an introduction ("could not be delivered to", "was not delivered to:", "Delivery has
  failed to these recipients", "The following recipients did not receive", "permanent
  fatal errors", ...) followed by one address per line;
* Postfix/qmail/Yahoo blocks: a line that is `<address>:` (then the remote answer);
* Sendmail's `address... User unknown` lines;
* any SMTP answer line (`550 5.1.1 <address> ...`, `RCPT TO:<address>` then `550 ...`).

The status comes from the code next to the address (RFC 3463 `5.1.1`, or an SMTP reply
`550`), else from the words ("does not exist" is permanent; "delayed", "will retry" are
not). Only the explanation is read: the text stops at the returned message (its
`Received:` block or a "copy of the message" marker) and is capped, every regular
expression is linear (no nested unbounded repetition) and runs on lines of bounded length.
Pure: text in, `TextReport` out.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# The explanation of a bounce sits at the top; anything beyond this is the returned mail.
_TEXT_CAP = 64 * 1024
_LINE_CAP = 1000
_LINES_CAP = 1500
# An introduction's recipient list follows within this many lines.
_INTRO_WINDOW = 14
# A recipient's own explanation (its code, its reason) follows within this many lines.
_DETAIL_LINES = 5

_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){0,8}[A-Za-z0-9-]{1,63}"
_ADDRESS = _LOCAL + "@" + _DOMAIN
_ADDRESS_RE = re.compile(_ADDRESS)
# A line that is (or starts with) one recipient: `  <bob@x>:`, `"bob@x"`, `* [bob@x]: 550`,
# `bob@x (bob@x)`, `bob@x on 10/10/2001`, `bob@x... User unknown`, `RCPT TO:<bob@x>`,
# `Recipient: [SMTP:bob@x]`, `-- bob@x`.
_LEADING_ADDRESS_RE = re.compile(
    r"\s{0,40}(?:(?:[*\u2022>]|--?)\s{0,3})?(?:(?:rcpt\s+to|(?:failed\s+|intended\s+|original\s+|final\s+|unknown\s+)?"
    r"recipient(?:\s+address)?|to|address|user|e-?mail|error-for)\s{0,3}:\s{0,3})?[<\"'(\[]{0,2}(?:smtp:)?("
    + _ADDRESS
    + r")[>\"')\]]{0,2}(?=$|[\s:;,.]|\.\.\.)",
    re.I,
)
# Phrases that name the recipient on the same line, whatever precedes them: Exim's
# "(generated from bob@x)", "addressed to 'bob@x'", Exchange's X.400 "SMTP=bob@x",
# "Invalid final delivery userid: bob@x", "Your message to bob@x".
_NAMING_RE = re.compile(
    r"(?:generated\s+from|addressed\s+to|delivery\s+to|message\s+to|mail\s+to|smtp\s{0,2}[=:]|userid:|"
    r"recipient:|recipient\s+address:|mailbox:|address:)\s{0,3}[<\"'(\[]{0,2}(" + _ADDRESS + r")",
    re.I,
)
# A notice that the email arrived or went on (a success or relay DSN's text).
_SUCCESS_RE = re.compile(
    r"(?:successfully\s+(?:delivered|relayed)|delivery\s+(?:to\s+[^\n]{0,80})?(?:was\s+|has\s+)?succe"
    r"|has\s+been\s+(?:delivered|relayed)\s+to|was\s+(?:delivered|relayed)\s+to)",
    re.I,
)
# Labels that only ever name a failed recipient, wherever they appear.
_STRONG_LABEL_RE = re.compile(
    r"\s{0,40}(?:failed|intended|original|final|unknown|invalid|bad)\s+recipient(?:\s+address)?\s{0,3}:|\s{0,40}error-for\s{0,3}:",
    re.I,
)
# `<bob@x>:` alone or first on a line: Postfix, qmail, Yahoo, MDaemon.
_ANGLE_COLON_RE = re.compile(r"\s{0,40}<(" + _ADDRESS + r")>:")
# A line that is nothing but one address (quoted, bracketed, bulleted).
_BARE_ADDRESS_RE = re.compile(r"\s{0,40}(?:[*\u2022]\s{0,3})?[<\"'(\[]{0,2}(" + _ADDRESS + r")[>\"')\]]{0,2}[:,.]?\s{0,40}")
_ENHANCED_RE = re.compile(r"(?<![\d.])([45])\.([0-7])\.(\d{1,3})(?![\d.])")
_SMTP_CODE_RE = re.compile(r"(?<![\w.#-])([45][0-5]\d)(?=[ -]|$)")
# An SMTP reply as a transcript shows it ("said: 550 ...", "<<< 550 ...", "(#5.1.1)"); a
# bare "550" in prose could be anything, an enhanced code (`_ENHANCED_RE`) could not.
_CODE_IN_PROSE_RE = re.compile(
    r"(?:said:?|<<<|answered|replied|response\s+was:?|error\s+code:?)\s{0,3}[45][0-5]\d(?![\d.])", re.I
)
_ANGLE_RE = re.compile(r"<(" + _ADDRESS + r")>")

# Words only a delivery report uses: they make a report of software's email on their own.
_FAILURE_RE = re.compile(
    r"(?:could\s+not\s+be\s+deliver|couldn't\s+be\s+deliver|cannot\s+be\s+deliver|can't\s+be\s+deliver"
    r"|was\s+not\s+deliver|wasn't\s+deliver|were\s+not\s+deliver|has\s+not\s+been\s+deliver|not\s+delivered\s+to"
    r"|(?:was|were)(?:\s+not|n't)\s+able\s+to\s+deliver|unable\s+to\s+deliver|not\s+able\s+to\s+deliver"
    r"|delivery\s+(?:has\s+)?failed|delivery\s+to\s+the\s+following|failed\s+to\s+the\s+following"
    r"|failed\s+permanently|did\s+not\s+reach|could\s+not\s+reach|cannot\s+be\s+reached|could\s+not\s+be\s+reached"
    r"|undeliverable|permanent\s+(?:fatal\s+)?error|non\s+remis|unzustellbar|nicht\s+zugestellt|konnte\s+nicht\s+zugestellt"
    r"|no\s+se\s+(?:pudo|ha\s+podido)\s+entregar|impossible\s+de\s+(?:remettre|livrer|distribuer)"
    r"|non\s+(?:è|e')\s+stato\s+(?:possibile\s+)?(?:recapitat|consegnat)|niet\s+(?:worden\s+)?afgeleverd"
    r"|unknown\s+(?:user|recipient)|user\s+unknown|recipient\s+unknown"
    r"|no\s+such\s+(?:user|mailbox|recipient|account)|(?:mail|message)\s+(?:has\s+been|was|is\s+being)\s+returned"
    r"|не\s+может\s+быть\s+доставлено|не\s+(?:было\s+)?доставлено|無法投遞|配信できませんでした)",
    re.I,
)
# Words that introduce a report's list of recipients, but that an out-of-office text may
# also use ("please write to the following address"): they open a window, prove nothing.
_LIST_INTRO_RE = re.compile(
    r"(?:following\s+(?:address|recipient|destination|user)|these\s+recipients|did\s+not\s+receive|failed\s+recipients?"
    r"|fatal\s+error|delivery\s+(?:failure|problem))",
    re.I,
)
# A delay notice's introduction: the report is about a recipient, but not final.
_DELAY_RE = re.compile(
    r"(?:(?:has|have)\s+not\s+yet\s+been\s+delivered|delivery\s+(?:is\s+|has\s+been\s+)?delayed"
    r"|(?:message|mail|delivery)\s+(?:has\s+been\s+)?postponed|still\s+trying|transient\s+non-fatal"
    r"|will\s+(?:continue\s+to\s+)?(?:re)?try|(?:delivery\s+)?attempts\s+will\s+continue)",
    re.I,
)
# Introductions that say neither, and are followed by the recipient.
_NEUTRAL_INTRO_RE = re.compile(
    r"(?:your\s+message\s+(?:to|for)\s*:?\s*$|(?:delivery|message)\s+(?:of|for)\s+(?:e-?mail|your\s+message|the\s+message)"
    r"\s+to\b|following\s+message|affected\s+recipient|error\s+description|address(?:es)?\s+follows?\b)",
    re.I,
)
# The returned message starts here: its header block, or the MTA's marker line.
_ORIGINAL_RE = re.compile(
    r"(?:(?:return-path|received|delivered-to|dkim-signature|arc-seal|x-original-to):"
    r"|[-=*_ \t]{2,80}.{0,40}(?:original\s+message|copy\s+of\s+(?:the|your)\s+message|returned\s+message"
    r"|message\s+follows|message\s+headers|headers\s+of|undelivered\s+message|unsent\s+message|message\s+text"
    r"|rejected\s+message|below\s+this\s+line)"
    r"|\s{0,8}(?:original\s+message\s+follows|below\s+this\s+line\s+is\s+a\s+copy|the\s+original\s+message\s+"
    r"follows|a\s+copy\s+of\s+the\s+(?:original\s+)?message\s+(?:follows|is\s+below|below)))",
    re.I,
)
_PERMANENT_WORDS_RE = re.compile(
    r"(?:permanent|does\s+not\s+exist|doesn't\s+exist|no\s+longer\s+(?:exist|valid|active|available)"
    r"|user\s+unknown|unknown\s+(?:user|recipient|address|local|mailbox|e-?mail)|recipient\s+unknown"
    r"|no\s+such\s+(?:user|mailbox|recipient|address|account|person|domain|host)|not\s+found|not\s+listed"
    r"|invalid\s+(?:recipient|address|mailbox|user)|mailbox\s+(?:unavailable|not\s+found|disabled|closed)"
    r"|account\s+(?:has\s+been\s+)?(?:disabled|closed|suspended|expired|deleted)|address\s+rejected"
    r"|no\s+mailbox|unrouteable|unroutable|host\s+not\s+found|domain\s+not\s+found|not\s+a\s+valid"
    r"|gave\s+up|giving\s+up|too\s+many\s+(?:retries|attempts)|expired|existiert\s+nicht|unbekannt"
    r"|n'existe\s+pas|inconnu|no\s+existe|inesistente|sconosciut|invalid\b|unavailable|unknown\s+host|quota|mailbox\s+(?:is\s+)?full)",
    re.I,
)
_TEMPORARY_WORDS_RE = re.compile(
    r"(?:delayed|delay\b|will\s+(?:continue\s+to\s+)?(?:re)?try|(?:keep|still)\s+trying|not\s+yet\s+been\s+delivered"
    r"|has\s+not\s+been\s+delivered\s+yet|temporar|deferred|retry\s+(?:time|timeout)|warning|try\s+again\s+later"
    r"|no\s+action\s+is\s+required|will\s+be\s+retried|queued)",
    re.I,
)
# "was not delivered within 2 days", "queue period expired": the retries are over.
_GAVE_UP_RE = re.compile(
    r"(?:gave|giving|given)\s+up|not\s+(?:be(?:en)?\s+)?delivered\s+(?:with)?in\s+\d|permanent"
    r"|(?:queue|retry)\s+(?:period|time)\s+(?:has\s+)?expired|message\s+expired",
    re.I,
)
_SKIP_LOCALS = frozenset({"postmaster", "mailer-daemon", "mailerdaemon", "mail-daemon", "abuse", "hostmaster", "webmaster"})
_BLOCK_TAG_RE = re.compile(r"<(?:br|p|div|tr|li|h\d)\b[^<>]{0,500}>", re.I)
_TAG_RE = re.compile(r"<[^<>]{0,500}>")


@dataclass(frozen=True)
class TextReport:
    """What the explanation of a text bounce says."""

    recipients: tuple[tuple[str, str | None], ...]  # (address, RFC 3463 status or None), in order
    has_failure_words: bool  # worded as a failed delivery ("could not be delivered", ...)
    has_status_code: bool  # an SMTP or RFC 3463 code appeared in the explanation
    delayed: bool  # worded as a delay/warning ("will retry", "not yet been delivered")
    status: str | None  # the report's own verdict, for a recipient it does not name
    # A recipient in the `<bob@x>:` form that only MTAs write (qmail and its kin, in any
    # language): software listing one is a report even when its words are not ours.
    mta_form: bool = False
    # A recipient on a line of its own inside a report's list (after "could not be
    # delivered to:" or "the following recipients"): a report's layout, not a person's prose.
    listed: bool = False


def html_to_plain(markup: str) -> str:
    """A cheap, linear text of an HTML-only report (its tags out, block tags as line breaks)."""
    capped = markup[: _TEXT_CAP * 2]
    return html.unescape(_TAG_RE.sub("", _BLOCK_TAG_RE.sub("\n", capped)))


def explanation_lines(text: str) -> list[str]:
    """The report's own text, bounded: it stops where the returned message starts."""
    lines: list[str] = []
    for line in text[:_TEXT_CAP].splitlines()[:_LINES_CAP]:
        line = line[:_LINE_CAP]
        if lines and _ORIGINAL_RE.match(line):
            break
        lines.append(line.rstrip())
    return lines


def read_text_report(
    text: str,
    *,
    exclude: frozenset[str] = frozenset(),
    delayed_hint: bool = False,
    failed_hint: bool = False,
    subject: str = "",
) -> TextReport:
    """Scan the explanation of a text bounce.

    `exclude` holds addresses never reported (ours, the report's sender); `delayed_hint`
    and `failed_hint` say the subject already calls it a delay or a failure; the subject's
    own addresses are the recipients when the text names none ("Undeliverable: bob@x").
    A recipient whose lines carry no code and no telling words gets the report's tone:
    5.0.0 when it says the delivery failed, 4.0.0 for a delay, else no status (never
    permanent: a success or relay notice listing its recipients must mark nobody).
    """
    lines = explanation_lines(text)
    joined = "\n".join(lines)
    failure_worded = bool(_FAILURE_RE.search(joined))
    delayed = delayed_hint or bool(_DELAY_RE.search(joined) or _TEMPORARY_WORDS_RE.search(joined)) and not _gave_up(joined)
    coded = bool(_ENHANCED_RE.search(joined) or _CODE_IN_PROSE_RE.search(joined))
    if not failure_worded and not delayed and _SUCCESS_RE.search(joined):
        return TextReport((), False, coded, False, None, False)
    default = "4.0.0" if delayed else "5.0.0" if failure_worded or failed_hint else None
    found: dict[str, str | None] = {}
    uncoded: set[str] = set()  # recipients whose status came from words, not a code
    listed = False
    # A report's subject is an introduction too: the first lines may list the recipient.
    window_end = _INTRO_WINDOW - 1 if failed_hint or delayed_hint else -1
    for index, line in enumerate(lines):
        intro = (
            _FAILURE_RE.search(line)
            or _DELAY_RE.search(line)
            or _LIST_INTRO_RE.search(line)
            or _NEUTRAL_INTRO_RE.search(line)
        )
        if intro:
            window_end = index + _INTRO_WINDOW
        for address in _line_candidates(line, index <= window_end, intro):
            address = address.strip(".").lower()
            if not _reportable(address, exclude) or address in found:
                continue
            found[address], from_code = _status_near(lines, index, delayed, default)
            listed = listed or bool(_BARE_ADDRESS_RE.fullmatch(line))
            if not from_code:
                uncoded.add(address)
            window_end = max(window_end, index + _INTRO_WINDOW)
    codes_in_text = {"%s.%s.%s" % m.groups() for m in _ENHANCED_RE.finditer(joined)}
    if len(codes_in_text) == 1:
        # One code in the whole explanation (Gmail and Office 365 put it paragraphs below
        # the address): the status of every recipient whose own lines gave none, unless
        # it contradicts a delay notice.
        only = codes_in_text.pop()
        if not (delayed and only.startswith("5")):
            found = {address: only if address in uncoded else status for address, status in found.items()}
    if not found and subject and (failure_worded or delayed):
        for match in _ADDRESS_RE.finditer(subject[:300]):
            address = match.group(0).strip(".").lower()
            if _reportable(address, exclude):
                found.setdefault(address, default)
    status = default
    codes = [s for s in found.values() if s]
    if codes and not delayed:
        status = next((s for s in codes if s.startswith("5")), codes[0])
    mta_form = any(_ANGLE_COLON_RE.match(line) for line in lines[:_LINES_CAP])
    return TextReport(tuple(found.items()), failure_worded, coded, delayed, status, mta_form and bool(found), listed)


def _line_candidates(line: str, in_window: bool, intro: re.Match[str] | None) -> list[str]:
    """The recipients one line of the explanation names, by the forms in the docstring."""
    angle_colon = _ANGLE_COLON_RE.match(line)
    if angle_colon:
        return [angle_colon.group(1)]
    bare = _BARE_ADDRESS_RE.fullmatch(line)
    if bare and in_window:
        return [bare.group(1)]
    naming = _NAMING_RE.search(line)
    if naming and (in_window or _FAILURE_RE.search(line) or _PERMANENT_WORDS_RE.search(line)):
        return [naming.group(1)]
    leading = _LEADING_ADDRESS_RE.match(line)
    if leading and (in_window or line[leading.end() : leading.end() + 3] == "..." or _STRONG_LABEL_RE.match(line)):
        return [leading.group(1)]
    if intro:
        after = _ADDRESS_RE.search(line, intro.end())
        if after:
            return [after.group(0)]
    if _SMTP_CODE_RE.search(line) or _ENHANCED_RE.search(line) or _PERMANENT_WORDS_RE.search(line):
        # An SMTP answer or a failure reason naming its address: `550 5.1.1 <bob@x>: ...`,
        # `Local mailbox bob@x is unavailable: user not found`.
        return [m.group(1) for m in _ANGLE_RE.finditer(line)] or [m.group(0) for m in _ADDRESS_RE.finditer(line)][:3]
    return []


def _reportable(address: str, exclude: frozenset[str]) -> bool:
    local, _, domain = address.partition("@")
    return address not in exclude and local not in _SKIP_LOCALS and "." in domain


def _gave_up(text: str) -> bool:
    """A report that retried and then gave up is final, whatever it says about retrying."""
    return bool(_GAVE_UP_RE.search(text))


def _status_near(lines: list[str], index: int, delayed: bool, default: str | None) -> tuple[str | None, bool]:
    """The RFC 3463 status of the recipient on `lines[index]`, from the lines that explain
    it, and whether a code said so (rather than words or the report's tone)."""
    detail = [lines[index]]
    for line in lines[index + 1 : index + 1 + _DETAIL_LINES]:
        if _ANGLE_COLON_RE.match(line) or (line.strip() and _LEADING_ADDRESS_RE.fullmatch(line.strip())):
            break  # the next recipient
        detail.append(line)
    text = "\n".join(detail)
    enhanced = _ENHANCED_RE.search(text)
    if enhanced:
        return "%s.%s.%s" % enhanced.groups(), True
    code = _SMTP_CODE_RE.search(text)
    if code:
        return "%s.0.0" % code.group(1)[0], True
    if _PERMANENT_WORDS_RE.search(text) and not delayed:
        return "5.0.0", False
    if delayed or _TEMPORARY_WORDS_RE.search(text):
        return "4.0.0", False
    return default, False
