"""Connects the official MCP Python SDK client to the mcp-manager gateway
over Streamable HTTP speaking 2026-07-28 (stateless: no initialize, the
version and capabilities in every request's `_meta`), and prints, as one
JSON object, what it saw: the merged tools, a call of each backend, tools
of session-bound backends that ask this client for sampling and
elicitation (which the gateway turns into `input_required` rounds), and
the events of a `subscriptions/listen` stream while a backend adds a tool
and changes a resource.

Usage: python python_modern_client.py URL
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.types import CreateMessageResult, ElicitResult, TextContent

asked = []


async def sample(context, params):
    asked.append("sampling/createMessage")
    return CreateMessageResult(
        role="assistant",
        content=TextContent(type="text", text=f"sampled: {params.messages[0].content.text}"),
        model="test-model",
        stop_reason="endTurn",
    )


async def elicit(context, params):
    asked.append("elicitation/create")
    return ElicitResult(action="accept", content={"username": "lin", "email": "lin@example.com"})


def texts(result):
    return [c.text for c in result.content if c.type == "text"]


async def main() -> None:
    report = {}
    async with Client(
        sys.argv[1], mode="2026-07-28", sampling_callback=sample, elicitation_callback=elicit
    ) as client:
        tools = await client.list_tools()
        report["tools"] = sorted(t.name for t in tools.tools)
        report["ev"] = texts(await client.call_tool("ev__echo", {"message": "modern"}))
        report["py"] = texts(await client.call_tool("py__add", {"a": 2, "b": 3}))
        report["rs"] = texts(await client.call_tool("rs__test_simple_text", {}))
        report["ev_sampling"] = texts(
            await client.call_tool("ev__trigger-sampling-request", {"prompt": "modern"})
        )
        report["rs_elicitation"] = texts(
            await client.call_tool("rs__test_elicitation", {"message": "who?"})
        )
        report["asked"] = asked
        async with client.listen(
            tools_list_changed=True,
            resource_subscriptions=["test://watched-resource"],
        ) as sub:
            report["honored"] = sub.honored.model_dump(by_alias=True, exclude_none=True)
            await client.call_tool("rs__test_trigger_tool_change", {})
            await client.call_tool("rs__test_trigger_resource_update", {})
            events = []
            with anyio_timeout(10):
                async for event in sub:
                    events.append(type(event).__name__)
                    if len(set(events)) >= 2:
                        break
            report["events"] = sorted(set(events))
        tools = await client.list_tools(cache_mode="refresh")
        report["tools_after"] = sorted(t.name for t in tools.tools)
    print(json.dumps(report))


def anyio_timeout(seconds):
    import anyio

    return anyio.fail_after(seconds)


asyncio.run(main())
