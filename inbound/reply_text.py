"""The words a person actually typed in an email reply.

Removes quoted history, attribution lines ("On ... wrote:" and its translations,
Outlook header blocks), signatures and client boilerplate. HTML is preferred when
the client marked its quote structurally (Gmail, Apple, Thunderbird, Yahoo,
Outlook and Exchange containers); otherwise the text part is read line by line, in
the spirit of mailgun/talon's line markers: ``e`` empty, ``m`` quoted with ``>``,
``s`` a quote splitter, ``f`` a forward header, ``t`` text.

mail-parser-reply (``mailparser_reply``) was measured and left out: it cuts at the
first header it sees and treats everything after a sign-off as signature, which
loses inline answers and text under a quote. HTML is parsed by lxml and rendered by
``inbound.html_text`` (linear, iterative); the quote and signature rules are our own.

Bounded: only the first ``SCAN_CHARS`` of a body are read, and the visible text is
cut at ``VISIBLE_CHARS`` with a note saying the rest is in the full email (which
Pawpost keeps whole).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from lxml import etree

from inbound.html_text import HtmlDocument, TextIndex, cut_from, parse_html, remove, render
from threads.limits import MAX_VISIBLE_TEXT

logger = logging.getLogger(__name__)

# 64 KiB of visible text is ~10,000 words, twenty-odd printed pages: far beyond any reply
# a person types, small enough that a thread page or a digest of twenty such messages
# stays light. The raw email keeps everything. It stays under the cap on any stored
# message (`threads.limits.MAX_VISIBLE_TEXT`), so the note is never cut off again there.
VISIBLE_CHARS = 64 * 1024
assert VISIBLE_CHARS + 1000 < MAX_VISIBLE_TEXT
# What the line-by-line rules read of a body (they are linear; this bounds the constant):
# four times the visible cap, so a long reply still has its quote found after it.
SCAN_CHARS = 256 * 1024
# What is parsed of an HTML body: lxml reads it in C (~50 MB/s), the walks that follow
# are capped by element count (inbound.html_text.MAX_ELEMENTS).
HTML_SCAN_CHARS = 4_000_000
TRUNCATION_NOTE = "[\N{HORIZONTAL ELLIPSIS} the rest is in the full email]"


@dataclass(frozen=True)
class Reply:
    visible: str  # what to post: no quotes, no signature
    trimmed: str  # what was removed, kept so staff can expand it
    quote_stripped: str  # quotes removed, signature still there
    truncated: bool = False  # the visible text was cut (see TRUNCATION_NOTE); the raw email has it all


def extract_reply(text: str | None, html: str | None, *, sender: str | None = None) -> Reply:
    """Visible reply text from a text and/or HTML body.

    ``sender`` (display name and/or address) lets a trailing line with the
    sender's own name count as signature. With no new words (a quote-only or
    photo-only reply) the visible text is empty: quoted history is never posted.
    """
    removed: list[str] = []
    body, from_html, truncated = _choose_body(text, html, removed)
    scanned_part = len(body) > SCAN_CHARS
    if scanned_part:
        body = body[: body.rfind("\n", 0, SCAN_CHARS) + 1 or SCAN_CHARS]
    lines = _split_lines(body)
    kept, cut = _strip_quotes(lines, from_html=from_html)
    if scanned_part and _last_words(kept) and _last_words(kept) == _last_words(lines):
        truncated = True  # the person's words run on past what was read (not just the quote)
    if not _has_words(kept):
        # Only quoted history (an empty or photo-only reply): nothing of it is posted,
        # or the next empty reply would nest the whole digest once more.
        kept, cut = [], lines
    removed.extend(cut)
    quote_stripped = _join(kept)
    visible_lines, sig = _strip_signature(kept, _sender_tokens(sender))
    if not _has_words(visible_lines):
        visible_lines, sig = [], kept  # a signature and nothing else: no new words
    removed.extend(sig)
    visible = _join(visible_lines)
    if len(visible) > VISIBLE_CHARS:
        visible, truncated = _shorten(visible), True
    elif truncated and visible:
        visible = visible + "\n\n" + TRUNCATION_NOTE
    trimmed = _join(_split_lines("\n".join(removed)))
    return Reply(visible=visible, trimmed=trimmed[:VISIBLE_CHARS], quote_stripped=quote_stripped, truncated=truncated)


def _last_words(lines: list[str]) -> str:
    return next((line for line in reversed(lines) if line.strip()), "")


def _shorten(visible: str) -> str:
    """The first VISIBLE_CHARS of a text, cut at a line or word end, with the note."""
    head = visible[:VISIBLE_CHARS]
    cut = max(head.rfind("\n"), head.rfind(" "))
    if cut > VISIBLE_CHARS // 2:
        head = head[:cut]
    return head.rstrip() + "\n\n" + TRUNCATION_NOTE


def html_to_text(html: str) -> str:
    """Readable plain text for an HTML body (links as ``text (url)``)."""
    return render(parse_html(html).root)[0]


# --------------------------------------------------------------------------- choosing


def _choose_body(text: str | None, html: str | None, removed: list[str]) -> tuple[str, bool, bool]:
    """Pick the body to read; return it, whether it was rendered from HTML, and whether
    the HTML was too large to read whole."""
    if html and html.strip():
        document = parse_html(html[:HTML_SCAN_CHARS])
        index = TextIndex(document.root)
        if _has_quote_structure(document.root, index) or not (text and text.strip()):
            cut_nodes = _cut_html_quotes(document, index)
            rendered, full = render(document.root)
            removed.extend(render(node)[0] for node in cut_nodes)
            return rendered, True, document.truncated or full or len(html) > HTML_SCAN_CHARS
    return text or "", False, False


# --------------------------------------------------------------------------- HTML quotes


def _unprefixed(name: str) -> str:
    """Exchange prefixes the ids and classes of a quoted email with ``x_`` (once per hop)."""
    name = name.lower()
    while name.startswith("x_"):
        name = name[2:]
    return name


def _classes(node: etree._Element) -> set[str]:
    return {_unprefixed(c) for c in (node.get("class") or "").split()}


def _node_id(node: etree._Element) -> str:
    return _unprefixed(node.get("id") or "")


def _names(node: etree._Element) -> set[str]:
    """Class names, id and name attribute: where clients mark their containers."""
    return _classes(node) | {_node_id(node), _unprefixed(node.get("name") or "")} - {""}


_GMAIL_CLASSES = {"gmail_quote", "gmail_quote_container"}
_CUT_FROM_IDS = {
    "divrplyfwdmsg",  # Outlook on the web / new Outlook
    "appendonsend",  # Outlook on the web, start of the quoted mail
    "olk_src_body_section",  # Outlook for Mac
    "mail-editor-reference-message-container",  # Outlook for Mac (new)
    "zwchr",  # Zimbra
    "stopspelling",  # Hotmail / Outlook.com (old)
}
_CUT_FROM_CLASSES = {"outlookmessageheader", "zmail_extra"}
# Quote containers that hold the whole quoted email (attribution included).
_QUOTE_CONTAINERS = {"moz-cite-prefix", "yahoo_quoted", "messagereplysection"}
# Signatures the client marked as such: Gmail, Thunderbird, Outlook on the web and
# mobile, iOS Mail, Spark.
_SIGNATURE_CONTAINERS = {
    "gmail_signature", "gmail_signature_prefix", "moz-signature", "signature", "ms-outlook-mobile-signature",
    "applemailsignature", "messagesignaturesection",
}
_WORD_SEPARATOR_RE = re.compile(r"border-top:\s*(?:solid|[\d.]+(?:pt|px)\s+solid)", re.I)


def _is_cite_blockquote(node: etree._Element) -> bool:
    return node.tag == "blockquote" and (node.get("type") or "").lower() == "cite"


def _has_quote_structure(root: etree._Element, index: TextIndex) -> bool:
    for node in root.iter(etree.Element):
        names = _names(node)
        if node.tag == "div" and names & _GMAIL_CLASSES and not _is_forward_container(node, index):
            return True
        if _is_cite_blockquote(node) or _is_word_separator(node, index):
            return True
        if names & (_QUOTE_CONTAINERS | _CUT_FROM_CLASSES | _CUT_FROM_IDS | _SIGNATURE_CONTAINERS):
            return True
        if _node_id(node).startswith("yahoo_quoted"):
            return True
    return False


def _is_short_closing(text: str) -> bool:
    """A marked signature that is only a closing or a name ("Ana", "Cheers, Liam"): it
    stays with the message, like the same words typed (only real signatures go)."""
    words = text.replace("--", " ").split()
    return len(words) <= 4 and not _CONTACT_RE.search(text)


def _is_word_separator(node: etree._Element, index: TextIndex) -> bool:
    """Outlook/Word's reply separator: a div with a solid top border that starts the quoted
    email, with its From:/Sent: block inside or nothing in it at all."""
    if node.tag != "div" or not _WORD_SEPARATOR_RE.search((node.get("style") or "").replace(": ", ":")):
        return False
    head = index.head(node).strip()
    return not head or bool(_FROM_BLOCK_START_RE.match(head))


def _is_forward_container(node: etree._Element, index: TextIndex) -> bool:
    head = index.head(node).strip()
    return bool(re.match(r"[-_=* ]*(?:%s)" % _FWD_WORDS, head, re.I))


def _cut_html_quotes(document: HtmlDocument, index: TextIndex) -> list[etree._Element]:
    """Remove quote containers in place; return what was removed."""
    root = document.root
    removed: list[etree._Element] = []
    for node in list(root.iter(etree.Element)):
        if not _attached(node, root):
            continue
        names = _names(node)
        if names & (_CUT_FROM_IDS | _CUT_FROM_CLASSES):
            previous = _previous_element(node)
            start = previous if previous is not None and previous.tag == "hr" else node
            removed.append(cut_from(start))
        elif node.tag == "div" and names & _GMAIL_CLASSES and not _is_forward_container(node, index):
            remove(node)
            removed.append(node)
        elif names & _QUOTE_CONTAINERS or _is_cite_blockquote(node):
            remove(node)
            removed.append(node)
        elif names & _SIGNATURE_CONTAINERS and not _is_short_closing(index.head(node, 400)):
            remove(node)
            removed.append(node)
        elif _node_id(node).startswith("yahoo_quoted"):
            remove(node)
            removed.append(node)
        elif _is_word_separator(node, index) and re.search(r"\w", index.before(node)):
            removed.append(cut_from(node))
    last = _last_plain_blockquote(root)
    if last is not None:
        remove(last)
        removed.append(last)
    block = _cut_header_block(root)
    if block is not None:
        removed.append(block)
    return removed


def _cut_header_block(root: etree._Element) -> etree._Element | None:
    """An Outlook-style From:/Date: block in its own element ends the reply.

    The block's enclosing div goes, with everything after it, unless that div
    holds the whole mail (then the text-level splitter handles it).
    """
    index = TextIndex(root)
    for node in root.iter(etree.Element):
        if not _FROM_BLOCK_START_RE.match(index.head(node).strip()):
            continue
        if any(_FROM_BLOCK_START_RE.match(index.head(c).strip()) for c in node.iterchildren(etree.Element)):
            continue  # a child holds the block more tightly
        if len(_HEADER_WORD_RE.findall(index.from_here(node))) < 2:
            continue
        container = node
        while container.getparent() is not None and container.tag != "div":
            container = container.getparent()
        if container.tag != "div":
            return None
        if not re.search(r"\w", index.before(container)):
            return None
        previous = _previous_element(container)
        holder = cut_from(container)
        if previous is not None and previous.tag == "hr" and not len(previous) and not (previous.text or "").strip():
            remove(previous)
        return holder
    return None


def _attached(node: etree._Element, root: etree._Element) -> bool:
    top = node
    for top in node.iterancestors():
        pass
    return top is root or node is root


def _previous_element(node: etree._Element) -> etree._Element | None:
    """The element just before node, when only blank text separates them."""
    previous = node.getprevious()
    while previous is not None and not isinstance(previous.tag, str):
        previous = previous.getprevious()
    if previous is None or (previous.tail or "").strip():
        return None
    return previous


def _last_plain_blockquote(root: etree._Element) -> etree._Element | None:
    """The last top-level blockquote: webmail clients (Yahoo, Yandex, Mail.ru, Outlook.com)
    quote with a bare blockquote after the reply."""
    last = None
    for node in root.iter("blockquote"):
        if _classes(node) & _GMAIL_CLASSES:
            continue
        if next(node.iterancestors("blockquote"), None) is None:
            last = node
    return last


# --------------------------------------------------------------------------- text lines

_INVISIBLE_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\u200b\u200c\u200d\u200e\u200f\u2060\ufeff]")


def _split_lines(text: str) -> list[str]:
    text = _INVISIBLE_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [line.rstrip() for line in text.split("\n")]


def _join(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _has_words(lines: list[str]) -> bool:
    """Whether any line says something: a letter or digit, or a symbol such as an emoji
    (a reply of just "🎉" is a reply)."""
    return any(_WORDS_RE.search(line) for line in lines)


# Letters and digits, or pictographs (arrows, symbols, dingbats, emoji); not the dashes
# and box-drawing rules clients draw separators with.
_WORDS_RE = re.compile("[^\\W_]|[\u2190-\u21ff\u2600-\u27bf\U0001f000-\U0001faff]")


# --------------------------------------------------------------------------- splitters

_WROTE_VERBS = (
    r"wrote|writes|sent|a écrit|a ecrit|écrit|napisał|napisała|napisal|schreef|verzond|"
    r"het volgende geschreven|geschreven|schrieb|escreveu|escribió|escribio|ha scritto|scrisse|"
    r"skrev|kirjoitti|đã viết|napsal|napsala|написал|написала|пишет|yazdı|írta|έγραψε|"
    r"ha escrit|escrit|pisze|napisał\(a\)|写道|寫道|작성|のメッセージ"
)
_LEAD_WORDS = (
    r"On|Le|Am|Op|El|Em|Il giorno|Il|W dniu|Dnia|Den|På|Vào|Dne|Dana|Pada|В|在"
)
_VERB = rf"(?i:{_WROTE_VERBS})"
# "On <date>, <name> wrote:" and its translations, possibly joined from several lines.
_ON_WROTE_RE = re.compile(
    rf"^[\s>*-]*(?:{_LEAD_WORDS})\s(?P<middle>.*?)\b{_VERB}(?:\s*:?|\s[^:]{{0,120}}:)\s*-*\s*$"
)
# "2014-10-17 11:28 GMT+03:00 Bob <bob@example.com>:", "26.06.2014, 14:41, "Bob" <b@x>:"
_DATE_START = (
    r"(?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
    r"|\d{1,2}\.? [^\W\d]{3,12}\.? \d{4}"
    r"|[^\W\d]{2,12}\.?,? \d{1,2}\.? [^\W\d]{3,12}\.? \d{4})"
)
_DATE_EMAIL_RE = re.compile(
    rf"^\s*{_DATE_START}.{{0,200}}?[\w.+-]+@[\w-]+(?:\.[\w-]+)+[>)\]]?\s*(?:(?:{_VERB})\s*)?:?\s*$"
)
# "Bob <bob@example.com> wrote:" (Samsung prefixes its device line to it)
_EMAIL_WROTE_RE = re.compile(
    rf"^.{{0,200}}?[\w.+-]+@[\w-]+(?:\.[\w-]+)+[>)\]]?\s*(?:{_VERB})\s*:\s*$"
)
# Android: "---- John Smith wrote ----"
_DASH_WROTE_RE = re.compile(rf"^\s*-{{2,}}\s*.{{1,80}}?\s(?:{_VERB})\s*:?\s*-{{2,}}\s*$")
_ORIGINAL_RE = re.compile(
    r"^\s*[-_=*]{2,}\s*(?:original message|reply message|ursprüngliche nachricht|"
    r"urspr\w*ngliche nachricht|antwort nachricht|oprindelig meddelelse|message d'origine|"
    r"mensaje original|messaggio originale|oorspronkelijk bericht|originalbericht|"
    r"ursprungligt meddelande|opprinnelig melding|alkuperäinen viesti|wiadomość oryginalna|"
    r"původní zpráva|исходное сообщение|mensagem original|eredeti üzenet)\s*[-_=*]{2,}\s*$",
    re.I,
)
_FWD_WORDS = (
    r"forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|mensaje reenviado|"
    r"messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada|begin forwarded message|"
    r"début du message réexpédié|anfang der weitergeleiteten nachricht|inicio del mensaje reenviado"
)
_FWD_RE = re.compile(
    r"^\s*(?:[-_=*]{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]|"
    r"mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada|"
    r"vidarebefordrat meddelande|videresendt meddelelse|videresendt melding|välitetty viesti|"
    r"wiadomość przekazana|пересланное сообщение)\s*[-_=*]{2,}"
    r"|(?:begin forwarded message|début du message réexpédié|anfang der weitergeleiteten nachricht|"
    r"inicio del mensaje reenviado|inizio messaggio inoltrato|begin doorgestuurd bericht)\s*:)\s*$",
    re.I,
)
_FROM_WORDS = r"From|Von|De|Van|Fra|Från|Da|Od|От|Lähettäjä|Feladó|Kimden"
_DATE_WORDS = (
    r"Date|Datum|Sent|Gesendet|Envoyé|Enviado|Inviato|Verzonden|Verstuurd|Sendt|Skickat|"
    r"Wysłano|Wysłane|Отправлено|Дата|Data|Fecha|Päivämäärä|Lähetetty|Dátum|Tarih"
)
_OTHER_WORDS = (
    r"To|An|À|A|Aan|Til|Till|Para|Do|Кому|Vastaanottaja|Címzett|Kime|Subject|Betreff|Objet|"
    r"Asunto|Oggetto|Onderwerp|Emne|Ämne|Assunto|Temat|Тема|Aihe|Tárgy|Konu|Cc|CC|Kopie|Kopia|"
    r"Копия|Reply-To|Antwort an|Répondre à|Organization|Importance|Priorität"
)
_HEADER_LINE_RE = re.compile(
    rf"^[ \t]*\*?(?:{_FROM_WORDS}|{_DATE_WORDS}|{_OTHER_WORDS})\*?[ \t]?:\*?(?:[ \t]|$)"
)
_FROM_BLOCK_START_RE = re.compile(rf"^[ \t]*\*?(?:{_FROM_WORDS}|{_DATE_WORDS})\*?[ \t]?:\*?(?:[ \t]|$)")
_HEADER_WORD_RE = re.compile(
    rf"(?:^|\n|\s)\*?(?:{_FROM_WORDS}|{_DATE_WORDS}|{_OTHER_WORDS})\*?[ \t]?:(?:\s|$)"
)
_RULE_RE = re.compile(r"^\s*(?:[-_=]{3,}|\*\s\*\s\*)\s*$")
# "-------- Oprindelig besked --------", "===== Original =====": a title between rules.
_FRAMED_TITLE_RE = re.compile(r"^\s*[-_=*]{2,}\s*[^-_=*\s][^-_=*]{0,60}[-_=*]{2,}\s*$")
# "Message du : 12/12/2016 13:20": a label of a few words, a colon, then only a date and time.
_DATED_LABEL_RE = re.compile(r"^[^\W\d][\w'’]*(?: [\w'’]+){0,3} ?: ?\d[\d/.:, -]{4,40}(?: ?[AaPp]\.?[Mm]\.?)?$")
_LINK_RE = re.compile(r"<(https?://[^>]*)>")
_SPLITTER_MAX_LINES = 6
# Clients wrap quoted text at 72-78 columns; a quoted line this long was likely cut there.
_WRAP_WIDTH = 70
_SPLITTER_MAX_CHARS = 400


def _is_wrote_header(joined: str) -> bool:
    joined = joined.replace("\uff1a", ":")  # the full-width colon of Chinese and Japanese clients
    match = _ON_WROTE_RE.match(joined)
    if match:
        middle = match.group("middle")
        if re.search(r"\d", middle) and re.search(r",|@|\d[:.]\d\d|użytkownik", joined):
            return True
    return bool(_DATE_EMAIL_RE.match(joined) or _EMAIL_WROTE_RE.match(joined) or _is_dated_address_line(joined))


_ADDRESS_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_YEAR_OR_TIME_RE = re.compile(r"(?<!\d)(?:(?:19|20)\d\d|\d{1,2}[:.]\d\d)(?!\d)")


def _is_dated_address_line(line: str) -> bool:
    """An attribution in any language: a date or time, then the sender's address, then at
    most a verb before the closing colon ("11:00 AM, May 17, 2021, "Ann" <a@b.example>:",
    "2016/11/08 14:26、Ann <a@b.example> のメッセージ:", "W dniu 2015-01-07 14:23, a@b.example pisze:").

    Read without backtracking: the last address on the line, and what surrounds it.
    """
    line = line.strip(" >*")
    if not line.endswith(":") or "@" not in line or len(line) > _SPLITTER_MAX_CHARS:
        return False
    last = None
    for last in _ADDRESS_RE.finditer(line):
        pass
    if last is None:
        return False
    tail = line[last.end():-1].strip(" >)]\"'")
    if len(tail) > 24 or len(tail.split()) > 2 or not _YEAR_OR_TIME_RE.search(line, 0, last.start()):
        return False
    # Shaped like a client's line, not a sentence ending "... on 3 June 2024 at ann@x.example:":
    # it opens with the date or a lead word, or gives the address in brackets as clients do.
    bracketed = line[last.start() - 1:last.start()] in ("<", "(")
    return line[:1].isdigit() or bracketed or bool(re.match(rf"(?:{_LEAD_WORDS})\s", line))


def _splitter_length(lines: list[str], i: int) -> int:
    """How many lines starting at i form a quote splitter (0 when none)."""
    line = lines[i]
    if len(line) > _SPLITTER_MAX_CHARS:
        return 0
    if _ORIGINAL_RE.match(line) or _DASH_WROTE_RE.match(line):
        return 1
    if _FROM_BLOCK_START_RE.match(line):
        length = _from_block_length(lines, i)
        if length:
            return length
    stripped = line.strip(" >*-")
    if not stripped or not (re.match(rf"(?:{_LEAD_WORDS})\s", stripped) or stripped[0].isdigit()
                            or "@" in line or re.match(r"[^\W\d]{2,12}\.?,? \d", stripped)):
        return 0
    joined = ""
    for k in range(_SPLITTER_MAX_LINES):
        if i + k >= len(lines):
            break
        part = lines[i + k].strip()
        if k and lines[i + k].startswith(">") and not re.search(rf"(?:{_VERB})\s*:?\s*$", part):
            break
        if k and not part and _is_wrote_header(lines[i + k + 1] if i + k + 1 < len(lines) else ""):
            # The attribution starts after the blank line: what came before is the reply.
            return 0
        joined = (joined + " " + part).strip() if part else joined
        if len(joined) > _SPLITTER_MAX_CHARS:
            break
        if part and _is_wrote_header(joined):
            return k + 1
    return 0


def _from_block_length(lines: list[str], i: int) -> int:
    """Outlook-style header block: at least two header lines, From/Date/Sent first."""
    headers = 0
    last = i
    j = i
    while j < len(lines) and j < i + 12:
        if _HEADER_LINE_RE.match(lines[j]):
            headers += 1
            last = j
            j += 1
        elif headers and lines[j].strip() and j + 1 < len(lines) and _HEADER_LINE_RE.match(lines[j + 1]):
            j += 1  # a wrapped header value
        else:
            break
    return last - i + 1 if headers >= 2 else 0


def _preprocess(lines: list[str]) -> list[str]:
    """Split "reply text On <date> wrote:" lines and hide '>' that close wrapped links."""
    out: list[str] = []
    for line in lines:
        tail = line.rstrip(" -:").lower()
        if len(line) < _SPLITTER_MAX_CHARS and re.search(rf"(?:{_WROTE_VERBS})$", tail):
            match = re.match(rf"^(?P<pre>.*?\S)\s*-*\s*(?P<hdr>(?:{_LEAD_WORDS})\s.*)$", line)
            if match and not line.lstrip().startswith(">") and _is_wrote_header(match.group("hdr")):
                pre = match.group("pre").rstrip(" -")
                if pre.strip(" >*-") and not re.fullmatch(r"[\s>*-]*", pre):
                    out.extend([pre, match.group("hdr")])
                    continue
        out.append(line)
    return out


def _protect_links(text: str) -> str:
    def wrap(match: re.Match[str]) -> str:
        start = text.rfind("\n", 0, match.start()) + 1
        if text[start:start + 1] == ">":
            return match.group(0)
        return "\x02%s\x03" % match.group(1).replace("\n", "\x00")

    return _LINK_RE.sub(wrap, text)


def _restore_links(line: str) -> str:
    return line.replace("\x02", "<").replace("\x03", ">").replace("\x00", "\n")


# A header field of a quoted email (bsd-mailx's ``~m`` quotes the original with a tab,
# headers included, mbox "From " line first).
_QUOTED_FIELD_RE = re.compile(r"^(?P<indent>[ \t]+|(?:[ \t]*>)+[ \t]?)(?:[A-Za-z][A-Za-z0-9-]{1,40}:(?:\s|$)|From \S+ .*\d{4})")
_HEADER_NAMES_RE = re.compile(
    r"^(?:[ \t>]*)(?:return-path|received|delivered-to|x-original-to|message-id|mime-version|content-type|"
    r"content-transfer-encoding|dkim-signature|in-reply-to|references|reply-to|auto-submitted|"
    r"x-[a-z0-9-]+|from|to|cc|date|subject):",
    re.I,
)


def _quoted_header_length(lines: list[str], i: int) -> int:
    """Lines from i that form an indented copy of an email's header block (0 when none).

    At least three fields (continuation lines between them allowed), one of them a
    field every email carries, all with the same indentation.
    """
    match = _QUOTED_FIELD_RE.match(lines[i])
    if match is None:
        return 0
    indent = match.group("indent")
    fields = known = 0
    j = i
    while j < len(lines) and j < i + 200:
        line = lines[j]
        if _QUOTED_FIELD_RE.match(line) and line.startswith(indent):
            fields += 1
            known += bool(_HEADER_NAMES_RE.match(line) or line.lstrip(" \t>").startswith("From "))
        elif not (line.startswith(indent + " ") or line.startswith(indent + "\t")) or not line.strip(" \t>"):
            break  # neither a field nor its continuation
        j += 1
    return j - i if fields >= 3 and known >= 2 else 0


def _mark_quoted_email(lines: list[str], markers: list[str], i: int) -> int:
    """Mark an indented header block and the indented body under it; return where it ends."""
    length = _quoted_header_length(lines, i)
    indent = _QUOTED_FIELD_RE.match(lines[i]).group("indent")  # type: ignore[union-attr]
    for j in range(i, i + length):
        markers[j] = "s"
    j = i + length
    while j < len(lines):
        if lines[j].startswith(indent[:1]) and (indent[:1] != ">" or lines[j].lstrip().startswith(">")):
            markers[j] = "m"
        elif not lines[j].strip():
            markers[j] = "e"
        else:
            break
        j += 1
    return j


def _mark_tab_quote(lines: list[str], markers: list[str], i: int) -> int:
    """After an attribution, lines indented with a TAB are the quote (s-nail and
    bsd-mailx quote with a TAB, not "> "); return where they end."""
    j = i
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines) or not lines[j].startswith("\t"):
        return i
    k = i
    while k < len(lines) and (lines[k].startswith("\t") or not lines[k].strip()):
        markers[k] = "m" if lines[k].strip() else "e"
        k += 1
    return k


def _mark(lines: list[str], *, top_block_is_content: bool = True) -> list[str]:
    markers = ["t"] * len(lines)
    i = 0
    if top_block_is_content:
        i = _skip_top_header_block(lines)
        markers[:i] = ["t" if line.strip() else "e" for line in lines[:i]]
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            markers[i] = "e"
        elif line[:1] in " \t>" and _quoted_header_length(lines, i):
            i = _mark_quoted_email(lines, markers, i)
            continue
        elif re.match(r"^ {0,3}>", line):
            markers[i] = "m"
        elif _FWD_RE.match(line):
            markers[i] = "f"
        else:
            length = _splitter_length(lines, i)
            if length:
                for j in range(i, i + length):
                    markers[j] = "s"
                i = _mark_tab_quote(lines, markers, i + length)
                continue
            if _ends_with_device_line(lines, i):
                markers[i] = "s"
        i += 1
    _mark_link_continuations(lines, markers)
    _mark_rewrapped_quote_lines(lines, markers)
    _extend_splitters_over_rules(lines, markers)
    return markers


def _mark_rewrapped_quote_lines(lines: list[str], markers: list[str]) -> None:
    """A line without '>' squeezed between two quoted lines is a quoted line a client
    re-wrapped, when it reads as the rest of the line above: it starts in lower case, or
    the line above ran to the wrap width mid-sentence. An answer between quotes starts its
    own sentence, and usually its own paragraph. Never all of the text: a reply of short
    answers between quotes ("yes", "no") must not become quote-only."""
    wrapped: list[int] = []
    for i in range(1, len(lines) - 1):
        if markers[i] != "t" or markers[i - 1] != "m" or markers[i + 1] != "m":
            continue
        above = lines[i - 1].lstrip(" >").rstrip()
        if len(lines[i - 1]) < _WRAP_WIDTH // 2:
            continue  # a short quoted line was not cut by wrapping
        lower = lines[i].lstrip()[:1].islower()
        if lower or (len(lines[i - 1]) >= _WRAP_WIDTH and above[-1:] not in ".?!:;"):
            wrapped.append(i)
    if len(wrapped) < sum(1 for i, m in enumerate(markers) if m in "tf" and _WORDS_RE.search(lines[i])):
        for i in wrapped:
            markers[i] = "m"


def _skip_top_header_block(lines: list[str]) -> int:
    """A plain-text body that opens with a From:/Date: block, no separator above it, is an
    email pasted or forwarded as the message (clients quoting put their separator or an
    attribution first). Its header lines are content; return where marking resumes."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not _FROM_BLOCK_START_RE.match(lines[first]):
        return 0
    return first + _from_block_length(lines, first)


