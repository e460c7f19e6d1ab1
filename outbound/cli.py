"""`pawpost worker`: the huey consumer that sends every email Pawpost sends."""

from __future__ import annotations

import logging
import signal

import click
from huey.consumer import Consumer

from outbound.queue import configure_queue
from pawpost.settings import Settings

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 30


def build_consumer(settings: Settings, *, workers: int = 2) -> Consumer:
    """A consumer on the configured queue: worker threads plus huey's scheduler.

    Both SIGINT and SIGTERM finish the tasks in flight and stop (huey's default treats
    SIGTERM as "stop now"); a second signal stops at once. A task cut short is not lost:
    its outbox row or its due digest is found again by the sweep.
    """
    queue = configure_queue(settings)
    consumer = queue.create_consumer(
        workers=workers,
        worker_type="thread",
        periodic=True,
        scheduler_interval=1,
        check_worker_health=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    # huey keeps the signal → (restart, graceful) table here; there is no public option for
    # "both graceful".
    consumer._signal_actions[signal.SIGTERM] = (False, True)
    consumer._signal_actions[signal.SIGINT] = (False, True)
    return consumer


@click.command("worker")
@click.option("--workers", "-w", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
@click.pass_context
def worker_command(ctx: click.Context, workers: int) -> None:
    """Run the outbound queue consumer (digests, staff alerts, escalations, the sweep)."""
    from pawpost.cli import load_settings

    settings = load_settings(ctx)
    consumer = build_consumer(settings, workers=workers)
    logger.info("worker starting with %d thread(s)", workers)
    consumer.run()
