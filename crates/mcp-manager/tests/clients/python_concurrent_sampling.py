"""Opens SESSIONS sessions of the official MCP Python SDK client to
`mcp-manager serve --http` at once, and in each calls TOOL (a tool that
samples the client's model) at the same moment; each session's sampling
callback answers with the session's own number and what it was asked, a
little later, so that every call is in flight together. Prints, as one JSON
list, what each session's call returned (`{"text": ...}`) or the error it
got (`{"error": ...}`).

Usage: python python_concurrent_sampling.py URL TOOL SESSIONS
"""

import asyncio
import json
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CreateMessageResult, TextContent


async def one(url, tool, number, everyone_ready, outcomes):
    async def sample(context, params):
        asked = params.messages[0].content.text
        await asyncio.sleep(0.2)
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text=f"answer-for-{number}|saw:{asked}"),
            model="test-model",
            stop_reason="endTurn",
        )

    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, sampling_callback=sample) as session:
            await session.initialize()
            everyone_ready.release()
            # Every session calls once all are open.
            async with everyone_ready:
                pass
            try:
                result = await session.call_tool(tool, {"prompt": f"session-{number}"})
                text = result.content[0].text if result.content else ""
                outcomes[number] = {"text": text, "isError": bool(result.is_error)}
            except MCPError as error:
                outcomes[number] = {"error": str(error)}


class Gate:
    """Opens once `count` sessions have called `release`."""

    def __init__(self, count):
        self.count = count
        self.opened = asyncio.Event()

    def release(self):
        self.count -= 1
        if self.count == 0:
            self.opened.set()

    async def __aenter__(self):
        await self.opened.wait()

    async def __aexit__(self, *exc):
        return False


async def main() -> None:
    url, tool, sessions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    outcomes = [None] * sessions
    gate = Gate(sessions)
    await asyncio.wait_for(
        asyncio.gather(*(one(url, tool, n, gate, outcomes) for n in range(sessions))),
        timeout=90,
    )
    print(json.dumps(outcomes))


asyncio.run(main())
