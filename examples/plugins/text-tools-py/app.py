"""Text tools as an MCP server compiled to a WebAssembly component."""

import json
import os

import wit_world
from wit_world.imports import host

TOOLS = [
    {
        "name": "word_count",
        "description": "Counts the words of a text.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {
        "name": "read_file",
        "description": "Reads a text file from a folder the plugin is granted.",
        "inputSchema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    },
    {
        "name": "env",
        "description": "The value of an environment variable the plugin sees.",
        "inputSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    },
]


def text(value, is_error=False):
    return {"content": [{"type": "text", "text": value}], "isError": is_error}


def call(name, arguments):
    if name == "word_count":
        words = arguments.get("text", "").split()
        host.progress(1.0, 1.0, "counted")
        return text(str(len(words)))
    if name == "read_file":
        path = arguments.get("path", "")
        try:
            with open(path, encoding="utf-8") as f:
                return text(f.read())
        except OSError as e:
            host.log(host.Level.WARNING, f"read_file {path}: {e}")
            return text(f"cannot read {path}: {e.strerror or e}", True)
    if name == "env":
        value = os.environ.get(arguments.get("name", ""))
        return text(value if value is not None else "(not set)")
    return None


class WitWorld(wit_world.WitWorld):
    def handle(self, message):
        request = json.loads(message)
        method = request.get("method")
        if "id" not in request:
            return None
        params = request.get("params") or {}
        if method == "initialize":
            result = {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}, "logging": {}},
                "serverInfo": {"name": "text-tools-py", "version": "1.0.0"},
            }
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            result = call(params.get("name"), params.get("arguments") or {})
            if result is None:
                return json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32602, "message": f"unknown tool {params.get('name')}"}})
        elif method == "ping":
            result = {}
        else:
            return json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": f"method not found: {method}"}})
        return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})