def _ends_with_device_line(lines: list[str], i: int) -> bool:
    """A client's device line ("Sent from my iPhone", "Télécharger Outlook pour iOS") with
    more after it: the client put it under what was typed, so what follows is the original
    it did not quote (never a forward, which stays content)."""
    line = _restore_links(lines[i]).strip()
    line = _LINK_RE.sub("", line).strip()
    if len(line) > 100 or "," in line or not _DEVICE_RE.match(line) or not _DEVICE_CLIENT_RE.search(line):
        return False
    following = next((j for j in range(i + 1, min(len(lines), i + 20)) if lines[j].strip()), None)
    if following is None:
        return False
    text = lines[following]
    # A quote, an attribution or a separator after it: the quote rules take it from there.
    return not (
        re.match(r"^\s*>", text) or _FWD_RE.match(text) or _RULE_RE.match(text)
        or _DEVICE_RE.match(text.strip()) or _splitter_length(lines, following)
    )


def _mark_link_continuations(lines: list[str], markers: list[str]) -> None:
    """A long '(http://...)' link wrapped inside a quote does not end the quote."""
    for i, marker in enumerate(markers):
        if marker != "t" or i == 0:
            continue
        previous = next((j for j in range(i - 1, -1, -1) if markers[j] != "e"), None)
        if previous is None or markers[previous] != "m":
            continue
        stripped = lines[i].strip()
        unclosed = re.search(r"\(https?://[^)\s]*$", lines[previous])
        if stripped.startswith("(http") or (unclosed and re.match(r"^\S*\)", stripped)):
            markers[i] = "m"


