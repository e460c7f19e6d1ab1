"""The stored shape of Pawpost: businesses, their people, threads and every email.

Every row belongs to exactly one business (directly or through its family), so every
query can be scoped by `business_id`. Message ids grow monotonically, which is what the
read and notified cursors rely on: "newer" means a larger id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from threads.types import UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("basic", "senior", "admin")
# `business`: posted as the business itself (by its own software, over the API), under the
# business's name; parents see it like a team member's message.
AUTHOR_TYPES = ("staff", "contact", "system", "business")
SOURCES = ("portal", "email", "system", "web", "api")
PERSON_KINDS = ("staff", "contact")
APPOINTMENT_STATUSES = ("scheduled", "completed", "cancelled")
INBOUND_OUTCOMES = (
    "received",
    "posted",
    "quarantined",
    "auto_reply",
    "bounce",
    "duplicate",
    "loop",
    "rejected",
    "failed",
    "released",
    "discarded",
)
OUTBOX_STATES = ("queued", "sent", "failed", "bounced")
OUTBOX_KINDS = ("digest", "alert", "escalation", "invite", "password_reset", "webhook_disabled")
STAFF_TOKEN_PURPOSES = ("invite", "password_reset")
EMAIL_CHOICES = ("each", "daily", "paused")

PersonKind = Literal["staff", "contact"]


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True)
class Person:
    """Who a cursor belongs to: a staff member or a contact, by id."""

    kind: PersonKind
    id: int


class Business(Base):
    __tablename__ = "businesses"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    sender_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Admins must sign in with a second factor (TOTP) before they can use the portal.
    require_admin_two_factor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The business's own delays; None follows the deployment's PAWPOST_NOTIFY_DELAY_SECONDS
    # and PAWPOST_ESCALATE_AFTER_MINUTES.
    notify_delay_seconds: Mapped[int | None] = mapped_column(Integer)
    escalate_after_minutes: Mapped[int | None] = mapped_column(Integer)

    def notify_delay(self, default_seconds: int) -> timedelta:
        """How long a team message waits before a parent's digest, for this business."""
        return timedelta(seconds=self.notify_delay_seconds if self.notify_delay_seconds is not None else default_seconds)

    def escalation_delay(self, default_minutes: int) -> timedelta:
        """How long a parent message may sit unread by every staff member, for this business."""
        return timedelta(minutes=self.escalate_after_minutes if self.escalate_after_minutes is not None else default_minutes)


