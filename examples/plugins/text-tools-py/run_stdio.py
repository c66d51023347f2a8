"""Runs app.py natively, as a stdio MCP server (newline-delimited JSON on
stdin and stdout), for development and for comparing it with the same code
compiled to a component: `python run_stdio.py`.

The component's imports are stood in for: `log` becomes a
`notifications/message` line on stdout, `progress` is dropped (this runner
does not track which request asked for it).
"""

import enum
import sys
import types
from pathlib import Path


class Level(enum.Enum):
    DEBUG = 0
    INFO = 1
    NOTICE = 2
    WARNING = 3
    ERROR = 4
    CRITICAL = 5
    ALERT = 6
    EMERGENCY = 7


def log(level, message):
    import json

    note = {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": level.name.lower(), "logger": "text-tools-py", "data": message},
    }
    sys.stdout.write(json.dumps(note) + "\n")
    sys.stdout.flush()


def progress(progress, total, message):
    pass


host = types.ModuleType("wit_world.imports.host")
host.Level = Level
host.log = log
host.progress = progress
imports = types.ModuleType("wit_world.imports")
imports.host = host
world = types.ModuleType("wit_world")
world.WitWorld = object
world.imports = imports
sys.modules.update({"wit_world": world, "wit_world.imports": imports, "wit_world.imports.host": host})

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app  # noqa: E402

server = app.WitWorld()
for line in sys.stdin:
    if not line.strip():
        continue
    answer = server.handle(line)
    if answer is not None:
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
