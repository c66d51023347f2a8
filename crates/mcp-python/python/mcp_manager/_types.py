"""The shapes of the package's results, for type checkers: each is a plain
dict at run time. Keys that a result may leave out are optional (the
classes are not total); MCP results can carry more keys than these."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict

__all__ = [
    "ConfigWarning",
    "ContentBlock",
    "Health",
    "ServerInfo",
    "StartedServer",
    "StartReport",
    "ToolResult",
]


class ContentBlock(TypedDict, total=False):
    """One block of a tool result's ``content``: ``type`` says which of the
    other keys it has (``text``; ``image`` and ``audio``: ``data``,
    ``mimeType``; ``resource_link``: ``uri``, ``name``; ``resource``)."""

    type: str
    text: str
    data: str
    mimeType: str
    uri: str
    name: str
    resource: Dict[str, Any]
    annotations: Dict[str, Any]


class ToolResult(TypedDict, total=False):
    """What :meth:`Manager.call_tool` gives: MCP's ``CallToolResult``."""

    content: List[ContentBlock]
    structuredContent: Dict[str, Any]
    isError: bool


class ServerInfo(TypedDict, total=False):
    """One server as :meth:`Manager.servers` shows it."""

    name: str
    type: Optional[str]
    namespace: Optional[str]
    priority: Optional[int]
    required: bool
    transport: Optional[str]
    state: str
    health: str
    error: Optional[str]
    instances: List[Dict[str, Any]]
    inFlight: int
    queued: int
    breaker: Optional[str]
    protocolVersion: Optional[str]
    bothGenerations: bool
    sessions: Optional[str]
    clientInstances: int
    serverInfo: Optional[Dict[str, Any]]
    requests: int
    errors: int
    timeouts: int
    restarts: int
    recentErrors: List[Dict[str, Any]]


class PluginType(TypedDict):
    """One server type as :meth:`Manager.plugins` shows it: built in
    (``kind`` ``"built-in"``) or added by a plugin of the plugins directory
    (``"command"``, ``"wasm"``)."""

    type: str
    aliases: List[str]
    kind: str
    plugin: Optional[str]
    version: str
    api: str
    capabilities: List[str]
    grants: List[str]
    description: Optional[str]
    manifest: Optional[str]
    settingsSchema: Optional[Dict[str, Any]]


class Health(TypedDict):
    """What :meth:`Manager.health` gives."""

    total: int
    healthy: int
    degraded: int
    unhealthy: int
    avgResponseTimeMs: float
    servers: Dict[str, str]


class StartedServer(TypedDict, total=False):
    """How one server's start went: ``state`` is ``running``, ``failed``
    (with ``error``) or ``disabled``."""

    name: str
    state: str
    error: str


class ConfigWarning(TypedDict):
    """A warning about the config: where (a JSON path), what, and a hint."""

    path: str
    message: str
    hint: Optional[str]


class StartReport(TypedDict):
    """What :meth:`Manager.start` gives."""

    servers: List[StartedServer]
    warnings: List[ConfigWarning]
