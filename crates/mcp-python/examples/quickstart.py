import asyncio

from mcp_manager import Manager


async def main() -> None:
    # A path to an mcpServers JSON file (as Claude Desktop, Cursor and VS Code
    # write them), or the same JSON as a dict.
    async with Manager.from_config("examples/builtin.json") as m:
        tools = await m.list_tools()  # every server's, namespaced
        print(len(tools), "tools, e.g.", tools[0]["name"])
        result = await m.call_tool("everything__test_simple_text", timeout=10)
        print(result["content"][0]["text"])
        print(await m.health())


asyncio.run(main())
