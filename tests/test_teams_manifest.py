"""`plnbot teams-manifest`: a Teams app package that Teams accepts, checked against the Teams
app manifest schema itself and the rules Microsoft's documentation adds to it.

tests/payloads/teams/MicrosoftTeams.schema.v1.29.json is Microsoft's schema, copied unchanged
from github.com/OfficeDev/microsoft-teams-app-schema (commit a2a2ebc, "Update Teams App
Manifest schema to v1.29"); it is MIT-licensed and its licence is next to it
(MicrosoftTeams.schema.LICENSE). `schema_problems` applies the JSON Schema keywords it uses
(draft 4, plus `const` and `if`/`then`); `manifest_problems` adds what the schema can't say:
HTTPS links on our own host, names and descriptions that differ, one bot whose id is the
app's, commands Teams can show (ten a scope, short titles) and that PLN Bot knows, valid
domains that are host names, the resource-specific permissions that exist. Each rule is shown
to bite below (a manifest broken in that one way is refused).
"""

from __future__ import annotations

import copy
import json
import re
import struct
import uuid
import zipfile
import zlib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from adapters.teams.manifest import MANIFEST_VERSION, build_manifest
from bot.core.dispatch import build_router
from plnbot.cli import app as cli

APP_ID = "5e0b6c1a-7d2e-4f3a-9b8c-0d1e2f3a4b5c"
SCHEMA_FILE = Path(__file__).parent / "payloads" / "teams" / "MicrosoftTeams.schema.v1.29.json"
MAX_COMMANDS = 10  # Teams shows at most ten commands a scope
MAX_COMMAND_TITLE = 32
MAX_COMMAND_DESCRIPTION = 128
RSC_PERMISSIONS = {  # Microsoft's resource-specific consent permissions for a team or chat
    "ChannelMessage.Read.Group",
    "ChannelMember.Read.Group",
    "ChatMessage.Read.Chat",
    "ChatMember.Read.Chat",
    "TeamSettings.Read.Group",
    "TeamMember.Read.Group",
    "ChannelSettings.Read.Group",
    "ChatSettings.Read.Chat",
}
_TYPES: dict[str, Any] = {
    "string": str,
    "object": dict,
    "array": list,
    "boolean": bool,
    "null": type(None),
}


