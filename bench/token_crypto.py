"""What encrypting Slack tokens at rest costs (issue #12).

Prints, as the median of --repeat runs:
  seal+open       TokenCipher.seal then .open of one bot token (Fernet: AES-128-CBC, HMAC-SHA256)
  open            .open alone (what every lookup pays; seal is paid once per install)
  find_bot        slack_sdk's SQLAlchemy find_bot, one query, on a token stored in plain text
  find_bot+open   the same query on a sealed token, then opened, as our store does
  async before    the old wrapper: asyncio.to_thread(find_bot) on the plain-text row
  async after     InstallationStore.async_find_bot on the sealed row (Bolt calls this, or
                  async_find_installation, on every request; the sender caches clients)

SQLite runs in a temporary file; PostgreSQL only with --postgres URL (its slack_* tables are
emptied: use a scratch database).

    python bench/token_crypto.py [--calls 2000] [--repeat 5] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402  (needs ROOT on sys.path first)
from slack_sdk.oauth.installation_store import Installation  # noqa: E402
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore  # noqa: E402

from adapters.slack.stores import InstallationStore  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.secrets import TokenCipher, new_key  # noqa: E402
from storage.slack_tables import slack_bots, slack_installations  # noqa: E402

CLIENT_ID = "1111.2222"
TOKEN = "xoxb-7403120000000-7403120000001-Zq8Xw1LmN4pRt6Yb2Cd9Ef0G"


Timing = tuple[float, float, float]  # median, min, max µs per call


def summary(runs: list[float]) -> Timing:
    return statistics.median(runs), min(runs), max(runs)


def interleaved(
    works: dict[str, Callable[[], object]], calls: int, repeat: int
) -> dict[str, Timing]:
    """Mean µs per call over `calls` calls, `repeat` times, the workloads taking turns run by
    run so a noisy neighbour on the machine slows them alike."""
    runs: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeat):
        for name, work in works.items():
            start = time.perf_counter()
            for _ in range(calls):
                work()
            runs[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: summary(r) for name, r in runs.items()}


def interleaved_async(
    works: dict[str, Callable[[], Awaitable[object]]], calls: int, repeat: int
) -> dict[str, Timing]:
    async def run() -> dict[str, list[float]]:
        runs: dict[str, list[float]] = {name: [] for name in works}
        for _ in range(repeat):
            for name, work in works.items():
                start = time.perf_counter()
                for _ in range(calls):
                    await work()
                runs[name].append((time.perf_counter() - start) / calls * 1e6)
        return runs

    return {name: summary(r) for name, r in asyncio.run(run()).items()}


def installation(team: str) -> Installation:
    return Installation(
        app_id="A0001",
        enterprise_id=None,
        team_id=team,
        user_id="U_ADMIN",
        bot_token=TOKEN,
        bot_id="B0001",
        bot_user_id="UBOT",
        bot_scopes=["commands", "chat:write"],
    )


def show(timings: dict[str, Timing]) -> None:
    for label, (median, low, high) in timings.items():
        print(f"{label:<15} {median:8.1f} µs  ({low:.1f}–{high:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="a scratch PostgreSQL URL (default: SQLite)")
    args = parser.parse_args()

    key = new_key()
    cipher = TokenCipher(key)
    sealed_token = cipher.seal(TOKEN)
    print(f"{args.calls * 5} calls × {args.repeat}")
    show(
        interleaved(
            {
                "seal+open": lambda: cipher.open(cipher.seal(TOKEN)),
                "open": lambda: cipher.open(sealed_token),
            },
            args.calls * 5,
            args.repeat,
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.postgres or f"sqlite:///{tmp}/bench.db")
        db.upgrade()
        with db.engine.begin() as conn:
            conn.execute(slack_installations.delete())
            conn.execute(slack_bots.delete())
        raw = SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=db.engine)
        raw.save(installation("T_PLAIN"))  # as stored before encryption
        store = InstallationStore(CLIENT_ID, db.engine, token_key=key)
        asyncio.run(store.async_save(installation("T_SEALED")))
        assert raw.find_bot(enterprise_id=None, team_id="T_SEALED").bot_token != TOKEN  # type: ignore[union-attr]

        def plain() -> object:
            return raw.find_bot(enterprise_id=None, team_id="T_PLAIN")

        def sealed() -> object:
            bot = raw.find_bot(enterprise_id=None, team_id="T_SEALED")
            return store._opened(bot, slack_bots.name)

        print(f"database: {db.engine.url.get_backend_name()}, {args.calls} calls × {args.repeat}")
        show(interleaved({"find_bot": plain, "find_bot+open": sealed}, args.calls, args.repeat))
        show(
            interleaved_async(
                {
                    "async before": lambda: asyncio.to_thread(
                        raw.find_bot, enterprise_id=None, team_id="T_PLAIN"
                    ),
                    "async after": lambda: store.async_find_bot(
                        enterprise_id=None, team_id="T_SEALED"
                    ),
                },
                args.calls,
                args.repeat,
            )
        )
        with db.engine.connect() as conn:
            length = conn.execute(
                sa.select(sa.func.length(slack_bots.c.bot_token)).where(
                    slack_bots.c.team_id == "T_SEALED"
                )
            ).scalar_one()
        print(f"stored length: {len(TOKEN)} characters plain, {length} sealed (column holds 200)")
        db.dispose()


if __name__ == "__main__":
    main()
