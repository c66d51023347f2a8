"""Connects the official MCP Python SDK client (a 2025-11-25 session) to
`mcp-manager serve --http` in front of a stateless server whose tools are
under PREFIX, and uses what 2026-07-28 removed from servers: subscribes to
`test://watched-resource` and has it updated, sets the log level and calls
a tool that logs; then kills the server's process PID (the gateway starts
it again) and has the resource updated until the update comes again; then
unsubscribes. Prints, as one JSON object, what it saw.

Usage: python python_subscribe_client.py URL PREFIX PID
"""

import asyncio
import json
import os
import signal
import sys
import warnings

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

WATCHED = "test://watched-resource"
updates = []
logs = []


async def on_message(message):
    root = getattr(message, "root", message)
    method = getattr(root, "method", None)
    params = getattr(root, "params", None)
    if method == "notifications/resources/updated":
        updates.append(str(params.uri))
    elif method == "notifications/message":
        logs.append({"level": params.level, "logger": params.logger})


async def wait_for(check, seconds):
    for _ in range(int(seconds * 10)):
        if check():
            return True
        await asyncio.sleep(0.1)
    return check()


async def main() -> None:
    url, prefix, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    trigger = f"{prefix}test_trigger_resource_update"
    report = {}
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            initialized = await session.initialize()
            resources = initialized.capabilities.resources
            report["subscribeOffered"] = bool(resources and resources.subscribe)
            await session.subscribe_resource(WATCHED)
            await session.call_tool(trigger, {})
            report["updated"] = await wait_for(lambda: WATCHED in updates, 5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await session.set_logging_level("info")
            await session.call_tool(f"{prefix}test_tool_with_logging", {})
            await wait_for(lambda: len(logs) >= 3, 5)
            report["logs"] = logs[:3]

            # The server goes away and comes back: the subscription holds.
            os.kill(pid, signal.SIGKILL)
            before = len(updates)
            report["updatedAfterRestart"] = False
            for _ in range(40):
                try:
                    result = await session.call_tool(trigger, {})
                except Exception:  # noqa: BLE001 - the server is restarting
                    await asyncio.sleep(0.5)
                    continue
                if result.is_error:
                    await asyncio.sleep(0.5)
                    continue
                if await wait_for(lambda: len(updates) > before, 1):
                    report["updatedAfterRestart"] = True
                    break

            await session.unsubscribe_resource(WATCHED)
            after = len(updates)
            await session.call_tool(trigger, {})
            report["quietAfterUnsubscribe"] = not await wait_for(lambda: len(updates) > after, 1)
    print(json.dumps(report))


asyncio.run(main())