def _extend_splitters_over_rules(lines: list[str], markers: list[str]) -> None:
    """The separator and intro lines just above a splitter belong to it: a rule, a framed
    title in any language ("-------- Oprindelig besked --------"), or a dated label line
    touching a header block ("Message du : 12/12/2016 13:20")."""
    for i in range(1, len(markers)):
        if markers[i] != "s" or markers[i - 1] == "s":
            continue
        top = i
        j = i - 1
        for _ in range(_SPLITTER_MAX_LINES):
            while j >= 0 and markers[j] == "e":
                j -= 1
            if j < 0 or markers[j] != "t" or len(lines[j]) > _SPLITTER_MAX_CHARS:
                break
            # A dated label only tops a header block written flush left (never a quoted one:
            # "Note: back at 6" typed right above bsd-mailx's TAB-quoted headers is the reply).
            label = j == top - 1 and lines[i][:1] not in " \t>" and _DATED_LABEL_RE.match(lines[j].strip())
            if not (_RULE_RE.match(lines[j]) or _FRAMED_TITLE_RE.match(lines[j]) or label):
                break
            top = j
            j -= 1
        for k in range(top, i):
            markers[k] = "s"


def _strip_quotes(raw_lines: list[str], *, from_html: bool = False) -> tuple[list[str], list[str]]:
    """Split lines into (kept, removed) by quote structure.

    ``from_html``: the lines were rendered from HTML, where a header block at the very top
    is Outlook's quote under an empty reply (its separator is a border, not a line)."""
    protected = _protect_links("\n".join(raw_lines)).split("\n")
    lines = _preprocess(protected)
    markers = _mark(lines, top_block_is_content=not from_html)
    restored = [_restore_links(line) for line in lines]
    keep = _select(restored, markers)
    kept = [line for line, k in zip(restored, keep) if k]
    removed = [line for line, k in zip(restored, keep) if not k]
    return kept, removed


