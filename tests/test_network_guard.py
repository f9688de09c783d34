"""Unit tests run offline: reaching past this machine fails loudly (conftest `_no_network`),
while loopback (the local fakes, PostgreSQL on 127.0.0.1) keeps working."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

OUTSIDE = "192.0.2.1"  # TEST-NET-1: never routed, so the guard is what stops us, not the network


def test_a_socket_to_a_non_loopback_address_fails() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(RuntimeError, match="test tried to reach the network"),
    ):
        sock.connect((OUTSIDE, 443))


def test_an_http_client_reaching_out_fails() -> None:
    with pytest.raises(RuntimeError, match="test tried to reach the network"):
        urllib.request.urlopen(f"http://{OUTSIDE}/", timeout=1)


async def test_asyncio_connections_reaching_out_fail() -> None:
    with pytest.raises(RuntimeError, match="test tried to reach the network"):
        await asyncio.wait_for(asyncio.open_connection(OUTSIDE, 80), timeout=2)


async def test_loopback_still_works() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        assert await reader.readline() == b"hello\n"
        writer.close()
        await writer.wait_closed()
