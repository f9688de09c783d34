"""`plnbot teams-manifest`: a Teams app package that Teams accepts (manifest 1.17 limits,
bot scopes, commands that exist, icons of the right size and colours)."""

from __future__ import annotations

import json
import re
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

from typer.testing import CliRunner

from bot.dispatch import build_router
from plnbot.cli import app as cli

APP_ID = "5e0b6c1a-7d2e-4f3a-9b8c-0d1e2f3a4b5c"


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

    assert tuple(int(p) for p in manifest["manifestVersion"].split(".")) >= (1, 17)
    assert "v1.17" in manifest["$schema"]
    assert uuid.UUID(manifest["id"]) and re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["name"]["full"]) <= 100
    assert len(manifest["description"]["short"]) <= 80
    assert len(manifest["description"]["full"]) <= 4000
    assert len(manifest["developer"]["name"]) <= 32
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert manifest["developer"][key].startswith("https://pln.example.org")
    assert re.fullmatch(r"#[0-9A-F]{6}", manifest["accentColor"])
    assert manifest["validDomains"] == ["pln.example.org"]

    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is True
    known = set(build_router().commands)
    covered = set()
    for command_list in bot["commandLists"]:
        assert 1 <= len(command_list["commands"]) <= 10
        for command in command_list["commands"]:
            assert len(command["title"]) <= 32 and len(command["description"]) <= 128
            assert command["title"] in known, command["title"]
        covered.update(command_list["scopes"])
    assert covered == {"personal", "team", "groupChat"}
    assert manifest["webApplicationInfo"]["id"] == APP_ID
    names = {p["name"] for p in manifest["authorization"]["permissions"]["resourceSpecific"]}
    assert "ChannelMessage.Read.Group" in names

    width, height, pixels = color
    assert (width, height) == (192, 192)
    assert all(a == 255 for *_, a in pixels)  # the colour icon is opaque
    assert len({p[:3] for p in pixels}) > 2  # and has a mark on it
    width, height, pixels = outline
    assert (width, height) == (32, 32)
    assert all(p[:3] == (255, 255, 255) for p in pixels)
    assert {p[3] for p in pixels} >= {0, 255}  # white on transparency


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
