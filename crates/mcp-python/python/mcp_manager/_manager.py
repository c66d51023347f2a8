"""Manager (async) and SyncManager (its blocking twin)."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import logging
import os
import urllib.parse
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Type, TypeVar, Union

from . import _admin, _errors
from ._types import Health, PluginType, ServerInfo, StartReport, ToolResult
from ._native import Core, NativeError, Reply, shutdown

__all__ = ["Manager", "SyncManager", "Progress", "ConfigSource", "RequestHandler"]

log = logging.getLogger("mcp_manager")

#: ``progress(progress, total, message)``, called for each progress
#: notification of a call.
Progress = Callable[[float, Optional[float], Optional[str]], object]

#: ``on_request(method, params)``: answers what a server asks of the client
#: while it serves a call (``sampling/createMessage``,
#: ``elicitation/create``, ``roots/list``) with the result as a dict, or
#: raises (:class:`McpError` to choose the error code). A :class:`Manager`'s
#: may be a coroutine function; it runs on the event loop.
RequestHandler = Callable[[str, Dict[str, Any]], Any]

#: A config file's path, or the config itself (``{"mcpServers": {...}}``).
ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]

M = TypeVar("M", bound="_Base")
AM = TypeVar("AM", bound="Manager")
SM = TypeVar("SM", bound="SyncManager")

# Managers still open when the interpreter exits are closed, so that no
# server process outlives it.
_open_cores: "weakref.WeakSet[_Base]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for manager in list(_open_cores):
        try:
            manager._core.run("close", "{}")
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    # The runtime's threads must be out of Python before it finalizes.
    shutdown()


def _start_args(
    config: ConfigSource, plugins_dir: Optional[Union[str, "os.PathLike[str]"]] = None
) -> Dict[str, Any]:
    extra = {} if plugins_dir is None else {"pluginsDir": os.fspath(plugins_dir)}
    if isinstance(config, (str, os.PathLike)):
        return {"path": os.fspath(config), **extra}
    if isinstance(config, Mapping):
        return {"config": dict(config), "baseDir": os.getcwd(), **extra}
    raise _errors.ConfigError(
        f"a config is a path or a dict like {{'mcpServers': {{...}}}}, not {type(config).__name__}",
        _errors.INVALID_PARAMS,
    )


def _connect_config(url: str, headers: Optional[Mapping[str, str]]) -> Dict[str, Any]:
    """The one-server config of a connected manager; ``url`` must be an
    HTTP(S) address with a host, or ``unix:`` and the absolute path of a
    frame socket."""
    if isinstance(url, str) and url[:5].lower() == "unix:":
        path = url[5:]
        if path.startswith("///"):
            path = path[2:]
        if not path.startswith("/") or headers:
            raise _errors.ConfigError(
                "connect() takes a frame socket as 'unix:' and its absolute path, "
                f"like 'unix:/run/user/1000/mcp.sock', without headers, not {url!r}",
                _errors.INVALID_PARAMS,
            )
        return {"mcpServers": {"gateway": {"url": url, "namespace": ""}}}
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _errors.ConfigError(
            "connect() takes the address of a running gateway's MCP endpoint, "
            f"like 'http://127.0.0.1:8931/mcp', or its frame socket, like "
            f"'unix:/run/user/1000/mcp.sock', not {url!r}",
            _errors.INVALID_PARAMS,
        )
    entry: Dict[str, Any] = {"url": url, "namespace": ""}
    if headers:
        entry["headers"] = dict(headers)
    return {"mcpServers": {"gateway": entry}}


def _named_params(name: str, arguments: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The params of ``tools/call`` and ``prompts/get``; the arguments must
    be a mapping."""
    if arguments is not None and not isinstance(arguments, Mapping):
        raise _errors.ConfigError(
            f"the arguments of `{name}` are a mapping of names to values, "
            f"not {type(arguments).__name__}",
            _errors.INVALID_PARAMS,
        )
    return {"name": name, "arguments": dict(arguments or {})}


