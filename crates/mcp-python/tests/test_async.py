"""Manager (async) against real servers, driven by asyncio."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any, List

import pytest

from conftest import config, fastmcp_entry
from mcp_manager import Manager, McpTimeoutError, ServerNotFound


def text_of(result: Any) -> str:
    return str(result["content"][0]["text"])


async def was_cancelled(manager: Manager, key: str, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = await manager.call_tool("py__was_cancelled", {"key": key})
        if answer["structuredContent"]["result"]:
            return True
        await asyncio.sleep(0.05)
    return False


def test_every_method(marker: str) -> None:
    async def main() -> None:
        async with Manager.from_config(config(marker)) as m:
            tools = {t["name"] for t in await m.list_tools()}
            assert {"ev__echo", "py__add", "rs__test_simple_text"} <= tools
            assert text_of(await m.call_tool("py__add", {"a": 2, "b": 2})) == "4"
            read = await m.read_resource("peer://greeting")
            assert read["contents"][0]["text"] == "Hello from the Python peer."
            prompt = await m.get_prompt("py__greet", {"name": "Grace"})
            assert "Grace" in prompt["messages"][0]["content"]["text"]
            assert "add" in {t["name"] for t in (await m.request("fastmcp", "tools/list"))["tools"]}
            assert {s["name"] for s in await m.servers()} == {"builtin", "everything", "fastmcp"}
            assert (await m.health())["healthy"] == 3
            assert "mcp_requests_total" in await m.metrics()
            deployed = await m.deploy("extra", fastmcp_entry(marker, namespace="x"))
            assert deployed["state"] == "running"
            assert len((await m.scale("extra", 2))["instances"]) == 2
            assert (await m.restart("extra"))["state"] == "running"
            assert text_of(await m.call_tool("x__echo", {"text": "again"})) == "again"
            await m.undeploy("extra")
            with pytest.raises(ServerNotFound):
                await m.request("extra", "ping")

    asyncio.run(main())


def test_cancelling_the_task_cancels_the_call_upstream(marker: str) -> None:
    async def main() -> None:
        async with Manager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}}) as m:
            key = uuid.uuid4().hex
            task = asyncio.create_task(m.call_tool("py__wait_for_cancel", {"key": key, "seconds": 30}))
            await asyncio.sleep(0.5)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await was_cancelled(m, key)

    asyncio.run(main())


def test_timeout_and_progress(marker: str) -> None:
    async def main() -> None:
        async with Manager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}}) as m:
            key = uuid.uuid4().hex
            with pytest.raises(McpTimeoutError):
                await m.call_tool("py__wait_for_cancel", {"key": key, "seconds": 30}, timeout=0.3)
            assert await was_cancelled(m, key)
            loop_thread = threading.get_ident()
            seen: List[Any] = []
            result = await m.call_tool(
                "py__count",
                {"steps": 4, "delay": 0.02},
                progress=lambda p, t, msg: seen.append((p, t, threading.get_ident())),
            )
            assert text_of(result) == "counted to 4"
            for _ in range(100):
                if len(seen) == 4:
                    break
                await asyncio.sleep(0.01)
            assert [s[:2] for s in seen] == [(i, 4.0) for i in (1, 2, 3, 4)]
            assert {s[2] for s in seen} == {loop_thread}

    asyncio.run(main())


def test_many_concurrent_calls(marker: str) -> None:
    async def main() -> None:
        async with Manager.from_config(config(marker)) as m:
            py = [m.call_tool("py__add", {"a": i, "b": 1000}) for i in range(200)]
            ev = [m.call_tool("ev__echo", {"message": f"m{i}"}) for i in range(200)]
            rs = [m.call_tool("rs__test_simple_text") for _ in range(200)]
            results = await asyncio.gather(*py, *ev, *rs)
            assert [text_of(r) for r in results[:200]] == [str(i + 1000) for i in range(200)]
            for i, r in enumerate(results[200:400]):
                assert f"m{i}" in text_of(r)
            assert all(text_of(r).startswith("This is a simple text") for r in results[400:])

    asyncio.run(main())
