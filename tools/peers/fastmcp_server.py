"""A small MCP server on the official Python SDK, a peer for mcp-manager's tests.

Run it with the Python of `.tools/venv` (`cargo xtask peers` makes it; the
path is MCP_PEER_PYTHON in `.tools/peers.env`):

    python fastmcp_server.py              # stdio
    python fastmcp_server.py --http 8931  # streamable HTTP on http://127.0.0.1:8931/mcp

What it offers:

- tools: `add` (two integers), `echo` (a string), `count` (reports one
  progress notification per step, when the request carries a progress
  token), `sleep` (waits, for cancellation and timeout tests),
  `stall_once` (annotated read-only) and `stall_once_unsafe` (stall the
  first call with a given key, answer at once after: for retry tests),
  `wait_for_cancel` and `was_cancelled` (whether the server saw a call
  cancelled: for cancellation tests)
- resources: `peer://greeting` (text) and the template `peer://items/{item_id}`
- prompt: `greet` (one argument, `name`)

`echo`'s description is `PEER_ECHO_DESCRIPTION` when that is set: a server
that changes a tool's definition between runs, for pinning tests.

With `PEER_REACH_TOOLS=1` it also has tools that reach out of the
process, for sandbox tests: `read_text` and `write_text` (a file),
`connect` (a TCP connection), `connect_unix` (a Unix socket), `allocate` (memory) and `open_files` (many
descriptors at once). Each fails with the error the system gave it.

It works with mcp 2.x, where the high-level server is `MCPServer`, and with
mcp 1.x, where the same API is called `FastMCP`.
"""

import argparse
import asyncio
import os

from mcp.types import ToolAnnotations

try:
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    SDK_MAJOR = 2
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.server.fastmcp.exceptions import ToolError

    SDK_MAJOR = 1

server = MCPServer("mcp-manager-fastmcp-peer", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool(description=os.environ.get("PEER_ECHO_DESCRIPTION") or None)
def echo(text: str) -> str:
    """Returns the text it is given."""
    return text


@server.tool()
async def count(steps: int = 3, delay: float = 0.1, ctx: Context = None) -> str:
    """Counts to `steps`, reporting progress after each step."""
    for step in range(1, steps + 1):
        await asyncio.sleep(delay)
        await ctx.report_progress(step, steps, f"step {step} of {steps}")
    return f"counted to {steps}"


@server.tool()
async def sleep(seconds: float = 30.0) -> str:
    """Sleeps for `seconds`, then says so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds} s"


STALLED = set()


async def stall_once(key: str, seconds: float) -> str:
    if key not in STALLED:
        STALLED.add(key)
        await asyncio.sleep(seconds)
    return f"answered {key}"


@server.tool(name="stall_once", annotations=ToolAnnotations(read_only_hint=True))
async def stall_once_read_only(key: str, seconds: float = 5.0) -> str:
    """Stalls for `seconds` the first time it is called with `key`, then
    answers at once. Annotated read-only: safe to retry."""
    return await stall_once(key, seconds)


@server.tool(name="stall_once_unsafe")
async def stall_once_unsafe(key: str, seconds: float = 5.0) -> str:
    """The same as `stall_once`, without annotations: not safe to retry."""
    return await stall_once(key, seconds)


CANCELLED = set()


@server.tool()
async def wait_for_cancel(key: str, seconds: float = 30.0) -> str:
    """Waits `seconds`; a call cancelled meanwhile is remembered by its
    `key` (ask `was_cancelled`)."""
    try:
        await asyncio.sleep(seconds)
    except BaseException:  # the SDK cancels the handler's task
        CANCELLED.add(key)
        raise
    return f"waited {seconds} s"


@server.tool()
def was_cancelled(key: str) -> bool:
    """Whether a `wait_for_cancel` call with `key` was cancelled."""
    return key in CANCELLED


def says_why(tool):
    """`tool`, failing with the system's error as its message (the SDK
    hides other exceptions' messages)."""
    import functools

    @functools.wraps(tool)
    def wrapped(*args, **kwargs):
        try:
            return tool(*args, **kwargs)
        except (OSError, MemoryError) as error:
            raise ToolError(f"{type(error).__name__}: {error}") from error

    return wrapped


if os.environ.get("PEER_REACH_TOOLS") == "1":

    @server.tool()
    @says_why
    def read_text(path: str) -> str:
        """The text of the file at `path`."""
        with open(path, encoding="utf-8") as file:
            return file.read()

    @server.tool()
    @says_why
    def write_text(path: str, text: str) -> str:
        """Writes `text` to the file at `path`."""
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        return f"wrote {len(text)} characters"

    @server.tool()
    @says_why
    def connect(host: str, port: int) -> str:
        """Opens a TCP connection to `host`:`port`, and closes it."""
        import socket

        with socket.create_connection((host, port), timeout=5):
            return "connected"

    @server.tool()
    @says_why
    def connect_unix(path: str) -> str:
        """Connects to the Unix socket at `path`, and closes it."""
        import socket

        with socket.socket(socket.AF_UNIX) as unix:
            unix.connect(path)
            return "connected"

    @server.tool()
    @says_why
    def allocate(megabytes: int) -> str:
        """Allocates `megabytes` MiB, and lets them go."""
        block = bytearray(megabytes << 20)
        return f"allocated {len(block) >> 20} MiB"

    @server.tool()
    @says_why
    def open_files(count: int) -> str:
        """Opens `count` descriptors at once, and closes them."""
        opened = []
        try:
            for _ in range(count):
                opened.append(open(os.devnull, "rb"))
        finally:
            for file in opened:
                file.close()
        return f"opened {count}"


@server.resource("peer://greeting", mime_type="text/plain")
def greeting() -> str:
    """A fixed greeting."""
    return "Hello from the Python peer."


@server.resource("peer://items/{item_id}", mime_type="text/plain")
def item(item_id: str) -> str:
    """One item, by id."""
    return f"item {item_id}"


@server.prompt()
def greet(name: str) -> str:
    """Asks for a greeting for `name`."""
    return f"Please write a short greeting for {name}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--http",
        metavar="PORT",
        type=int,
        help="serve streamable HTTP on 127.0.0.1:PORT at /mcp instead of stdio",
    )
    parser.add_argument(
        "--marker",
        help="ignored; tests pass a unique marker to find the process later",
    )
    args = parser.parse_args()
    if args.http is None:
        server.run()
    elif SDK_MAJOR >= 2:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.settings.host = "127.0.0.1"
        server.settings.port = args.http
        server.run("streamable-http")


if __name__ == "__main__":
    main()
