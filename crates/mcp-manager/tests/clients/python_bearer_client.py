"""The official MCP Python SDK client with an access token: connects to
`mcp-manager serve --http` over Streamable HTTP with
`Authorization: Bearer TOKEN`, lists the tools and calls TOOL, and
prints what it saw as one JSON object. A refused token is reported as the
HTTP status the SDK met.

Usage: python python_bearer_client.py URL TOKEN TOOL
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def http_status(error: BaseException):
    """The HTTP status of the error the SDK raised, wherever it is."""
    seen = [error]
    while seen:
        current = seen.pop()
        response = getattr(current, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return response.status_code
        seen.extend(getattr(current, "exceptions", []) or [])
        if current.__cause__ is not None:
            seen.append(current.__cause__)
        if current.__context__ is not None:
            seen.append(current.__context__)
    return None


async def main() -> None:
    url, token, tool = sys.argv[1], sys.argv[2], sys.argv[3]
    report = {}
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    statuses = []

    async def record(response) -> None:
        statuses.append(response.status_code)

    client.event_hooks["response"].append(record)
    try:
        async with client:
            async with streamable_http_client(url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await asyncio.wait_for(session.initialize(), 30)
                    report["server"] = init.server_info.name
                    tools = await session.list_tools()
                    report["tools"] = len(tools.tools)
                    result = await session.call_tool(tool, {})
                    report["text"] = result.content[0].text
    except BaseException as error:  # noqa: BLE001 - reported, not hidden
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        report["refused"] = http_status(error) or next(
            (status for status in statuses if status >= 400), None
        )
        report["error"] = repr(error)[:300]
    report["statuses"] = statuses
    print(json.dumps(report))


asyncio.run(main())
