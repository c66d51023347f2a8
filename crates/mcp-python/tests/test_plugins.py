"""Server types of plugins loaded at run time: the example `python-script`
command plugin runs the FastMCP peer; `plugins()` lists every type, on an
embedded manager (a connected one's, through the admin API, is in
test_connect); a plugin that cannot be loaded is a warning of `start()`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any, Dict, List

from conftest import peer
from mcp_manager import Manager, PluginType, SyncManager

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "plugins"


def _script_server(marker: str) -> Dict[str, Any]:
    return {
        "type": "python-script",
        "namespace": "py",
        "python": peer("MCP_PEER_PYTHON"),
        "script": peer("MCP_PEER_FASTMCP"),
        "args": [f"--marker={marker}"],
    }


def _by_type(types: List[PluginType]) -> Dict[str, PluginType]:
    return {t["type"]: t for t in types}


def test_a_command_plugin_type_runs_and_is_listed(marker: str) -> None:
    config = {"mcpServers": {"fast": _script_server(marker)}}

    async def main() -> None:
        async with Manager.from_config(config, plugins_dir=EXAMPLES) as m:
            result = await m.call_tool("py__add", {"a": 40, "b": 2})
            assert result["content"][0]["text"] == "42"
            types = _by_type(await m.plugins())
            script = types["python-script"]
            assert script["kind"] == "command"
            assert script["plugin"] == "python-script"
            assert script["aliases"] == ["py-script"]
            assert "instances" in script["capabilities"]
            schema = script["settingsSchema"]
            assert schema is not None and schema["required"] == ["script"]
            assert types["stdio"]["kind"] == "built-in"

    asyncio.run(main())


def test_a_broken_plugin_is_a_warning_and_the_others_load(tmp_path: Path, marker: str) -> None:
    plugins = tmp_path / "plugins"
    shutil.copytree(EXAMPLES / "python-script", plugins / "python-script")
    (plugins / "broken").mkdir()
    (plugins / "broken" / "plugin.toml").write_text('name = "broken"\nversion = "1"\napi = "9.0"\n')
    config = {
        "mcpServers": {"fast": _script_server(marker)},
        "mcpManager": {"pluginsDir": str(plugins)},
    }
    manager = SyncManager.from_config(config)
    # Before start(): the types its config would have.
    assert "python-script" in _by_type(manager.plugins())
    try:
        report = manager.start()
        warnings = [w["message"] for w in report["warnings"]]
        assert any("plugin" in w and "broken" in w for w in warnings), warnings
        result = manager.call_tool("py__echo", {"text": "loaded"})
        assert result["content"][0]["text"] == "loaded"
    finally:
        manager.close()


BUILT = Path(__file__).resolve().parents[3] / "target" / "plugins"


def test_wasm_plugin_types_run_in_their_sandbox_and_are_listed(tmp_path: Path) -> None:
    for example in ("text-tools-py", "text-tools-js"):
        assert (BUILT / example / "server.wasm").is_file(), (
            f"{BUILT} has no {example}/server.wasm: run `cargo xtask plugins` first"
        )
    granted = Path("/tmp") / f"mcp-manager-wasm-{tmp_path.name}"
    granted.mkdir()
    try:
        (granted / "note.txt").write_text("from a granted folder")
        config = {
            "mcpServers": {
                "py": {
                    "type": "text-tools-py",
                    "namespace": "py",
                    "startupTimeoutMs": 180000,
                    "grants": {"fs": [{"path": str(granted)}]},
                },
                "js": {"type": "text-tools-js", "namespace": "js", "startupTimeoutMs": 180000},
            }
        }

        async def main() -> None:
            async with Manager.from_config(config, plugins_dir=BUILT) as m:
                slug = await m.call_tool("js__slugify", {"title": "Python, Meet Wasm"})
                assert slug["content"][0]["text"] == "python-meet-wasm"
                note = await m.call_tool("py__read_file", {"path": str(granted / "note.txt")})
                assert note["content"][0]["text"] == "from a granted folder"
                outside = await m.call_tool("py__read_file", {"path": str(tmp_path)})
                assert outside["isError"] is True
                types = _by_type(await m.plugins())
                py = types["text-tools-py"]
                assert py["kind"] == "wasm"
                assert py["plugin"] == "text-tools-py"
                assert "fs /tmp (read-only)" in py["grants"]
                assert "in-process" in py["capabilities"]

        asyncio.run(main())
    finally:
        shutil.rmtree(granted)
