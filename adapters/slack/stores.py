"""Bolt's OAuth stores on our database: slack_sdk's SQLAlchemy stores on our engine (tables
created by our migrations), run in a worker thread behind Bolt's async store interfaces.

Tokens are sealed here, on their way in and out of slack_sdk's store (storage/secrets.py), so
slack_sdk itself stays as it ships: it reads and writes ciphertext and never knows.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy.engine import Engine

from bot.config import ConfigError
from storage.secrets import SECRET_COLUMNS, TokenCipher, TokenKeyError, is_sealed
from storage.slack_tables import slack_bots, slack_installations

log = logging.getLogger(__name__)

STATE_EXPIRY_SECONDS = 600

Stored = TypeVar("Stored", Installation, Bot)


class InstallationStore(AsyncInstallationStore):
    """Installations in our database, their tokens encrypted with `token_key`
    (PLNBOT_TOKEN_KEY); `on_change(team_id, installer)` keeps our workspace row (the installer
    is a coach) and the platform's token cache in step."""

    def __init__(
        self,
        client_id: str,
        engine: Engine,
        on_change: Callable[[str, str | None], None] | None = None,
        *,
        token_key: str | None,
    ):
        if not token_key:
            raise ConfigError("PLNBOT_TOKEN_KEY: needed to store Slack OAuth installs")
        self._store = SQLAlchemyInstallationStore(client_id=client_id, engine=engine)
        self._cipher = TokenCipher(token_key)
        self._on_change = on_change or (lambda team, user: None)
        self._reported: set[tuple[str, str]] = set()  # (what, team): one log line each

    @property
    def logger(self) -> Any:
        return self._store.logger

    async def async_save(self, installation: Installation) -> None:
        # slack_sdk's save also saves installation.to_bot(): sealed here, both rows are.
        sealed = self._sealed(installation, slack_installations.name)
        await asyncio.to_thread(self._store.save, sealed)
        self._on_change(installation.team_id or "", installation.user_id)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self._store.save_bot, self._sealed(bot, slack_bots.name))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        def find() -> Bot | None:
            bot = self._store.find_bot(
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )
            return self._opened(bot, slack_bots.name)

        return await asyncio.to_thread(find)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        def find() -> Installation | None:
            # slack_sdk may copy the newest bot row's token into the installation: sealed too,
            # so everything on the object is opened here, once.
            installation = self._store.find_installation(
                enterprise_id=enterprise_id,
                team_id=team_id,
                user_id=user_id,
                is_enterprise_install=is_enterprise_install,
            )
            return self._opened(installation, slack_installations.name)

        return await asyncio.to_thread(find)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(
            self._store.delete_bot, enterprise_id=enterprise_id, team_id=team_id
        )
        self._on_change(team_id or "", None)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self._store.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )
        self._on_change(team_id or "", None)

    async def bot_token(self, team_id: str) -> str | None:
        bot = await self.async_find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot else None

    def _sealed(self, stored: Stored, table: str) -> Stored:
        """A copy with its secrets encrypted: the caller (Bolt's OAuth flow) goes on using the
        object it passed."""
        sealed = copy.copy(stored)
        for name in SECRET_COLUMNS[table]:
            setattr(sealed, name, self._cipher.seal_column(table, name, getattr(stored, name)))
        return sealed

    def _opened(self, stored: Stored | None, table: str) -> Stored | None:
        """`stored` with its secrets decrypted (a fresh object from slack_sdk, changed in
        place). One none of our keys opens counts as not installed, with an error saying why:
        the workspace is unreachable, the rest of the bot goes on."""
        if stored is None:
            return None
        names = SECRET_COLUMNS[table]
        team = stored.team_id or stored.enterprise_id or "?"
        try:
            opened = {name: self._cipher.open(getattr(stored, name)) for name in names}
        except TokenKeyError:
            self._report_once(
                "unreadable",
                team,
                logging.ERROR,
                "the stored Slack token for workspace %s opens with none of the keys in "
                "PLNBOT_TOKEN_KEY, so the bot cannot act there: put the key it was encrypted "
                "with back (after the current one, comma-separated) or reinstall the app there",
            )
            return None
        if any(getattr(stored, n) is not None and not is_sealed(getattr(stored, n)) for n in names):
            self._report_once(
                "plain",
                team,
                logging.WARNING,
                "the Slack token for workspace %s is stored in plain text (from before "
                "PLNBOT_TOKEN_KEY): run `plnbot tokens rotate` to encrypt it",
            )
        for name, value in opened.items():
            setattr(stored, name, value)
        return stored

    def _report_once(self, what: str, team: str, level: int, message: str) -> None:
        # Bolt looks the installation up on every request: one line per workspace is enough.
        if (what, team) not in self._reported:
            self._reported.add((what, team))
            log.log(level, message, team)


class StateStore(AsyncOAuthStateStore):
    def __init__(self, engine: Engine):
        self._store = SQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_EXPIRY_SECONDS, engine=engine
        )

    @property
    def logger(self) -> Any:
        return self._store.logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self._store.issue, *args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self._store.consume, state)
