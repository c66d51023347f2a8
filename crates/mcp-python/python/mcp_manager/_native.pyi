"""The native half of mcp_manager (Rust). Private: use :mod:`mcp_manager`."""

from typing import Any, Callable, Optional, final

__all__ = ["Core", "Pending", "Reply", "shutdown", "NativeError", "__version__"]

#: The package's version (the crate's, as the wheel's metadata has it).
__version__: str

def shutdown() -> None:
    """At interpreter exit: the runtime's threads stop calling into Python."""

class NativeError(Exception):
    """``args`` are ``(kind, message, code, data)``."""

@final
class Pending:
    def cancel(self) -> None: ...

@final
class Reply:
    def send(self, ok: bool, value: str) -> None: ...

@final
class Core:
    def __new__(cls) -> "Core": ...
    def submit(
        self,
        op: str,
        args: str,
        done: Callable[[bool, Any], object],
        progress: Optional[Callable[[float, Optional[float], Optional[str]], object]] = None,
        asks: Optional[Callable[[str, str, Reply], object]] = None,
    ) -> Pending: ...
    def run(
        self,
        op: str,
        args: str,
        progress: Optional[Callable[[float, Optional[float], Optional[str]], object]] = None,
        asks: Optional[Callable[[str, str, Reply], object]] = None,
    ) -> str: ...
