"""The official MCP Python SDK client, in a 2025 session through a load
balancer in front of replicas told of each other: it sets a log level and
subscribes to a resource, checks that both work, prints one JSON line,
waits for a line on stdin (meanwhile the replica that has its session is
killed), then checks again that log messages and resource updates come,
without setting or subscribing again; prints a second JSON line and exits.

The SDK sends the session id `initialize` gave it for the whole session
(it does not take the new ids a `logging/setLevel` or a
`resources/subscribe` answer brings): the replica that takes the session
over knows the level and the subscription from what the others told it.

Usage: python python_carried_client.py URL
"""

import asyncio
import json
import sys
import time
import warnings

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

WATCHED = "test://watched-resource"
logs = []
updates = []
errors = []


async def on_message(message):
    root = getattr(message, "root", message)
    method = getattr(root, "method", None)
    params = getattr(root, "params", None)
    if method == "notifications/resources/updated":
        updates.append(str(params.uri))
    elif method == "notifications/message":
        logs.append(params.level)
    elif isinstance(message, Exception):
        errors.append(f"{type(message).__name__}: {message}"[:200])


def info_logs():
    return sum(1 for level in logs if level == "info")


async def until(session, tool, check):
    """Calls `tool` until it answers (a call on its way to the replica
    killed fails: it is sent again), then waits up to two seconds for
    `check`; tries for 30 s in all. How many calls it took, or None."""
    deadline = time.monotonic() + 30
    calls = 0
    while time.monotonic() < deadline:
        calls += 1
        try:
            result = await session.call_tool(tool, {})
        except Exception as error:  # noqa: BLE001 - the replica may be gone
            errors.append(f"{tool}: {type(error).__name__}: {error}"[:200])
            await asyncio.sleep(0.2)
            continue
        if result.is_error:
            errors.append(f"{tool}: {result.content}"[:200])
            await asyncio.sleep(0.2)
            continue
        for _ in range(20):
            if check():
                return calls
            await asyncio.sleep(0.1)
    return None


async def main() -> None:
    url = sys.argv[1]
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await session.set_logging_level("info")
            await session.subscribe_resource(WATCHED)
            # The session's stream (the GET) opens after `initialize`.
            before = {
                "logged": await until(session, "ev__test_logging_tool", lambda: info_logs() >= 3),
                "updated": await until(
                    session, "ev__test_trigger_resource_update", lambda: len(updates) >= 1
                ),
            }
            print(json.dumps(before), flush=True)

            go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            if not go:
                sys.exit(1)

            logs_before, updates_before = info_logs(), len(updates)
            after = {
                "logged": await until(
                    session, "ev__test_logging_tool", lambda: info_logs() >= logs_before + 3
                ),
                "updated": await until(
                    session,
                    "ev__test_trigger_resource_update",
                    lambda: len(updates) > updates_before,
                ),
                "updates": updates[updates_before:],
                "errors": errors,
            }
            print(json.dumps(after), flush=True)


asyncio.run(main())
