"""The import rules that keep the core platform-neutral: `bot/` and `storage/` never import a
platform SDK, the web stack or the edges, and `storage/` never imports `bot/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = (
    "slack_bolt",
    "slack_sdk",
    "botbuilder",
    "botframework",
    "aiohttp",
    "adapters",
    "plnbot",
)
FORBIDDEN = {"bot": PLATFORM, "storage": (*PLATFORM, "bot")}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every module a file in `package` imports, at any depth (inside functions, under
    TYPE_CHECKING, relative imports resolved, `import_module("...")` calls included)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = ".".join(p for p in (base, module) if p)
            # `from x import y` may import the module x.y; `from . import y` certainly does.
            found += [(node.lineno, ".".join(p for p in (module, a.name) if p)) for a in node.names]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            first = node.args[0] if node.args else None
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                found.append((node.lineno, str(first.value)))
    return sorted(found)


def violations(package: str, root: Path = ROOT) -> list[str]:
    banned = FORBIDDEN[package]
    files = sorted((root / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    problems = []
    for path in files:
        dotted = ".".join(path.relative_to(root).parent.parts)
        for line, module in imported_modules(path.read_text("utf-8"), dotted):
            if module.split(".")[0] in banned:
                problems.append(f"{path.relative_to(root)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_core_packages_import_no_platform_code(package: str) -> None:
    assert violations(package) == []


def test_the_check_catches_every_way_of_importing(tmp_path: Path) -> None:
    (tmp_path / "storage" / "deep").mkdir(parents=True)
    (tmp_path / "storage" / "deep" / "probe.py").write_text(
        "import slack_sdk.web\n"
        "from botbuilder.core import TurnContext\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bot.context import Context\n"
        "def later():\n"
        "    import aiohttp\n"
        "    from importlib import import_module\n"
        "    import_module('adapters.slack')\n"
        "from ... import plnbot\n"
        "from ...bot import events\n"
        "from . import models\n",
        "utf-8",
    )
    found = violations("storage", root=tmp_path)
    assert [line.split(" imports ")[1] for line in found] == [
        "slack_sdk.web",
        "botbuilder.core.TurnContext",
        "bot.context.Context",
        "aiohttp",
        "adapters.slack",
        "plnbot",
        "bot.events",
    ]
