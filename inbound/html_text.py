"""HTML bodies as lxml trees and as readable plain text, in linear time and bounded depth.

Why lxml: libxml2 parses in C in one pass (Python's ``html.parser`` rescans an unclosed
attribute from its start on every feed step, so 270 KB of ``<a href='`` took 30 s) and
stops nesting at 256 levels, so nothing below can hit Python's recursion limit. Every
walk here is iterative anyway (``iterwalk``), and the number of elements a body may
have is capped: past the cap the rest of the document is dropped (it stays in the raw
email) and the result says it was truncated.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

logger = logging.getLogger(__name__)

# A reply's HTML has a few hundred elements; a long quoted thread a few thousand. Past
# this many the document is cut (walking costs ~1 µs per element per pass).
MAX_ELEMENTS = 50_000
# The renderer stops after this many characters of text (the visible text is capped far
# lower, in reply_text; this bounds the line-by-line work that follows).
MAX_RENDERED_CHARS = 1_000_000

SKIP_TEXT = ("script", "style", "head", "title", "template", "noscript", "object", "iframe")
_BLOCKS = frozenset(
    "address article aside blockquote center dd details dialog div dl dt fieldset figcaption figure footer "
    "form header hgroup li main nav ol section summary table tbody thead tfoot tr ul".split()
)
_PARAGRAPHS = frozenset("p h1 h2 h3 h4 h5 h6 pre hr ul ol dl table".split())
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACE_RE = re.compile(r"[ \t\n\r\f\v]+")


def _parser() -> lxml_html.HTMLParser:
    """A parser per call: lxml parsers must not be shared between the worker's threads."""
    return lxml_html.HTMLParser(
        recover=True, no_network=True, remove_comments=True, remove_pis=True, default_doctype=False, encoding="utf-8"
    )


@dataclass
class HtmlDocument:
    root: etree._Element
    truncated: bool  # elements past MAX_ELEMENTS were dropped


def parse_html(html: str) -> HtmlDocument:
    """An lxml tree of an HTML body, scripts and styles removed; never raises."""
    # Control characters: invisible in a page, and lxml refuses them when a cut moves text.
    data = _CONTROL_RE.sub("", html).encode("utf-8", "replace")
    parser = _parser()
    try:
        root = lxml_html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError):  # nothing parseable ("", only a comment)
        root = None
    if root is None:
        root = lxml_html.Element("html")
    # libxml2 stops reading at 256 levels of nesting: what came after is not in the tree.
    too_deep = any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log)
    for element in list(root.iter(*SKIP_TEXT)):
        _drop(element)
    truncated = _cap_elements(root)
    return HtmlDocument(root, truncated or too_deep)


def _cap_elements(root: etree._Element) -> bool:
    """Drop everything after the MAX_ELEMENTS-th element; True when something went."""
    for count, element in enumerate(root.iter(), 1):
        if count > MAX_ELEMENTS:
            cut_from(element)
            return True
    return False


def _drop(element: etree._Element) -> None:
    """Remove an element and its content, keeping the text that follows it."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


def remove(element: etree._Element) -> None:
    """Take an element out of its tree (its following text stays); it stays usable on its own."""
    _drop(element)
    element.tail = None  # it stayed in the tree, where it was


def cut_from(node: etree._Element) -> etree._Element:
    """Remove node and everything after it in document order; return a div holding it all."""
    holder = lxml_html.Element("div")
    current = node
    first = True
    while True:
        parent = current.getparent()
        if parent is None:
            break
        if not first and current.tail:
            _append_text(holder, current.tail)
            current.tail = None
        following = list(current.itersiblings())
        if first:
            holder.append(current)  # moves it, with its tail
        for sibling in following:
            holder.append(sibling)
        first = False
        current = parent
    return holder


def _append_text(holder: etree._Element, text: str) -> None:
    if len(holder):
        last = holder[-1]
        last.tail = (last.tail or "") + text
    else:
        holder.text = (holder.text or "") + text


# What "show original formatting" keeps of an email's HTML (the raw email has it all).
MAX_STORED_HTML = 1_000_000


def bounded_html(html: str, limit: int = MAX_STORED_HTML) -> str:
    """The HTML as lxml re-writes it: well-formed, at most 256 levels deep and
    MAX_ELEMENTS elements, cut below ``limit`` characters. Not sanitised: that happens
    when it is shown (portal.sanitize), as for every HTML the portal displays."""
    document = parse_html(html[: limit * 4])
    body = document.root.find("body")
    holder = body if body is not None else document.root
    out = "".join(
        [holder.text or ""] + [etree.tostring(child, encoding="unicode", method="html") for child in holder]
    )
    if len(out) > limit:
        out = out[: out.rfind("<", 0, limit)] if "<" in out[:limit] else out[:limit]
    return out


class TextIndex:
    """The text of a tree laid out once, so an element's leading text is a slice (O(1)).

    Block elements and ``<br>`` start a new line. Built in one pass; stale after the
    tree changes (build a new one).
    """

    def __init__(self, root: etree._Element) -> None:
        parts: list[str] = []
        position = 0
        self._start: dict[etree._Element, int] = {}
        self._end: dict[etree._Element, int] = {}
        for event, element in etree.iterwalk(root, events=("start", "end")):
            if event == "start":
                if element.tag in _BLOCKS or element.tag in _PARAGRAPHS or element.tag == "br":
                    parts.append("\n")
                    position += 1
                self._start[element] = position
                if element.text:
                    parts.append(element.text)
                    position += len(element.text)
            else:
                self._end[element] = position
                if element is not root and element.tail:
                    parts.append(element.tail)
                    position += len(element.tail)
        self.text = "".join(parts)

    def head(self, element: etree._Element, limit: int = 300) -> str:
        """The first ``limit`` characters of an element's text."""
        start = self._start.get(element)
        if start is None:
            return ""
        return self.text[start : min(self._end[element], start + limit)]

    def from_here(self, element: etree._Element, limit: int = 600) -> str:
        """Text of element and of the siblings after it, up to the parent's end."""
        start = self._start.get(element)
        parent = element.getparent()
        if start is None:
            return ""
        end = self._end.get(parent, len(self.text)) if parent is not None else self._end[element]
        return self.text[start : min(end, start + limit)]

    def before(self, element: etree._Element) -> str:
        """All text before an element in document order."""
        return self.text[: self._start.get(element, 0)]


