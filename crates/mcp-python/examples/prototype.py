"""The prototype's API, end to end: PyMcpManager, with JSON text in and out.

    python prototype.py CONFIG_FILE SERVER_ENTRY_JSON

CONFIG_FILE is an `mcpServers` file; SERVER_ENTRY_JSON one more server's
entry, deployed as `calc`, that has an `add` tool (a and b).
"""

import asyncio
import json
import sys

from mcp_manager import PyMcpManager


def main(config_path: str, calc_json: str) -> None:
    manager = PyMcpManager(config_path)
    manager.start()
    for info in manager.list_servers():
        print("server", info.id, info.state, info.priority)

    manager.deploy_server("calc", calc_json)
    print("calc is", manager.get_server_state("calc"))

    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "add", "arguments": {"a": 2, "b": 3}}}
    response = json.loads(manager.execute("calc", json.dumps(request)))
    print("2 + 3 =", response["result"]["content"][0]["text"])

    manager.scale_server("calc", 2)
    health = manager.get_health_status()
    print("healthy", health.healthy, "of", health.total)
    print("metrics", json.loads(manager.get_metrics())["servers"][0]["name"])
    print("prometheus", manager.export_prometheus_metrics().splitlines()[0])

    async def the_async_variants() -> None:
        await manager.deploy_server_async("calc2", calc_json)
        request["params"]["arguments"] = {"a": 40, "b": 2}
        response = json.loads(await manager.execute_async("calc2", json.dumps(request)))
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
    main(sys.argv[1], sys.argv[2])
