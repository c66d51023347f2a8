"""mcp_manager: run MCP servers and call them as one, from Python.

>>> from mcp_manager import SyncManager
>>> config = {"mcpServers": {"demo": {"type": "builtin", "server": "everything"}}}
>>> with SyncManager.from_config(config) as m:
...     result = m.call_tool("demo__test_simple_text")
...     print(result["content"][0]["text"])
This is a simple text response for testing.

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
from ._types import (
    ConfigWarning,
    ContentBlock,
    Health,
    PluginType,
    ServerInfo,
    StartedServer,
    StartReport,
    ToolResult,
)

__all__ = [
    "AlreadyDeployed",
    "CircuitOpen",
    "ConfigError",
    "ConfigSource",
    "ConfigWarning",
    "ContentBlock",
    "Health",
    "Manager",
    "ManagerClosed",
    "McpError",
    "McpTimeoutError",
    "NotSupported",
    "Progress",
    "PluginType",
    "PyHealthStatus",
    "PyMcpManager",
    "PyServerInfo",
    "RequestCancelled",
    "RequestHandler",
    "ServerBusy",
    "ServerInfo",
    "ServerNotFound",
    "ServerUnavailable",
    "StartReport",
    "StartedServer",
    "SyncManager",
    "ToolNotFound",
    "ToolResult",
    "__version__",
]