def _request(
    server: Optional[str], method: str, params: Optional[Mapping[str, Any]], timeout: Optional[float]
) -> Dict[str, Any]:
    return {
        "server": server,
        "method": method,
        "params": None if params is None else dict(params),
        "timeout": timeout,
    }


def _report(started: Any) -> Any:
    """Logs what ``start()`` found worth saying: the config's warnings (a
    misspelt key, say) and the servers that did not start."""
    for warning in started.get("warnings", []):
        where = f"{warning['path']}: " if warning.get("path") else ""
        hint = f" ({warning['hint']})" if warning.get("hint") else ""
        log.warning("config: %s%s%s", where, warning.get("message"), hint)
    for server in started.get("servers", []):
        if server.get("state") == "failed":
            log.warning("server %s did not start: %s", server.get("name"), server.get("error"))
    return started


def _refuse(reply: Reply, message: str, code: int = _errors.INTERNAL_ERROR, data: Any = None) -> None:
    reply.send(False, json.dumps({"code": code, "message": message, "data": data}))


def _fail(reply: Reply, error: Exception) -> None:
    """Answers a server's request with the handler's error: an
    :class:`McpError` as it is, anything else as an internal error."""
    if isinstance(error, _errors.McpError):
        _refuse(reply, error.message, error.code, error.data)
    else:
        log.error("the request handler failed", exc_info=error)
        _refuse(reply, f"{type(error).__name__}: {error}")


def _succeed(reply: Reply, result: Any) -> None:
    try:
        text = json.dumps(result)
    except (TypeError, ValueError) as error:
        _fail(reply, error)
    else:
        reply.send(True, text)


def _answer(handler: RequestHandler, method: str, params: str, reply: Reply) -> None:
    """Answers a server's request with what a sync ``handler`` gives or raises."""
    try:
        result = handler(method, json.loads(params))
    except Exception as error:  # noqa: BLE001 - the server gets it as an error
        _fail(reply, error)
    else:
        _succeed(reply, result)


async def _answer_async(handler: RequestHandler, method: str, params: str, reply: Reply) -> None:
    """:func:`_answer` for a handler that may be a coroutine function."""
    try:
        result = handler(method, json.loads(params))
        if inspect.isawaitable(result):
            result = await result
    except Exception as error:  # noqa: BLE001 - the server gets it as an error
        _fail(reply, error)
    except BaseException:  # cancelled, or the program is ending: still answer
        _refuse(reply, "the request handler was interrupted")
        raise
    else:
        _succeed(reply, result)


