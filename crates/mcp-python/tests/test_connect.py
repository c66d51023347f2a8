"""Manager.connect: the same API over Streamable HTTP to a running
`mcp-manager serve`, whose servers several Python processes share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from conftest import fastmcp_entry, peer, processes_with, wait_until
from mcp_manager import ConfigError, Manager, NotSupported, ServerNotFound, ServerUnavailable, SyncManager


@contextlib.contextmanager
def _serve(tmp_path: Path, marker: str, *extra: str) -> Iterator["subprocess.Popen[str]"]:
    """`mcp-manager serve` of the FastMCP peer (namespace `py`) over HTTP on
    a free loopback port, with `extra` arguments; stopped with SIGTERM (and
    killed if it does not stop) when the block ends."""
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {"fastmcp": fastmcp_entry(marker, namespace="py")}}))
    process = subprocess.Popen(
        [peer("MCP_MANAGER_BIN"), "serve", "--config", str(config),
         "--http", "127.0.0.1:0", "--no-watch", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def gateway(tmp_path: Path, marker: str) -> Iterator[Tuple[str, str]]:
    """`mcp-manager serve` over HTTP with the admin API, both on free
    loopback ports; its MCP URL and admin address."""
    with _serve(tmp_path, marker, "--admin", "127.0.0.1:0") as process:
        url = admin = None
        assert process.stderr is not None
        for line in process.stderr:
            if m := re.search(r"listening on (http://\S+/mcp)", line):
                url = m.group(1)
            if m := re.search(r"admin API and metrics on (http://\S+)/", line):
                admin = m.group(1)
            if url and admin:
                break
        assert url and admin, "the gateway did not start"
        yield url, admin


def test_the_same_api_over_http(gateway: Tuple[str, str], marker: str) -> None:
    url, admin = gateway
    with SyncManager.connect(url, admin=admin) as m:
        assert "py__add" in {t["name"] for t in m.list_tools()}
        assert m.call_tool("py__add", {"a": 40, "b": 2})["content"][0]["text"] == "42"
        assert m.read_resource("peer://greeting")["contents"][0]["text"].startswith("Hello")
        assert "Lin" in m.get_prompt("py__greet", {"name": "Lin"})["messages"][0]["content"]["text"]
        servers = m.servers()
        assert [s["name"] for s in servers] == ["fastmcp"]
        types = {t["type"]: t for t in m.plugins()}
        assert types["builtin"]["kind"] == "built-in"
        assert types["http"]["aliases"] == ["streamable-http", "streamableHttp"]
        assert m.health()["healthy"] == 1
        assert 'mcp_requests_total{server="fastmcp",method="tools/call",outcome="ok"}' in m.metrics()
        deployed = m.deploy("extra", fastmcp_entry(marker, namespace="x"))
        assert deployed["state"] == "running"
        assert wait_until(lambda: "x__echo" in {t["name"] for t in m.list_tools()})
        assert m.call_tool("x__echo", {"text": "via the gateway"})["content"][0]["text"] == "via the gateway"
        assert len(m.scale("extra", 2)["instances"]) == 2
        m.undeploy("extra")
        with pytest.raises(ServerNotFound):
            m.undeploy("extra")


def test_processes_share_one_gateway_and_its_servers(gateway: Tuple[str, str], marker: str) -> None:
    url, admin = gateway
    other = textwrap.dedent(
        f"""
        import asyncio
        from mcp_manager import Manager

        async def main():
            async with Manager.connect({url!r}) as m:
                results = await asyncio.gather(
                    *[m.call_tool("py__add", {{"a": i, "b": 1}}) for i in range(20)]
                )
                print(",".join(r["content"][0]["text"] for r in results))

        asyncio.run(main())
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", other], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]

    async def mine() -> None:
        async with Manager.connect(url, admin=admin) as m:
            results = await asyncio.gather(*[m.call_tool("py__add", {"a": i, "b": 2}) for i in range(20)])
            assert [r["content"][0]["text"] for r in results] == [str(i + 2) for i in range(20)]
            for child in children:
                out, _ = child.communicate(timeout=60)
                assert child.returncode == 0
                assert out.strip() == ",".join(str(i + 1) for i in range(20))
            servers = await m.servers()
            assert servers[0]["requests"] >= 60
            # One FastMCP process served all three Python processes.
            assert len(processes_with(marker)) == 1

    asyncio.run(mine())


def test_management_without_the_admin_api_is_not_supported(gateway: Tuple[str, str]) -> None:
    url, _ = gateway
    with SyncManager.connect(url) as m:
        assert m.call_tool("py__echo", {"text": "ok"})["content"][0]["text"] == "ok"
        for call in (m.servers, m.health, m.metrics, lambda: m.undeploy("fastmcp")):
            with pytest.raises(NotSupported):
                call()


@pytest.mark.parametrize("where", ["closed port", "gateway root"])
def test_an_address_where_no_mcp_server_answers_fails_at_once(
    gateway: Tuple[str, str], where: str
) -> None:
    # A port nothing listens on, and a live gateway's root (HTTP 404).
    url = "http://127.0.0.1:1/mcp" if where == "closed port" else gateway[0].rsplit("/", 1)[0] + "/"
    manager = SyncManager.connect(url)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable) as caught:
        manager.start()
    assert time.monotonic() - started < 10
    assert f"no MCP server answers at {url}: " in caught.value.message
    assert "gateway" not in caught.value.message.replace(url, "")
    manager.close()


def test_a_connected_manager_says_what_it_can_send_where(gateway: Tuple[str, str]) -> None:
    url, admin = gateway
    with SyncManager.connect(url, admin=admin) as m:
        assert [s["name"] for s in m.servers()] == ["fastmcp"]
        with pytest.raises(NotSupported) as one_server:
            m.request("fastmcp", "ping")
        assert "request(None" in one_server.value.message
        assert m.request(None, "ping") == {}
        m.call_tool("py__add", {"a": 1, "b": 1})
        assert m.health()["avgResponseTimeMs"] > 0
        with pytest.raises(ServerNotFound) as missing:
            m.restart("nothing")
        assert missing.value.code == -32602


def test_the_same_api_over_the_frame_socket(tmp_path: Path, marker: str) -> None:
    """`serve --frame-socket` beside HTTP: a connected manager over the
    socket lists, calls, reads and gets as over HTTP."""
    socket = tmp_path / "mcp.sock"
    with _serve(tmp_path, marker, "--frame-socket", str(socket)) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if "listening on http://" in line:
                break
        assert socket.is_socket(), "the gateway did not start"
        with SyncManager.connect(f"unix:{socket}") as m:
            assert "py__add" in {t["name"] for t in m.list_tools()}
            assert m.call_tool("py__add", {"a": 40, "b": 2})["content"][0]["text"] == "42"
            assert m.read_resource("peer://greeting")["contents"][0]["text"].startswith("Hello")
            assert "Lin" in m.get_prompt("py__greet", {"name": "Lin"})["messages"][0]["content"]["text"]

        async def asynchronously() -> str:
            async with Manager.connect(f"unix:{socket}") as m:
                result = await m.call_tool("py__echo", {"text": "framed"})
                return str(result["content"][0]["text"])

        assert asyncio.run(asynchronously()) == "framed"
    assert process.returncode == 0
    assert not socket.exists()


def test_a_frame_socket_address_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match="absolute path"):
        SyncManager.connect("unix:relative.sock")
    with pytest.raises(ServerUnavailable):
        SyncManager.connect("unix:/nonexistent/mcp.sock").start()