def _select(lines: list[str], markers: list[str]) -> list[bool]:
    """Which lines to keep, from their markers."""
    n = len(markers)
    if "s" not in markers and markers.count("m") < 3:
        markers = ["t" if m == "m" else m for m in markers]
    flat = "".join(markers)
    if re.match(r"[te]*f", flat):
        return [True] * n  # a forward: what was forwarded is the message
    first_quote = next((i for i, m in enumerate(markers) if m in "sm"), None)
    if first_quote is None:
        return [True] * n
    keep = [True] * n
    # A splitter followed by unquoted text (Outlook): everything from it is history.
    cut = _splitter_before_text(flat)
    end = n
    if cut is not None:
        end = cut
        for i in range(end, n):
            keep[i] = False
    last_quote = max((i for i in range(first_quote, end) if markers[i] in "sm"), default=None)
    if last_quote is None:
        return keep
    segments = _text_segments(markers, first_quote, end)
    answers = [seg for seg in segments if not _is_signature_only(lines[seg[0]:seg[1]])]
    inline = [seg for seg in answers if seg[1] <= last_quote]
    if inline:
        # Answers between quotes: keep them with the quoted lines they answer.
        last_answer_end = answers[-1][1]
        for i in range(first_quote, n):
            if i >= last_answer_end or markers[i] == "s":
                keep[i] = False
        return keep
    for i in range(first_quote, last_quote + 1):
        keep[i] = False
    return keep


