"""How the package uses the machine: one runtime per process, the GIL
released while Rust works, Ctrl-C interrupting a blocking call."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import fastmcp_entry, processes_with, wait_until
from mcp_manager import SyncManager


def runtime_threads() -> int:
    """Threads of this process that the native runtime started."""
    names = [(task / "comm").read_text().strip() for task in Path("/proc/self/task").iterdir()]
    return sum(1 for name in names if name.startswith("mcp-manager"))


def test_every_manager_shares_one_runtime() -> None:
    empty = {"mcpServers": {"rs": {"type": "builtin", "server": "everything"}}}
    with SyncManager.from_config(empty) as first:
        first.list_tools()
        one = runtime_threads()
        assert one >= 1
        others = [SyncManager.from_config(empty) for _ in range(3)]
        for manager in others:
            manager.start()
            manager.list_tools()
        assert runtime_threads() == one
        for manager in others:
            manager.close()


def test_the_gil_is_released_while_a_call_waits(marker: str) -> None:
    with SyncManager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}}) as manager:
        ticks = 0
        stop = threading.Event()

        def count() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                time.sleep(0.001)

        counter = threading.Thread(target=count)
        counter.start()
        try:
            before = ticks
            manager.call_tool("py__sleep", {"seconds": 1.0})
            during = ticks - before
        finally:
            stop.set()
            counter.join()
        # About 1000 ticks of 1 ms fit in the second the call waits; with the
        # GIL held there would be none.
        assert during > 200, during


def test_ctrl_c_interrupts_a_blocking_call_and_cancels_it_upstream(marker: str) -> None:
    with SyncManager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}}) as manager:
        key = uuid.uuid4().hex
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            manager.call_tool("py__wait_for_cancel", {"key": key, "seconds": 30})
        assert time.monotonic() - started < 5
        assert wait_until(
            lambda: manager.call_tool("py__was_cancelled", {"key": key})["structuredContent"]["result"]
        )
        # The manager goes on serving.
        assert manager.call_tool("py__add", {"a": 1, "b": 2})["content"][0]["text"] == "3"


def test_a_manager_dropped_without_close_stops_its_servers(marker: str) -> None:
    manager = SyncManager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}})
    manager.start()
    assert wait_until(lambda: len(processes_with(marker)) == 1)
    del manager
    gc.collect()
    assert wait_until(lambda: not processes_with(marker))


def test_threads_share_a_sync_manager(marker: str) -> None:
    with SyncManager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}}) as manager:

        def add(i: int) -> str:
            return str(manager.call_tool("py__add", {"a": i, "b": i})["content"][0]["text"])

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(add, range(100))) == [str(2 * i) for i in range(100)]


def test_a_forked_child_gets_a_clear_error_not_a_hang(marker: str) -> None:
    with SyncManager.from_config({"mcpServers": {"py": fastmcp_entry(marker)}}) as manager:
        manager.list_tools()
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            try:
                SyncManager.from_config({"mcpServers": {}})
                os.write(writer, b"no error")
            except RuntimeError as error:
                os.write(writer, str(error).encode()[:200])
            finally:
                os._exit(0)
        os.close(writer)
        said = os.read(reader, 300).decode()
        os.close(reader)
        os.waitpid(child, 0)
        assert "fork" in said, said
