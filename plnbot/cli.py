"""`plnbot`: serve, worker, db upgrade, digest, slack-manifest, teams-manifest, tokens.

Exit codes: 0 ok, 2 usage or configuration error (one clear line on stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bot.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="PLN Bot: Professional Learning Network communities in Slack and Microsoft Teams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"plnbot {version('plnbot')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("plnbot (not installed)")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """PLN Bot: Professional Learning Network communities in Slack and Microsoft Teams."""


app.add_typer(db_app, name="db")


def fail(message: str) -> NoReturn:
    typer.echo(f"plnbot: {message}", err=True)
    raise typer.Exit(2)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per job run is noise
        logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration too
    return settings


def require_existing_database(settings: Settings) -> None:
    """Commands that only read never create a database: a SQLite file must exist already."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    file = url.database if url.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(str(file)).exists():
        fail(
            f"DATABASE_URL: no database at {url.database} yet (run `plnbot serve` or "
            "`plnbot db upgrade` first, or set DATABASE_URL)"
        )


def port_is_free(host: str, port: int) -> bool:
    """Whether serve can listen there (checked first: a traceback from deep inside the
    server is no way to say "that port is taken")."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def fast_event_loop() -> None:
    """uvloop where it is installed (Linux, macOS): the same asyncio, a faster loop."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Use Slack Socket Mode (needs SLACK_APP_TOKEN).")
    ] = False,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler", help="Run no timed jobs (still deliver what commands enqueue)."
        ),
    ] = False,
    allow_anonymous_teams: Annotated[
        bool,
        typer.Option(
            "--allow-anonymous-teams",
            help="Accept unauthenticated Bot Framework requests (a local Bot Framework "
            "Emulator only; without this or MICROSOFT_APP_ID, Teams is off).",
        ),
    ] = False,
    playground: Annotated[
        bool | None,
        typer.Option(
            "--playground/--no-playground",
            help="Serve the browser playground at /playground (default: on when no platform "
            "is configured).",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Serve processes on this host sharing the port, one per core (PostgreSQL "
            "only; default PLNBOT_PROCESSES, 1).",
        ),
    ] = None,
) -> None:
    """Run the web endpoints, the timed scheduler and the outbox sender."""
    settings = settings_or_exit()
    if socket_mode and not settings.slack_app_token:
        fail("SLACK_APP_TOKEN: --socket-mode needs an app-level token (xapp-…)")
    if settings.slack_bot_token and not settings.slack_signing_secret and not socket_mode:
        fail(
            "SLACK_SIGNING_SECRET: SLACK_BOT_TOKEN is set, but Slack's requests can't be "
            "verified without the signing secret (or use --socket-mode with SLACK_APP_TOKEN)"
        )
    if not port_is_free(host, port):
        fail(f"--port {port}: {host}:{port} is already in use (another plnbot?); pick another")
    options = ServeOptions(
        host=host,
        port=port,
        socket_mode=socket_mode,
        scheduler=not no_scheduler,
        allow_anonymous_teams=allow_anonymous_teams,
        playground=playground,
    )
    count = processes if processes is not None else settings.processes
    if count == 1:
        run_serve(settings, options)
        return
    serve_processes(settings, options, count)


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    socket_mode: bool
    scheduler: bool
    allow_anonymous_teams: bool
    playground: bool | None


def run_serve(
    settings: Settings, options: ServeOptions, *, index: int = 0, shared_port: bool = False
) -> None:
    """One serve process: build the runtime and run the aiohttp app until a signal."""
    from aiohttp import web

    from plnbot.runtime import build_runtime, configured_platforms, make_web_app

    try:
        runtime = build_runtime(
            settings,
            host=options.host,
            port=options.port,
            allow_anonymous_teams=options.allow_anonymous_teams,
            playground=options.playground,
        )
    except ConfigError as exc:
        fail(str(exc))
    log = logging.getLogger("plnbot")
    if index == 0:
        log.info("database: %s", runtime.db.engine.url.render_as_string(hide_password=True))
        platforms = configured_platforms(runtime)
        log.info("platforms configured: %s", ", ".join(platforms) if platforms else "none")
        if not platforms:
            log.info(
                "no platform configured: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN, or "
                "MICROSOFT_APP_ID and MICROSOFT_APP_PASSWORD (see README)"
            )
    # With several processes, only the first runs timed jobs (the others would find them done).
    application = make_web_app(runtime, scheduler=options.scheduler and index == 0)
    if options.socket_mode:
        from adapters.slack.setup import attach_socket_mode

        attach_socket_mode(runtime, application)
    if index == 0:
        public = settings.public_url or f"http://{options.host}:{options.port}"
        typer.echo(f"PLN Bot is running at {public} (health: {public}/healthz). Ctrl-C stops it.")
        if runtime.playground:
            typer.echo(f"Try it in your browser: {public}/playground")
    fast_event_loop()
    web.run_app(
        application,
        host=options.host,
        port=options.port,
        print=None,
        access_log=None,
        reuse_port=shared_port or None,
    )


