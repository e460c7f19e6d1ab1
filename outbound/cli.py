"""`pawpost worker`: the huey consumer that sends every email Pawpost sends."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import click
from huey.consumer import Consumer, Scheduler

from clikit import load_settings
from clikit.heap import map_big_allocations

from outbound.queue import configure_queue
from pawpost.settings import Settings
from threads.types import utcnow

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 30
DEFAULT_SWEEP_SECONDS = 30


class SweepingScheduler(Scheduler):
    """huey's scheduler, plus a sweep every `sweep_seconds`.

    huey's periodic tasks tick at most once a minute and a lost queue entry would break a
    self-rescheduling chain; enqueuing from the scheduler loop of every consumer survives
    a Redis restart, and the per-slot claim in `sweep_in_slot` makes it run once in all.
    """

    sweep_seconds = DEFAULT_SWEEP_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_sweep = time.monotonic()

    def loop(self, now: Any = None) -> None:
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.sweep_seconds
            self._enqueue_sweep()
        super().loop(now)

    def _enqueue_sweep(self) -> None:
        from outbound.tasks import sweep_in_slot, sweep_slot

        try:
            sweep_in_slot(sweep_slot(utcnow(), self.sweep_seconds), self.sweep_seconds)
        except Exception:  # the queue is down: the next tick tries again
            self._logger.exception("could not enqueue the sweep")


# Tasks that run on a timer whatever happens (the sweep): huey's "Executing …" and
# "… executed in" lines about them would be most of a quiet deployment's log.
ROUTINE_TASKS = ("sweep_in_slot",)


class RoutineTasksAtDebug(logging.Filter):
    """huey's INFO lines about routine tasks become DEBUG (kept under `-v`); the rest pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and any(name in str(arg) for arg in record.args or () for name in ROUTINE_TASKS):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG) and logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def quiet_routine_logs() -> None:
    """Install `RoutineTasksAtDebug` on huey's logger, once."""
    huey_logger = logging.getLogger("huey")
    if not any(isinstance(f, RoutineTasksAtDebug) for f in huey_logger.filters):
        huey_logger.addFilter(RoutineTasksAtDebug())


def build_consumer(
    settings: Settings, *, workers: int = 2, sweep_seconds: int = DEFAULT_SWEEP_SECONDS, processes: bool = False
) -> Consumer:
    """A consumer on the configured queue: worker threads, huey's scheduler and the sweep.

    `processes=True` runs the `workers` as forked processes instead: deciding and rendering
    digests is CPU work that threads of one process share under the GIL.

    Both SIGINT and SIGTERM finish the tasks in flight and stop (huey's default treats
    SIGTERM as "stop now"); a second signal stops at once. A task cut short is not lost:
    its outbox row or its due digest is found again by the sweep.
    """
    quiet_routine_logs()
    queue = configure_queue(settings)
    scheduler_class = type("PawpostScheduler", (SweepingScheduler,), {"sweep_seconds": sweep_seconds})
    consumer_class = type("PawpostConsumer", (Consumer,), {"scheduler_class": scheduler_class})
    consumer = consumer_class(
        queue,
        workers=workers,
        worker_type="process" if processes else "thread",
        periodic=True,
        scheduler_interval=1,
        # An idle worker polls the SQLite queue at most every half second (huey's default
        # backs off to 10 s, which would make a "3 minutes" digest up to 10 s late).
        initial_delay=0.05,
        max_delay=0.5,
        check_worker_health=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    # huey keeps its signal → (restart, graceful) table here; it has no public option
    # for "both signals graceful".
    consumer._signal_actions[signal.SIGTERM] = (False, True)
    consumer._signal_actions[signal.SIGINT] = (False, True)
    return consumer


@click.command("worker")
@click.option("--workers", "-w", default=2, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
@click.option(
    "--processes",
    "-p",
    default=0,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Run this many worker processes instead of threads (a big backlog is CPU-bound).",
)
@click.option(
    "--sweep-seconds",
    default=DEFAULT_SWEEP_SECONDS,
    show_default=True,
    type=click.IntRange(1, 3600),
    help="How often the repair sweep looks for due work in the database.",
)
@click.pass_context
def worker_command(ctx: click.Context, workers: int, processes: int, sweep_seconds: int) -> None:
    """Run the outbound queue consumer (digests, staff alerts, escalations, the sweep)."""
    settings = load_settings(ctx).with_secret_key()
    # The worker holds raw emails (up to the size limit) as it parses them: like `pawpost
    # smtp`, it gives each big buffer back to the system once freed instead of keeping it.
    map_big_allocations()
    consumer = build_consumer(
        settings, workers=processes or workers, sweep_seconds=sweep_seconds, processes=processes > 0
    )
    logger.info("worker: %d %s, sweep every %d s", processes or workers, "process(es)" if processes else "thread(s)", sweep_seconds)
    consumer.run()
