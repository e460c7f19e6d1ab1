"""Issue 6, end to end: the seed's story across `pawpost smtp`, `pawpost worker`,
`pawpost web` and `pawpost live` on PostgreSQL and Redis, with a real relay receiving what
Pawpost sends.

A senior posts in the browser → each parent gets one digest → the secondary parent replies
by email → the staff scheduled today get an alert and the seniors see the red dot → a
scheduled basic staff member answers the alert by email and it posts under their name →
a basic staff member not scheduled with the family is quarantined → the thread holds every
message once, in order, and no digest repeats a message. The senior's open live stream hears
of the parent's reply from the separate `pawpost live` process (issue 16).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, or_, select

from tests.e2e import mail
from tests.e2e.conftest import Stack
from tests.e2e.processes import eventually, run_json
from tests.e2e.relay import Delivery
from tests.portal.live_client import EventStream, Hint
from threads.db import make_engine
from portal import SESSION_COOKIE_NAME
from threads.models import InboundEmail, Message

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect
except ImportError:  # the `browser` fixture skips (or fails under CI) with the reason
    pass

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser, pytest.mark.slow]

WAIT = 30.0  # every effect is polled for; this is only the give-up point
DEMO_SENDER_NAME = "Happy Tails"  # the demo business's sender name, as emails show it
WAIT_MS = int(WAIT * 1000)

SENIOR = "priya@happytails.example"
SECOND_SENIOR = "morgan@happytails.example"

POST = "Bella had a lovely walk by the river today."
PARENT_WORDS = "Thanks! Could you brush her before pickup?"
STAFF_WORDS = "Will do, I'll brush Bella at 4."
UNSCHEDULED_WORDS = "Casey here, I can take Bella tomorrow."


@pytest.fixture
def database(stack: Stack) -> Iterator[Engine]:
    """The deployment's database, read by the test to know when to look (never to decide)."""
    engine = make_engine(stack.database_url)
    yield engine
    engine.dispose()


def story_family(demo: dict[str, Any]) -> tuple[dict[str, Any], list[str], str]:
    """A family with two parents, basic staff scheduled today, and a basic colleague who is not."""
    basics = {s["email"] for s in demo["staff"] if s["role"] == "basic"}
    for family in demo["families"]:
        scheduled = set(family["scheduled_staff_today"])
        if len(family["contacts"]) == 2 and scheduled & basics and basics - scheduled and family["thread_id"]:
            return family, sorted(scheduled), sorted(basics - scheduled)[0]
    raise AssertionError(f"`pawpost demo` has no family with scheduled and unscheduled basic staff: {demo['families']}")


