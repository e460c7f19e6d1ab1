"""Logs an operator reads: routine sweeps below INFO, refused recipients named safely, no flanker grammar noise."""

from __future__ import annotations

import logging

import pytest

from inbound.server import shortened_address
from outbound.cli import RoutineTasksAtDebug, quiet_routine_logs


def test_a_refused_recipient_is_named_with_its_token_cut() -> None:
    assert shortened_address("reply+abcdef0123456789@reply.test") == "reply+abcd…@reply.test"
    assert shortened_address("nobody@reply.test") == "nobody@reply.test"
    assert shortened_address("a\r\nb@x") == "ab@x"
    assert len(shortened_address("x" * 5000 + "@y")) == 80


def test_the_sweep_task_is_not_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    quiet_routine_logs()
    huey_logger = logging.getLogger("huey")
    assert any(isinstance(f, RoutineTasksAtDebug) for f in huey_logger.filters)
    with caplog.at_level(logging.INFO):
        huey_logger.info("Executing %s", "outbound.tasks.sweep_in_slot: 1234")
        huey_logger.info("%s executed in %0.3fs", "outbound.tasks.sweep_in_slot: 1234", 0.01)
        huey_logger.info("Executing %s", "outbound.tasks.send_thread_digests: 99")
    assert [r.getMessage() for r in caplog.records] == ["Executing outbound.tasks.send_thread_digests: 99"]


def test_flanker_grammar_warnings_are_silenced() -> None:
    from inbound.parse import _flanker_mime

    _flanker_mime()  # where flanker is imported, its grammar loggers are quieted first
    for name in ("flanker.addresslib._parser.parser", "flanker.addresslib._parser.lexer"):
        assert not logging.getLogger(name).isEnabledFor(logging.WARNING)
