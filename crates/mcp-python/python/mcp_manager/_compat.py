"""The prototype's API, kept for its callers: JSON text in and out.

New code should use :class:`mcp_manager.Manager` (or :class:`SyncManager`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ._errors import INVALID_PARAMS, ConfigError, McpError, ServerNotFound
from ._manager import Manager, SyncManager

__all__ = ["PyMcpManager", "PyHealthStatus", "PyServerInfo"]


@dataclass(frozen=True)
class PyHealthStatus:
    """How many servers are healthy, degraded and unhealthy, and the mean
    time of this manager's requests."""

    total: int
    healthy: int
    degraded: int
    unhealthy: int
    avg_response_time_ms: float


@dataclass(frozen=True)
class PyServerInfo:
    """One deployed server."""

    id: str
    name: str
    server_type: str
    state: str
    priority: int


def _loads(text: str, what: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{what} is not JSON: {error}", INVALID_PARAMS) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object", INVALID_PARAMS)
    return value


def _request(text: str) -> Tuple[Dict[str, Any], str, Optional[Dict[str, Any]]]:
    request = _loads(text, "request_json")
    method = request.get("method")
    params = request.get("params")
    if not isinstance(method, str) or not isinstance(params, (dict, type(None))):
        raise ConfigError("request_json needs a string `method` and object `params`", INVALID_PARAMS)
    return request, method, params


def _response(request: Dict[str, Any], result: Any = None, error: Optional[McpError] = None) -> str:
    """A JSON-RPC response to ``request``: its result, or a server's error.
    Errors that are the manager's own (no such server, a timeout, ...) are
    raised."""
    if error is None:
        return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result})
    if type(error) is not McpError:
        raise error
    body: Dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        body["data"] = error.data
    return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": body})


class PyMcpManager:
    """``PyMcpManager(config_path=None)``: the servers of a config file (or
    none), deployed and called with JSON text. ``start()`` before use,
    ``stop()`` after."""

    def __init__(self, config_path: Optional[str] = None) -> None:
        source: Any = config_path if config_path is not None else {"mcpServers": {}}
        self._sync = SyncManager.from_config(source)
        self._async = Manager(self._sync._start, core=self._sync._core)

    def start(self) -> None:
        """Starts the config's servers."""
        self._sync.start()

    async def start_async(self) -> None:
        """:meth:`start`, awaitable."""
        await self._async.start()

    def stop(self) -> None:
        """Stops every server."""
        self._sync.close()

    def deploy_server(self, server_id: str, config_json: str) -> str:
        """Deploys ``server_id`` from an ``mcpServers`` entry given as JSON
        text; the server's description as JSON text."""
        return json.dumps(self._sync.deploy(server_id, _loads(config_json, "config_json")))

    async def deploy_server_async(self, server_id: str, config_json: str) -> str:
        """:meth:`deploy_server`, awaitable."""
        return json.dumps(await self._async.deploy(server_id, _loads(config_json, "config_json")))

    def undeploy_server(self, server_id: str) -> None:
        """Stops ``server_id`` and removes it."""
        self._sync.undeploy(server_id)

    def get_server_state(self, server_id: str) -> str:
        """``running``, ``starting``, ``restarting``, ``failed`` or ``stopped``."""
        for server in self._sync.servers():
            if server["name"] == server_id:
                return str(server["state"])
        raise ServerNotFound(f"no server `{server_id}` is deployed", INVALID_PARAMS)

    def get_health_status(self) -> PyHealthStatus:
        """Servers by health."""
        health = self._sync.health()
        return PyHealthStatus(
            total=int(health["total"]),
            healthy=int(health["healthy"]),
            degraded=int(health["degraded"]),
            unhealthy=int(health["unhealthy"]),
            avg_response_time_ms=float(health["avgResponseTimeMs"]),
        )

    def get_metrics(self) -> str:
        """Each server's counters, as JSON text."""
        keys = ("name", "state", "requests", "errors", "timeouts", "restarts", "inFlight")
        servers = [{k: s.get(k) for k in keys} for s in self._sync.servers()]
        return json.dumps({"servers": servers})

    def export_prometheus_metrics(self) -> str:
        """Every metric, in the Prometheus text format."""
        return self._sync.metrics()

    def execute(self, server_id: str, request_json: str) -> str:
        """Sends a JSON-RPC request (``{"method": ..., "params": ...}``) to
        ``server_id``; the JSON-RPC response as JSON text (a server's error
        as an error response; the manager's own errors are raised)."""
        request, method, params = _request(request_json)
        try:
            result = self._sync.request(server_id, method, params)
        except McpError as error:
            return _response(request, error=error)
        return _response(request, result=result)

    async def execute_async(self, server_id: str, request_json: str) -> str:
        """:meth:`execute`, awaitable."""
        request, method, params = _request(request_json)
        try:
            result = await self._async.request(server_id, method, params)
        except McpError as error:
            return _response(request, error=error)
        return _response(request, result=result)

    def list_servers(self) -> List[PyServerInfo]:
        """Every server, highest priority first (then by id)."""
        servers = sorted(self._sync.servers(), key=lambda s: (-(s.get("priority") or 0), s["name"]))
        return [
            PyServerInfo(
                id=s["name"],
                name=s["name"],
                server_type=str(s.get("type") or s.get("transport") or ""),
                state=str(s["state"]),
                priority=int(s.get("priority") or 0),
            )
            for s in servers
        ]

    def scale_server(self, server_id: str, instances: int) -> None:
        """Runs ``instances`` instances of ``server_id``."""
        self._sync.scale(server_id, instances)
