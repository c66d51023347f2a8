"""Connects the official MCP Python SDK client to `mcp-manager serve` over
Streamable HTTP, lists the tools, calls each tool named on the command line
with its JSON arguments, and prints, as one JSON object, what it saw.

Usage: python python_call_tools.py URL [TOOL ARGS_JSON]...
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url = sys.argv[1]
    calls = sys.argv[2:]
    report = {"calls": {}}
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            for name, arguments in zip(calls[0::2], calls[1::2]):
                result = await session.call_tool(name, json.loads(arguments))
                report["calls"][name] = {
                    "isError": bool(result.is_error),
                    "text": [c.text for c in result.content if c.type == "text"],
                }
    print(json.dumps(report))


asyncio.run(main())
