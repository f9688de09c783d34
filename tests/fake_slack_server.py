"""Run the fake Slack Web API as its own process (for multi-process tests and benchmarks).

    python -m tests.fake_slack_server --port 8765 [--rate-limit 50]

Recorded calls are served at GET /_calls/<method>.
"""

from __future__ import annotations

import argparse
import asyncio

from tests.slack_fakes import FakeSlackAPI


async def serve(port: int, rate_limit: float | None, seconds: float) -> None:
    fake = FakeSlackAPI(port=port, rate_limit=rate_limit)
    await fake.start()
    print(f"fake Slack Web API on {fake.base_url}", flush=True)
    try:
        await asyncio.sleep(seconds)  # bounded: a forgotten server stops by itself
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--seconds", type=float, default=1800)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.rate_limit, args.seconds))


if __name__ == "__main__":
    main()
