"""Connects the official MCP Python SDK client to `mcp-manager serve --http`
over Streamable HTTP and prints, as one JSON object, what it saw.

Usage: python python_http_client.py URL
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url = sys.argv[1]
    report = {}
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            report["protocol"] = init.protocol_version
            report["server"] = init.server_info.name
            tools = await session.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            result = await session.call_tool("child__test_simple_text", {})
            report["call"] = result.content[0].text
            progress = []

            async def on_progress(value, total, message):
                progress.append(value)

            await session.call_tool(
                "everything__test_tool_with_progress", {}, progress_callback=on_progress
            )
            report["progress"] = progress
    print(json.dumps(report))


asyncio.run(main())
