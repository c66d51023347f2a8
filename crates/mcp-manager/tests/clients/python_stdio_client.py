"""Connects the official MCP Python SDK client to `mcp-manager serve --stdio`
and prints, as one JSON object, what it saw.

Usage: python python_stdio_client.py MCP_MANAGER [ARGS...]
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    report = {}
    params = StdioServerParameters(command=command, args=args)
    notifications = []
    list_changed = asyncio.Event()

    async def on_message(message) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if method is not None:
            notifications.append(method)
            if method == "notifications/tools/list_changed":
                list_changed.set()

    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
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

            await session.call_tool("everything__test_tool_with_progress", {}, progress_callback=on_progress)
            report["progress"] = progress
            prompts = await session.list_prompts()
            report["prompts"] = sorted(p.name for p in prompts.prompts)
            prompt = await session.get_prompt("child__test_simple_prompt", {})
            report["prompt"] = prompt.messages[0].content.text
            read_result = await session.read_resource("test://static-text")
            report["resource"] = read_result.contents[0].text
            listed = await session.list_resources()
            report["resources"] = [str(r.uri) for r in listed.resources]
            renamed = "mcp-manager://everything/test://static-text"
            read_result = await session.read_resource(renamed)
            report["renamed_resource"] = [
                str(read_result.contents[0].uri),
                read_result.contents[0].text,
            ]
            # A server's list change reaches the client, debounced to one.
            await session.call_tool("child__test_trigger_tool_change", {})
            await asyncio.wait_for(list_changed.wait(), 10)
            await asyncio.sleep(0.3)
            report["list_changed"] = notifications.count("notifications/tools/list_changed")
            try:
                await session.call_tool("nobody__nothing", {})
                report["unknown_tool"] = "no error"
            except Exception as error:  # the SDK raises McpError
                report["unknown_tool"] = str(error)
    print(json.dumps(report))


asyncio.run(main())
