"""Connects the official MCP Python SDK client to `mcp-manager serve
--http`, calls TOOL (a tool that changes its server's tool list), and
waits up to five seconds for `notifications/tools/list_changed`. Prints, as
one JSON object, whether it came and whether the list changed.

Usage: python python_list_changes.py URL TOOL
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

seen = []


async def on_message(message):
    method = getattr(getattr(message, "root", message), "method", None)
    if method:
        seen.append(method)


async def main() -> None:
    url, tool = sys.argv[1], sys.argv[2]
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            before = sorted(t.name for t in (await session.list_tools()).tools)
            await session.call_tool(tool, {})
            for _ in range(50):
                if "notifications/tools/list_changed" in seen:
                    break
                await asyncio.sleep(0.1)
            after = sorted(t.name for t in (await session.list_tools()).tools)
    report = {
        "told": "notifications/tools/list_changed" in seen,
        "changed": before != after,
    }
    print(json.dumps(report))


asyncio.run(main())