class _Base:
    """What both twins share: the native core, and for a connected manager
    the gateway's admin API."""

    def __init__(
        self,
        start: Dict[str, Any],
        connected: bool = False,
        admin: Optional[_admin.Admin] = None,
        core: Optional[Core] = None,
        on_request: Optional[RequestHandler] = None,
    ) -> None:
        if not isinstance(start, dict) or not ("path" in start or "config" in start):
            name = type(self).__name__
            raise TypeError(
                f"make a {name} with {name}.from_config(path_or_dict) (servers run in "
                f"this process) or {name}.connect(url) (a running gateway), not {name}(...)"
            )
        # A core shared with a twin: both see the same servers.
        self._core = Core() if core is None else core
        #: Answers what servers ask of the client during a call; without
        #: one, such requests are refused (-32601).
        self.on_request = on_request
        self._start = start
        self._connected = connected
        self._admin = admin
        self._started = False
        self._closed = False

    def _opened(self) -> None:
        self._started = True
        self._closed = False
        _open_cores.add(self)

    def _shut(self) -> None:
        self._started = False
        self._closed = True
        _open_cores.discard(self)

    @classmethod
    def from_config(
        cls: Type[M],
        config: ConfigSource,
        *,
        on_request: Optional[RequestHandler] = None,
        plugins_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
    ) -> M:
        """A manager of the servers of ``config`` (a path to an
        ``mcpServers`` JSON file, or that JSON as a dict), run in this
        process; started by ``async with`` / ``with`` or ``start()``.
        ``on_request`` answers what servers ask of the client (sampling,
        elicitation, roots) while they serve a call. Server types of
        plugins are looked up in ``plugins_dir``, else in the config's
        ``mcpManager.pluginsDir``, else in
        ``$XDG_DATA_HOME/mcp-manager/plugins``; a plugin that cannot be
        loaded is a warning of :meth:`start`."""
        return cls(_start_args(config, plugins_dir), on_request=on_request)

    @classmethod
    def connect(
        cls: Type[M],
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        admin: Optional[str] = None,
        admin_token: Optional[str] = None,
        on_request: Optional[RequestHandler] = None,
    ) -> M:
        """A manager that talks to a running gateway at ``url``: over
        Streamable HTTP (``http://127.0.0.1:8931/mcp``), or over its frame
        socket (``unix:/path/to/socket``, from ``serve --frame-socket``),
        with the same API either way. With
        ``admin`` (the gateway's ``--admin`` address), servers(), deploy(),
        undeploy(), scale(), restart(), health() and metrics() act on the
        gateway's servers; without it they raise :class:`NotSupported`."""
        admin_api = _admin.Admin(admin, admin_token) if admin else None
        start = {"config": _connect_config(url, headers), "connect": url}
        return cls(start, True, admin_api, on_request=on_request)

    def _admin_for(self, op: str) -> Optional[_admin.Admin]:
        """The admin API that performs ``op`` for a connected manager;
        None for an embedded one, which performs it itself."""
        if not self._connected:
            return None
        if self._admin is None:
            raise _errors.NotSupported(
                f"{op}() on a connected manager needs the gateway's admin API: "
                "pass its address to connect(), as in admin='127.0.0.1:8932'"
            )
        return self._admin

    def _request(
        self,
        server: Optional[str],
        method: str,
        params: Optional[Mapping[str, Any]],
        timeout: Optional[float],
    ) -> Dict[str, Any]:
        """The arguments of a request; a connected manager has only the
        gateway to send it to."""
        if self._connected and server is not None:
            raise _errors.NotSupported(
                f"request({server!r}, ...) on a connected manager: the gateway serves its "
                "servers as one, so send the request through it with request(None, ...) "
                "(tool and prompt names carry the server's namespace); requests to one "
                "server need a manager made with from_config()"
            )
        return _request(server, method, params, timeout)

    def __repr__(self) -> str:
        where = "connected" if self._connected else "embedded"
        state = "closed" if self._closed else "started" if self._started else "not started"
        return f"<{type(self).__name__} {where}, {state}>"


