"""A running gateway's admin API (``mcp-manager serve --admin``), for the
management calls of a connected manager. Blocking, standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import _errors
from ._types import Health

_STATUS = {
    400: _errors.ConfigError,
    404: _errors.ServerNotFound,
    409: _errors.AlreadyDeployed,
    502: _errors.ServerUnavailable,
    503: _errors.ServerUnavailable,
}


def server_path(name: str) -> str:
    return "/api/servers/" + urllib.parse.quote(name, safe="")


def health_of(answer: Mapping[str, Any]) -> Health:
    """:meth:`Manager.health` from the servers (as servers() shows them) and
    the mean time of requests in ``answer``, the shape of both an embedded
    manager's and :meth:`Admin.perform`'s ``health``."""
    servers: List[Dict[str, Any]] = answer["servers"]
    by_health = [s.get("health") for s in servers]
    return {
        "total": len(servers),
        "healthy": by_health.count("healthy"),
        "degraded": by_health.count("degraded"),
        "unhealthy": len(servers) - by_health.count("healthy") - by_health.count("degraded"),
        "avgResponseTimeMs": float(answer.get("avgResponseTimeMs", 0.0)),
        "servers": {str(s.get("name")): str(s.get("health")) for s in servers},
    }


class Admin:
    """The admin API at ``base`` (``http://127.0.0.1:8932``)."""

    def __init__(self, base: str, token: Optional[str] = None, timeout: float = 60.0) -> None:
        if "://" not in base:
            base = "http://" + base
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Sends one request; the JSON answer (text for ``/metrics``)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
                if path == "/metrics":
                    return text
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            raw = error.read().decode(errors="replace")
            try:
                message = json.loads(raw).get("error", raw)
            except ValueError:
                message = raw or str(error)
            cls = _STATUS.get(error.code, _errors.McpError)
            raise cls(
                f"admin API {method} {path}: {error.code}: {message}", _errors.default_code(cls)
            ) from None
        except OSError as error:
            raise _errors.ServerUnavailable(f"admin API at {self.base}: {error}") from None

    def perform(self, op: str, args: Mapping[str, Any]) -> Any:
        """A management operation, as the embedded manager names it."""
        name = str(args.get("name", ""))
        routes: Dict[str, Tuple[str, str, Any]] = {
            "servers": ("GET", "/api/servers", None),
            "plugins": ("GET", "/api/plugins", None),
            "health": ("GET", "/api/servers", None),
            "metrics": ("GET", "/metrics", None),
            "deploy": ("POST", "/api/servers", {"name": name, "config": args.get("config")}),
            "undeploy": ("DELETE", server_path(name), None),
            "scale": ("POST", server_path(name) + "/scale", {"instances": args.get("instances")}),
            "restart": ("POST", server_path(name) + "/restart", None),
        }
        method, path, body = routes[op]
        answer = self.call(method, path, body)
        if op == "servers":
            return answer["servers"]
        if op == "plugins":
            return answer["plugins"]
        if op == "health":
            # The gateway keeps no mean; its histograms are in metrics().
            return {"servers": answer["servers"], "avgResponseTimeMs": 0.0}
        if op == "undeploy":
            return None
        return answer
