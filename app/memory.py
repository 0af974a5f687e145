"""glibc malloc settings and clean-up for a long-running server that builds codecs, peers and
analysis buffers per session.

- Every new thread (aiortc starts a decoder thread per track, the recorder an encoder thread
  per session) may get its own malloc arena, up to 8 per core, each keeping its freed memory:
  `tune_malloc` limits them to 2 at start-up (an operator's MALLOC_ARENA_MAX wins).
- What a session freed lies scattered between live blocks, and glibc only returns memory from
  the top of a heap: `release_free_memory` (`malloc_trim`) hands the free pages back when a
  session ends.
A fixed mmap threshold was measured too and left out: it lowers the plateau a little more but
makes every frame-sized allocation an mmap + page faults (a 640x480 frame copy: 0.42 -> 1.12 ms).
No-ops where libc is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENA_MAX = 2

_applied = False
_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        try:
            libc = ctypes.CDLL(name)
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.mallopt.restype = ctypes.c_int
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            libc.malloc_trim.restype = ctypes.c_int
        except (OSError, AttributeError):  # not glibc (musl has neither)
            return None
        _libc = libc
    return _libc


def tune_malloc() -> dict[str, int]:
    """Limit malloc arenas (once, before the worker threads exist). Returns what was set."""
    global _applied
    if _applied:
        return {}
    _applied = True
    libc = _glibc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return {}
    applied: dict[str, int] = {}
    if libc.mallopt(M_ARENA_MAX, ARENA_MAX) == 1:
        applied["arena_max"] = ARENA_MAX
    log.debug("malloc tuned: %s", applied)
    return applied


def release_free_memory() -> None:
    """Give the free pages inside the malloc arenas back to the system (`malloc_trim`). Call it
    off the hot path (at a session's end)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
