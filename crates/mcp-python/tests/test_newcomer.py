"""What a newcomer meets first: servers that fail to start, timeouts set in
the config, warnings about the config, addresses that do not answer."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import mcp_manager
from conftest import fastmcp_entry, processes_with, wait_until
from mcp_manager import (
    AlreadyDeployed,
    ConfigError,
    McpTimeoutError,
    ServerNotFound,
    ServerUnavailable,
    SyncManager,
    ToolNotFound,
)


def ghost_config(marker: str) -> Dict[str, Any]:
    """The FastMCP peer (`py`) beside a server whose command does not exist."""
    return {
        "mcpServers": {
            "fastmcp": fastmcp_entry(marker, namespace="py"),
            "ghost": {"command": "/no/such/binary"},
        }
    }


def test_a_server_that_fails_to_start_is_shown_and_named_when_called() -> None:
    marker = f"ghost-{uuid.uuid4().hex}"
    with SyncManager.from_config(ghost_config(marker)) as manager:
        servers = {s["name"]: s for s in manager.servers()}
        assert sorted(servers) == ["fastmcp", "ghost"]
        ghost = servers["ghost"]
        assert (ghost["state"], ghost["health"]) == ("failed", "down")
        reason = ghost["error"]
        assert reason is not None and "/no/such/binary" in reason
        assert servers["fastmcp"]["error"] is None

        health = manager.health()
        assert (health["total"], health["healthy"], health["unhealthy"]) == (2, 1, 1)
        assert health["servers"]["ghost"] == "down"

        with pytest.raises(ServerUnavailable) as caught:
            manager.call_tool("ghost__anything", {})
        assert "`ghost`" in caught.value.message and "failed to start" in caught.value.message
        assert reason in caught.value.message
        with pytest.raises(ServerUnavailable) as direct:
            manager.request("ghost", "ping")
        assert reason in direct.value.message
        assert direct.value.data == {"kind": "unavailable", "server": "ghost"}
        assert caught.value.data == direct.value.data
        # The working server is not disturbed.
        assert manager.call_tool("py__add", {"a": 1, "b": 2})["content"][0]["text"] == "3"
    assert wait_until(lambda: not processes_with(marker))


def test_start_reports_the_failed_server() -> None:
    marker = f"ghost-{uuid.uuid4().hex}"
    manager = SyncManager.from_config(ghost_config(marker))
    try:
        started = manager.start()
        states = {s["name"]: s for s in started["servers"]}
        assert states["fastmcp"]["state"] == "running"
        assert states["ghost"]["state"] == "failed"
        assert "/no/such/binary" in states["ghost"]["error"]
    finally:
        manager.close()


def test_a_timeout_from_the_config_is_the_timeout_exception() -> None:
    marker = f"timeout-{uuid.uuid4().hex}"
    config = {"mcpServers": {"fastmcp": fastmcp_entry(marker, namespace="py", timeoutMs=300)}}
    with SyncManager.from_config(config) as manager:
        with pytest.raises(McpTimeoutError) as through_gateway:
            manager.call_tool("py__sleep", {"seconds": 5})
        assert isinstance(through_gateway.value, TimeoutError)
        with pytest.raises(TimeoutError):
            manager.request("fastmcp", "tools/call", {"name": "sleep", "arguments": {"seconds": 5}})
        # The per-call timeout raises the same class.
        with pytest.raises(McpTimeoutError):
            manager.call_tool("py__sleep", {"seconds": 5}, timeout=0.2)
    assert wait_until(lambda: not processes_with(marker))


def test_no_server_started_raises() -> None:
    manager = SyncManager.from_config({"mcpServers": {"ghost": {"command": "/no/such/binary"}}})
    with pytest.raises(ServerUnavailable) as caught:
        manager.start()
    assert "no server started" in caught.value.message
    assert "ghost" in caught.value.message and "/no/such/binary" in caught.value.message
    assert "not started" in repr(manager)
    manager.close()


def test_config_warnings_reach_logging_and_the_start_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {
        "mcpServers": {
            "b": {"type": "builtin", "server": "echo", "timeoutMS": 100, "tags": ["t"]},
        }
    }
    with caplog.at_level(logging.WARNING, logger="mcp_manager"):
        manager = SyncManager.from_config(config)
        started = manager.start()
    try:
        assert started["warnings"] == [
            {
                "path": "mcpServers.b.timeoutMS",
                "message": "unknown key `timeoutMS` is ignored",
                "hint": "did you mean `timeoutMs`?",
            }
        ]
        assert any(
            "mcpServers.b.timeoutMS" in r.getMessage() and "timeoutMs" in r.getMessage()
            for r in caplog.records
        ), caplog.text
        assert manager.call_tool("b__echo", {"text": "hi"})["content"][0]["text"] == "hi"
    finally:
        manager.close()


def test_errors_of_a_dict_config_name_no_file() -> None:
    with pytest.raises(ConfigError) as caught:
        SyncManager.from_config({"mcpServers": {"g": {"command": 1}}}).start()
    message = caught.value.message
    assert "mcpServers.g.command" in message
    assert ".json" not in message


def test_a_config_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        SyncManager.from_config(tmp_path / "servers.json").start()
    assert "servers.json" in caught.value.message
    assert "No such file or directory" in caught.value.message


def test_small_things_a_newcomer_trips_over() -> None:
    config = {"mcpServers": {"b": {"type": "builtin", "server": "echo"}}}
    manager = SyncManager.from_config(config)
    assert repr(manager) == "<SyncManager embedded, not started>"
    with manager:
        assert repr(manager) == "<SyncManager embedded, started>"
        with pytest.raises(ToolNotFound) as unknown:
            manager.call_tool("b__nothing")
        assert unknown.value.code == -32602
        assert isinstance(unknown.value, LookupError)
        with pytest.raises(ConfigError) as not_a_mapping:
            manager.call_tool("b__echo", ["a"])  # type: ignore[arg-type]
        assert "not list" in not_a_mapping.value.message
    assert repr(manager) == "<SyncManager embedded, closed>"
    assert type(unknown.value).__module__ == "mcp_manager"
    assert "File " not in repr(unknown.value)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", mcp_manager.__version__)
    assert mcp_manager.__version__ == importlib.metadata.version("mcp-manager")
    doc = SyncManager.call_tool.__doc__ or ""
    assert "CallToolResult" in doc and "Blocking" in doc
    # The shared text is dedented: help() shows it as one block.
    lines = [line for line in doc.splitlines()[1:] if line.strip()]
    assert lines and all(not line.startswith(" ") for line in lines), doc


def test_a_second_start_and_a_malformed_address_say_what_to_do() -> None:
    config = {"mcpServers": {"b": {"type": "builtin", "server": "echo"}}}
    with SyncManager.from_config(config) as manager:
        with pytest.raises(AlreadyDeployed) as again:
            manager.start()
        assert "start() was called already" in again.value.message
        assert manager.call_tool("b__echo", {"text": "still here"})["content"]
    for url in ["not a url", "127.0.0.1:8931/mcp", "ftp://127.0.0.1/mcp"]:
        with pytest.raises(ConfigError) as caught:
            SyncManager.connect(url)
        assert repr(url) in caught.value.message
        assert "http://127.0.0.1:8931/mcp" in caught.value.message
        assert "mcpServers" not in caught.value.message


def test_a_manager_made_by_hand_points_to_the_constructors() -> None:
    made_by_hand: List[Callable[[], object]] = [
        lambda: SyncManager({"mcpServers": {}}),
        lambda: mcp_manager.Manager("servers.json"),  # type: ignore[arg-type]
    ]
    for made in made_by_hand:
        with pytest.raises(TypeError) as caught:
            made()
        message = str(caught.value)
        assert ".from_config(path_or_dict)" in message and ".connect(url)" in message


def test_a_missing_server_is_named_in_the_error_data() -> None:
    config = {"mcpServers": {"b": {"type": "builtin", "server": "echo"}}}
    with SyncManager.from_config(config) as manager:
        missing = {"kind": "not_found", "server": "nosuch"}
        with pytest.raises(ServerNotFound) as direct:
            manager.request("nosuch", "ping")
        assert direct.value.data == missing
        calls: List[Callable[[], object]] = [
            lambda: manager.undeploy("nosuch"),
            lambda: manager.scale("nosuch", 2),
            lambda: manager.restart("nosuch"),
        ]
        for call in calls:
            with pytest.raises(ServerNotFound) as caught:
                call()
            assert caught.value.data == missing and "`nosuch`" in caught.value.message
        assert manager.request("b", "ping") == {}


def test_call_tool_names_its_exceptions_and_timeout_unit() -> None:
    doc = SyncManager.call_tool.__doc__ or ""
    for word in ["ToolNotFound", "ServerUnavailable", "McpTimeoutError", "seconds"]:
        assert word in doc, word
