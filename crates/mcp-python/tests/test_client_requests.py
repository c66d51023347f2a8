"""What servers ask of the client during a call (here server-everything's
`sampling/createMessage`) reaches the manager's `on_request` handler, sync
and async, through the gateway and directly."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Dict, List

import pytest

from conftest import everything_entry
from mcp_manager import Manager, McpError, SyncManager


def everything() -> Dict[str, Any]:
    return {"mcpServers": {"everything": everything_entry()}}


ANSWER = {
    "role": "assistant",
    "content": {"type": "text", "text": "an answer from Python"},
    "model": "python-handler",
    "stopReason": "endTurn",
}


def text_of(result: Any) -> str:
    return str(result["content"][0]["text"])


def test_a_sync_handler_answers_sampling_on_the_calling_thread() -> None:
    seen: List[Any] = []

    def on_request(method: str, params: Dict[str, Any]) -> Dict[str, Any]:
        seen.append((method, params["messages"][0]["content"]["text"], threading.get_ident()))
        return ANSWER

    with SyncManager.from_config(everything(), on_request=on_request) as m:
        result = m.call_tool("ev__trigger-sampling-request", {"prompt": "hello", "maxTokens": 5})
        assert "an answer from Python" in text_of(result)
        assert "python-handler" in text_of(result)
        (method, prompt, thread), = seen
        assert method == "sampling/createMessage"
        assert "hello" in prompt
        assert thread == threading.get_ident()
        # Sent to the server directly, not through the gateway: the same.
        direct = m.request(
            "everything",
            "tools/call",
            {"name": "trigger-sampling-request", "arguments": {"prompt": "again"}},
        )
        assert "an answer from Python" in text_of(direct)
        assert len(seen) == 2


def test_an_async_handler_runs_on_the_loop_and_its_errors_reach_the_server() -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        calls: List[int] = []

        async def on_request(method: str, params: Dict[str, Any]) -> Dict[str, Any]:
            calls.append(threading.get_ident())
            await asyncio.sleep(0.01)
            if "refuse" in params["messages"][0]["content"]["text"]:
                raise McpError("no sampling for you", -32001)
            return ANSWER

        async with Manager.from_config(everything(), on_request=on_request) as m:
            results = await asyncio.gather(
                *[m.call_tool("ev__trigger-sampling-request", {"prompt": f"p{i}"}) for i in range(10)]
            )
            assert all("an answer from Python" in text_of(r) for r in results)
            assert set(calls) == {loop_thread} and len(calls) == 10
            refused = await m.call_tool("ev__trigger-sampling-request", {"prompt": "refuse"})
            assert refused.get("isError") is True
            assert "no sampling for you" in text_of(refused)

    asyncio.run(main())


def test_without_a_handler_the_request_is_refused() -> None:
    with SyncManager.from_config(everything()) as m:
        try:
            result = m.call_tool("ev__trigger-sampling-request", {"prompt": "x"})
        except McpError as error:
            message = error.message
        else:
            assert result.get("isError") is True
            message = text_of(result)
        assert "on_request" in message or "-32601" in message, message


def test_a_handler_that_raises_answers_with_an_internal_error() -> None:
    def on_request(method: str, params: Dict[str, Any]) -> Dict[str, Any]:
        raise ValueError("broken handler")

    with SyncManager.from_config(everything(), on_request=on_request) as m:
        result = m.call_tool("ev__trigger-sampling-request", {"prompt": "x"})
        assert result.get("isError") is True
        assert "broken handler" in text_of(result)


@pytest.fixture(autouse=True)
def _quiet_handler_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("CRITICAL", logger="mcp_manager")
