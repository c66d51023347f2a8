"""SyncManager against real servers: server-everything, FastMCP and the
built-in `everything`, all behind one manager."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest

from conftest import config, fastmcp_entry, wait_until
from mcp_manager import (
    AlreadyDeployed,
    ConfigError,
    ManagerClosed,
    McpError,
    McpTimeoutError,
    ServerNotFound,
    SyncManager,
    ToolNotFound,
)


def text_of(result: Any) -> str:
    return str(result["content"][0]["text"])


def test_lists_merge_every_server(shared: SyncManager) -> None:
    tools = {t["name"] for t in shared.list_tools()}
    assert {"ev__echo", "py__add", "py__count", "rs__test_simple_text"} <= tools
    assert "add" not in tools  # namespaced, never bare
    resources = {r["uri"] for r in shared.list_resources()}
    assert "peer://greeting" in resources
    templates = {t["uriTemplate"] for t in shared.list_resource_templates()}
    assert "peer://items/{item_id}" in templates
    prompts = {p["name"] for p in shared.list_prompts()}
    assert "py__greet" in prompts


def test_calls_reach_each_server(shared: SyncManager) -> None:
    assert text_of(shared.call_tool("py__add", {"a": 2, "b": 3})) == "5"
    assert "hello there" in text_of(shared.call_tool("ev__echo", {"message": "hello there"}))
    simple = shared.call_tool("rs__test_simple_text")
    assert text_of(simple) == "This is a simple text response for testing."
    read = shared.read_resource("peer://greeting")
    assert read["contents"][0]["text"] == "Hello from the Python peer."
    item = shared.read_resource("peer://items/42")
    assert item["contents"][0]["text"] == "item 42"
    prompt = shared.get_prompt("py__greet", {"name": "Ada"})
    assert "Ada" in prompt["messages"][0]["content"]["text"]


def test_request_goes_to_one_server_or_the_gateway(shared: SyncManager) -> None:
    own = {t["name"] for t in shared.request("fastmcp", "tools/list")["tools"]}
    assert "add" in own and "py__add" not in own
    assert shared.request(None, "ping") == {}
    with pytest.raises(ServerNotFound) as caught:
        shared.request("nope", "ping")
    assert caught.value.code == -32602
    assert "nope" in str(caught.value)


def test_a_tool_that_fails_answers_with_is_error(shared: SyncManager) -> None:
    result = shared.call_tool("py__add", {"a": "not a number", "b": 1})
    assert result["isError"] is True


def test_unknown_tool_is_an_mcp_error_with_a_code(shared: SyncManager) -> None:
    with pytest.raises(McpError) as caught:
        shared.call_tool("py__no_such_tool")
    assert type(caught.value) is ToolNotFound
    assert isinstance(caught.value.code, int) and caught.value.code < 0
    assert "no_such_tool" in caught.value.message


def test_servers_health_and_metrics(shared: SyncManager) -> None:
    shared.call_tool("py__add", {"a": 1, "b": 1})
    servers = {s["name"]: s for s in shared.servers()}
    assert set(servers) == {"builtin", "everything", "fastmcp"}
    for server in servers.values():
        assert server["state"] == "running"
        assert server["health"] == "healthy"
    assert servers["fastmcp"]["requests"] >= 1
    health = shared.health()
    assert (health["total"], health["healthy"], health["unhealthy"]) == (3, 3, 0)
    assert health["servers"]["everything"] == "healthy"
    assert health["avgResponseTimeMs"] > 0
    metrics = shared.metrics()
    assert 'mcp_requests_total{server="fastmcp",method="tools/call",outcome="ok"}' in metrics


def test_progress_reaches_the_callback_on_the_calling_thread(shared: SyncManager) -> None:
    seen: List[Tuple[float, Optional[float], Optional[str], int]] = []

    def progress(value: float, total: Optional[float], message: Optional[str]) -> None:
        seen.append((value, total, message, threading.get_ident()))

    result = shared.call_tool("py__count", {"steps": 3, "delay": 0.05}, progress=progress)
    assert text_of(result) == "counted to 3"
    assert wait_until(lambda: len(seen) == 3, 2)
    assert [s[:3] for s in seen] == [(i, 3.0, f"step {i} of 3") for i in (1, 2, 3)]
    assert {s[3] for s in seen} == {threading.get_ident()}


def test_timeout_cancels_the_call_upstream(shared: SyncManager) -> None:
    key = uuid.uuid4().hex
    started = time.monotonic()
    with pytest.raises(McpTimeoutError) as caught:
        shared.call_tool("py__wait_for_cancel", {"key": key, "seconds": 30}, timeout=0.5)
    assert isinstance(caught.value, TimeoutError)
    assert time.monotonic() - started < 5
    assert wait_until(
        lambda: shared.call_tool("py__was_cancelled", {"key": key})["structuredContent"]["result"]
    )


def test_deploy_scale_restart_undeploy(marker: str) -> None:
    with SyncManager.from_config({"mcpServers": {}}) as manager:
        assert manager.servers() == []
        deployed = manager.deploy("extra", fastmcp_entry(marker, namespace="x"))
        assert deployed["name"] == "extra" and deployed["state"] == "running"
        assert text_of(manager.call_tool("x__add", {"a": 20, "b": 22})) == "42"
        with pytest.raises(AlreadyDeployed):
            manager.deploy("extra", fastmcp_entry(marker))
        scaled = manager.scale("extra", 2)
        assert len(scaled["instances"]) == 2
        with pytest.raises(ConfigError):
            manager.scale("extra", 0)
        restarted = manager.restart("extra")
        assert restarted["state"] == "running"
        assert text_of(manager.call_tool("x__add", {"a": 1, "b": 2})) == "3"
        manager.undeploy("extra")
        with pytest.raises(McpError):
            manager.call_tool("x__add", {"a": 1, "b": 2})
        with pytest.raises(ServerNotFound):
            manager.request("extra", "ping")
        with pytest.raises(ServerNotFound):
            manager.undeploy("extra")
        with pytest.raises(ConfigError):
            manager.deploy("broken", {"command": 42})


def test_bad_configs_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        SyncManager.from_config(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        SyncManager.from_config({"mcpServers": {"x": {"nothing": "here"}}}).start()
    assert "x" in str(caught.value)
    with pytest.raises(ConfigError):
        SyncManager.from_config("/no/such/config.json").start()


def test_a_config_file_and_a_closed_manager(tmp_path: Path, marker: str) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {"py": fastmcp_entry(marker)}}))
    manager = SyncManager.from_config(str(path))
    started = manager.start()
    assert started["servers"] == [{"name": "py", "state": "running"}]
    assert text_of(manager.call_tool("py__echo", {"text": "file"})) == "file"
    manager.close()
    manager.close()  # twice is fine
    with pytest.raises(ManagerClosed):
        manager.list_tools()


def test_a_server_that_fails_to_start_is_reported_not_fatal(marker: str) -> None:
    servers = config(marker)["mcpServers"]
    servers["broken"] = {"command": "/no/such/program"}
    with SyncManager.from_config({"mcpServers": servers}) as manager:
        states = {s["name"]: s["state"] for s in manager.servers()}
        assert states["broken"] == "failed" and states["fastmcp"] == "running"
        assert text_of(manager.call_tool("py__add", {"a": 1, "b": 1})) == "2"
