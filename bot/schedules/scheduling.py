"""Timed work: APScheduler jobs rebuilt from the `schedule` rows, calling plain functions with ids.

Jobs only enqueue into the outbox (with idempotency keys), so a job that runs in two replicas,
or twice after a restart, still sends each message once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import Session, select

from bot.config import Settings
from bot.core.clock import Clock
from bot.delivery.rows import on_break
from bot.features.digests import current_week, schedule_digest
from bot.features.reflections import queue_prompt
from bot.schedules.planning import PlanOptions, plan
from bot.services.prompts import PromptLibrary
from storage.db import Database
from storage.models import Community, Schedule

log = logging.getLogger(__name__)

RESYNC_SECONDS = 60
PLAN_SECONDS = 60


def run_schedule(
    session: Session,
    prompts: PromptLibrary,
    *,
    schedule_id: int,
    now: datetime,
    default_tz: str,
) -> str:
    """Enqueue what one schedule row asks for; returns what happened (for the log)."""
    schedule = session.get(Schedule, schedule_id)
    community = session.get(Community, schedule.community_id) if schedule else None
    if schedule is None or community is None or not schedule.enabled:
        return "schedule gone or off"
    today = now.astimezone(ZoneInfo(community.timezone)).date()
    if on_break(session, community, today):
        return f"{community.name}: on a break, nothing sent"
    if schedule.kind == "prompt":
        queued = queue_prompt(
            session, prompts, community, now=now, key=f"prompt:{community.id}:{today}"
        )
        return f"{community.name}: prompt {'queued' if queued else 'already queued'}"
    if schedule.kind == "digest":
        week = current_week(community, now)
        queued = schedule_digest(session, community, week, now)
        return f"{community.name}: digest {week} {'queued' if queued else 'already queued'}"
    # Check-ins are not cron jobs: bot.planning queues each member's at their local time.
    return f"{community.name}: {schedule.kind} is planned per member, nothing to do here"


class ScheduleRunner:
    """Keeps APScheduler's jobs equal to the enabled schedule rows."""

    def __init__(
        self,
        *,
        db: Database,
        prompts: PromptLibrary,
        settings: Settings,
        clock: Clock,
        wake: Callable[[], None],
    ) -> None:
        self.db = db
        self.prompts = prompts
        self.settings = settings
        self.clock = clock
        self.wake = wake  # tells the outbox sender there is work; safe from any thread
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._rebuilding = threading.Lock()  # the minute's resync and a coach's change
        self._signature: tuple[tuple[int, str, int, str, str], ...] = ()

    def start(self) -> None:
        self.rebuild()
        self.scheduler.add_job(self.rebuild, "interval", seconds=RESYNC_SECONDS, id="resync")
        self.scheduler.add_job(
            self.plan, "interval", seconds=PLAN_SECONDS, id="plan", next_run_time=self.clock.now()
        )
        self.scheduler.start()

    def plan(self) -> None:
        """Members' check-ins at their local time, nudges, and missed prompts/digests."""
        options = PlanOptions(
            default_tz=self.settings.timezone,
            nudge_after=timedelta(hours=self.settings.nudge_hours),
            holiday_country=self.settings.holidays,
        )
        try:
            with self.db.session() as session:
                result = plan(session, self.prompts, self.clock.now(), options)
        except Exception:
            log.exception("planning pass failed; the next one retries")
            return
        if result.checkins or result.nudges or result.prompts or result.digests:
            log.info("planned %s", result)
            self.wake()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def rebuild(self) -> None:
        """Read the schedule rows; replace the jobs when anything changed."""
        with self._rebuilding:
            self._rebuild()

    def _rebuild(self) -> None:
        with self.db.session() as session:
            rows = session.exec(
                select(Schedule, Community)
                .join(Community, Community.id == Schedule.community_id)  # type: ignore[arg-type]
                .where(Schedule.enabled, Schedule.kind != "checkin")  # check-ins: see plan()
                .order_by(Schedule.id)  # type: ignore[arg-type]
            ).all()
            signature = tuple((s.id or 0, s.kind, s.weekday, s.time, c.timezone) for s, c in rows)
        if signature == self._signature:
            return
        for job in self.scheduler.get_jobs():
            if job.id.startswith("schedule:"):
                job.remove()
        for schedule_id, _kind, weekday, at, zone in signature:
            hour, minute = (int(part) for part in at.split(":"))
            self.scheduler.add_job(
                self.fire,
                CronTrigger(day_of_week=weekday, hour=hour, minute=minute, timezone=ZoneInfo(zone)),
                args=[schedule_id],
                id=f"schedule:{schedule_id}",
                misfire_grace_time=3600,
                coalesce=True,
            )
        self._signature = signature
        log.info("scheduler rebuilt: %d schedules", len(signature))

    def rebuild_soon(self) -> None:
        """A coach changed a schedule: rebuild on a database thread, off the event loop."""
        asyncio.get_running_loop().create_task(self.db.run(self.rebuild))

    async def fire(self, schedule_id: int) -> None:
        outcome = await self.db.run(self._fire, schedule_id)
        log.info("schedule %s: %s", schedule_id, outcome)
        self.wake()

    def _fire(self, schedule_id: int) -> str:
        with self.db.session() as session:
            return run_schedule(
                session,
                self.prompts,
                schedule_id=schedule_id,
                now=self.clock.now(),
                default_tz=self.settings.timezone,
            )
