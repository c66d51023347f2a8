//! Python bindings for mcp-manager: the native module `mcp_manager._native`
//! of the `mcp_manager` Python package (built with maturin; the package's
//! Python half lives in `python/mcp_manager/`). This is the only crate of
//! the workspace that knows Python (pyo3).
//!
//! The native module is deliberately small: one class, `Core`, that owns
//! a manager (an [`McpRuntime`], the servers of a config behind a
//! [`Gateway`], a [`Control`] actor to change them, Prometheus
//! [`Metrics`]) and runs operations named by a string with JSON arguments.
//! Each operation runs either
//!
//! - **asynchronously**, `Core.submit`: spawned on the runtime, its outcome
//!   handed to a Python callback (which the package turns into an asyncio
//!   future's result, on the event loop's own thread); the returned
//!   `Pending` cancels it, which cancels the request upstream; or
//! - **blocking**, `Core.run`: the GIL is released while it runs, progress
//!   callbacks are called on the caller's thread, and a signal (Ctrl-C)
//!   cancels the operation and raises `KeyboardInterrupt` within 50 ms.
//!
//! Every manager of the process shares one multi-threaded tokio runtime,
//! started on first use. A blocking call from one of its threads (a
//! progress callback of an async call, say) is refused, never run:
//! nothing blocks on a runtime thread.
//!
//! Errors leave as `NativeError(kind, message, code, data)`, which the
//! package turns into its exception classes. pyo3's macros expand to
//! `unsafe` code, so this crate cannot forbid it; it writes none of its
//! own.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use mcp_control::{self as control, Control, Report};
use mcp_core::config::ProcessEnv;
use mcp_core::{BoxFuture, ManagerConfig, McpServer, Peer, RequestContext, ServerId};
use mcp_gateway::Gateway;
use mcp_observability::metrics::Metrics;
use mcp_plugin_api::PluginRegistry;
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Notification, Request, RequestId};
use mcp_runtime::{CallOptions, McpRuntime};
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pyo3::create_exception!(
    _native,
    NativeError,
    PyException,
    "An operation failed: args are (kind, message, code, data as JSON text or None)."
);

/// The process's one tokio runtime, started on first use, and the process
/// it was started in.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<(tokio::runtime::Runtime, u32), String>> = OnceLock::new();
    let (runtime, pid) = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("mcp-manager")
                .enable_all()
                .build()
                .map(|runtime| (runtime, std::process::id()))
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))?;
    // A forked child has the runtime's memory but none of its threads.
    if *pid != std::process::id() {
        return Err(PyRuntimeError::new_err(
            "mcp_manager cannot be used in a process forked after it was first used: \
             the runtime's threads do not survive fork(); use managers in the parent, \
             or start the child with multiprocessing's 'spawn' method",
        ));
    }
    Ok(runtime)
}

