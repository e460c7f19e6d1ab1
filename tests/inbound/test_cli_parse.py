"""`pawpost parse` through click's CliRunner."""

import json
from pathlib import Path

from click.testing import CliRunner

from inbound.cli_parse import parse_command

EML = Path(__file__).resolve().parent.parent / "data" / "eml"


def run_json(*paths: Path, extra: tuple[str, ...] = ()) -> list[dict]:
    result = CliRunner().invoke(parse_command, [*map(str, paths), "--json", *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_reply_as_json() -> None:
    (row,) = run_json(EML / "outlook_desktop.eml")
    assert row == {
        "file": str(EML / "outlook_desktop.eml"),
        "kind": "reply",
        "text": "Rex has his vet appointment on Friday, so please skip the walk that day.",
        "trimmed": row["trimmed"],
        "truncated": False,
        "from": "daniel.reyes@corp.example.com",
        "message_id": "BN0PR04MB81125A3D2C9E0F7B1A44C3E1D9232@BN0PR04MB8112.namprd04.prod.outlook.com",
        "in_reply_to": "msg-52.4e1f@pawpost.test",
        "references": ["thread-root.7f3a@pawpost.test", "msg-52.4e1f@pawpost.test"],
        "attachments": [{"filename": "rex-vet-card.jpg", "content_type": "image/jpeg", "size": 790}],
        "reason": None,
    }
    assert row["trimmed"].startswith("From: Happy Paws")


def test_kinds_for_several_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    loop = tmp_path / "loop.eml"
    loop.write_bytes(b"From: notifications@reply.localhost\nSubject: x\n\nhello\n")
    quote_only = tmp_path / "quote.eml"
    quote_only.write_bytes(b"From: a@b.example\nSubject: x\n\n")
    rows = run_json(EML / "auto_reply.eml", EML / "bounce_dsn.eml", empty, loop, quote_only)
    assert [row["kind"] for row in rows] == ["auto_reply", "bounce", "reject", "reject", "reject"]
    assert rows[2]["reason"] == "unparseable: empty message"
    assert rows[3]["reason"].startswith("loop: ")
    assert rows[4]["reason"] == "empty reply"


def test_reply_domain_option_and_envvar() -> None:
    path = EML / "gmail_web.eml"
    assert run_json(path, extra=("--reply-domain", "gmail.com"))[0]["kind"] == "reject"
    result = CliRunner().invoke(parse_command, [str(path), "--json"], env={"PAWPOST_REPLY_DOMAIN": "gmail.com"})
    assert json.loads(result.output)["reason"].startswith("loop: ")


def test_human_output() -> None:
    result = CliRunner().invoke(parse_command, [str(EML / "ios_mail.eml")])
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [f"== {EML / 'ios_mail.eml'}: reply", "from: jake.miller@icloud.com"]
    assert "Yes please! Cooper will love an extra walk" in result.output


def test_a_quote_only_reply_shows_empty_text(tmp_path: Path) -> None:
    quote_only = tmp_path / "quote-only.eml"
    quote_only.write_bytes(
        b"From: Emma <emma@example.com>\nTo: reply+abc@reply.localhost\nSubject: Re: Bella\n\n"
        b"On Mon, 3 Jun 2024 at 09:12, Happy Tails <n@reply.localhost> wrote:\n> Bella had a great walk today!\n"
    )
    (row,) = run_json(quote_only)
    assert (row["kind"], row["text"], row["reason"]) == ("reject", "", "empty reply")
    result = CliRunner().invoke(parse_command, [str(quote_only)])
    assert "Bella had a great walk" not in result.output
    assert "--- text\n(empty)" in result.output
