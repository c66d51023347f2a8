"""Connects the official MCP Python SDK client, which has roots, to
`mcp-manager serve --http`, asks TOOL (a tool that reports the roots its
server got, and keeps them until it is told they changed) what roots it
sees; changes its roots without saying so, a second later, and asks again;
then says so (`notifications/roots/list_changed`) and asks until the
answer changes. Prints, as one JSON object, the tool's three answers.

Usage: python python_roots_client.py URL TOOL
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import ListRootsResult, Root

roots = [Root(uri="file:///work/first", name="first")]


async def list_roots(context):
    return ListRootsResult(roots=list(roots))


def text(result):
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


async def main() -> None:
    url, tool = sys.argv[1], sys.argv[2]
    report = {}
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, list_roots_callback=list_roots) as session:
            await session.initialize()
            report["before"] = text(await session.call_tool(tool, {}))
            roots[:] = [Root(uri="file:///work/second", name="second")]
            await asyncio.sleep(1)
            report["unannounced"] = text(await session.call_tool(tool, {}))
            await session.send_roots_list_changed()
            # The server asks for the new roots on its own time.
            for _ in range(50):
                await asyncio.sleep(0.1)
                report["after"] = text(await session.call_tool(tool, {}))
                if "second" in report["after"]:
                    break
    print(json.dumps(report))


asyncio.run(main())
