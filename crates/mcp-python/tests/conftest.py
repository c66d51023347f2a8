"""Shared helpers: the real servers the tests run against, and checks that
no server process outlives its manager.

The peers' locations come from the environment that `cargo xtask python`
sets (from `.tools/peers.env`): server-everything on Node, the FastMCP peer
on the venv's Python, and the `mcp-manager` binary for the connected mode.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from mcp_manager import SyncManager


def peer(key: str) -> str:
    value = os.environ.get(key)
    if not value:
        raise RuntimeError(f"{key} is not set: run these tests with `cargo xtask python`")
    return value


def fastmcp_entry(marker: str, **extra: Any) -> Dict[str, Any]:
    """The FastMCP peer over stdio; `marker` on its command line."""
    entry: Dict[str, Any] = {
        "command": peer("MCP_PEER_PYTHON"),
        "args": [peer("MCP_PEER_FASTMCP"), f"--marker={marker}"],
    }
    entry.update(extra)
    return entry


def everything_entry(**extra: Any) -> Dict[str, Any]:
    """server-everything over stdio, namespace `ev`."""
    entry: Dict[str, Any] = {
        "command": peer("MCP_PEER_NODE"),
        "args": [peer("MCP_PEER_EVERYTHING"), "stdio"],
        "namespace": "ev",
    }
    entry.update(extra)
    return entry


def config(marker: str) -> Dict[str, Any]:
    """Three servers: server-everything (`ev`) and FastMCP (`py`) over
    stdio, and the built-in `everything` in-process (`rs`)."""
    return {
        "mcpServers": {
            "everything": everything_entry(env={"MCP_TEST_MARKER": marker}),
            "fastmcp": fastmcp_entry(marker, namespace="py"),
            "builtin": {"type": "builtin", "server": "everything", "namespace": "rs"},
        }
    }


def processes_with(marker: str) -> List[int]:
    """Live processes whose command line or environment holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (marker.encode() in cmdline or marker.encode() in environ):
            found.append(int(entry.name))
    return found


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique marker for this test's server processes; after the test,
    none of them may be left."""
    value = f"pytest-{uuid.uuid4().hex}"
    yield value
    assert wait_until(lambda: not processes_with(value)), (
        f"server processes left behind: {processes_with(value)}"
    )


@pytest.fixture(scope="module")
def shared() -> Iterator[SyncManager]:
    """One started manager of `config`, shared by a module's read-only tests."""
    value = f"pytest-{uuid.uuid4().hex}"
    with SyncManager.from_config(config(value)) as manager:
        yield manager
    assert wait_until(lambda: not processes_with(value))
