"""PyMcpManager, the prototype's API: its example end to end, and its
shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fastmcp_entry
from mcp_manager import PyHealthStatus, PyMcpManager, PyServerInfo, ServerNotFound

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "prototype.py"


def test_the_prototype_example_runs_end_to_end(tmp_path: Path, marker: str) -> None:
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {"rs": {"type": "builtin", "server": "everything"}}}))
    calc = json.dumps(fastmcp_entry(marker))
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), str(config), calc], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "server rs running 0",
        "calc is running",
        "2 + 3 = 5",
        "healthy 2 of 2",
        "metrics calc",
        "prometheus # HELP mcp_requests Requests sent to servers, by how they ended.",
        "40 + 2 = 42",
        "another manager has 1 server(s)",
        "left ['rs']",
    ]


def test_the_prototype_example_runs_without_arguments() -> None:
    # The repository's examples/builtin.json, and the built-in echo server.
    run = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:3] == ["server everything running 0", "calc is running", "2 + 3 = 5"]
    assert "40 + 2 = 42" in lines and lines[-1] == "left ['everything']"


def test_shapes_and_errors(marker: str) -> None:
    manager = PyMcpManager()
    manager.start()
    try:
        assert manager.list_servers() == []
        entry = fastmcp_entry(marker, priority=5)
        description = json.loads(manager.deploy_server("py", json.dumps(entry)))
        assert description["name"] == "py"
        (info,) = manager.list_servers()
        assert isinstance(info, PyServerInfo)
        assert (info.id, info.name, info.state, info.priority) == ("py", "py", "running", 5)
        assert info.server_type == "stdio"
        health = manager.get_health_status()
        assert isinstance(health, PyHealthStatus)
        assert (health.total, health.healthy, health.degraded, health.unhealthy) == (1, 1, 0, 0)
        # A server's own error comes back as a JSON-RPC error response.
        answer = json.loads(manager.execute("py", json.dumps({"id": 7, "method": "no/such"})))
        assert answer["id"] == 7 and answer["error"]["code"] == -32601
        with pytest.raises(ServerNotFound):
            manager.execute("nope", json.dumps({"method": "ping"}))
        with pytest.raises(ServerNotFound):
            manager.get_server_state("nope")
        manager.undeploy_server("py")
    finally:
        manager.stop()
