"""Connects the official MCP Python SDK client to the mcp-manager gateway,
lists its tools (every page), calls one tool of each backend and prints, as
one JSON object, what it saw: the same report as ts_client.mjs, plus tools
of two backends that ask this client for sampling and elicitation while
they run, answered by the callbacks below.

Usage:
  python python_three_backends.py stdio MCP_MANAGER_EXE CONFIG_FILE
  python python_three_backends.py http URL
  python python_three_backends.py sse URL      (the legacy HTTP+SSE transport)
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import (
    CreateMessageResult,
    ElicitResult,
    ListRootsResult,
    PaginatedRequestParams,
    Root,
    TextContent,
)

asked = []


async def sample(context, params):
    asked.append("sampling/createMessage")
    text = params.messages[0].content.text
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=f"sampled: {text}"),
        model="test-model",
        stop_reason="endTurn",
    )


async def list_roots(context):
    asked.append("roots/list")
    return ListRootsResult(roots=[Root(uri="file:///work/project", name="project")])


async def elicit(context, params):
    asked.append("elicitation/create")
    if "name" in params.message.lower():
        return ElicitResult(action="accept", content={"name": "Grace"})
    return ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})


def texts(result):
    return {
        "isError": bool(result.is_error),
        "text": [c.text for c in result.content if c.type == "text"],
    }


async def use(session, report):
    init = await session.initialize()
    report["server"] = init.server_info.name
    tools = []
    cursor = None
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(t.name for t in page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    report["tools"] = sorted(tools)
    report["ev"] = texts(await session.call_tool("ev__echo", {"message": "hi from py"}))
    report["py"] = texts(await session.call_tool("py__add", {"a": 20, "b": 22}))
    report["rs"] = texts(await session.call_tool("rs__test_simple_text", {}))
    report["ev_sampling"] = texts(
        await session.call_tool("ev__trigger-sampling-request", {"prompt": "hello"})
    )
    report["rs_elicitation"] = texts(
        await session.call_tool("rs__test_elicitation", {"message": "who are you?"})
    )
    report["rs_roots"] = texts(await session.call_tool("rs__test_input_required_result_list_roots", {}))
    if "st__test_input_required_result_elicitation" in report["tools"]:
        # A stateless (2026-07-28) backend asks with `input_required`; the
        # gateway turns that into a request to this (stateful) client.
        report["st_input_required"] = texts(
            await session.call_tool("st__test_input_required_result_elicitation", {})
        )
    report["asked"] = asked


async def main() -> None:
    mode, rest = sys.argv[1], sys.argv[2:]
    report = {}
    if mode == "stdio":
        exe, config = rest
        params = StdioServerParameters(command=exe, args=["serve", "--stdio", "--config", config])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, sampling_callback=sample, elicitation_callback=elicit, list_roots_callback=list_roots) as session:
                await use(session, report)
    elif mode == "http":
        async with streamable_http_client(rest[0]) as (read, write):
            async with ClientSession(read, write, sampling_callback=sample, elicitation_callback=elicit, list_roots_callback=list_roots) as session:
                await use(session, report)
    elif mode == "sse":
        async with sse_client(rest[0]) as (read, write):
            async with ClientSession(read, write, sampling_callback=sample, elicitation_callback=elicit, list_roots_callback=list_roots) as session:
                await use(session, report)
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(report))


asyncio.run(main())