def sign_in(browser: Browser, base_url: str, email: str, password: str) -> Page:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems  # type: ignore[attr-defined]
    page.goto(base_url + "/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def unread_for(context: BrowserContext, base_url: str, thread_id: int) -> dict[str, Any]:
    """The portal's JSON the Messages tab polls, in this staff member's session."""
    response = context.request.get(f"{base_url}/api/unread?ids={thread_id}")
    assert response.ok, response.status
    return response.json()  # type: ignore[no-any-return]


def open_stream(stack: Stack, context: BrowserContext) -> EventStream:
    """`GET /live` on `pawpost live` in this staff member's signed-in session, greeted."""
    cookie = next(c["value"] for c in context.cookies() if c["name"] == SESSION_COOKIE_NAME)
    stream = EventStream(*stack.live, cookie, timeout=WAIT)
    assert stream.status == 200 and stream.next_event() == ("hello", {}), stream.status
    return stream


def hint_about(stream: EventStream, thread_id: int) -> Hint:
    """The first hint naming this thread (other hints of the business may come first)."""
    while (hint := stream.next_hint()) is not None:
        if hint[1].get("thread_id") == thread_id:
            return hint
    raise AssertionError("the live stream ended before a hint about the thread")


def thread_message_ids(engine: Engine, thread_id: int) -> list[int]:
    with engine.connect() as connection:
        return list(connection.scalars(select(Message.id).where(Message.thread_id == thread_id).order_by(Message.id)))


def settled_inbound(engine: Engine, envelope_from: str) -> Any:
    """The stored email from this envelope sender once the pipeline decided its outcome."""
    with engine.connect() as connection:
        row = connection.execute(
            select(InboundEmail.id, InboundEmail.outcome, InboundEmail.reason).where(
                or_(InboundEmail.envelope_from == envelope_from, InboundEmail.sender == envelope_from)
            )
        ).first()
    return row if row is not None and row.outcome != "received" else None


def test_the_seed_story_across_separate_processes(browser: Browser, stack: Stack, database: Engine) -> None:
    demo, relay, base = stack.demo, stack.relay, stack.base_url
    family, scheduled, unscheduled = story_family(demo)
    thread_id: int = family["thread_id"]
    passwords = {s["email"]: s["password"] for s in demo["staff"]}
    names = {s["email"]: s["name"] for s in demo["staff"]}
    primary = next(c for c in family["contacts"] if c["primary"])
    secondary = next(c for c in family["contacts"] if not c["primary"])
    parents = [primary["email"], secondary["email"]]
    staff_addresses = set(names)
    scheduled_basic = next(e for e in scheduled if e in {s["email"] for s in demo["staff"] if s["role"] == "basic"})
    assert SENIOR not in scheduled
    business = DEMO_SENDER_NAME
    assert thread_message_ids(database, thread_id) == [], "the story starts from an empty thread"

    # 1. The senior signs in, finds the family by name and sends with Enter.
    priya = sign_in(browser, base, SENIOR, passwords[SENIOR])
    expect(priya).to_have_url(base + "/messages")
    search = priya.get_by_role("combobox")
    search.fill(family["name"].split(" ")[0])
    expect(priya.get_by_role("option").first).to_contain_text(family["name"])
    search.press("Enter")
    expect(priya).to_have_url(f"{base}/threads/{thread_id}")
    box = priya.get_by_label(f"Message to the {family['name']}")
    box.press_sequentially(POST)
    box.press("Enter")
    expect(priya.locator(".msg.mine .body").last).to_have_text(POST, timeout=WAIT_MS)
    expect(box).to_have_value("")

    # A second senior (the admin) reads the thread now, so a dot later means the parent's reply.
    morgan = sign_in(browser, base, SECOND_SENIOR, passwords[SECOND_SENIOR])
    morgan.goto(f"{base}/threads/{thread_id}")
    expect(morgan.locator(".msg-staff .bubble > .body").last).to_have_text(POST)
    morgan_context = morgan.context
    morgan.close()  # an open thread page would read the reply as it arrives
    before = unread_for(morgan_context, base, thread_id)
    assert (before["unread"], before["tab"]) == ([], False), before

    priya.locator("#messages-tab").click()
    expect(priya).to_have_url(base + "/messages")
    row = priya.locator(f'[data-thread-id="{thread_id}"]')
    expect(row).to_contain_text(POST)
    expect(row.locator(".dot")).to_be_hidden()
    expect(priya.locator("#tab-dot")).to_be_hidden()

    # 2. Each parent gets exactly one digest holding the post, from the senior "at" the business.
    seen = relay.wait_until(
        lambda got: all(mail.to(got, p) for p in parents), "a digest to each parent", WAIT
    )
    first_digests: dict[str, Delivery] = {}
    for parent in parents:
        inbox = mail.to(seen, parent)
        assert len(inbox) == 1, [d.message["Subject"] for d in inbox]
        digest = first_digests[parent] = inbox[0]
        assert digest.rcpt_tos == (parent,)
        assert POST in digest.text
        assert mail.reply_to(digest) == family["reply_address"]
        display, address = mail.sender(digest)
        assert display == f"{names[SENIOR]} at {business}"
        assert address.startswith("notifications@")
        assert str(digest.message["Auto-Submitted"]).startswith("auto-generated")
        assert mail.message_id(digest)
    assert not [d for d in seen if set(d.rcpt_tos) & staff_addresses], "no staff alert for a staff post"

    # 3. The secondary parent answers the digest from their mail client; only their words post,
    # and the senior's open live stream (served by `pawpost live`) hears of it.
    stream = open_stream(stack, priya.context)
    reply = mail.answer(first_digests[secondary["email"]], secondary["name"], secondary["email"], PARENT_WORDS)
    assert POST in str(reply.get_content())  # the quoted history travels along
    code, text = mail.send(stack.smtp, reply)
    assert code == 250, text
    decided = eventually(lambda: settled_inbound(database, secondary["email"]), "the parent's reply being processed", WAIT)
    assert decided.outcome == "posted", decided
    with stream:
        assert hint_about(stream, thread_id) == ("posted", {"thread_id": thread_id})

    # 4. The staff scheduled today get an alert at once; the seniors see the red dot.
    seen = relay.wait_until(
        lambda got: all(mail.containing(mail.to(got, s), PARENT_WORDS) for s in scheduled),
        f"an alert to {scheduled}",
        WAIT,
    )
    alerts = {s: mail.containing(mail.to(seen, s), PARENT_WORDS)[0] for s in scheduled}
    for staff_email, alert in alerts.items():
        assert alert.rcpt_tos == (staff_email,)
        assert mail.reply_to(alert) == family["reply_address"]
        assert mail.sender(alert)[0] == f"{secondary['name']} via {business}"
        assert POST not in alert.text, "the alert carries the parent's words, not the quoted digest"
    expect(row.locator(".dot")).to_be_visible(timeout=WAIT_MS)
    expect(priya.locator("#tab-dot")).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text(PARENT_WORDS, timeout=WAIT_MS)

    def admin_sees_the_dot() -> bool:
        state = unread_for(morgan_context, base, thread_id)
        return state["unread"] == [thread_id] and state["tab"] is True

    eventually(admin_sees_the_dot, "the admin's unread dot (the portal's JSON)", WAIT)

    # 5. The scheduled basic staff member answers the alert by email; it posts under their name.
    alert = alerts[scheduled_basic]
    code, text = mail.send(stack.smtp, mail.answer(alert, names[scheduled_basic], scheduled_basic, STAFF_WORDS))
    assert code == 250, text
    decided = eventually(lambda: settled_inbound(database, scheduled_basic), "the staff reply being processed", WAIT)
    assert decided.outcome == "posted", decided

    # 6. A basic colleague not scheduled with the family writes to the thread: kept, never posted.
    stranger = mail.write(names[unscheduled], unscheduled, family["reply_address"], "Re: Bella", UNSCHEDULED_WORDS)
    code, text = mail.send(stack.smtp, stranger)
    assert code == 250, text  # stored (for review) is accepted: the sender must not retry
    decided = eventually(lambda: settled_inbound(database, unscheduled), "the unscheduled staff email being processed", WAIT)
    assert decided.outcome == "quarantined", decided
    held = [e for e in run_json(stack.env, "quarantine", "list") if e["sender"] == unscheduled]
    assert len(held) == 1, held
    assert held[0]["outcome"] == "quarantined"
    assert held[0]["thread_id"] == thread_id

    # 7. Every message once, in order; the parents' later digests repeat nothing.
    messages = run_json(stack.env, "messages", str(thread_id))
    assert [(m["author_type"], m["author"], m["source"], m["text"].strip()) for m in messages] == [
        ("staff", names[SENIOR], "portal", POST),
        ("contact", secondary["name"], "email", PARENT_WORDS),
        ("staff", names[scheduled_basic], "email", STAFF_WORDS),
    ]
    assert [m["id"] for m in messages] == sorted({m["id"] for m in messages})

    owed = {primary["email"]: (POST, PARENT_WORDS, STAFF_WORDS), secondary["email"]: (POST, STAFF_WORDS)}
    seen = relay.wait_until(
        lambda got: all(all(mail.containing(mail.to(got, p), w) for w in words) for p, words in owed.items()),
        "digests of the later messages to both parents",
        WAIT,
    )
    for parent, words in owed.items():
        inbox = mail.to(seen, parent)
        for text_of_message in words:
            assert sum(d.text.count(text_of_message) for d in inbox) == 1, (parent, text_of_message)
        for digest in mail.containing(inbox, STAFF_WORDS):
            assert mail.sender(digest)[0] == f"{names[scheduled_basic]} at {business}"
    assert not mail.containing(mail.to(seen, secondary["email"]), PARENT_WORDS), "never their own words back"
    assert not mail.containing(seen, UNSCHEDULED_WORDS), "a quarantined email reaches nobody"
    alerted = {r for d in seen if set(d.rcpt_tos) & staff_addresses for r in d.rcpt_tos}
    assert alerted == set(scheduled), "alerts go to exactly the staff scheduled today"
    assert all(len(mail.containing(mail.to(seen, s), PARENT_WORDS)) == 1 for s in scheduled)

    # The senior opens the thread from the inbox: the three messages, in order, and the dot goes.
    row.locator("a").click()
    expect(priya).to_have_url(f"{base}/threads/{thread_id}")
    expect(priya.locator("#messages .msg .bubble > .body")).to_have_text([POST, PARENT_WORDS, STAFF_WORDS])
    expect(priya.locator("#messages .msg .author")).to_have_text([names[SENIOR], secondary["name"], names[scheduled_basic]])
    expect(priya.locator("#tab-dot")).to_be_hidden(timeout=WAIT_MS)
    assert priya.problems == [], priya.problems  # type: ignore[attr-defined]
