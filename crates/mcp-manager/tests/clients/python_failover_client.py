"""Sixteen clients of the official MCP Python SDK calling a tool without a
pause through a load balancer in front of gateway replicas, while the test
kills one replica and drains another: eight keep a 2025-11-25 session
(`initialize` once, then the same session to the end), eight speak
2026-07-28 (stateless). Every call of `ev__greet` must come back with the
name it was called with; a call that fails is tried again (at most five
times, 0.2 s apart), as a client's retry would, and so is a call whose
connection broke under it.

When the connection under a client breaks (its replica died in the middle
of an answer, which the SDK reports as a broken transport), the client is
made again: a 2025 client comes back with its session (a new connection
that sends the same `Mcp-Session-Id`, the SDK's `adopt` of the
`initialize` result it got), to whichever replica the balancer picks.

Prints, as one JSON object, the counts per generation: calls answered
right, answered wrong, retried, failed for good, sessions lost (a "Session
terminated": the server forgot the session), and clients made again.

Usage: python python_failover_client.py URL SECONDS
"""

import asyncio
import json
import sys
import time

import httpx2
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

CLIENTS_PER_GENERATION = 8
ATTEMPTS = 5

counts = {
    generation: {"right": 0, "wrong": 0, "retried": 0, "failed": 0, "lost_sessions": 0, "resumed": 0}
    for generation in ("stateful", "stateless")
}
errors = {}


def describe(error):
    """An exception, and those of an exception group, in a line."""
    inner = getattr(error, "exceptions", None)
    if inner:
        return "; ".join(describe(e) for e in inner)
    return f"{type(error).__name__}: {error}"[:300]


def note(error):
    what = describe(error)
    errors[what] = errors.get(what, 0) + 1
    return what


async def calls(generation, index, call, deadline, state):
    mine = counts[generation]
    if state.get("pending"):
        # The call the broken connection took with it, tried again.
        mine["retried"] += 1
    while time.monotonic() < deadline or state.get("pending"):
        if not state.get("pending"):
            state["n"] += 1
            state["pending"] = f"{generation[:4]}{index}-{state['n']}"
        name = state["pending"]
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
                if "Session terminated" in note(error):
                    mine["lost_sessions"] += 1
                mine["retried"] += 1
                await asyncio.sleep(0.2)
        else:
            mine["failed"] += 1
        state["pending"] = None


async def stateful(url, index, deadline):
    mine = counts["stateful"]
    state = {"n": 0}
    initialized = None
    session_id = {}

    async def remember(response):
        given = response.headers.get("mcp-session-id")
        if given and "id" not in session_id:
            session_id["id"] = given

    while time.monotonic() < deadline or state.get("pending"):
        headers = {}
        if initialized is not None:
            headers = {
                "mcp-session-id": session_id["id"],
                "mcp-protocol-version": initialized.protocol_version,
            }
        http = httpx2.AsyncClient(headers=headers, event_hooks={"response": [remember]})
        try:
            async with http:
                async with streamable_http_client(
                    url, http_client=http, terminate_on_close=False
                ) as (read, write):
                    async with ClientSession(read, write) as session:
                        if initialized is None:
                            initialized = await session.initialize()
                        else:
                            session.adopt(initialized)
                        await calls(
                            "stateful",
                            index,
                            lambda name: session.call_tool("ev__greet", {"name": name}),
                            deadline,
                            state,
                        )
            return
        except Exception as error:  # noqa: BLE001 - a broken connection is made again
            if initialized is None or "id" not in session_id:
                raise
            note(error)
            mine["resumed"] += 1
            await asyncio.sleep(0.2)


async def stateless(url, index, deadline):
    mine = counts["stateless"]
    state = {"n": 0}
    while time.monotonic() < deadline or state.get("pending"):
        try:
            async with Client(url, mode="2026-07-28") as client:
                await calls(
                    "stateless",
                    index,
                    lambda name: client.call_tool("ev__greet", {"name": name}),
                    deadline,
                    state,
                )
            return
        except Exception as error:  # noqa: BLE001 - a broken connection is made again
            note(error)
            mine["resumed"] += 1
            await asyncio.sleep(0.2)


async def main() -> None:
    url, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + seconds
    tasks = [stateful(url, i, deadline) for i in range(CLIENTS_PER_GENERATION)]
    tasks += [stateless(url, i, deadline) for i in range(CLIENTS_PER_GENERATION)]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    broken = [
        f"{'stateful' if n < CLIENTS_PER_GENERATION else 'stateless'} {n}: {describe(o)}"
        for n, o in enumerate(outcomes)
        if isinstance(o, BaseException)
    ]
    print(json.dumps({"counts": counts, "errors": errors, "clients_broken": broken}))


asyncio.run(main())