class Staff(Base):
    __tablename__ = "staff"
    __table_args__ = (
        UniqueConstraint("business_id", "email"),
        UniqueConstraint("business_id", "external_id"),
        CheckConstraint(_in("role", ROLES), name="role"),
        Index("ix_staff_email", "email"),
        Index("ix_staff_business_id_updated_at", "business_id", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    # Stored lowercased: unique per business without regard to case.
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The API's `updated_since`: stamped on every change (threads.directory_changes).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Two-factor sign-in: the TOTP secret (base32), when it was turned on, and the newest
    # time step a code was accepted for (a code works once).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    business: Mapped[Business] = relationship()

    @property
    def person(self) -> Person:
        return Person("staff", self.id)

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None and bool(self.totp_secret)

    @property
    def is_senior(self) -> bool:
        """Senior and admin see every thread of their business (admin ⊇ senior)."""
        return self.role in ("senior", "admin")


class Family(Base):
    __tablename__ = "families"
    __table_args__ = (
        UniqueConstraint("business_id", "external_id"),
        Index("ix_families_business_id_updated_at", "business_id", "updated_at", "id"),
        # The Families page: by name, a keyset page at a time (0016e).
        Index("ix_families_business_id_name_id", "business_id", "name", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Stamped on every change to the family, its contacts, addresses or pets
    # (threads.directory_changes): the API's `updated_since`.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    business: Mapped[Business] = relationship()
    # Removed contacts stay (their messages keep their author) but leave the family.
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="family",
        primaryjoin="and_(Family.id == Contact.family_id, Contact.removed_at.is_(None))",
        order_by="(Contact.is_primary.desc(), Contact.id)",
    )
    pets: Mapped[list[Pet]] = relationship(back_populates="family", order_by="Pet.id")
    thread: Mapped[Thread | None] = relationship(back_populates="family", uselist=False)

    @property
    def primary_contact(self) -> Contact | None:
        return next((c for c in self.contacts if c.is_primary), None)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("family_id", "external_id"),
        CheckConstraint(_in("email_choice", EMAIL_CHOICES), name="email_choice"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(String(50))
    # Rule 7: how often this contact is emailed (threads.email_choice).
    email_choice: Mapped[str] = mapped_column(String(16), default="each", server_default="each")
    summary_minute: Mapped[int | None] = mapped_column(Integer)  # daily: minutes after local midnight
    summary_sent_on: Mapped[str | None] = mapped_column(String(10))  # ISO date in the business's zone
    email_choice_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the directory removed them (threads.families.remove_contact): no address, no
    # link, not in the family's contacts; the row stays so their messages keep their name.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    family: Mapped[Family] = relationship(back_populates="contacts")
    addresses: Mapped[list[ContactAddress]] = relationship(
        back_populates="contact", order_by="ContactAddress.id", cascade="all, delete-orphan"
    )

    @property
    def person(self) -> Person:
        return Person("contact", self.id)

    @property
    def email(self) -> str | None:
        """The first address: what the directory shows as this contact's email."""
        return self.addresses[0].email if self.addresses else None


class ContactAddress(Base):
    """One email address of a contact; a contact may write from several (aliases)."""

    __tablename__ = "contact_addresses"
    __table_args__ = (UniqueConstraint("contact_id", "email"), Index("ix_contact_addresses_email", "email"))

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    # Stored lowercased: routing compares addresses without regard to case.
    email: Mapped[str] = mapped_column(String(320))
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    bouncing: Mapped[bool] = mapped_column(Boolean, default=False)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    bounce_reason: Mapped[str | None] = mapped_column(String(500))

    contact: Mapped[Contact] = relationship(back_populates="addresses")


class Pet(Base):
    __tablename__ = "pets"
    __table_args__ = (UniqueConstraint("family_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    species: Mapped[str | None] = mapped_column(String(50))
    breed: Mapped[str | None] = mapped_column(String(100))

    family: Mapped[Family] = relationship(back_populates="pets")


class SearchTerm(Base):
    """One normalised word of a family's, contact's or pet's name, for prefix search.

    Words are lowercased and stripped of accents when written, so the same B-tree index
    answers "bel" → Bella on SQLite and PostgreSQL without database extensions.
    """

    __tablename__ = "search_terms"
    __table_args__ = (
        Index(
            "ix_search_terms_business_id_term",
            "business_id",
            "term",
            postgresql_ops={"term": "text_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    term: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))


appointment_staff = Table(
    "appointment_staff",
    Base.metadata,
    Column("appointment_id", ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True),
    Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        UniqueConstraint("business_id", "external_id"),
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_appointments_family_id_starts_at", "family_id", "starts_at"),
        Index("ix_appointments_business_id_updated_at", "business_id", "updated_at", "id"),
        # The Schedule: what ends after a week's first day (0016e).
        Index("ix_appointments_business_id_ends_at", "business_id", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(100))
    service: Mapped[str] = mapped_column(String(100), default="visit")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Stamped on every change, cancellation included (threads.directory_changes).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    family: Mapped[Family] = relationship()
    staff: Mapped[list[Staff]] = relationship(secondary=appointment_staff, order_by="Staff.id")


class Thread(Base):
    """The one conversation of a family with the whole team."""

    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_business_id_last_message_at", "business_id", "last_message_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), unique=True)
    reply_token: Mapped[str] = mapped_column(String(64), unique=True)
    # The Message-ID every email about this thread refers to, so clients group them.
    root_message_id: Mapped[str] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_message_id: Mapped[int | None] = mapped_column(Integer)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The last reply-address rotation: Message-IDs of emails from before it (sent or
    # received) no longer route a tokenless reply here (`inbound.route.thread_for_references`).
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    family: Mapped[Family] = relationship(back_populates="thread")
    business: Mapped[Business] = relationship()


class RetiredReplyToken(Base):
    """A token rotated away: answering it is refused (`550 5.1.1`), not misrouted."""

    __tablename__ = "retired_reply_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AutoReplyNote(Base):
    """The one system note per auto-replying sender, thread and business day.

    The primary key is the rule: concurrent workers handling auto-replies from the same
    sender race to insert it, and only the one that did posts the note.
    """

    __tablename__ = "auto_reply_notes"

    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    sender: Mapped[str] = mapped_column(String(320), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date in the business's zone
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("thread_id", "email_message_id"),
        CheckConstraint(_in("author_type", AUTHOR_TYPES), name="author_type"),
        CheckConstraint(_in("source", SOURCES), name="source"),
        Index("ix_messages_thread_id_id", "thread_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    author_type: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    # What the email parser removed (quotes, signature), kept so staff can expand it.
    trimmed: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    email_message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set once the escalation to senior staff was sent for this (contact) message.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set once the staff alerts for this (contact) message were decided, so the outbound
    # sweep re-derives only the alerts a lost queue push never decided.
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The body was cut at `threads.limits.MAX_VISIBLE_TEXT`; the whole email stays stored
    # with the inbound email this message came from ("show the full email").
    truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An internal note (rule 8): staff-only. Parents never see it — no digest, no parent
    # page, no parent unread count; `threads.posting.visible_to_parents` is the one filter.
    internal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    thread: Mapped[Thread] = relationship()
    staff: Mapped[Staff | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", order_by="Attachment.id", cascade="all, delete-orphan"
    )

    @property
    def author_name(self) -> str:
        if self.author_type == "business":
            return self.thread.business.name
        if self.staff is not None:
            return self.staff.name
        if self.contact is not None:
            return self.contact.name
        return "Pawpost"

    @property
    def author_person(self) -> Person | None:
        if self.staff_id is not None:
            return Person("staff", self.staff_id)
        if self.contact_id is not None:
            return Person("contact", self.contact_id)
        return None


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    message: Mapped[Message] = relationship(back_populates="attachments")


class ParentLink(Base):
    """A contact's parent link key: every link signed for them names this secret.

    Signed links cannot be taken back one by one; a new secret (or the row's removal with
    its contact) takes back every link made under the old one. `last_used_at` keeps a link
    alive while it is used: it expires 30 days after the later of its signing and its last use.
    """

    __tablename__ = "parent_links"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class _Cursor:
    """Shared columns of the read and notified cursors: (thread, person) → message id."""

    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    person_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    person_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ReadCursor(_Cursor, Base):
    """The newest message a person has read in a thread."""

    __tablename__ = "read_cursors"
    __table_args__ = (
        CheckConstraint(_in("person_kind", PERSON_KINDS), name="person_kind"),
        # A person's cursors in thread order with their position: the tab dot reads them
        # index-only (see threads.reading.has_unread).
        Index("ix_read_cursors_person_thread", "person_kind", "person_id", "thread_id", "message_id"),
    )


class NotifiedCursor(_Cursor, Base):
    """The newest message a person was emailed about in a thread."""

    __tablename__ = "notified_cursors"
    __table_args__ = (CheckConstraint(_in("person_kind", PERSON_KINDS), name="person_kind"),)


class InboundEmail(Base):
    """Every email the SMTP server accepted, raw, with what became of it."""

    __tablename__ = "inbound_emails"
    __table_args__ = (
        CheckConstraint(_in("outcome", INBOUND_OUTCOMES), name="outcome"),
        Index("ix_inbound_emails_business_id_outcome", "business_id", "outcome"),
        Index("ix_inbound_emails_message_id_header", "message_id_header"),
        # The rate limit counts a thread's and a sender's emails of the last minute.
        Index("ix_inbound_emails_thread_id_received_at", "thread_id", "received_at"),
        Index("ix_inbound_emails_sender_received_at", "sender", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int | None] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    envelope_to: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(1000))
    message_id_header: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    outcome: Mapped[str] = mapped_column(String(16), default="received")
    reason: Mapped[str | None] = mapped_column(String(1000))
    posted_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    processing_ms: Mapped[int | None] = mapped_column(Integer)
    # A worker that starts on a `received` email holds it until then (a lease far longer
    # than processing takes); the repair step leaves a held email alone.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    thread: Mapped[Thread | None] = relationship()


class OutboundEmail(Base):
    """The outbox: every email Pawpost sends, with its state."""

    __tablename__ = "outbound_emails"
    __table_args__ = (
        CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        Index("ix_outbound_emails_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_outbound_emails_thread_id", "thread_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    # What makes this email unique (e.g. "alert:<message>:<staff>"), so a retry never doubles it.
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[int] = mapped_column(Integer)
    recipient_email: Mapped[str] = mapped_column(String(320))
    message_id_header: Mapped[str] = mapped_column(String(255), unique=True)
    subject: Mapped[str] = mapped_column(String(1000))
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # The newest thread message this email carries (digests: everything up to it).
    up_to_message_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


outbound_email_messages = Table(
    "outbound_email_messages",
    Base.metadata,
    Column("outbound_email_id", ForeignKey("outbound_emails.id", ondelete="CASCADE"), primary_key=True),
    Column("message_id", ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class SignInFailure(Base):
    """A failed portal sign-in, kept briefly to rate-limit guessing across processes."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_email_at", "email", "at"),
        # The per-client limit counts one client's failures across every account.
        Index("ix_sign_in_failures_remote_addr_at", "remote_addr", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StaffSession(Base):
    """One signed-in browser of a staff member: the cookie names it, the server can end it.

    The cookie carries a random token; only its SHA-256 is stored, so reading this table
    gives nobody a live session.
    """

    __tablename__ = "staff_sessions"
    __table_args__ = (Index("ix_staff_sessions_staff_id_ended_at", "staff_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    staff: Mapped[Staff] = relationship()


class StaffToken(Base):
    """A single-use link sent to a staff member: an invitation or a password reset.

    Only the SHA-256 of the token is stored; `used_at` makes it single-use and is also set
    when a newer link of the same purpose replaces it.
    """

    __tablename__ = "staff_tokens"
    __table_args__ = (
        CheckConstraint(_in("purpose", STAFF_TOKEN_PURPOSES), name="purpose"),
        Index("ix_staff_tokens_staff_id_purpose", "staff_id", "purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    staff: Mapped[Staff] = relationship()


class RateLimitHit(Base):
    """One counted attempt in a named bucket (e.g. password resets asked for one address),
    kept briefly, so a limit holds across processes."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (
        Index("ix_rate_limit_hits_bucket_at", "bucket", "at"),
        Index("ix_rate_limit_hits_at", "at"),  # the expiry delete (0016e)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecoveryCode(Base):
    """One single-use recovery code for two-factor sign-in (only its SHA-256 is kept)."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """One change to the directory, accounts or settings: who, what, when, before and after."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_business_id_id", "business_id", "id"),
        # The filters, newest first (0016e).
        Index("ix_audit_entries_family_id_id", "family_id", "id"),
        Index("ix_audit_entries_actor_id_id", "actor_id", "id"),
        Index("ix_audit_entries_staff_id_id", "staff_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    # Who changed it (None: an operator at the command line); the name is kept as it was.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500))
    # What it was about: a family and/or a staff member, for filtering.
    family_id: Mapped[int | None] = mapped_column(ForeignKey("families.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SavedReply(Base):
    """A business's canned answer, with placeholders filled for the family when used."""

    __tablename__ = "saved_replies"
    __table_args__ = (UniqueConstraint("business_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    updated_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Announcement(Base):
    """One message a senior sends to many families: posted into each family's own thread.

    Its delivery rows are written with it, in one transaction; a worker posts them one by
    one, each post and its delivery mark committing together (resumable, never doubled).
    """

    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_business_id_id", "business_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(200))  # how it was picked, for the list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AnnouncementDelivery(Base):
    """One family an announcement goes to; `message_id` once it is posted in their thread."""

    __tablename__ = "announcement_deliveries"

    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcements.id", ondelete="CASCADE"), primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))


API_SCOPES = ("directory:read", "directory:write", "messages:read", "messages:write", "webhooks:manage")


class ApiKey(Base):
    """A business's key for the REST API: only its SHA-256 is stored, its prefix is shown.

    `scopes` holds the granted scopes separated by spaces; a revoked key stays listed (who
    had access, and until when) but never authenticates again.
    """

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_business_id", "business_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class IdempotentRequest(Base):
    """One `Idempotency-Key` a key has used: the request's fingerprint and, once it ended, the
    answer to replay. The unique (api_key_id, key) pair makes concurrent retries act once:
    the second insert waits for or fails against the first."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("api_key_id", "key"), Index("ix_idempotent_requests_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # None while the first request is still running.
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


WEBHOOK_EVENTS = ("message.created", "email.quarantined", "email.bounced", "appointment.changed", "webhook.test")
DELIVERY_STATES = ("pending", "succeeded", "failed")


class WebhookEndpoint(Base):
    """Where a business wants to hear about events: a URL, the events, and the signing secret.

    The secret must be kept to sign (HMAC) each delivery, so it cannot be hashed: it is kept
    sealed (threads/sealing.py) under a key derived from PAWPOST_SECRET_KEY, which is not in
    the database, and shown to the admin once, when the endpoint is made. `failing_since` is
    the first failure after the last success: three days of it disable the endpoint.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_business_id", "business_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[str] = mapped_column(String(500))
    sealed_secret: Mapped[str] = mapped_column(String(400))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def event_list(self) -> list[str]:
        return self.events.split()


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction of the event, sent after it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("state", DELIVERY_STATES), name="state"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # The Standard Webhooks `webhook-id`: the same for every retry, so receivers drop repeats.
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    endpoint: Mapped[WebhookEndpoint] = relationship()
    log: Mapped[list[WebhookAttempt]] = relationship(order_by="WebhookAttempt.id", cascade="all, delete-orphan")


class WebhookAttempt(Base):
    """One try at sending a delivery: when, the answer's status, latency and first bytes."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    # The receiver's answer (its first bytes), or why nothing was sent or heard.
    excerpt: Mapped[str] = mapped_column(String(500))


# The directory's change stamps follow every session's flushes, whichever door wrote.
from threads import directory_changes  # noqa: E402,F401
