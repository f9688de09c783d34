"""`plnbot serve --processes N`: one host's cores for one PostgreSQL database.

One interpreter runs Python on one core at a time, so a single `plnbot serve` is CPU-bound long
before the database is. Each of the N processes started here is a whole replica — the web
endpoints, the inbox's workers, the outbox sender — listening on the same address with
`SO_REUSEPORT`, so the kernel spreads connections among them; replicas already share stored
work on PostgreSQL without running anything twice (`FOR UPDATE SKIP LOCKED`, keys in the
database). Only process 0 runs the timed scheduler: the others would find nothing left to do.

The supervisor (this process) starts them, starts again one that dies (the database keeps
what it acknowledged; its claims are taken back at once, since its process id is gone), passes
SIGTERM and SIGINT on, and waits for each to drain. Each child is told to stop when the
supervisor dies, even by `kill -9` (Linux's parent-death signal), so none is left holding the
port.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

USAGE_ERROR = (
    2  # a child that exits 2 found the configuration unusable: starting it again won't help
)
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STEADY = 30.0  # a child that ran this long before dying is started again at once


def _stop_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent exits (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _child(target: Callable[[int], None], index: int) -> None:
    _stop_with_parent()
    target(index)


class Supervisor:
    """Runs `target(index)` in `count` spawned processes until told to stop."""

    def __init__(self, count: int, target: Callable[[int], None], *, grace: float) -> None:
        self.count = count
        self.target = target
        self.grace = grace  # each child's own drain time; the supervisor waits a little longer
        self.children: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._backoff: dict[int, float] = {}
        self._due: dict[int, float] = {}  # index -> when to start it again
        self._stopping = False
        self._usage_error = False

    def _start(self, index: int) -> None:
        process = mp.get_context("spawn").Process(
            target=_child, args=(self.target, index), name=f"plnbot-serve-{index}"
        )
        process.start()
        self.children[index] = process
        self._started[index] = time.monotonic()
        log.info("serve process %d started (pid %s)", index, process.pid)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True
        for process in self.children.values():
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; the exit code: 0 when every child stopped cleanly."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                if not self._stopping:  # a signal may come while they start
                    self._start(index)
            while not self._stopping:
                self._watch()
            return self._drain()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _watch(self) -> None:
        now = time.monotonic()
        for index, at in list(self._due.items()):
            if at <= now and not self._stopping:
                del self._due[index]
                self._start(index)
        alive = {p.sentinel: i for i, p in self.children.items() if i not in self._due}
        timeout = min([at - now for at in self._due.values()] + [1.0])
        for sentinel in wait(list(alive), timeout=max(0.0, timeout)):
            index = alive[sentinel]  # type: ignore[index]
            process = self.children[index]
            process.join()
            if self._stopping:
                continue
            code = process.exitcode
            if code == USAGE_ERROR:
                log.error("serve process %d found the configuration unusable; stopping", index)
                self._usage_error = True
                self._stop(signal.SIGTERM, None)
                return
            ran = time.monotonic() - self._started[index]
            delay = 0.0 if ran >= STEADY else self._backoff.get(index, FIRST_BACKOFF)
            self._backoff[index] = min(MAX_BACKOFF, max(FIRST_BACKOFF, delay * 2))
            log.error(
                "serve process %d (pid %s) exited with %s; starting it again in %.0f s",
                index,
                process.pid,
                code,
                delay,
            )
            self._due[index] = time.monotonic() + delay

    def _drain(self) -> int:
        deadline = time.monotonic() + self.grace + 10
        clean = True
        for index, process in self.children.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("serve process %d did not stop in time; killing it", index)
                process.kill()
                process.join()
                clean = False
            elif process.exitcode not in (0, -signal.SIGTERM) and index not in self._due:
                clean = False
        if self._usage_error:
            return USAGE_ERROR
        return 0 if clean else 1
