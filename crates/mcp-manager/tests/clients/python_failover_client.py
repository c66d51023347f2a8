"""Sixteen clients of the official MCP Python SDK calling a tool without a
pause through a load balancer in front of gateway replicas, while the test
kills one replica and drains another: eight keep a 2025-11-25 session
(`initialize` once, then the same session to the end), eight speak
2026-07-28 (stateless). Every call of `ev__greet` must come back with the
name it was called with; a call that fails is tried again (at most five
times, 0.2 s apart), as a client's retry would. Prints, as one JSON object,
the counts: calls answered right, answered wrong, retried, failed for good,
and sessions lost (a "Session terminated": the server forgot the session).

Usage: python python_failover_client.py URL SECONDS
"""

import asyncio
import json
import sys
import time

from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

CLIENTS_PER_GENERATION = 8
ATTEMPTS = 5

counts = {
    "stateful": {"right": 0, "wrong": 0, "retried": 0, "failed": 0, "lost_sessions": 0},
    "stateless": {"right": 0, "wrong": 0, "retried": 0, "failed": 0, "lost_sessions": 0},
}
errors = {}


async def calls(generation, index, call, deadline):
    mine = counts[generation]
    n = 0
    while time.monotonic() < deadline:
        n += 1
        name = f"{generation[:4]}{index}-{n}"
        for attempt in range(ATTEMPTS):
            try:
                result = await asyncio.wait_for(call(name), 15)
                text = result.content[0].text if result.content else ""
                if name in text and not result.is_error:
                    mine["right"] += 1
                else:
                    mine["wrong"] += 1
                break
            except Exception as error:  # noqa: BLE001 - every failure is counted
                what = f"{type(error).__name__}: {error}"[:160]
                errors[what] = errors.get(what, 0) + 1
                if "Session terminated" in what:
                    mine["lost_sessions"] += 1
                mine["retried"] += 1
                await asyncio.sleep(0.2)
        else:
            mine["failed"] += 1


async def stateful(url, index, deadline):
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await calls(
                "stateful",
                index,
                lambda name: session.call_tool("ev__greet", {"name": name}),
                deadline,
            )


async def stateless(url, index, deadline):
    async with Client(url, mode="2026-07-28") as client:
        await calls(
            "stateless",
            index,
            lambda name: client.call_tool("ev__greet", {"name": name}),
            deadline,
        )


async def main() -> None:
    url, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + seconds
    tasks = [stateful(url, i, deadline) for i in range(CLIENTS_PER_GENERATION)]
    tasks += [stateless(url, i, deadline) for i in range(CLIENTS_PER_GENERATION)]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    broken = [f"{type(o).__name__}: {o}"[:200] for o in outcomes if isinstance(o, BaseException)]
    print(json.dumps({"counts": counts, "errors": errors, "clients_broken": broken}))


asyncio.run(main())