/// Set once the interpreter is exiting (`shutdown`, from the package's
/// `atexit` hook): runtime threads no longer call into Python.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Runtime threads inside Python right now.
static ATTACHED: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` with the GIL on a runtime thread, unless the interpreter is
/// exiting: a thread that attaches while Python finalizes brings the
/// process down.
fn with_python(f: impl for<'py> FnOnce(Python<'py>)) {
    ATTACHED.fetch_add(1, Ordering::SeqCst);
    if !EXITING.load(Ordering::SeqCst) {
        Python::attach(f);
    }
    ATTACHED.fetch_sub(1, Ordering::SeqCst);
}

/// Reports what a callback called from a runtime thread raised, as Python
/// does for errors nobody can catch.
fn unraisable(py: Python<'_>, called: PyResult<Py<PyAny>>) {
    if let Err(error) = called {
        error.write_unraisable(py, None);
    }
}

/// Called at interpreter exit, after the managers are closed: no runtime
/// thread calls into Python from now on, and those inside it have left
/// (waiting up to a second, with the GIL released so that they can).
#[pyfunction]
fn shutdown(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(1);
        while ATTACHED.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Why an operation failed, as the package's exceptions need it.
#[derive(Debug)]
struct Failure {
    /// `rpc`, `timeout`, `not_found`, `conflict`, `invalid`, `unavailable`,
    /// `busy`, `circuit_open`, `cancelled`, `closed` or `internal`.
    kind: &'static str,
    message: String,
    /// The JSON-RPC error code, for `rpc`.
    code: Option<i64>,
    /// The JSON-RPC error's data, as JSON text.
    data: Option<String>,
}

impl Failure {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            data: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid", message)
    }

    fn rpc(error: &ErrorObject<'_>) -> Self {
        Self {
            kind: "rpc",
            message: error.message.to_string(),
            code: Some(error.code),
            data: error.data.as_ref().map(|d| d.get().to_owned()),
        }
    }

    fn into_args(self) -> (&'static str, String, Option<i64>, Option<String>) {
        (self.kind, self.message, self.code, self.data)
    }
}

impl From<mcp_runtime::Error> for Failure {
    fn from(error: mcp_runtime::Error) -> Self {
        use mcp_runtime::ErrorKind as K;
        if let Some(rpc) = error.rpc_error() {
            return Self::rpc(rpc);
        }
        let kind = match error.kind() {
            K::Timeout => "timeout",
            K::NotFound => "not_found",
            K::AlreadyExists => "conflict",
            K::Busy => "busy",
            K::CircuitOpen => "circuit_open",
            K::Cancelled => "cancelled",
            K::Shutdown => "closed",
            K::Disconnected | K::Unavailable | K::Start | K::Protocol => "unavailable",
            _ => "internal",
        };
        Self::new(kind, error.message())
    }
}

impl From<mcp_control::Error> for Failure {
    fn from(error: mcp_control::Error) -> Self {
        use mcp_control::ErrorKind as K;
        let kind = match error.kind() {
            K::NotFound => "not_found",
            K::Conflict => "conflict",
            K::Invalid => "invalid",
            K::Stopping => "closed",
            _ => "unavailable",
        };
        Self::new(kind, error.message())
    }
}

type Outcome = Result<String, Failure>;

/// The servers behind the gateway, once started.
#[derive(Clone)]
struct Started {
    gateway: Arc<Gateway>,
    control: Control,
}

/// What a [`Core`] owns.
struct Inner {
    runtime: McpRuntime,
    /// The server types this manager can start: the built-in ones.
    registry: Arc<PluginRegistry>,
    metrics: Metrics,
    started: Mutex<Option<Started>>,
    closed: AtomicBool,
    /// The session key of this manager's requests through the gateway.
    session: u64,
    next_id: AtomicU64,
    /// Requests answered, and their summed time in microseconds.
    answered: AtomicU64,
    answered_micros: AtomicU64,
}

/// A manager: its runtime, gateway and control actor.
#[pyclass(frozen, module = "mcp_manager._native")]
struct Core {
    inner: Arc<Inner>,
}

/// An operation started with `Core.submit`; `cancel()` stops it (a
/// request is then cancelled upstream).
#[pyclass(frozen, module = "mcp_manager._native")]
struct Pending {
    abort: tokio::task::AbortHandle,
}

#[pymethods]
impl Pending {
    /// Stops the operation; its callback is not called.
    fn cancel(&self) {
        self.abort.abort();
    }
}

/// Hands a server's request of the client (`sampling/createMessage`,
/// `elicitation/create`, `roots/list`) to Python: method, params as JSON
/// text, and where the answer goes.
type Asker = Arc<dyn Fn(String, String, Reply) + Send + Sync>;

/// Where Python's answer to a server's request goes: `send(True, result)`
/// or `send(False, error)`, both JSON text (`error` an object with `code`,
/// `message` and maybe `data`); only the first answer counts.
#[pyclass(frozen, module = "mcp_manager._native")]
struct Reply {
    sender: Mutex<Option<tokio::sync::oneshot::Sender<mcp_core::HandlerResult>>>,
}

#[pymethods]
impl Reply {
    fn send(&self, ok: bool, value: &str) {
        let answer = if ok {
            Raw::from_json(value).map_err(|e| {
                ErrorObject::new(
                    mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                    format!("the handler's result is not JSON: {e}"),
                )
            })
        } else {
            Err(client_error(value))
        };
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(answer);
        }
    }
}

/// The error object Python answered with (JSON text).
fn client_error(text: &str) -> ErrorObject<'static> {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let code = value
        .get("code")
        .and_then(Value::as_i64)
        .unwrap_or(mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR);
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the request handler failed")
        .to_owned();
    let mut error = ErrorObject::new(code, message);
    error.data = value
        .get("data")
        .filter(|d| !d.is_null())
        .map(Raw::from_value);
    error
}

/// What a call brings besides its arguments: where its progress goes, and
/// who answers what servers ask of the client meanwhile.
#[derive(Clone, Default)]
struct Caller {
    progress: Option<mpsc::Sender<Notification<'static>>>,
    asks: Option<Asker>,
}

/// One progress notification: progress, total, message.
type Progress = (f64, Option<f64>, Option<String>);

fn progress_of(notification: &Notification<'_>) -> Option<Progress> {
    let params: Value = notification.params.as_ref()?.parse().ok()?;
    Some((
        params.get("progress")?.as_f64()?,
        params.get("total").and_then(Value::as_f64),
        params
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned),
    ))
}

/// What happens while a blocking call waits.
enum Event {
    Progress(Progress),
    Ask(String, String, Reply),
    Done(Outcome),
}

#[pymethods]
impl Core {
    #[new]
    fn new() -> PyResult<Self> {
        let rt = runtime()?;
        let _entered = rt.enter();
        let metrics = Metrics::new();
        let runtime = McpRuntime::start_with(metrics.observer());
        Ok(Self {
            inner: Arc::new(Inner {
                runtime,
                registry: Arc::new(mcp_plugins::default_registry()),
                metrics,
                started: Mutex::new(None),
                closed: AtomicBool::new(false),
                session: mcp_core::next_session_key(),
                next_id: AtomicU64::new(1),
                answered: AtomicU64::new(0),
                answered_micros: AtomicU64::new(0),
            }),
        })
    }

    /// Starts operation `op` with `args` (a JSON object) on the runtime;
    /// `done(ok, value)` gets its JSON result text, or the arguments of a
    /// `NativeError`. `progress(progress, total, message)` gets progress
    /// notifications of a request. Both are called on a runtime thread.
    #[pyo3(signature = (op, args, done, progress=None, asks=None))]
    fn submit(
        &self,
        op: String,
        args: &str,
        done: Py<PyAny>,
        progress: Option<Py<PyAny>>,
        asks: Option<Py<PyAny>>,
    ) -> PyResult<Pending> {
        let args = parse_args(args)?;
        let on_progress = progress.map(|callback| {
            move |update: Progress| with_python(|py| unraisable(py, callback.call1(py, update)))
        });
        let on_done = move |outcome: Outcome| {
            with_python(|py| {
                let called = match outcome {
                    Ok(text) => done.call1(py, (true, text)),
                    Err(failure) => done.call1(py, (false, failure.into_args())),
                };
                unraisable(py, called);
            });
        };
        let asks = asks.map(|callback| -> Asker {
            Arc::new(move |method, params, reply| {
                with_python(|py| unraisable(py, callback.call1(py, (method, params, reply))));
            })
        });
        let abort = spawn_op(&self.inner, op, args, on_progress, asks, on_done)?;
        Ok(Pending { abort })
    }

    /// Runs operation `op` with `args` and gives its JSON result text,
    /// releasing the GIL meanwhile; `progress` is called on this thread.
    /// A signal handler that raises (Ctrl-C) cancels the operation.
    #[pyo3(signature = (op, args, progress=None, asks=None))]
    fn run(
        &self,
        py: Python<'_>,
        op: String,
        args: &str,
        progress: Option<Py<PyAny>>,
        asks: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PyRuntimeError::new_err(
                "a blocking call cannot run on the manager's own threads \
                 (from a callback of an async call, say): use the async API there",
            ));
        }
        let args = parse_args(args)?;
        let (events, received) = std_mpsc::channel::<Event>();
        let progressed = events.clone();
        let on_progress = progress.as_ref().map(|_| {
            move |update: Progress| {
                let _ = progressed.send(Event::Progress(update));
            }
        });
        let asked = events.clone();
        let asker = asks.as_ref().map(|_| -> Asker {
            Arc::new(move |method, params, reply| {
                let _ = asked.send(Event::Ask(method, params, reply));
            })
        });
        let on_done = move |outcome: Outcome| {
            let _ = events.send(Event::Done(outcome));
        };
        let abort = spawn_op(&self.inner, op, args, on_progress, asker, on_done)?;
        let mut received = received;
        loop {
            // The receiver goes along: it may move between threads, not be
            // shared by them.
            let (event, back) = py.detach(move || {
                let event = received.recv_timeout(Duration::from_millis(50));
                (event, received)
            });
            received = back;
            match event {
                Ok(Event::Done(Ok(text))) => return Ok(text),
                Ok(Event::Done(Err(failure))) => {
                    return Err(NativeError::new_err(failure.into_args()));
                }
                Ok(Event::Progress(update)) => {
                    if let Some(callback) = &progress {
                        if let Err(error) = callback.call1(py, update) {
                            abort.abort();
                            return Err(error);
                        }
                    }
                }
                Ok(Event::Ask(method, params, reply)) => {
                    // The handler answers through `reply`; what it raises
                    // past that is the caller's error.
                    if let Some(callback) = &asks {
                        if let Err(error) = callback.call1(py, (method, params, reply)) {
                            abort.abort();
                            return Err(error);
                        }
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(interrupted) = py.check_signals() {
                        abort.abort();
                        return Err(interrupted);
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err(
                        "the operation ended without an outcome (the runtime is stopping)",
                    ));
                }
            }
        }
    }
}

/// How long an ended operation waits for its last progress notifications
/// to be handed on, so that they come before its outcome.
const PROGRESS_FLUSH: Duration = Duration::from_millis(100);

/// Spawns operation `op` on the runtime: `on_progress` gets each progress
/// update of a request (when given), then `on_done` the outcome.
fn spawn_op<P, D>(
    inner: &Arc<Inner>,
    op: String,
    args: Value,
    on_progress: Option<P>,
    asks: Option<Asker>,
    on_done: D,
) -> PyResult<tokio::task::AbortHandle>
where
    P: Fn(Progress) + Send + 'static,
    D: FnOnce(Outcome) + Send + 'static,
{
    let rt = runtime()?;
    let (sink, forwarder) = match on_progress {
        Some(on_progress) => {
            let (sender, mut receiver) = mpsc::channel::<Notification<'static>>(64);
            let forwarder = rt.spawn(async move {
                while let Some(notification) = receiver.recv().await {
                    if let Some(update) = progress_of(&notification) {
                        on_progress(update);
                    }
                }
            });
            (Some(sender), Some(forwarder))
        }
        None => (None, None),
    };
    let inner = inner.clone();
    let task = rt.spawn(async move {
        let caller = Caller {
            progress: sink,
            asks,
        };
        let outcome = dispatch(&inner, &op, args, caller).await;
        // The sink is gone with the request: the forwarder ends once it has
        // handed on what came before the outcome.
        if let Some(forwarder) = forwarder {
            let _ = tokio::time::timeout(PROGRESS_FLUSH, forwarder).await;
        }
        on_done(outcome);
    });
    Ok(task.abort_handle())
}

fn parse_args(args: &str) -> PyResult<Value> {
    serde_json::from_str(args).map_err(|e| {
        NativeError::new_err(Failure::invalid(format!("bad arguments: {e}")).into_args())
    })
}

fn text_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, Failure> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::invalid(format!("`{key}` must be a string")))
}

fn server_id(name: &str) -> Result<ServerId, Failure> {
    ServerId::new(name)
        .map_err(|_| Failure::new("not_found", format!("no server `{name}` is deployed")))
}

fn to_text(value: &Value) -> Outcome {
    Ok(value.to_string())
}

async fn dispatch(inner: &Arc<Inner>, op: &str, args: Value, caller: Caller) -> Outcome {
    if inner.closed.load(Ordering::Acquire) && op != "close" {
        return Err(Failure::new("closed", "the manager is closed"));
    }
    match op {
        "start" => start(inner, &args).await,
        "request" => {
            let started = Instant::now();
            let outcome = request(inner, &args, caller).await;
            inner.answered.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            inner.answered_micros.fetch_add(micros, Ordering::Relaxed);
            outcome
        }
        "deploy" => {
            let name = text_arg(&args, "name")?;
            let config = control::server_entry(
                &inner.registry,
                name,
                args.get("config").unwrap_or(&Value::Null),
            )?;
            running(inner)?.control.deploy(config).await?;
            describe(inner, name).await
        }
        "undeploy" => {
            let id = server_id(text_arg(&args, "name")?)?;
            running(inner)?.control.undeploy(id).await?;
            to_text(&Value::Null)
        }
        "scale" => {
            let name = text_arg(&args, "name")?;
            let instances = args
                .get("instances")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .and_then(NonZeroU32::new)
                .filter(|n| n.get() <= 64)
                .ok_or_else(|| Failure::invalid("`instances` must be a number from 1 to 64"))?;
            let server = inner.runtime.server(&server_id(name)?).await?;
            server.scale(instances).await?;
            describe(inner, name).await
        }
        "restart" => {
            let name = text_arg(&args, "name")?;
            inner
                .runtime
                .server(&server_id(name)?)
                .await?
                .restart()
                .await?;
            describe(inner, name).await
        }
        "servers" => to_text(&Value::Array(described(inner).await?)),
        "health" => health(inner).await,
        "metrics" => to_text(&Value::String(inner.metrics.render())),
        "close" => {
            if !inner.closed.swap(true, Ordering::AcqRel) {
                let started = inner
                    .started
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                drop(started);
                inner.runtime.shutdown().await;
            }
            to_text(&Value::Null)
        }
        other => Err(Failure::invalid(format!("no operation `{other}`"))),
    }
}

/// The started servers, or why there are none.
fn running(inner: &Inner) -> Result<Started, Failure> {
    inner
        .started
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .ok_or_else(|| Failure::new("closed", "the manager has not started"))
}

/// `{"path": FILE}` or `{"config": {...}, "baseDir": DIR}`: loads and
/// checks the config, starts its servers, and reports each.
async fn start(inner: &Arc<Inner>, args: &Value) -> Outcome {
    let loaded = match (args.get("path").and_then(Value::as_str), args.get("config")) {
        (Some(path), _) => ManagerConfig::load(path),
        (None, Some(config)) => {
            let base = args
                .get("baseDir")
                .and_then(Value::as_str)
                .map(PathBuf::from);
            // Relative paths in the config are relative to `baseDir`, as to
            // a config file's folder.
            let source = base.map(|dir| dir.join("config.json"));
            ManagerConfig::from_json_str(
                &config.to_string(),
                source.as_deref().map(Path::new),
                &ProcessEnv,
            )
        }
        (None, None) => return Err(Failure::invalid("give a config: a path or a dict")),
    };
    let config = loaded
        .and_then(|config| control::check_plugins(&inner.registry, config))
        .map_err(|e| Failure::invalid(e.to_string()))?;
    if running(inner).is_ok() {
        return Err(Failure::new("conflict", "the manager has started already"));
    }
    let mut report = Vec::new();
    let mut servers = Vec::new();
    for started in
        control::start_servers(&inner.runtime, &inner.registry, config.servers().iter()).await
    {
        let name = started.config.id().as_str();
        match started.server {
            None => report.push(json!({"name": name, "state": "disabled"})),
            Some(Err(reason)) => {
                report.push(json!({"name": name, "state": "failed", "error": reason}));
            }
            Some(Ok(server)) => {
                report.push(json!({"name": name, "state": "running"}));
                servers.push((started.config.clone(), server));
            }
        }
    }
    let log: Report = Arc::new(|line: &str| tracing::info!("{line}"));
    let (control, gateway) = Control::start(
        inner.runtime.clone(),
        inner.registry.clone(),
        config.gateway().separator(),
        servers,
        log,
    );
    *inner.started.lock().unwrap_or_else(PoisonError::into_inner) =
        Some(Started { gateway, control });
    to_text(&json!({"servers": report}))
}

/// The way back from the servers to this manager's caller: progress
/// notifications go to its progress callback, and what the servers ask of
/// a client (sampling, elicitation, roots) to its request handler; without
/// one they are refused (`-32601`), as there is nobody to ask.
struct CallerPeer {
    caller: Caller,
    session: u64,
}

impl Peer for CallerPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if notification.method == "notifications/progress" {
                if let Some(sink) = &self.caller.progress {
                    let _ = sink.send(notification).await;
                }
            }
        })
    }

    fn request(
        &self,
        method: &str,
        params: Option<Raw<'static>>,
    ) -> BoxFuture<'_, mcp_core::HandlerResult> {
        let Some(asks) = self.caller.asks.clone() else {
            let error = ErrorObject::new(
                mcp_protocol::jsonrpc::error_code::METHOD_NOT_FOUND,
                format!("`{method}` has no handler: pass on_request= to the manager to answer it"),
            );
            return Box::pin(std::future::ready(Err(error)));
        };
        let (sender, answer) = tokio::sync::oneshot::channel();
        let reply = Reply {
            sender: Mutex::new(Some(sender)),
        };
        let params = params.map_or_else(|| "{}".to_owned(), |p| p.get().to_owned());
        asks(method.to_owned(), params, reply);
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(ErrorObject::new(
                    mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                    "the request handler gave no answer",
                ))
            })
        })
    }

    fn session(&self) -> Option<u64> {
        Some(self.session)
    }
}

/// The token this package puts in requests whose caller wants progress.
const PROGRESS_TOKEN: i64 = 1;

/// `{"server": NAME or null, "method": M, "params": P, "timeout": SECONDS}`:
/// a request to one server directly, or (no server) to the gateway, which
/// routes it by tool, prompt or resource name.
async fn request(inner: &Arc<Inner>, args: &Value, caller: Caller) -> Outcome {
    let method = text_arg(args, "method")?.to_owned();
    let mut params = match args.get("params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return Err(Failure::invalid("`params` must be a dict or None")),
    };
    if caller.progress.is_some() {
        let meta = params
            .get_or_insert_with(serde_json::Map::new)
            .entry("_meta")
            .or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("progressToken".to_owned(), json!(PROGRESS_TOKEN));
        }
    }
    let params = params.map(|p| Raw::from_value(&p));
    let timeout = match args.get("timeout") {
        None | Some(Value::Null) => None,
        Some(seconds) => Some(
            seconds
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    Failure::invalid("`timeout` must be a positive number of seconds")
                })?,
        ),
    };
    let server = match args.get("server") {
        None | Some(Value::Null) => None,
        Some(name) => Some(
            name.as_str()
                .ok_or_else(|| Failure::invalid("`server` must be a string"))?
                .to_owned(),
        ),
    };
    let progress = caller.progress.clone();
    let context = RequestContext::new(Arc::new(CallerPeer {
        caller,
        session: inner.session,
    }));
    let call = async {
        match server {
            Some(name) => {
                let server = inner.runtime.server(&server_id(&name)?).await?;
                let options = CallOptions {
                    progress,
                    session: Some(inner.session),
                    requester: Some(context),
                    ..CallOptions::default()
                };
                let result = server.request(method, params, options).await?;
                Ok(result.get().to_owned())
            }
            None => {
                let gateway = running(inner)?.gateway;
                let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                let request = Request {
                    id: RequestId::Number(i64::try_from(id).unwrap_or(i64::MAX)),
                    method: method.into(),
                    params,
                };
                match gateway.handle_request(request, context).await {
                    Ok(result) => Ok(result.get().to_owned()),
                    Err(error) => Err(Failure::rpc(&error)),
                }
            }
        }
    };
    match timeout {
        None => call.await,
        Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(Failure::new(
                "timeout",
                format!(
                    "no answer within {} ms (the request was cancelled)",
                    limit.as_millis()
                ),
            ))
        }),
    }
}

/// Every server as `servers()` shows it.
async fn described(inner: &Inner) -> Result<Vec<Value>, Failure> {
    let control = running(inner).ok().map(|started| started.control);
    Ok(control::describe_all(&inner.runtime, control.as_ref()).await?)
}

/// One server as `servers()` shows it.
async fn describe(inner: &Inner, name: &str) -> Outcome {
    described(inner)
        .await?
        .into_iter()
        .find(|s| s["name"] == name)
        .map_or_else(
            || {
                Err(Failure::new(
                    "not_found",
                    format!("no server `{name}` is deployed"),
                ))
            },
            |server| to_text(&server),
        )
}

/// Every server as `servers()` shows it (each with its `health`), and the
/// mean time of this manager's requests; the package counts them.
async fn health(inner: &Inner) -> Outcome {
    let answered = inner.answered.load(Ordering::Relaxed);
    let mean_ms = if answered == 0 {
        0.0
    } else {
        inner.answered_micros.load(Ordering::Relaxed) as f64 / answered as f64 / 1000.0
    };
    to_text(&json!({
        "servers": described(inner).await?,
        "avgResponseTimeMs": mean_ms,
    }))
}

/// The native half of the `mcp_manager` package.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Core>()?;
    module.add_class::<Pending>()?;
    module.add_class::<Reply>()?;
    module.add_function(wrap_pyfunction!(shutdown, module)?)?;
    module.add("NativeError", module.py().get_type::<NativeError>())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn progress_is_read_from_a_notification() {
        let notification = Notification {
            method: "notifications/progress".into(),
            params: Some(Raw::from_value(
                &json!({"progressToken": 1, "progress": 2, "total": 5, "message": "two"}),
            )),
        };
        assert_eq!(
            progress_of(&notification),
            Some((2.0, Some(5.0), Some("two".to_owned())))
        );
        let bare = Notification {
            method: "notifications/progress".into(),
            params: Some(Raw::from_value(
                &json!({"progressToken": 1, "progress": 0.5}),
            )),
        };
        assert_eq!(progress_of(&bare), Some((0.5, None, None)));
        let without = Notification {
            method: "notifications/progress".into(),
            params: Some(Raw::from_value(&json!({"progressToken": 1}))),
        };
        assert_eq!(progress_of(&without), None);
    }

    #[test]
    fn a_server_error_keeps_its_code_and_data() {
        let error = ErrorObject {
            code: -32001,
            message: "nope".into(),
            data: Some(Raw::from_value(&json!({"why": "because"}))),
        };
        let (kind, message, code, data) = Failure::rpc(&error).into_args();
        assert_eq!(
            (kind, message.as_str(), code),
            ("rpc", "nope", Some(-32001))
        );
        assert_eq!(
            serde_json::from_str::<Value>(&data.unwrap()).unwrap(),
            json!({"why": "because"})
        );
    }

    #[test]
    fn manager_errors_map_to_the_package_kinds() {
        use mcp_control::{Error, ErrorKind};
        let cases = [
            (ErrorKind::NotFound, "not_found"),
            (ErrorKind::Conflict, "conflict"),
            (ErrorKind::Invalid, "invalid"),
            (ErrorKind::Failed, "unavailable"),
            (ErrorKind::Stopping, "closed"),
        ];
        for (kind, expected) in cases {
            let failure = Failure::from(Error::new(kind, "m"));
            assert_eq!((failure.kind, failure.code), (expected, None));
        }
    }

    #[tokio::test]
    async fn requests_check_their_arguments_before_sending() {
        let inner = Arc::new(Inner {
            runtime: McpRuntime::start(),
            registry: Arc::new(mcp_plugins::default_registry()),
            metrics: Metrics::new(),
            started: Mutex::new(None),
            closed: AtomicBool::new(false),
            session: 1,
            next_id: AtomicU64::new(1),
            answered: AtomicU64::new(0),
            answered_micros: AtomicU64::new(0),
        });
        let bad = [
            json!({"method": 3}),
            json!({"method": "ping", "params": [1]}),
            json!({"method": "ping", "timeout": -1}),
            json!({"method": "ping", "server": 7}),
        ];
        for args in bad {
            let failure = dispatch(&inner, "request", args.clone(), Caller::default())
                .await
                .unwrap_err();
            assert_eq!(failure.kind, "invalid", "{args}");
        }
        let missing = dispatch(
            &inner,
            "request",
            json!({"method": "ping", "server": "x"}),
            Caller::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(missing.kind, "not_found");
        let unknown = dispatch(&inner, "fly", json!({}), Caller::default())
            .await
            .unwrap_err();
        assert_eq!(unknown.kind, "invalid");
        // Through the gateway before `start`: not started.
        let early = dispatch(
            &inner,
            "request",
            json!({"method": "ping"}),
            Caller::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(early.kind, "closed");
        dispatch(&inner, "close", json!({}), Caller::default())
            .await
            .unwrap();
        let closed = dispatch(&inner, "servers", json!({}), Caller::default())
            .await
            .unwrap_err();
        assert_eq!(closed.kind, "closed");
    }
}