# -- the schema ----------------------------------------------------------------------------
@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())  # type: ignore[no-any-return]


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # ECMA-262's \p{L} (any letter) is Python's [^\W\d_]
    return re.compile(pattern.replace(r"[\p{L}]", r"[^\W\d_]").replace(r"\p{L}", r"^\W\d_"))


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def schema_problems(value: Any, rule: dict[str, Any] | None = None, path: str = "") -> list[str]:
    """Where `value` breaks the Teams manifest schema (empty when it conforms)."""
    rule = schema() if rule is None else rule
    where = path or "manifest"
    if "$ref" in rule:
        return schema_problems(value, _resolve(rule["$ref"]), path)
    problems: list[str] = []
    kinds = rule.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, k) for k in kinds):
            return [f"{where}: should be {' or '.join(kinds)}, not {value!r:.60}"]
    if "enum" in rule and value not in rule["enum"]:
        problems.append(f"{where}: {value!r:.60} is not one of {rule['enum']}")
    if "const" in rule and value != rule["const"]:
        problems.append(f"{where}: should be {rule['const']!r}, not {value!r:.60}")
    if isinstance(value, str):
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            problems.append(f"{where}: longer than {rule['maxLength']} characters")
        if "minLength" in rule and len(value) < rule["minLength"]:
            problems.append(f"{where}: shorter than {rule['minLength']} characters")
        if "pattern" in rule and not _pattern(rule["pattern"]).search(value):
            problems.append(f"{where}: {value!r:.60} doesn't match {rule['pattern']}")
        if rule.get("format") == "uri" and not urlsplit(value).scheme:
            problems.append(f"{where}: {value!r:.60} is not a URI")
    if _is(value, "number"):
        if "maximum" in rule and value > rule["maximum"]:
            problems.append(f"{where}: more than {rule['maximum']}")
        if "minimum" in rule and value < rule["minimum"]:
            problems.append(f"{where}: less than {rule['minimum']}")
    if isinstance(value, list):
        if "maxItems" in rule and len(value) > rule["maxItems"]:
            problems.append(f"{where}: more than {rule['maxItems']} items")
        if "minItems" in rule and len(value) < rule["minItems"]:
            problems.append(f"{where}: fewer than {rule['minItems']} items")
        if rule.get("uniqueItems"):
            seen = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(seen)) != len(seen):
                problems.append(f"{where}: items repeat")
        if isinstance(rule.get("items"), dict):
            for index, item in enumerate(value):
                problems += schema_problems(item, rule["items"], f"{where}[{index}]")
    if isinstance(value, dict):
        for key in rule.get("required", []):
            if key not in value:
                problems.append(f"{where}: {key!r} is required")
        properties = rule.get("properties", {})
        for key, item in value.items():
            if key in properties:
                problems += schema_problems(item, properties[key], f"{where}.{key}")
            elif rule.get("additionalProperties") is False:
                problems.append(f"{where}: {key!r} is not a property here")
            elif isinstance(rule.get("additionalProperties"), dict):
                problems += schema_problems(item, rule["additionalProperties"], f"{where}.{key}")
        if "minProperties" in rule and len(value) < rule["minProperties"]:
            problems.append(f"{where}: needs at least {rule['minProperties']} properties")
        for key, needs in rule.get("dependencies", {}).items():
            if key in value:
                if isinstance(needs, list):
                    problems += [f"{where}: {key!r} needs {n!r}" for n in needs if n not in value]
                else:
                    problems += schema_problems(value, needs, path)
    for sub in rule.get("allOf", []):
        problems += schema_problems(value, sub, path)
    if "anyOf" in rule and all(schema_problems(value, sub, path) for sub in rule["anyOf"]):
        problems.append(f"{where}: matches none of the allowed shapes")
    if "oneOf" in rule:
        matching = [sub for sub in rule["oneOf"] if not schema_problems(value, sub, path)]
        if len(matching) != 1:
            problems.append(f"{where}: should match exactly one shape, matches {len(matching)}")
    if "if" in rule and not schema_problems(value, rule["if"], path):
        problems += schema_problems(value, rule.get("then", {}), path)
    return problems


# -- what the documentation adds ----------------------------------------------------------
def manifest_problems(manifest: dict[str, Any], *, host: str) -> list[str]:
    """The schema's problems and the documented rules' (see the module docstring)."""
    problems = schema_problems(manifest)
    version = manifest.get("manifestVersion")
    if f"/v{version}/" not in str(manifest.get("$schema")):
        problems.append("$schema: should be the schema of manifestVersion")
    if not re.fullmatch(r"\d+\.\d+\.\d+", str(manifest.get("version"))):
        problems.append("version: should be a semantic version (1.0.0)")
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        url = urlsplit(str(manifest.get("developer", {}).get(key)))
        if url.scheme != "https" or url.hostname != host:
            problems.append(f"developer.{key}: should be an https:// page of {host}")
    for part in ("name", "description"):
        texts = manifest.get(part, {})
        if texts.get("short") and texts.get("short") == texts.get("full"):
            problems.append(f"{part}: short and full should differ")
    description = manifest.get("description", {})
    if description.get("short") and description["short"] in description.get("full", ""):
        problems.append("description.full: shouldn't repeat the short description")
    bots = manifest.get("bots") or []
    if len(bots) != 1 or bots[0].get("botId") != manifest.get("id"):
        problems.append("bots: one bot, whose id is the app's (updates keep it)")
    if manifest.get("webApplicationInfo", {}).get("id") != manifest.get("id"):
        problems.append("webApplicationInfo.id: should be the bot's app id")
    known = set(build_router().commands)
    for bot in bots:
        scopes = set(bot.get("scopes") or [])
        listed: list[str] = []
        for index, command_list in enumerate(bot.get("commandLists") or []):
            where = f"bots.commandLists[{index}]"
            listed += command_list.get("scopes") or []
            if not set(command_list.get("scopes") or []) <= scopes:
                problems.append(f"{where}.scopes: a scope the bot isn't in")
            commands = command_list.get("commands") or []
            if not 1 <= len(commands) <= MAX_COMMANDS:
                problems.append(f"{where}: 1 to {MAX_COMMANDS} commands (Teams shows ten)")
            for command in commands:
                title, text = command.get("title", ""), command.get("description", "")
                if len(title) > MAX_COMMAND_TITLE or len(text) > MAX_COMMAND_DESCRIPTION:
                    problems.append(f"{where}: {title!r} is longer than Teams shows")
                if title not in known:
                    problems.append(f"{where}: {title!r} is not a PLN Bot command")
        if len(listed) != len(set(listed)):
            problems.append("bots.commandLists: one command list a scope")
    domains = manifest.get("validDomains") or []
    for domain in domains:
        bare = str(domain).removeprefix("*.")
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", bare):
            problems.append(f"validDomains: {domain!r} should be a host name, no scheme or path")
    if host not in domains:
        problems.append(f"validDomains: should list {host}, where the bot's pages are")
    rsc = manifest.get("authorization", {}).get("permissions", {}).get("resourceSpecific", [])
    for permission in rsc:
        if permission.get("name") not in RSC_PERMISSIONS:
            problems.append(f"authorization: {permission.get('name')!r} is not an RSC permission")
    if manifest.get("supportsChannelFeatures") and tuple(map(int, version.split("."))) < (1, 25):
        problems.append("supportsChannelFeatures: needs manifest 1.25 or newer")
    return problems


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and RGBA pixels of a PNG written without filters (as ours are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, width, height, idat = 8, 0, 0, b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 6)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * 4
    pixels = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0
        pixels += [tuple(row[1 + x * 4 : 5 + x * 4]) for x in range(width)]
    return width, height, pixels


