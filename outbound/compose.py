"""From stored rows to what `render` needs: names, local times, images, links, headers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from email.utils import formataddr
from datetime import datetime

from pawpost.settings import Settings
from outbound import ids
from outbound.links import attachment_url, thread_url
from outbound.render import Envelope, FileLink, InlineImage, ShownMessage, family_phrase, local_time, thread_subject  # noqa: F401
from threads.addresses import reply_address
from threads.limits import cap_text
from threads.models import Business, Family, Message, Thread

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# One message's text in an email; the rest stays in the conversation. (Messages posted
# since `threads.limits.MAX_VISIBLE_TEXT` are shorter; older ones may be megabytes.)
MAX_EMAIL_MESSAGE_CHARS = 20_000
CUT_NOTE = "[…] This message is too long for an email: the team has the rest of it."


class AttachmentBudget:
    """How many bytes of images one email may still carry (`attachment_email_cap_bytes`)."""

    def __init__(self, cap: int) -> None:
        self.left = cap

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


def email_body(body: str) -> str:
    """A message's text as an email carries it: at most MAX_EMAIL_MESSAGE_CHARS, then a note."""
    shown, cut = cap_text(body, MAX_EMAIL_MESSAGE_CHARS)
    return f"{shown}\n\n{CUT_NOTE}" if cut else body


def shown_message(
    settings: Settings, message: Message, timezone: str, budget: AttachmentBudget, body: str | None = None
) -> ShownMessage:
    """One message as an email shows it: staff images attached while they fit, the rest linked.

    `body`, when given, is the message's text as already read (digests read at most
    MAX_EMAIL_MESSAGE_CHARS + 1 characters of each, never a whole huge body).
    """
    images: list[InlineImage] = []
    links: list[FileLink] = []
    for attachment in message.attachments:
        is_image = attachment.content_type.split(";", 1)[0].strip().lower() in IMAGE_TYPES
        if message.author_type in ("staff", "business") and is_image and budget.take(attachment.size):
            images.append(
                InlineImage(
                    filename=attachment.filename or "photo",
                    content_type=attachment.content_type.split(";", 1)[0].strip().lower(),
                    content=attachment.content,
                    content_id=f"att{attachment.id}.{attachment.sha256[:12]}@{settings.mail_domain}",
                    url=attachment_url(settings, attachment.id),
                )
            )
        else:
            links.append(
                FileLink(filename=attachment.filename or "file", size=attachment.size, url=attachment_url(settings, attachment.id))
            )
    return ShownMessage(
        author_name=message.author_name,
        when=local_time(message.created_at, timezone),
        body=email_body(message.body if body is None else body),
        images=tuple(images),
        links=tuple(links),
        by_parent=message.author_type == "contact",
    )


def shown_messages(
    settings: Settings, messages: Sequence[Message], business: Business, bodies: Mapping[int, str] | None = None
) -> tuple[ShownMessage, ...]:
    budget = AttachmentBudget(settings.attachment_email_cap_bytes)
    return tuple(
        shown_message(settings, m, business.timezone, budget, None if bodies is None else bodies.get(m.id, ""))
        for m in messages
    )


def pet_names(family: Family) -> str:
    names = [pet.name for pet in family.pets]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def subject_for(thread: Thread) -> str:
    family = thread.family
    return thread_subject(thread.business.name, family.name, pet_names(family))


def envelope(
    settings: Settings,
    thread: Thread,
    *,
    from_name: str,
    to_name: str,
    to_address: str,
    message_id: str,
    now: datetime,
) -> Envelope:
    subject = subject_for(thread)
    return Envelope(
        from_name=from_name,
        from_address=settings.notifications_address,
        to_name=to_name,
        to_address=to_address,
        reply_to=reply_address(thread, settings.reply_domain),
        message_id=message_id,
        root_message_id=thread.root_message_id,
        subject=subject,
        thread_index=ids.thread_index(thread.root_message_id, thread.created_at, now),
        date=now,
    )


def list_id(business: Business, reply_domain: str) -> str:
    """RFC 2919 List-Id of a business's parent emails: `Name <slug.reply-domain>`, so mail
    clients and filters tell one business's emails from another's on a shared deployment."""
    slug = re.sub(r"[^a-z0-9-]+", "-", business.slug.lower()).strip("-") or f"business-{business.id}"
    name = re.sub(r"[\x00-\x1f\x7f]+", " ", business.name).strip()
    return formataddr((name, f"{slug}.{reply_domain}"))


def team_sender_name(business: Business, messages: Sequence[Message]) -> str:
    """`"<staff name> at <business>"` for the newest staff author; `"<parent> via <business>"`
    when a co-parent wrote everything shown; else the business's own name."""
    for message in reversed(messages):
        if message.staff is not None:
            return f"{message.staff.name} at {business.sender_name}"
    parents = {m.contact.name for m in messages if m.contact is not None}
    if len(parents) == 1:
        return f"{parents.pop()} via {business.sender_name}"
    return business.sender_name



def thread_link(settings: Settings, thread_id: int) -> str:
    return thread_url(settings, thread_id)


def local_time_range(start: datetime, end: datetime, timezone: str) -> str:
    """An appointment as staff read it: "Tue 3 Jun, 9:00 AM – 10:00 AM" (both days when it spans days)."""
    first, last = local_time(start, timezone), local_time(end, timezone)
    same_day = first.split(",", 1)[0] == last.split(",", 1)[0]
    return f"{first} – {last.split(', ', 1)[1]}" if same_day else f"{first} – {last}"
