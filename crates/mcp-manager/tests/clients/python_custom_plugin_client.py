"""Connects the official MCP Python SDK client to a downstream binary's
`serve --stdio` (examples/custom-plugin) and prints, as one JSON object,
what its own server types answered.

Usage: python python_custom_plugin_client.py PROGRAM [ARGS...]
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main() -> None:
    params = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:])
    report = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = sorted(t.name for t in tools.tools)
            greeted = await session.call_tool("hello__greet", {"name": "Ada"})
            report["greet"] = greeted.content[0].text
            echoed = await session.call_tool("echo__echo", {"text": "from a child"})
            report["echo"] = echoed.content[0].text
            wrong = await session.call_tool("hello__greet", {})
            report["wrong"] = {"isError": wrong.is_error, "text": wrong.content[0].text}
    print(json.dumps(report))


asyncio.run(main())
