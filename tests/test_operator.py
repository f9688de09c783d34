"""An operator's first hour: every mistake is one line on stderr naming what to fix, exit 2;
reading commands never create a database; the start is a few clear lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings

PLNBOT = [sys.executable, "-c", "from plnbot.cli import main; main()"]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
    clean = {k: v for k, v in os.environ.items() if k not in _OPERATOR_VARIABLES}
    return subprocess.run(
        [*PLNBOT, *args],
        cwd=tmp_path,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_OPERATOR_VARIABLES = {f.alias for f in Settings.model_fields.values() if f.alias}


def one_line_naming(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"plnbot: {name}"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PLNBOT_PUBLIC_URL": "notaurl"}, "PLNBOT_PUBLIC_URL"),
        ({"PLNBOT_HOLIDAYS": "XX"}, "PLNBOT_HOLIDAYS"),
        ({"PLNBOT_LLM": "maybe"}, "PLNBOT_LLM"),
        ({"SLACK_BOT_TOKEN": "xoxb-1-2-3"}, "SLACK_SIGNING_SECRET"),
        (
            {"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"},
            "DATABASE_URL: database does not answer: ",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_it(tmp_path: Path, env: dict[str, str], name: str) -> None:
    one_line_naming(run(tmp_path, "serve", "--port", "1", env=env), name)


def test_a_port_in_use_is_one_line_too(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_naming(run(tmp_path, "serve", "--port", str(port)), "--port")
    assert not (tmp_path / "plnbot.db").exists()


def test_reading_commands_never_create_a_database(tmp_path: Path) -> None:
    one_line_naming(run(tmp_path, "digest", "Math PLN"), "DATABASE_URL: no database at")
    for reading in (["slack-manifest"], ["--version"], ["--help"]):
        assert run(tmp_path, *reading).returncode == 0
    assert list(tmp_path.iterdir()) == []
    assert run(tmp_path, "--version").stdout.startswith("plnbot ")


def test_the_default_start_is_a_few_clear_lines(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen(
        [*PLNBOT, "serve", "--port", str(port)],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in _OPERATOR_VARIABLES},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if "Try it in your browser" in line:
            break
    process.terminate()
    process.wait(timeout=20)
    assert len(lines) <= 6, lines
    assert not any("alembic" in line or "Teams" in line for line in lines), lines
    assert any(f"http://127.0.0.1:{port}/playground" in line for line in lines)
