"""The optional model (any OpenAI-compatible server). The bot works fully without it.

A teacher never waits on or sees a model error: a hard timeout, one retry, then the
template wording. No names or user ids are ever put in a request.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import yaml

from bot.config import Settings

log = logging.getLogger(__name__)


class ModelClient:
    """Personalises wording when a model is configured; otherwise returns the template."""

    def __init__(self, client: Any | None = None, *, model: str = "", max_tokens: int = 200):
        self._client = client
        self.model = model
        self.max_tokens = max_tokens
        self._system = yaml.safe_load(
            resources.files("prompts").joinpath("llm.yaml").read_text("utf-8")
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        if not settings.llm_enabled:
            return cls()
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=10.0,
            max_retries=1,
        )
        return cls(client, model=settings.llm_model)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def personalise_prompt(self, template: str, *, profile: dict[str, str]) -> str:
        """Adapt `template` to an anonymous profile (role, SNIC, goal); fall back to it."""
        if self._client is None:
            return template
        details = "\n".join(f"{key}: {value}" for key, value in profile.items() if value)
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                max_tokens=self.max_tokens,
                messages=[
                    {"role": "system", "content": self._system["personalise_prompt"]},
                    {"role": "user", "content": f"Base question: {template}\n{details}"},
                ],
            )
            text = (response.choices[0].message.content or "").strip()
        except Exception as exc:  # any model failure means the template wording
            log.warning("model unavailable, using the template: %s", exc.__class__.__name__)
            return template
        return text[:500] if text else template