def render(root: etree._Element, limit: int = MAX_RENDERED_CHARS) -> tuple[str, bool]:
    """Readable plain text of a tree: one line per block, blank lines around paragraphs,
    ``- `` list items, links as ``text (url)`` when the text is not the address.

    Returns the text and whether it stopped at ``limit`` characters.
    """
    out = _Writer(limit)
    links: list[tuple[int, str]] = []
    lists: list[str] = []
    pre = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag == "br":
                out.line_break(force=True)
            elif tag in ("ul", "ol"):
                lists.append(tag)
                out.paragraph() if len(lists) == 1 else out.line_break()
            elif tag == "li":
                out.line_break()
                out.prefix = "  " * max(len(lists), 1) + ("1. " if lists and lists[-1] == "ol" else "- ")
            elif tag == "hr":
                out.paragraph()
                out.write("* * *", raw=True)
                out.paragraph()
            elif tag in _PARAGRAPHS and not _is_word_line(element):
                out.paragraph()
            elif tag in _BLOCKS or tag == "p":
                out.line_break()
                if tag == "p" and not "".join(element.itertext()).replace("\xa0", " ").strip():
                    out.line_break(force=True)  # Word's empty line: <p class=MsoNormal>&nbsp;</p>
            elif tag in ("td", "th"):
                out.write(" ")
            if tag == "pre":
                pre += 1
            if tag == "a":
                links.append((out.size, (element.get("href") or "").strip()))
            if element.text:
                out.write(element.text, raw=pre > 0)
        else:
            if tag == "a" and links:
                started, href = links.pop()
                label = " ".join(out.since(started).split())
                if label and re.match(r"https?://", href, re.I) and _link_worth_showing(label, href):
                    out.write(" (%s)" % href, raw=True)
            if tag in ("ul", "ol") and lists:
                lists.pop()
                out.paragraph() if not lists else out.line_break()
            elif tag in _PARAGRAPHS and not _is_word_line(element):
                out.paragraph()
            elif tag in _BLOCKS or tag in ("tr", "p"):
                out.line_break()
            if tag == "pre":
                pre -= 1
            if element is not root and element.tail:
                out.write(element.tail, raw=pre > 0)
        if out.full:
            break
    return out.text(), out.full


def _is_word_line(element: etree._Element) -> bool:
    """Word and Outlook write every line as ``<p class=MsoNormal>`` (no margin): a line,
    not a paragraph; an empty line is a ``<p class=MsoNormal>&nbsp;</p>`` of its own."""
    return element.tag == "p" and "msonormal" in (element.get("class") or "").lower()


def _link_worth_showing(label: str, href: str) -> bool:
    def bare(value: str) -> str:
        return re.sub(r"^(https?://)?(www\.)?", "", value.strip().lower()).rstrip("/")

    return bare(label) != bare(href)


class _Writer:
    """Plain text output with HTML whitespace rules: runs of spaces collapse, breaks are
    requested (one line or a paragraph) and written only before the next text."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.breaks = 0  # newlines owed before the next text
        self.at_line_start = True
        self.prefix = ""

    @property
    def full(self) -> bool:
        return self.size >= self.limit

    def line_break(self, force: bool = False) -> None:
        """End the current line; ``force`` (a ``<br>``) ends it even when it is empty."""
        if force:
            self._emit("\n" * self.breaks + "\n")
            self.breaks = 0
            self.at_line_start = True
        elif self.size and not self.at_line_start:
            self.breaks = max(self.breaks, 1)

    def paragraph(self) -> None:
        if self.size:
            self.breaks = 2

    def write(self, text: str, raw: bool = False) -> None:
        if not raw:
            text = _SPACE_RE.sub(" ", text.replace("\xa0", " "))
            if self.at_line_start or self.breaks:
                text = text.lstrip(" ")
            elif text.startswith(" ") and self.parts and self.parts[-1].endswith(" "):
                text = text[1:]
        if not text:
            return
        if self.breaks:
            self._emit("\n" * self.breaks)
            self.breaks = 0
        if self.prefix:
            self._emit(self.prefix)
            self.prefix = ""
        self._emit(text)
        self.at_line_start = text.endswith("\n")

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def since(self, size: int) -> str:
        """What was written after the first ``size`` characters (for a link's label)."""
        total, picked = self.size, []
        for part in reversed(self.parts):
            if total <= size:
                break
            picked.append(part)
            total -= len(part)
        joined = "".join(reversed(picked))
        return joined[size - total:] if total < size else joined

    def text(self) -> str:
        lines = "".join(self.parts)[: self.limit].split("\n")
        return "\n".join(line.rstrip() for line in lines).strip("\n")