def test_the_package_is_a_valid_teams_app(tmp_path: Path) -> None:
    out = tmp_path / "plnbot-teams.zip"
    result = CliRunner().invoke(
        cli,
        [
            "teams-manifest",
            "--app-id",
            APP_ID,
            "--url",
            "https://pln.example.org",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Upload it in Teams" in result.output
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color = read_png(package.read("color.png"))
        outline = read_png(package.read("outline.png"))

    assert manifest_problems(manifest, host="pln.example.org") == []
    assert (
        manifest["manifestVersion"]
        == MANIFEST_VERSION
        == schema()["properties"]["manifestVersion"].get("const")
    )
    assert uuid.UUID(manifest["id"])
    (bot,) = manifest["bots"]
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is True
    covered = {scope for command_list in bot["commandLists"] for scope in command_list["scopes"]}
    assert covered == {"personal", "team", "groupChat"}
    # shared and private channels, and who joins them
    assert manifest["supportsChannelFeatures"] == "tier1"
    assert sorted(manifest["supportedChannelTypes"]) == ["privateChannels", "sharedChannels"]
    names = {p["name"] for p in manifest["authorization"]["permissions"]["resourceSpecific"]}
    assert {"ChannelMessage.Read.Group", "ChannelMember.Read.Group"} <= names
    assert {manifest["icons"]["color"], manifest["icons"]["outline"]} == {
        "color.png",
        "outline.png",
    }

    width, height, pixels = color
    assert (width, height) == (192, 192)
    assert all(a == 255 for *_, a in pixels)  # the colour icon is opaque
    assert len({p[:3] for p in pixels}) > 2  # and has a mark on it
    width, height, pixels = outline
    assert (width, height) == (32, 32)
    assert all(p[:3] == (255, 255, 255) for p in pixels)
    assert {p[3] for p in pixels} >= {0, 255}  # white on transparency


def _broken(change: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(build_manifest(APP_ID, "https://pln.example.org"))
    change(manifest)
    return manifest


def _set(path: str, value: Any) -> Any:
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = manifest
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


_DELETE = object()
BOT_COMMANDS = "bots.0.commandLists.0.commands"
BROKEN = {
    "a required field missing": (_set("developer", _DELETE), "'developer' is required"),
    "an unknown field": (_set("botsv2", []), "'botsv2' is not a property"),
    "an app id that is no GUID": (_set("id", "pln-bot"), "manifest.id"),
    "another manifest version": (_set("manifestVersion", "1.17"), "should be '1.29'"),
    "a version that is no semver": (_set("version", "1.0"), "semantic version"),
    "an http link": (_set("developer.privacyUrl", "http://pln.example.org/p"), "https://"),
    "a link elsewhere": (_set("developer.websiteUrl", "https://elsewhere.example"), "https://"),
    "a short name over 30": (_set("name.short", "P" * 31), "name.short: longer than 30"),
    "a full name over 100": (_set("name.full", "P" * 101), "name.full: longer than 100"),
    "names that are the same": (_set("name.full", "PLN Bot"), "short and full should differ"),
    "a short description over 80": (_set("description.short", "d" * 81), "longer than 80"),
    "a full description over 4000": (_set("description.full", "d" * 4001), "longer than 4000"),
    "a developer name over 32": (_set("developer.name", "D" * 33), "longer than 32"),
    "a colour that isn't one": (_set("accentColor", "blue"), "accentColor"),
    "an unknown bot scope": (_set("bots.0.scopes", ["personal", "meetings"]), "not one of"),
    "a second bot": (lambda m: m["bots"].append(copy.deepcopy(m["bots"][0])), "more than 1"),
    "a bot id that isn't the app's": (_set("bots.0.botId", str(uuid.uuid4())), "one bot"),
    "eleven commands a scope": (
        lambda m: m["bots"][0]["commandLists"][0]["commands"].append({"title": "help"}),
        "1 to 10 commands",
    ),
    "a command that doesn't exist": (
        _set(f"{BOT_COMMANDS}.0", {"title": "dance", "description": "d"}),
        "not a PLN Bot command",
    ),
    "a command title over 32": (
        _set(f"{BOT_COMMANDS}.0.title", "goal add " + "x" * 30),
        "longer than Teams shows",
    ),
    "a command list for a scope the bot lacks": (
        _set("bots.0.scopes", ["personal", "team"]),
        "a scope the bot isn't in",
    ),
    "two lists for one scope": (
        _set("bots.0.commandLists.1.scopes", ["personal"]),
        "one command list a scope",
    ),
    "a valid domain with a scheme": (
        _set("validDomains", ["https://pln.example.org"]),
        "should be a host name",
    ),
    "the bot's host not a valid domain": (_set("validDomains", ["other.example"]), "should list"),
    "an unknown channel feature tier": (_set("supportsChannelFeatures", "tier9"), "not one of"),
    "an unknown channel type": (_set("supportedChannelTypes", ["secretChannels"]), "not one of"),
    "an unknown RSC permission": (
        _set("authorization.permissions.resourceSpecific.0.name", "Everything.ReadWrite.All"),
        "is not an RSC permission",
    ),
    "an RSC permission of an unknown type": (
        _set("authorization.permissions.resourceSpecific.0.type", "Root"),
        "not one of",
    ),
    "an unknown permission": (_set("permissions", ["identity", "everything"]), "not one of"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_manifest_rule_bites(case: str) -> None:
    change, expected = BROKEN[case]
    problems = manifest_problems(_broken(change), host="pln.example.org")
    assert any(expected in p for p in problems), problems


def test_the_schema_rules_hold_for_what_the_schema_file_says() -> None:
    """The checker reads the file's own limits (not ones written here)."""
    properties = schema()["properties"]
    assert properties["name"]["properties"]["short"]["maxLength"] == 30
    assert properties["bots"]["maxItems"] == 1
    assert "tier1" in properties["supportsChannelFeatures"]["enum"]
    assert schema_problems(5, properties["$schema"]) != []


def test_bad_options_exit_2_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    cases = {
        "--app-id": ["teams-manifest", "--app-id", "not-a-guid", "--out", str(tmp_path / "a.zip")],
        "--url": [
            "teams-manifest",
            "--app-id",
            APP_ID,
            "--url",
            "http://pln.example.org",
            "--out",
            str(tmp_path / "b.zip"),
        ],
    }
    for option, args in cases.items():
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        assert result.output.strip().splitlines()[-1].startswith(f"plnbot: {option}:")
        assert not list(tmp_path.iterdir())
