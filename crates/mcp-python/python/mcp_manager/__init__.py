"""mcp_manager: run MCP servers and call them as one, from Python.

>>> import asyncio
>>> from mcp_manager import Manager
>>> async def main() -> None:
...     async with Manager.from_config("servers.json") as m:
...         tools = await m.list_tools()
...         result = await m.call_tool("everything__echo", {"message": "hi"})

:class:`Manager` is async; :class:`SyncManager` is its blocking twin.
``Manager.from_config`` runs the servers in this process (one shared
runtime per process, the GIL released while Rust works);
``Manager.connect(url)`` uses a running ``mcp-manager serve`` gateway.
:class:`PyMcpManager` keeps the prototype's API.
"""

from ._compat import PyHealthStatus, PyMcpManager, PyServerInfo
from ._errors import (
    AlreadyDeployed,
    CircuitOpen,
    ConfigError,
    ManagerClosed,
    McpError,
    McpTimeoutError,
    NotSupported,
    RequestCancelled,
    ServerBusy,
    ServerNotFound,
    ServerUnavailable,
    ToolNotFound,
)
from ._manager import ConfigSource, Manager, Progress, RequestHandler, SyncManager
from ._native import __version__

__all__ = [
    "AlreadyDeployed",
    "CircuitOpen",
    "ConfigError",
    "ConfigSource",
    "Manager",
    "ManagerClosed",
    "McpError",
    "McpTimeoutError",
    "NotSupported",
    "Progress",
    "PyHealthStatus",
    "PyMcpManager",
    "PyServerInfo",
    "RequestCancelled",
    "RequestHandler",
    "ServerBusy",
    "ServerNotFound",
    "ServerUnavailable",
    "SyncManager",
    "ToolNotFound",
    "__version__",
]
