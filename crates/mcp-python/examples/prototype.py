"""The prototype's API, end to end: PyMcpManager, with JSON text in and out.

    python prototype.py [CONFIG_FILE [SERVER_ENTRY_JSON]]

CONFIG_FILE is an `mcpServers` file (the repository's
`examples/builtin.json` if not given); SERVER_ENTRY_JSON one more server's
entry, deployed as `calc`: its `add` tool is called with numbers `a` and
`b` (if it has none, its `echo` tool with their sum; the built-in `echo`
server is deployed if no entry is given).
"""

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Dict

from mcp_manager import PyMcpManager

BUILTIN = Path(__file__).resolve().parents[3] / "examples" / "builtin.json"
ECHO = json.dumps({"type": "builtin", "server": "echo"})


def call(tool: str, a: int, b: int) -> Dict[str, Any]:
    """A `tools/call` request: `add` with a and b, or `echo` with the sum
    written out."""
    arguments: Dict[str, Any] = {"a": a, "b": b} if tool == "add" else {"text": str(a + b)}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}


def main(config_path: str, calc_json: str) -> None:
    manager = PyMcpManager(config_path)
    manager.start()
    for info in manager.list_servers():
        print("server", info.id, info.state, info.priority)

    manager.deploy_server("calc", calc_json)
    print("calc is", manager.get_server_state("calc"))
    listing = {"jsonrpc": "2.0", "id": 0, "method": "tools/list"}
    tools = json.loads(manager.execute("calc", json.dumps(listing)))["result"]["tools"]
    tool = "add" if any(t["name"] == "add" for t in tools) else "echo"

    response = json.loads(manager.execute("calc", json.dumps(call(tool, 2, 3))))
    print("2 + 3 =", response["result"]["content"][0]["text"])

    manager.scale_server("calc", 2)
    health = manager.get_health_status()
    print("healthy", health.healthy, "of", health.total)
    print("metrics", json.loads(manager.get_metrics())["servers"][0]["name"])
    print("prometheus", manager.export_prometheus_metrics().splitlines()[0])

    async def the_async_variants() -> None:
        await manager.deploy_server_async("calc2", calc_json)
        response = json.loads(await manager.execute_async("calc2", json.dumps(call(tool, 40, 2))))
        print("40 + 2 =", response["result"]["content"][0]["text"])
        other = PyMcpManager(config_path)
        await other.start_async()
        print("another manager has", len(other.list_servers()), "server(s)")
        other.stop()

    asyncio.run(the_async_variants())
    manager.undeploy_server("calc")
    manager.undeploy_server("calc2")
    print("left", [info.id for info in manager.list_servers()])
    manager.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else str(BUILTIN), args[1] if len(args) > 1 else ECHO)
