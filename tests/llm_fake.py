"""A local OpenAI-compatible server on 127.0.0.1 for the model tests: the real `openai`
client talks to it over HTTP. It records every request and answers as told:
`ok` (a chat completion), `slow` (the same, after `delay` seconds), `error` (HTTP 500),
`malformed` (200 with a body that is not JSON), `empty` (a completion with no text);
`then` lists the modes of the next requests before `mode` applies again."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeModel:
    mode: str = "ok"
    reply: str = "What small routine already helps your students say what they need next?"
    delay: float = 2.0
    then: list[str] = field(default_factory=list)  # modes for the next requests, in order
    usage_tokens: int = 150
    requests: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def texts(self) -> str:
        """Everything every request sent, as one string (for privacy assertions)."""
        return "\n".join(body.decode("utf-8", "replace") for body in self.raw)

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.raw.append(body)
        self.requests.append(json.loads(body))
        mode = self.then.pop(0) if self.then else self.mode
        if mode == "error":
            return web.json_response({"error": {"message": "boom", "type": "server"}}, status=500)
        if mode == "malformed":
            return web.Response(text='{"id": "x", "choices": [', content_type="application/json")
        if mode == "slow":
            await asyncio.sleep(self.delay)
        content = "" if mode == "empty" else self.reply
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 1764000000,
                "model": self.requests[-1].get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": self.usage_tokens - 30,
                    "completion_tokens": 30,
                    "total_tokens": self.usage_tokens,
                },
            }
        )
