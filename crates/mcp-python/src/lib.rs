//! Python bindings for mcp-manager: the native module `mcp_manager._native`
//! of the `mcp_manager` Python package (built with maturin; the package's
//! Python half lives in `python/mcp_manager/`). This is the only crate of
//! the workspace that knows Python (pyo3).
//!
//! The native module is deliberately small: one class, `Core`, that owns
//! a manager (an [`McpRuntime`], the servers of a config behind a
//! [`Gateway`](mcp_gateway::Gateway), a [`Control`](mcp_control::Control) actor to change them, Prometheus
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

mod caller;
mod failure;
mod host;
mod ops;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use mcp_observability::metrics::Metrics;
use mcp_protocol::Notification;
use mcp_runtime::McpRuntime;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::caller::{Asker, Caller, Progress, Reply, progress_of};
use crate::failure::{Failure, Outcome};
use crate::host::{runtime, shutdown, unraisable, with_python};
use crate::ops::{Inner, dispatch};

pyo3::create_exception!(
    _native,
    NativeError,
    PyException,
    "An operation failed: args are (kind, message, code, data as JSON text or None)."
);

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

/// The native half of the `mcp_manager` package.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Core>()?;
    module.add_class::<Pending>()?;
    module.add_class::<Reply>()?;
    module.add_function(wrap_pyfunction!(shutdown, module)?)?;
    module.add("NativeError", module.py().get_type::<NativeError>())?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