class Manager(_Base):
    """A manager of MCP servers, async: start it with ``async with`` (or
    :meth:`start`), then call tools, read resources and get prompts of all
    its servers as one (names are namespaced as in the config), or send any
    request to one server.

    ``Manager.from_config(path_or_dict)`` runs the servers in this process;
    ``Manager.connect(url)`` uses a running ``mcp-manager serve`` gateway.
    Results are plain Python data (dicts and lists, as MCP's JSON has them).
    """

    async def _call(self, op: str, args: Mapping[str, Any], progress: Optional[Progress] = None) -> Any:
        loop = asyncio.get_running_loop()
        future: "asyncio.Future[str]" = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(_errors.from_native(value))

        def done(ok: bool, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(settle, ok, value)
            except RuntimeError:  # the loop is closed: nobody waits
                pass

        relay: Optional[Progress] = None
        if progress is not None:
            callback = progress

            def relay(value: float, total: Optional[float], message: Optional[str]) -> None:
                try:
                    loop.call_soon_threadsafe(callback, value, total, message)
                except RuntimeError:
                    pass

        asks: Optional[Callable[[str, str, Reply], None]] = None
        if self.on_request is not None:
            handler = self.on_request

            def asks(method: str, params: str, reply: Reply) -> None:
                def begin() -> None:
                    loop.create_task(_answer_async(handler, method, params, reply))

                try:
                    loop.call_soon_threadsafe(begin)
                except RuntimeError:
                    _refuse(reply, "the event loop is closed")

        try:
            pending = self._core.submit(op, json.dumps(args), done, relay, asks)
        except NativeError as error:
            raise _errors.from_native(error.args) from None
        try:
            text = await future
        except asyncio.CancelledError:
            pending.cancel()
            raise
        return json.loads(text)

    async def _manage(self, op: str, args: Mapping[str, Any]) -> Any:
        admin = self._admin_for(op)
        if admin is None:
            return await self._call(op, args)
        return await asyncio.get_running_loop().run_in_executor(None, admin.perform, op, args)

    # Life cycle.

    async def start(self) -> StartReport:
        """Starts the servers and says how it went:
        ``{"servers": [{"name", "state", "error"?}], "warnings": [{"path",
        "message", "hint"}]}``; servers that did not start and the config's
        warnings (a misspelt key, say) are logged to the ``mcp_manager``
        logger too. A server that failed stays listed by :meth:`servers`
        with its reason, and calls to it raise :class:`ServerUnavailable`.

        Raises :class:`ConfigError` for a config that does not check, and
        :class:`ServerUnavailable` when no server started at all (for a
        connected manager: when no MCP gateway answers at its URL)."""
        started = _report(await self._call("start", self._start))
        self._opened()
        return started  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Stops every server (their requests in flight first) and closes
        the manager; closing twice is fine."""
        await self._call("close", {})
        self._shut()

    async def __aenter__(self: AM) -> AM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Through the gateway: every server's tools, resources and prompts.

    async def request(
        self,
        server: Optional[str],
        method: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        progress: Optional[Progress] = None,
    ) -> Any:
        """Sends ``method`` with ``params`` to ``server`` (its config name)
        and gives the result; ``server=None`` sends it through the gateway,
        which routes it by name. ``timeout`` in seconds cancels it upstream
        when it passes."""
        return await self._call("request", self._request(server, method, params, timeout), progress)

    async def _list(self, method: str, key: str) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        cursor: Optional[str] = None
        while True:
            page = await self.request(None, method, {"cursor": cursor} if cursor else None)
            items.extend(page.get(key, []))
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    async def list_tools(self) -> List[Dict[str, Any]]:
        """Every tool of every server, with its exposed (namespaced) name."""
        return await self._list("tools/list", "tools")

    async def list_resources(self) -> List[Dict[str, Any]]:
        """Every resource of every server."""
        return await self._list("resources/list", "resources")

    async def list_resource_templates(self) -> List[Dict[str, Any]]:
        """Every resource template of every server."""
        return await self._list("resources/templates/list", "resourceTemplates")

    async def list_prompts(self) -> List[Dict[str, Any]]:
        """Every prompt of every server, with its exposed name."""
        return await self._list("prompts/list", "prompts")

    async def call_tool(
        self,
        name: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        progress: Optional[Progress] = None,
    ) -> ToolResult:
        """Calls tool ``name`` (as :meth:`list_tools` names it): the
        ``CallToolResult``. ``content`` is always there;
        ``structuredContent`` and ``isError`` only when the server sent
        them, so read those with ``.get()``. A tool that failed gives
        ``isError: True`` rather than raising.

        ``timeout`` is in seconds; when it passes the call is cancelled at
        the server and :class:`McpTimeoutError` is raised (as it is when
        the config's ``timeoutMs`` runs out). Raises :class:`ToolNotFound`
        for a name no server has, :class:`ServerUnavailable` when the
        tool's server did not start or is down, and :class:`McpError` (or
        another subclass) for any other error of the request."""
        params = _named_params(name, arguments)
        return await self.request(None, "tools/call", params, timeout=timeout, progress=progress)  # type: ignore[no-any-return]

    async def read_resource(self, uri: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Reads resource ``uri``: ``{"contents": [...]}``."""
        return await self.request(None, "resources/read", {"uri": uri}, timeout=timeout)  # type: ignore[no-any-return]

    async def get_prompt(
        self,
        name: str,
        arguments: Optional[Mapping[str, str]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Gets prompt ``name`` filled with ``arguments``: ``{"messages": [...]}``."""
        params = _named_params(name, arguments)
        return await self.request(None, "prompts/get", params, timeout=timeout)  # type: ignore[no-any-return]

    # The servers (of a connected manager: through the gateway's admin API).

    async def servers(self) -> List[ServerInfo]:
        """Every server: name, state, health, instances, counters, recent errors."""
        return await self._manage("servers", {})  # type: ignore[no-any-return]

    async def plugins(self) -> List[PluginType]:
        """Every server type, built in or loaded from the plugins directory:
        its kind, plugin, version, capabilities, grants and settings schema.
        (Of a connected manager: through the gateway's admin API.)"""
        return await self._manage("plugins", self._start)  # type: ignore[no-any-return]

    async def deploy(self, name: str, config: Mapping[str, Any]) -> ServerInfo:
        """Starts a server from an ``mcpServers`` entry and adds it; how it is doing."""
        return await self._manage("deploy", {"name": name, "config": dict(config)})  # type: ignore[no-any-return]

    async def undeploy(self, name: str) -> None:
        """Takes server ``name`` out, lets its requests finish, stops it."""
        await self._manage("undeploy", {"name": name})

    async def scale(self, name: str, instances: int) -> ServerInfo:
        """Runs ``instances`` instances of server ``name`` (1 to 64)."""
        return await self._manage("scale", {"name": name, "instances": instances})  # type: ignore[no-any-return]

    async def restart(self, name: str) -> ServerInfo:
        """Starts new instances of server ``name``, then drains and stops the old ones."""
        return await self._manage("restart", {"name": name})  # type: ignore[no-any-return]

    async def health(self) -> Health:
        """``{"total", "healthy", "degraded", "unhealthy", "avgResponseTimeMs",
        "servers": {name: health}}``."""
        answer = await self._manage("health", {})
        if self._connected:
            # The mean time of this manager's own requests to the gateway.
            answer["avgResponseTimeMs"] = (await self._call("health", {}))["avgResponseTimeMs"]
        return _admin.health_of(answer)

    async def metrics(self) -> str:
        """Every metric in the Prometheus text format."""
        return await self._manage("metrics", {})  # type: ignore[no-any-return]


class SyncManager(_Base):
    """:class:`Manager`'s blocking twin, with the same methods: for code
    without an event loop. The GIL is released while a call waits, and
    Ctrl-C cancels it (``KeyboardInterrupt``). Progress callbacks run on
    the calling thread."""

    def _call(self, op: str, args: Mapping[str, Any], progress: Optional[Progress] = None) -> Any:
        handler = self.on_request
        asks = None
        if handler is not None:

            def asks(method: str, params: str, reply: Reply) -> None:
                _answer(handler, method, params, reply)

        try:
            text = self._core.run(op, json.dumps(args), progress, asks)
        except NativeError as error:
            raise _errors.from_native(error.args) from None
        return json.loads(text)

    def _manage(self, op: str, args: Mapping[str, Any]) -> Any:
        admin = self._admin_for(op)
        return self._call(op, args) if admin is None else admin.perform(op, args)

    def start(self) -> StartReport:
        """As :meth:`Manager.start`."""
        started = _report(self._call("start", self._start))
        self._opened()
        return started  # type: ignore[no-any-return]

    def close(self) -> None:
        """As :meth:`Manager.close`."""
        self._call("close", {})
        self._shut()

    def __enter__(self: SM) -> SM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        server: Optional[str],
        method: str,
        params: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        progress: Optional[Progress] = None,
    ) -> Any:
        """As :meth:`Manager.request`."""
        return self._call("request", self._request(server, method, params, timeout), progress)

    def _list(self, method: str, key: str) -> List[Dict[str, Any]]:
        items: List[Dict[str, Any]] = []
        cursor: Optional[str] = None
        while True:
            page = self.request(None, method, {"cursor": cursor} if cursor else None)
            items.extend(page.get(key, []))
            cursor = page.get("nextCursor")
            if not cursor:
                return items

    def list_tools(self) -> List[Dict[str, Any]]:
        """As :meth:`Manager.list_tools`."""
        return self._list("tools/list", "tools")

    def list_resources(self) -> List[Dict[str, Any]]:
        """As :meth:`Manager.list_resources`."""
        return self._list("resources/list", "resources")

    def list_resource_templates(self) -> List[Dict[str, Any]]:
        """As :meth:`Manager.list_resource_templates`."""
        return self._list("resources/templates/list", "resourceTemplates")

    def list_prompts(self) -> List[Dict[str, Any]]:
        """As :meth:`Manager.list_prompts`."""
        return self._list("prompts/list", "prompts")

    def call_tool(
        self,
        name: str,
        arguments: Optional[Mapping[str, Any]] = None,
        *,
        timeout: Optional[float] = None,
        progress: Optional[Progress] = None,
    ) -> ToolResult:
        """As :meth:`Manager.call_tool`."""
        params = _named_params(name, arguments)
        return self.request(None, "tools/call", params, timeout=timeout, progress=progress)  # type: ignore[no-any-return]

    def read_resource(self, uri: str, *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """As :meth:`Manager.read_resource`."""
        return self.request(None, "resources/read", {"uri": uri}, timeout=timeout)  # type: ignore[no-any-return]

    def get_prompt(
        self,
        name: str,
        arguments: Optional[Mapping[str, str]] = None,
        *,
        timeout: Optional[float] = None,
    ) -> Dict[str, Any]:
        """As :meth:`Manager.get_prompt`."""
        params = _named_params(name, arguments)
        return self.request(None, "prompts/get", params, timeout=timeout)  # type: ignore[no-any-return]

    def servers(self) -> List[ServerInfo]:
        """As :meth:`Manager.servers`."""
        return self._manage("servers", {})  # type: ignore[no-any-return]

    def plugins(self) -> List[PluginType]:
        """As :meth:`Manager.plugins`."""
        return self._manage("plugins", self._start)  # type: ignore[no-any-return]

    def deploy(self, name: str, config: Mapping[str, Any]) -> ServerInfo:
        """As :meth:`Manager.deploy`."""
        return self._manage("deploy", {"name": name, "config": dict(config)})  # type: ignore[no-any-return]

    def undeploy(self, name: str) -> None:
        """As :meth:`Manager.undeploy`."""
        self._manage("undeploy", {"name": name})

    def scale(self, name: str, instances: int) -> ServerInfo:
        """As :meth:`Manager.scale`."""
        return self._manage("scale", {"name": name, "instances": instances})  # type: ignore[no-any-return]

    def restart(self, name: str) -> ServerInfo:
        """As :meth:`Manager.restart`."""
        return self._manage("restart", {"name": name})  # type: ignore[no-any-return]

    def health(self) -> Health:
        """As :meth:`Manager.health`."""
        answer = self._manage("health", {})
        if self._connected:
            answer["avgResponseTimeMs"] = self._call("health", {})["avgResponseTimeMs"]
        return _admin.health_of(answer)

    def metrics(self) -> str:
        """As :meth:`Manager.metrics`."""
        return self._manage("metrics", {})  # type: ignore[no-any-return]


def _share_docs() -> None:
    """Gives each of SyncManager's methods documented as "As
    :meth:`Manager.x`" the whole text of ``Manager.x``, for ``help()``."""
    for name, member in vars(SyncManager).items():
        doc = getattr(member, "__doc__", None) or ""
        twin = getattr(Manager, name, None)
        if doc.startswith("As :meth:`Manager.") and twin is not None and twin.__doc__:
            text = inspect.cleandoc(twin.__doc__)
            member.__doc__ = text + "\n\n(Blocking: returns when the call is done.)"


_share_docs()
