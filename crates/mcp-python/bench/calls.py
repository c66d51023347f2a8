"""Calls per second from Python: the embedded manager against the `mcp`
Python SDK.

Targets, each called with a tool that echoes its text:

- `manager -> builtin echo`: the embedded manager (Manager, asyncio) to the
  built-in `echo` server, in-process;
- `manager -> FastMCP`: the embedded manager to the FastMCP peer over
  stdio;
- `SDK -> FastMCP`: the `mcp` SDK's ClientSession to the same FastMCP peer
  over stdio, directly;
- `sync manager -> builtin echo`: SyncManager, one call at a time;
- `connect http -> builtin echo` and `connect unix -> builtin echo`: a
  connected manager (Manager.connect) to a running `mcp-manager serve`
  (`MCP_MANAGER_BIN`) whose config holds the built-in `echo` server, over
  Streamable HTTP and over its frame socket.

At 1 and 16 calls in flight (asyncio tasks), in alternating rounds so that
every target sees the same machine. Every answer is checked. Run with
`cargo xtask bench python` (which builds the wheel optimised); it reports
and asserts nothing about speed.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from typing import Any, Awaitable, Callable, Dict, List, Tuple

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcp_manager import Manager, SyncManager

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PERIOD = float(os.environ.get("BENCH_SECONDS", "2"))
LEVELS = (1, 16)

Call = Callable[[str], Awaitable[str]]


def fastmcp() -> Dict[str, Any]:
    return {"command": os.environ["MCP_PEER_PYTHON"], "args": [os.environ["MCP_PEER_FASTMCP"]]}


async def flat_out(call: Call, in_flight: int, seconds: float) -> List[float]:
    """Runs `in_flight` callers for `seconds`; every call's latency."""
    deadline = time.perf_counter() + seconds
    latencies: List[float] = []

    async def caller(worker: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            text = f"w{worker}-{n}"
            started = time.perf_counter()
            answer = await call(text)
            latencies.append(time.perf_counter() - started)
            if answer != text:
                raise AssertionError(f"expected {text!r}, got {answer!r}")
            n += 1

    await asyncio.gather(*(caller(w) for w in range(in_flight)))
    return latencies


def gateway(stack: AsyncExitStack, directory: str) -> Tuple[str, str]:
    """Starts `mcp-manager serve` over the built-in echo server on HTTP and a
    frame socket; its two addresses. Stopped (SIGTERM) when `stack` closes."""
    config = os.path.join(directory, "servers.json")
    with open(config, "w") as f:
        f.write('{"mcpServers": {"echo": {"type": "builtin", "server": "echo", "namespace": ""}}}')
    socket = os.path.join(directory, "mcp.sock")
    process = subprocess.Popen(
        [os.environ["MCP_MANAGER_BIN"], "serve", "--config", config, "--no-watch",
         "--http", "127.0.0.1:0", "--frame-socket", socket],
        stderr=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    stack.callback(stop)
    assert process.stderr is not None
    for line in process.stderr:
        if m := re.search(r"listening on (http://\S+/mcp)", line):
            return m.group(1), f"unix:{socket}"
    raise RuntimeError("the gateway did not start")


async def main() -> None:
    async with AsyncExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        http_url, unix_url = gateway(stack, directory)
        over_http = await stack.enter_async_context(Manager.connect(http_url))
        over_unix = await stack.enter_async_context(Manager.connect(unix_url))
        embedded = await stack.enter_async_context(
            Manager.from_config(
                {
                    "mcpServers": {
                        "echo": {"type": "builtin", "server": "echo", "namespace": ""},
                        "py": dict(fastmcp(), namespace="py"),
                    }
                }
            )
        )
        read, write = await stack.enter_async_context(
            stdio_client(StdioServerParameters(command=fastmcp()["command"], args=fastmcp()["args"]))
        )
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()

        async def via_manager(text: str) -> str:
            result = await embedded.call_tool("echo", {"text": text})
            return str(result["content"][0]["text"])

        async def via_manager_fastmcp(text: str) -> str:
            result = await embedded.call_tool("py__echo", {"text": text})
            return str(result["content"][0]["text"])

        async def via_sdk(text: str) -> str:
            result = await session.call_tool("echo", {"text": text})
            return str(result.content[0].text)  # type: ignore[union-attr]

        async def via_http(text: str) -> str:
            result = await over_http.call_tool("echo", {"text": text})
            return str(result["content"][0]["text"])

        async def via_unix(text: str) -> str:
            result = await over_unix.call_tool("echo", {"text": text})
            return str(result["content"][0]["text"])

        targets: List[Tuple[str, Call]] = [
            ("manager -> builtin echo", via_manager),
            ("manager -> FastMCP", via_manager_fastmcp),
            ("SDK -> FastMCP", via_sdk),
            ("connect http -> builtin echo", via_http),
            ("connect unix -> builtin echo", via_unix),
        ]
        sync = SyncManager.from_config({"mcpServers": {"echo": {"type": "builtin", "server": "echo", "namespace": ""}}})
        sync.start()

        def sync_round(seconds: float) -> List[float]:
            deadline = time.perf_counter() + seconds
            latencies = []
            n = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                result = sync.call_tool("echo", {"text": f"s{n}"})
                latencies.append(time.perf_counter() - started)
                assert result["content"][0]["text"] == f"s{n}"
                n += 1
            return latencies

        results: Dict[Tuple[str, int], List[List[float]]] = {}
        for level in LEVELS:
            for name, call in targets:  # warm up
                await flat_out(call, level, 0.3)
            for _ in range(ROUNDS):
                for name, call in targets:
                    results.setdefault((name, level), []).append(await flat_out(call, level, PERIOD))
        sync_round(0.3)
        for _ in range(ROUNDS):
            results.setdefault(("sync manager -> builtin echo", 1), []).append(sync_round(PERIOD))
        sync.close()

    print(f"Python {sys.version.split()[0]}; {ROUNDS} rounds of {PERIOD} s per target and level")
    print(f"{'in flight':>9}  {'target':<30} {'calls/s':>9} {'p50':>10} {'p99':>10}")
    rates: Dict[Tuple[str, int], float] = {}
    for (name, level), rounds in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        per_round = [len(r) / PERIOD for r in rounds]
        rate = statistics.median(per_round)
        rates[(name, level)] = rate
        every = sorted(x for r in rounds for x in r)
        p50 = every[len(every) // 2] * 1e6
        p99 = every[min(len(every) - 1, int(len(every) * 0.99))] * 1e6
        print(f"{level:>9}  {name:<30} {rate:>9.0f} {p50:>8.0f} µs {p99:>8.0f} µs")
    for level in LEVELS:
        http = rates[("connect http -> builtin echo", level)]
        unix = rates[("connect unix -> builtin echo", level)]
        print(f"at {level} in flight: connected over the frame socket is {unix / http:.2f}x the calls/s over HTTP")
    for level in LEVELS:
        sdk = rates[("SDK -> FastMCP", level)]
        print(
            f"at {level} in flight: manager -> builtin echo is {rates[('manager -> builtin echo', level)] / sdk:.1f}x "
            f"and manager -> FastMCP {rates[('manager -> FastMCP', level)] / sdk:.2f}x the SDK's calls/s to FastMCP"
        )


if __name__ == "__main__":
    asyncio.run(main())
