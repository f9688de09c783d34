"""The import rules: `bot/` and `storage/` never import a platform SDK, the web stack or the
edges, `storage/` never imports `bot/`, and no module of bot/, adapters/, storage/ or plnbot/
imports itself back through others (no cycle, counting what runs when a module is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
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


# No cycles. What runs at import time counts: module-level imports (inside `if`, `try` and
# class bodies too), not those inside functions, nor those under `if TYPE_CHECKING:`.
PROJECT = ("bot", "adapters", "storage", "plnbot")


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file, for every importable module of the project (Alembic's scripts
    are loaded by path, not imported)."""
    found = {}
    for package in PROJECT:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node.test):
            yield from _import_time(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _import_time(inner)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules importing it runs (a package's `__init__` included)."""
    modules = project_modules(root)

    def resolve(name: str) -> list[str]:
        """The module `name` and the packages above it, as far as they are the project's."""
        chain = []
        while name:
            if name in modules:
                chain.append(name)
            name = name.rpartition(".")[0]
        return chain

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _import_time(ast.parse(path.read_text("utf-8")).body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.update(resolve(alias.name))
                continue
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                targets.update(resolve(full if full in modules else base))
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) per group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for group in groups:
        start = min(group)
        paths = {start: [start]}
        queue = [start]
        while queue:  # the shortest way from `start` back to itself, inside the group
            node = queue.pop(0)
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    found.append([*paths[node], start])
                    queue = []
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
    return sorted(found)


def test_no_module_imports_itself_back() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_graph_sees_the_project() -> None:
    graph = import_graph()
    assert {"bot", "bot.core", "bot.core.dispatch"} <= graph["plnbot.runtime"]
    assert "storage.db" in graph["bot.core.dispatch"]
    # Imported inside build_runtime, and only for the type checker: not at import time.
    assert not {m for m in graph["plnbot.runtime"] if m.startswith("adapters")}


def test_the_cycle_check_finds_cycles_and_ignores_what_runs_later(tmp_path: Path) -> None:
    (tmp_path / "bot" / "inner").mkdir(parents=True)
    for package in PROJECT:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("", "utf-8")
    (tmp_path / "bot" / "inner" / "__init__.py").write_text("", "utf-8")
    (tmp_path / "bot" / "a.py").write_text("from bot.inner import b\n", "utf-8")
    (tmp_path / "bot" / "inner" / "b.py").write_text(
        "try:\n    from .. import c\nexcept ImportError:\n    pass\n", "utf-8"
    )
    (tmp_path / "bot" / "c.py").write_text("import bot.a\n", "utf-8")
    (tmp_path / "storage" / "x.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from storage.y import Y\n"
        "def later():\n"
        "    from storage import y\n",
        "utf-8",
    )
    (tmp_path / "storage" / "y.py").write_text("from storage.x import later\n", "utf-8")
    found = cycles(import_graph(tmp_path))
    assert found == [["bot.a", "bot.inner.b", "bot.c", "bot.a"]]


# The rooms of bot/, lowest first. A module imports its own room and the rooms below it,
# at any depth (inside functions too): delivery knows no feature, features know no calendar,
# and only the dispatcher, which assembles the bot, sees every room.
LAYERS = (
    ("bot.core.events", "bot.core.messages", "bot.core.clock", "bot.core.codec"),
    ("bot.config", "bot.scoring", "bot.services"),
    ("bot.core",),
    ("bot.delivery",),
    ("bot.features",),
    ("bot.schedules",),
    ("bot.core.dispatch",),
)


def layer_of(module: str) -> int | None:
    """The room `module` is in: its longest matching prefix in LAYERS."""
    best: tuple[int, int] | None = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (level, len(prefix))
    return best[0] if best else None


def upward_imports(root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted((root / "bot").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        mine = layer_of(module)
        dotted = ".".join(path.relative_to(root).parent.parts)
        for line, target in imported_modules(path.read_text("utf-8"), dotted):
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{path.relative_to(root)}:{line} imports {target} (a room above)")
    return problems


def test_no_room_of_the_bot_imports_one_above_it() -> None:
    assert upward_imports() == []


def test_the_rooms_are_where_the_modules_are() -> None:
    assert layer_of("bot.core.dispatch") == len(LAYERS) - 1
    assert layer_of("bot.core.router") == layer_of("bot.core") == 2
    assert layer_of("bot.core.messages") == 0
    assert layer_of("bot.delivery.rows") < layer_of("bot.features.digests")  # type: ignore[operator]
    every = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "bot").rglob("*.py")
    }
    assert all(layer_of(m) is not None for m in every if m.count(".") > 1), "a room not in LAYERS"
