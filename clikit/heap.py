"""Long-running processes: keep the garbage collector off what was loaded at start-up,
and give memory back after big emails."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def freeze_startup_heap() -> None:
    """Move every object alive now out of the collector's reach.

    Modules, the app, the engine and the email libraries live as long as the process.
    Left to the collector, each full collection walks them all again: in a portal worker,
    a ~60 ms pause every few hundred requests (measured), stalling every request in it.
    Call once, after start-up and before serving.
    """
    gc.collect()
    gc.freeze()


# glibc's mallopt parameter for the size from which an allocation gets its own mapping.
_M_MMAP_THRESHOLD = -3
# Raw emails, their joined copies and the batches that carry them are megabytes each.
BIG_ALLOCATION_BYTES = 1024 * 1024


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (mallopt and malloc_trim exist there only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018  (musl and others lack it)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def map_big_allocations() -> bool:
    """Give every allocation of BIG_ALLOCATION_BYTES or more its own mapping, returned to
    the system as soon as it is freed. glibc's default threshold grows to 32 MB after the
    first big free, after which 24 MB emails land in the heap and stay there: `pawpost smtp`
    kept 5.5 GB after a burst of them. False when the C library is not glibc."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, BIG_ALLOCATION_BYTES))


def give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim); a no-op elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