def serve_processes(settings: Settings, options: ServeOptions, count: int) -> None:
    """`--processes N`: N serve processes sharing the port, supervised (plnbot/processes.py)."""
    from plnbot.processes import Supervisor
    from plnbot.runtime import open_database

    if settings.database_url.startswith("sqlite"):
        fail(
            f"--processes {count}: several serve processes need PostgreSQL (DATABASE_URL); "
            "SQLite takes one writer at a time"
        )
    if options.socket_mode:
        fail(f"--processes {count}: Socket Mode runs in one process; leave out --socket-mode")
    if options.playground:
        fail(f"--processes {count}: the playground keeps its page in one process's memory")
    try:  # checked once here, so a child never starts on a database it can't use
        open_database(settings, upgrade_sqlite=False).dispose()
    except ConfigError as exc:
        fail(str(exc))
    os.environ["PLNBOT_PROCESSES"] = str(count)  # the children pace to their share of the limits
    no_playground = dataclasses.replace(options, playground=False)
    supervisor = Supervisor(
        count, functools.partial(_serve_child, no_playground), grace=settings.shutdown_grace
    )
    raise typer.Exit(supervisor.run())


def _serve_child(options: ServeOptions, index: int) -> None:
    """A child of `serve --processes N` (spawned: it reads the settings afresh)."""
    try:
        run_serve(settings_or_exit(), options, index=index, shared_port=True)
    except typer.Exit as exc:  # fail(): its line is on stderr; the supervisor reads the code
        sys.exit(exc.exit_code)


@app.command()
def worker() -> None:
    """Run the scheduler and the outbox sender, without web endpoints."""
    from plnbot.runtime import build_runtime, start_workers, stop_workers

    settings = settings_or_exit()
    try:
        runtime = build_runtime(settings, upgrade_sqlite=True, playground=False)
    except ConfigError as exc:
        fail(str(exc))

    async def run() -> None:
        start_workers(runtime, scheduler=True)
        try:
            await asyncio.Event().wait()
        finally:
            await stop_workers(runtime)

    typer.echo("PLN Bot worker running (scheduler and outbox sender). Ctrl-C stops it.")
    fast_event_loop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the newest schema."""
    from storage.db import Database, DatabaseError

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        database.ping()
    except DatabaseError as exc:
        fail(f"DATABASE_URL: {exc}")
    database.upgrade()
    typer.echo(f"Database is at revision {database.current_revision()}.")


@app.command()
def digest(
    community: Annotated[str, typer.Argument(help="Community name, channel id or number.")],
    post: Annotated[bool, typer.Option("--post", help="Post it to the community channel.")] = False,
    week: Annotated[
        str | None, typer.Option(help="ISO week, YYYY-Www (default: this week).")
    ] = None,
) -> None:
    """Print (or post) a community's digest for a week."""
    import sqlalchemy as sa
    from sqlmodel import col, select

    from bot.core.clock import week_bounds
    from bot.features.digests import (
        current_week,
        prepare_intro,
        rank_artifacts,
        render_digest,
        schedule_digest,
    )
    from plnbot.runtime import build_runtime
    from storage.models import Community

    settings = settings_or_exit()
    if week is not None:
        try:
            week_bounds(week)
        except ValueError:
            fail(f"--week: not an ISO week: {week!r} (expected YYYY-Www, like 2026-W48)")
    if not post:
        require_existing_database(settings)  # reading never creates a database
    try:
        runtime = build_runtime(settings, playground=False, upgrade_sqlite=post)
    except ConfigError as exc:
        fail(str(exc))
    if week is not None:
        try:
            week_bounds(week)
        except ValueError:
            fail(f"--week: not an ISO week: {week!r} (expected YYYY-Www, like 2026-W48)")
    with runtime.db.session() as session:
        # col(): the typed column, so each comparison is a SQL expression (not a bool) to mypy
        clauses = [col(Community.name) == community, col(Community.channel_id) == community]
        if community.isdigit():
            clauses.append(col(Community.id) == int(community))
        found = session.exec(select(Community).where(sa.or_(*clauses))).all()
        if len(found) != 1:
            fail(
                f"community {community!r}: {'not found' if not found else 'ambiguous, use its number'}"
            )
        target = found[0]
        chosen = week or current_week(target, runtime.clock.now())
        ranked = rank_artifacts(session, target, chosen)
        prompts, llm = runtime.bot.prompts, runtime.bot.llm
        intro = None
        if llm.enabled:

            async def commit_then_ask(key: Hashable, ask: Callable[[], Awaitable[Any]]) -> Any:
                session.commit()  # nothing stays locked while the model answers
                return await ask()

            intro = asyncio.run(
                prepare_intro(session, prompts, llm, target, chosen, ranked, asker=commit_then_ask)
            )
        text, _card = render_digest(
            session,
            prompts,
            target,
            chosen,
            ranked,
            intro=intro,
            min_group=runtime.settings.min_group,
        )
        if post:
            if not runtime.platforms:
                fail("--post needs a configured platform (SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET)")
            queued = schedule_digest(session, target, chosen, runtime.clock.now())
    typer.echo(text)
    if post:
        asyncio.run(runtime.sender.deliver_due())
        typer.echo("Posted." if queued else "Already posted for that week; not posted again.")