def _splitter_before_text(flat: str) -> int | None:
    """Where the first splitter followed by text (only splitters and blanks between) starts.

    One pass over the markers (a regex search such as ``s[se]*[tf]`` would rescan each run
    of splitters from every one of its lines: quadratic on thousands of header lines).
    """
    i = flat.find("s")
    while i >= 0:
        j = i
        while j < len(flat) and flat[j] in "se":
            j += 1
        if j < len(flat) and flat[j] in "tf":
            return i
        i = flat.find("s", j)
    return None


def _text_segments(markers: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """Runs of text lines (t/f, empties inside) between quote lines in [start, end)."""
    segments: list[tuple[int, int]] = []
    i = start
    while i < end:
        if markers[i] in "tf":
            j = i
            while j < end and markers[j] in "tfe":
                j += 1
            last = j
            while last > i and markers[last - 1] == "e":
                last -= 1
            segments.append((i, last))
            i = j
        else:
            i += 1
    return segments


# --------------------------------------------------------------------------- signatures

_SIGN_OFFS = (
    r"thanks|thank you|thanks again|thanks so much|many thanks|thanks in advance|thank you so much|"
    r"thx|ty|cheers|regards|best regards|kind regards|warm regards|warmest regards|best wishes|"
    r"warm wishes|best|all the best|sincerely|sincerely yours|yours|yours truly|yours sincerely|"
    r"cordially|respectfully|talk soon|take care|love|hugs|xoxo|br|brgds|rgds|with thanks|"
    r"mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße|liebe grüße|"
    r"beste grüße|grüße|gruß|lg|vg|mfg|danke|vielen dank|cordialement|bien cordialement|"
    r"bien à vous|amitiés|bisous|merci|merci beaucoup|bonne journée|saludos|un saludo|"
    r"saludos cordiales|atentamente|gracias|muchas gracias|un abrazo|cordiali saluti|saluti|"
    r"distinti saluti|grazie|grazie mille|un saluto|met vriendelijke groet|met vriendelijke groeten|"
    r"vriendelijke groet|groeten|groetjes|bedankt|hälsningar|med vänlig hälsning|vänliga hälsningar|"
    r"mvh|med venlig hilsen|venlig hilsen|hilsen|med vennlig hilsen|pozdrawiam|z poważaniem|"
    r"dziękuję|obrigado|obrigada|atenciosamente|abraços|с уважением|спасибо"
)
_SIGN_OFF_RE = re.compile(
    rf"^\s*(?i:{_SIGN_OFFS})\s*[,.!]*(?:\s*[,-]?\s*[A-Z][\w.'’-]*(?:\s[A-Z][\w.'’-]*){{0,2}})?\s*[,.!]*\s*$"
)
_DEVICE_RE = re.compile(
    r"^\s*(?:"
    r"(?:sent|sent wirelessly|sent securely|sent remotely) (?:from|via|with|using|by) .{1,60}"
    r"|get outlook for \w+.*|download outlook for \w+.*"
    r"|envoyé (?:de|depuis|sans fil par|à partir de) .{1,60}"
    r"|enviado (?:desde|de|do|a partir do|a partir de|con|com) .{1,60}"
    r"|von meinem .{1,40} gesendet|gesendet (?:von|mit|vom|über) .{1,60}"
    r"|inviato da .{1,60}|verzonden (?:vanaf|met|van) .{1,60}|verstuurd (?:vanaf|met|van) .{1,60}"
    r"|skickat från .{1,60}|sendt fra .{1,60}|lähetetty .{1,60}|wysłane z .{1,60}"
    r"|отправлено (?:с|из) .{1,60}|sent from my .{1,60}"
    r"|wysłano z .{1,60}|odesláno z .{1,60}|.{1,40}から送信|发自我的.{1,40}|從我的.{1,40}傳送"
    r"|.{1,40}에서 보냄|.{1,40}(?:dan|den|tan|ten) gönderildi"
    r"|(?:télécharger|obtenir) outlook pour \w+.*|outlook für \w+ herunterladen.*"
    r"|(?:descargar|obtener) outlook para \w+.*|(?:scarica|ottieni) outlook per \w+.*"
    r"|(?:baixe|obter) o outlook para \w+.*|outlook voor \w+ (?:downloaden|ophalen).*"
    r")$",
    re.I,
)
# A device line written by the client, not a sentence: it names the device or app, or
# says "my" in one of the languages above. What follows it was not typed (issue 11).
_DEVICE_CLIENT_RE = re.compile(
    r"\b(?:my|mon|ma|mi|mio|mia|meinem|mijn|min|mitt|meu|minha|mojego|iphone|ipad|android|samsung|"
    r"galaxy|blackberry|outlook|mobile|phone|smartphone|tablet|handy)\b|から送信|发自我的|從我的|에서 보냄|gönderildi",
    re.I,
)
_DELIMITER_RE = re.compile(r"^(?:--|---|—|__|[-_=]{5,}|\*\s\*\s\*)$")
# The signature separators clients write ("-- " per RFC 3676, and its dash variants).
_SIG_DASHES_RE = re.compile(r"^(?:--|---|—)$")
_DASH_NAME_RE = re.compile(r"^\s*--?\s?[A-Za-z][\w.'’]*(?:\s[A-Za-z][\w.'’]*){0,2}\.?\s*$")
_CONTACT_RE = re.compile(
    r"(?:https?://|www\.|[\w.+-]+@[\w-]+\.[\w.-]+|\+?\(?\d[\d\s().-]{6,}\d|\b(?:tel|phone|fax|mobile|cell)\b)",
    re.I,
)
_NAME_LINE_RE = re.compile(r"^\s*(?:[A-Z][\w.'’-]*,?\s?){1,4}\s*$")
_SIG_MAX_LINES = 14
_SIG_LINE_CHARS = 60


def _sender_tokens(sender: str | None) -> tuple[str, ...]:
    if not sender:
        return ()
    tokens: set[str] = set()
    name, _, address = sender.partition("<")
    for piece in (name, address):
        piece = piece.strip(" >\"'")
        if "@" in piece:
            local = piece.split("@", 1)[0].lower()
            tokens.add(local)
            tokens.update(t for t in re.split(r"[._+-]", local) if len(t) > 1)
        elif piece:
            tokens.add(" ".join(piece.lower().split()))
            tokens.update(t for t in piece.lower().split() if len(t) > 1)
    return tuple(sorted(tokens))


def _strip_signature(lines: list[str], sender: tuple[str, ...]) -> tuple[list[str], list[str]]:
    kept = list(lines)
    removed: list[str] = []
    for _ in range(4):
        start = _signature_start(kept, sender, allow_first=False, sign_off_ends=False)
        if start is None:
            break
        removed = kept[start:] + removed
        kept = kept[:start]
    words = [line.strip() for line in kept if line.strip()]
    if words and all(_DELIMITER_RE.match(line) or _DEVICE_RE.match(line) for line in words):
        return [], kept + removed  # nothing but client boilerplate ("-- ", "Sent from my iPhone")
    return kept, removed


def _is_signature_only(lines: list[str]) -> bool:
    """True when a text run is nothing but a signature or list footer (not an answer)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    start = _signature_start(lines, (), allow_first=True, sign_off_ends=True)
    return first is not None and start is not None and start <= first


def _signature_start(
    lines: list[str], sender: tuple[str, ...], allow_first: bool, sign_off_ends: bool
) -> int | None:
    """Index where a trailing signature starts, or None.

    ``sign_off_ends``: a closing such as "Thanks, Liam" counts as the end of a run
    (used to tell a closing between quotes from an inline answer); when trimming a
    reply it stays with the message, only what follows it may go.
    """
    nonempty = [i for i, line in enumerate(lines) if line.strip()]
    if not nonempty:
        return None
    first = nonempty[0]
    window = [i for i in nonempty if i >= first + (0 if allow_first else 1)][-_SIG_MAX_LINES:]
    for i in window:
        after = [lines[j] for j in nonempty if j > i]
        if _signature_from(lines, i, after, sender, sign_off_ends):
            return i
    return None


def _signature_from(lines: list[str], i: int, after: list[str], sender: tuple[str, ...], sign_off_ends: bool) -> bool:
    """Whether lines[i:] is a signature: a `-- ` block, device lines, or a name with contact details.

    A short closing ("Thanks!", "Cheers, Liam", a bare first name) is part of what the
    person wrote and stays; only a name followed by contact details goes.
    """
    line = lines[i].strip()
    if _DELIMITER_RE.match(line):
        if _SIG_DASHES_RE.match(line):
            return len(after) <= 12
        # A longer rule divides a message as often as it opens a signature (a divider
        # between two parts of a reply, a table's rule): only contact details make it one.
        return (
            len(after) <= 12
            and all(_short(a) or _CONTACT_RE.search(a) for a in after)
            and any(_CONTACT_RE.search(a) for a in after)
        )
    if _DEVICE_RE.match(line) and "," not in line and len(line.split()) <= 12:
        return all(_DEVICE_RE.match(a.strip()) or _short(a) for a in after) and len(after) <= 2
    if _SIGN_OFF_RE.match(line):
        return sign_off_ends and len(after) <= 6 and all(_short(a) for a in after)
    if _DASH_NAME_RE.match(line) and not _in_list(lines, i):
        return len(after) <= 6 and all(_short(a) or _CONTACT_RE.search(a) for a in after)
    previous = lines[i - 1].strip() if i else ""
    starts_block = not previous or bool(_SIGN_OFF_RE.match(previous))
    if sender and line.rstrip(",.!").lower() in sender and after:
        return _contact_block(after)
    if _NAME_LINE_RE.match(line) and starts_block and 1 <= len(after) <= 7:
        paragraph_end = all(lines[j].strip() for j in range(i, i + len(after) + 1) if j < len(lines))
        return paragraph_end and _contact_block(after)
    return False


def _contact_block(after: list[str]) -> bool:
    """Lines after a name that make it a signature: short, with contact details among them."""
    return (
        len(after) <= 7
        and all(_short(a) or _CONTACT_RE.search(a) for a in after)
        and any(_CONTACT_RE.search(a) for a in after)
    )


def _short(line: str) -> bool:
    return len(line.strip()) <= _SIG_LINE_CHARS or bool(re.fullmatch(r"\S+", line.strip()))


def _in_list(lines: list[str], i: int) -> bool:
    """'- item' lines next to each other are a list, not a '-Name' signature."""
    def neighbour(step: int) -> str:
        j = i + step
        while 0 <= j < len(lines):
            if lines[j].strip():
                return lines[j].strip()
            j += step
        return ""

    return any(n.startswith(("-", "*", "•")) for n in (neighbour(-1), neighbour(1)))
