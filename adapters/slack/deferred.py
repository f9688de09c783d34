"""Work acknowledged to Slack and done right after, in order per person.

Slack needs an answer within 3 seconds, so every listener acks first and hands the real work
(database, replies) to this queue. While requests keep arriving (a burst), queued work waits
for a quiet moment so acks stay fast — never more than `MAX_DEFER` per item — and then
catches up. Events from one person always run in the order they came.

The queue is in memory: work acknowledged but not yet done when the process is killed is
lost (Slack does not resend what was acknowledged). Under normal load it runs within
milliseconds of the ack.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
MAX_DEFER = 1.0  # seconds a job may wait for a quiet moment
QUIET = 0.02  # no request for this long counts as quiet
POLL = 0.005


class DeferredWork:
    def __init__(self, shards: int = 4) -> None:
        self.shards = shards
        self.busy = 0  # requests being acknowledged right now
        self.last_request = 0.0  # loop time of the latest request
        self._queues: list[asyncio.Queue[Job]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _start(self) -> None:
        self._queues = [asyncio.Queue() for _ in range(self.shards)]
        self._tasks = [asyncio.get_running_loop().create_task(self._drain(q)) for q in self._queues]

    def request_arrived(self) -> None:
        self.last_request = asyncio.get_running_loop().time()

    def _bursting(self) -> bool:
        return self.busy > 0 or asyncio.get_running_loop().time() - self.last_request < QUIET

    def submit(self, key: str, job: Job) -> None:
        """Queue `job`; jobs with the same key (a person) run one after another."""
        if not self._tasks:
            self._start()
        self._queues[zlib.crc32(key.encode()) % self.shards].put_nowait(job)

    async def _drain(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            waited = 0.0
            while self._bursting() and waited < MAX_DEFER:
                await asyncio.sleep(POLL)
                waited += POLL
            try:
                await job()
            except Exception:
                log.exception("deferred Slack work failed")
            finally:
                queue.task_done()

    async def join(self) -> None:
        """Wait until everything queued so far has run (tests, shutdown)."""
        for queue in self._queues:
            await queue.join()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