@app.command("slack-manifest")
def slack_manifest(
    url: Annotated[
        str, typer.Option(help="Public base URL of `plnbot serve`.")
    ] = "https://bot.example.org",
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Manifest for Socket Mode.")
    ] = False,
) -> None:
    """Print the Slack app manifest (JSON) to paste when creating the app."""
    from adapters.slack.manifest import build_manifest

    if not url.startswith(("https://", "http://")):
        fail(f"--url: {url!r} is not an http(s) URL")
    typer.echo(json.dumps(build_manifest(url, socket_mode=socket_mode), indent=2))


@app.command("teams-manifest")
def teams_manifest(
    app_id: Annotated[
        str | None,
        typer.Option(
            "--app-id", help="The bot's Microsoft App ID (a GUID; default: MICROSOFT_APP_ID)."
        ),
    ] = None,
    url: Annotated[
        str, typer.Option(help="Public https base URL of `plnbot serve`.")
    ] = "https://bot.example.org",
    out: Annotated[Path, typer.Option(help="Where to write the app package (a zip).")] = Path(
        "plnbot-teams.zip"
    ),
) -> None:
    """Write the Teams app package (manifest v1.29 and icons) to upload in Teams."""
    from adapters.teams.manifest import MANIFEST_VERSION, build_package, valid_app_id

    if app_id is None:
        app_id = settings_or_exit().microsoft_app_id
    if not app_id:
        fail("--app-id: needed (the bot's Microsoft App ID), or set MICROSOFT_APP_ID")
    if not valid_app_id(app_id):
        fail(f"--app-id: {app_id!r} is not a Microsoft App ID (a GUID like 00000000-0000-…)")
    if not url.startswith("https://"):
        fail(f"--url: {url!r} is not an https URL (Teams requires https)")
    try:
        out.write_bytes(build_package(app_id, url))
    except OSError as exc:
        fail(f"--out: can't write {out}: {exc.strerror or exc}")
    typer.echo(
        f"Wrote {out} (Teams manifest {MANIFEST_VERSION}, bot {app_id}). Upload it in Teams: "
        "Apps → Manage your apps → Upload an app."
    )


tokens_app = typer.Typer(
    help="Slack tokens stored by OAuth installs, encrypted with PLNBOT_TOKEN_KEY. To rotate: "
    "make a key, set PLNBOT_TOKEN_KEY=new,old, run `plnbot tokens rotate`, then drop the old key.",
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("new-key")
def tokens_new_key() -> None:
    """Print a fresh key for PLNBOT_TOKEN_KEY."""
    from storage.secrets import new_key

    typer.echo(new_key())


@tokens_app.command("rotate")
def tokens_rotate() -> None:
    """Re-encrypt every stored Slack token, plain-text ones too, with the first key."""
    import sqlalchemy as sa

    from storage.db import Database, DatabaseError
    from storage.secrets import TokenCipher, TokenKeyError, rotate_tokens
    from storage.slack_tables import slack_bots

    settings = settings_or_exit()
    if not settings.token_key:
        fail("PLNBOT_TOKEN_KEY: not set; make a key with `plnbot tokens new-key`")
    url = sa.engine.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        fail(f"DATABASE_URL: no database at {url.database!r}")  # and none made by mistake
    database = Database(settings.database_url)
    try:
        database.ping()
        if not sa.inspect(database.engine).has_table(slack_bots.name):
            fail("DATABASE_URL: no PLN Bot tables there yet (run `plnbot db upgrade`)")
        result = rotate_tokens(database.engine, TokenCipher(settings.token_key))
    except DatabaseError as exc:
        fail(f"DATABASE_URL: {exc}")
    except TokenKeyError as exc:
        fail(f"PLNBOT_TOKEN_KEY: {exc}")
    except ValueError as exc:  # a sealed token too long for its column
        fail(str(exc))
    finally:
        database.dispose()
    typer.echo(
        f"Rewrote {result.rewritten} of {result.rows} rows holding Slack tokens "
        f"({result.plain} were in plain text); all are now encrypted with the first key."
    )


def main() -> None:
    try:
        app()
    except ConfigError as exc:  # pragma: no cover - safety net
        typer.echo(f"plnbot: {exc}", err=True)
        sys.exit(2)
