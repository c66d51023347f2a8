"""The exceptions of mcp_manager, one class per way a call can fail."""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

# JSON-RPC codes given to failures that are the manager's own, not a
# server's.
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class McpError(Exception):
    """A call failed. ``code`` is the JSON-RPC error code (the server's own
    for an error a server answered), ``data`` its ``data`` (plain Python
    data, or None)."""

    def __init__(self, message: str, code: int = INTERNAL_ERROR, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code})"


class ServerNotFound(McpError, LookupError):
    """No server of that name is deployed."""


class ToolNotFound(McpError, LookupError):
    """No server behind the manager has a tool of that name (names are
    namespaced: ``server__tool``)."""


class AlreadyDeployed(McpError):
    """A server of that name is deployed already, or start() was called
    on a manager that runs."""


class ConfigError(McpError, ValueError):
    """A config, a server entry or an argument that does not check."""


class McpTimeoutError(McpError, TimeoutError):
    """No answer in time; the request was cancelled upstream."""


class ServerUnavailable(McpError, ConnectionError):
    """The server is not running, did not start, or its connection broke."""


class ServerBusy(McpError):
    """The server has as many requests in flight and waiting as it may."""


class CircuitOpen(McpError):
    """The server failed too often lately; it gets no requests for a while."""


class RequestCancelled(McpError):
    """The request was cancelled."""


class ManagerClosed(McpError):
    """The manager is closed, or was never started."""


class NotSupported(McpError):
    """The operation needs what this manager lacks (a connected manager
    without the gateway's admin address, say)."""


_KINDS = {
    "not_found": ServerNotFound,
    "tool_not_found": ToolNotFound,
    "conflict": AlreadyDeployed,
    "invalid": ConfigError,
    "timeout": McpTimeoutError,
    "unavailable": ServerUnavailable,
    "busy": ServerBusy,
    "circuit_open": CircuitOpen,
    "cancelled": RequestCancelled,
    "closed": ManagerClosed,
}


def from_native(args: Tuple[Any, ...]) -> McpError:
    """The exception for a native failure ``(kind, message, code, data)``."""
    kind, message, code, data = (tuple(args) + (None,) * 4)[:4]
    decoded: Optional[Any] = None
    if data is not None:
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = data
    cls = _KINDS.get(str(kind), McpError)
    return cls(str(message), default_code(cls) if code is None else int(code), decoded)


def default_code(cls: type) -> int:
    """The JSON-RPC code of a failure of class ``cls`` that is the
    manager's own: invalid params for a name or an argument that is wrong,
    else an internal error."""
    return INVALID_PARAMS if cls in (ServerNotFound, ToolNotFound, ConfigError) else INTERNAL_ERROR


# Tracebacks name the classes as users import them.
for _cls in list(_KINDS.values()) + [McpError, NotSupported]:
    _cls.__module__ = "mcp_manager"
