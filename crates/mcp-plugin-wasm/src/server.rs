//! The MCP server that runs a component's instances: a pool of them,
//! each message on one, within its sandbox's limits.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::{ErrorObject, Message, Notification, Request};
use serde_json::Value;
use tokio::sync::Semaphore;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::component::{Call, State, bindings};
use crate::engine::engine;
use crate::error::{Error, ErrorKind};
use crate::file::ComponentFile;
use crate::sandbox::Sandbox;

/// One instance and its store.
struct Instance {
    store: Store<State>,
    server: bindings::Server,
}

/// The shared part of a [`WasmServer`].
struct Inner {
    component: Arc<ComponentFile>,
    sandbox: Sandbox,
    logger: Arc<str>,
    /// Instances between messages.
    idle: Mutex<Vec<Instance>>,
    /// One permit per instance that may serve at once.
    permits: Semaphore,
    /// The last `initialize` request, sent to every fresh instance.
    initialize: Mutex<Option<String>>,
}

/// An MCP server whose messages a WebAssembly component serves, in a
/// sandbox. Cloning it shares its instances.
#[derive(Clone)]
pub struct WasmServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WasmServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmServer")
            .field("component", &self.inner.component)
            .field("sandbox", &self.inner.sandbox)
            .finish_non_exhaustive()
    }
}

/// Why a message got no answer from the plugin.
struct Failure(String);

impl WasmServer {
    /// A server running `component` in `sandbox`. Its first instance
    /// starts with its first message, which compiles the component if no
    /// server did yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Grant`] when a granted folder cannot be opened.
    pub fn new(component: Arc<ComponentFile>, sandbox: Sandbox) -> Result<Self, Error> {
        // Try the grants once now, so that a folder that is not there is
        // reported when the server is made, not at its first message.
        wasi_context(&sandbox).map_err(|e| Error::new(ErrorKind::Grant, component.path(), e))?;
        if sandbox.fuel.is_some() && !component.fuel() {
            return Err(Error::new(
                ErrorKind::Engine,
                component.path(),
                "a fuel limit needs a component compiled to meter fuel",
            ));
        }
        let logger: Arc<str> = Arc::from(component.name());
        let permits = Semaphore::new(sandbox.instances.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                component,
                sandbox,
                logger,
                idle: Mutex::new(Vec::new()),
                permits,
                initialize: Mutex::new(None),
            }),
        })
    }

    /// The component it runs.
    #[must_use]
    pub fn component(&self) -> &Arc<ComponentFile> {
        &self.inner.component
    }

    /// How many instances are alive between messages.
    #[must_use]
    pub fn idle_instances(&self) -> usize {
        self.inner.idle.lock().map_or(0, |idle| idle.len())
    }

    /// Starts one instance now (and keeps it for the next message), so
    /// that a component that cannot start is found out before a client
    /// asks; gives back how long the start took.
    ///
    /// # Errors
    ///
    /// Why the instance could not start, as a JSON-RPC error.
    pub async fn warm_up(&self) -> Result<std::time::Duration, ErrorObject<'static>> {
        let started = Instant::now();
        let _permit = self.inner.permits.acquire().await.map_err(|_| closed())?;
        let instance = self.instantiate(None).await.map_err(|f| self.error(f))?;
        let took = started.elapsed();
        self.give_back(instance);
        Ok(took)
    }

    fn error(&self, failure: Failure) -> ErrorObject<'static> {
        ErrorObject::new(
            error_code::INTERNAL_ERROR,
            format!(
                "wasm plugin `{}` ({}): {}",
                self.inner.component.name(),
                self.inner.component.path().display(),
                failure.0
            ),
        )
    }

    fn give_back(&self, instance: Instance) {
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.push(instance);
        }
    }

    fn take_idle(&self) -> Option<Instance> {
        self.inner.idle.lock().ok()?.pop()
    }

    /// A fresh instance; `serving` is the method of the message it is
    /// made for, so that an `initialize` is not sent twice.
    async fn instantiate(&self, serving: Option<&str>) -> Result<Instance, Failure> {
        let sandbox = &self.inner.sandbox;
        // Compiling (the first time) is not the plugin's time: its
        // deadline starts once it is compiled.
        let component = self
            .inner
            .component
            .compiled()
            .await
            .map_err(|e| Failure(format!("it could not start: {}", e.message())))?;
        let wasi = wasi_context(sandbox).map_err(Failure)?;
        let engine = engine(component.fuel).map_err(Failure)?;
        let mut store = Store::new(
            engine,
            State {
                wasi,
                table: ResourceTable::new(),
                memory_limit: sandbox.memory_bytes,
                over_memory: false,
                deadline: Instant::now() + sandbox.timeout,
                call: None,
            },
        );
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                Err(wasmtime::Error::new(DeadlinePassed))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        self.refuel(&mut store)?;
        let server = component
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| Failure(format!("it could not start: {}", trap(&e, &store, sandbox))))?;
        let mut instance = Instance { store, server };
        let initialize = self
            .inner
            .initialize
            .lock()
            .ok()
            .and_then(|last| last.clone());
        if let (Some(initialize), false) = (initialize, serving == Some("initialize")) {
            self.run(&mut instance, &initialize, None)
                .await
                .map_err(|f| Failure(format!("it could not start: {}", f.0)))?;
            let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
            self.run(&mut instance, initialized, None)
                .await
                .map_err(|f| Failure(format!("it could not start: {}", f.0)))?;
        }
        Ok(instance)
    }

    /// A message's fuel, when its component meters fuel.
    fn refuel(&self, store: &mut Store<State>) -> Result<(), Failure> {
        if !self.inner.component.fuel() {
            return Ok(());
        }
        store
            .set_fuel(self.inner.sandbox.fuel.unwrap_or(u64::MAX))
            .map_err(|e| Failure(format!("{e:#}")))
    }

    /// Runs one message on `instance`; a failure leaves the instance
    /// unfit for more.
    async fn run(
        &self,
        instance: &mut Instance,
        message: &str,
        call: Option<Call>,
    ) -> Result<Option<String>, Failure> {
        let sandbox = &self.inner.sandbox;
        self.refuel(&mut instance.store)?;
        {
            let state = instance.store.data_mut();
            state.deadline = Instant::now() + sandbox.timeout;
            state.call = call;
        }
        instance.store.set_epoch_deadline(1);
        let answer = instance
            .server
            .call_handle(&mut instance.store, message)
            .await;
        instance.store.data_mut().call = None;
        answer.map_err(|e| Failure(trap(&e, &instance.store, sandbox)))
    }

    /// Serves one message on an idle instance or a fresh one, within the
    /// limit of instances at once.
    async fn serve(
        &self,
        method: &str,
        message: &str,
        call: Option<Call>,
    ) -> Result<Option<String>, Failure> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| Failure("it is shut".to_owned()))?;
        let mut instance = match self.take_idle() {
            Some(instance) => instance,
            None => self.instantiate(Some(method)).await?,
        };
        let answer = self.run(&mut instance, message, call).await?;
        // Only an instance that answered goes back: one that trapped, or
        // whose call was dropped half-way, is dropped with its store.
        self.give_back(instance);
        Ok(answer)
    }
}

/// The error an epoch callback raises when a message ran out of time.
#[derive(Debug)]
struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline passed")
    }
}

impl std::error::Error for DeadlinePassed {}

/// Says why a call failed, in words a user can act on.
fn trap(error: &wasmtime::Error, store: &Store<State>, sandbox: &Sandbox) -> String {
    if error.downcast_ref::<DeadlinePassed>().is_some() {
        return format!(
            "it took longer than its timeout of {} ms and was stopped; its instance was replaced",
            sandbox.timeout.as_millis()
        );
    }
    if store.data().over_memory {
        return format!(
            "it needed more than its memory limit of {} MiB and was stopped; its instance was replaced",
            sandbox.memory_bytes >> 20
        );
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => format!(
            "it ran out of fuel ({} units) and was stopped; its instance was replaced",
            sandbox.fuel.unwrap_or(u64::MAX)
        ),
        Some(trap) => format!("it trapped ({trap}); its instance was replaced: {error:#}"),
        None => format!("it failed; its instance was replaced: {error:#}"),
    }
}

/// The WASI context of one instance: the grants, and nothing else.
fn wasi_context(sandbox: &Sandbox) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder.inherit_stderr();
    for (name, value) in &sandbox.env {
        builder.env(name, value);
    }
    for dir in &sandbox.dirs {
        let perms = if dir.write {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        let guest = dir.path.to_string_lossy();
        builder
            .preopened_dir(&dir.path, guest.as_ref(), perms)
            .map_err(|e| {
                format!(
                    "the granted folder {} cannot be opened: {e:#}",
                    dir.path.display()
                )
            })?;
    }
    Ok(builder.build())
}

fn closed() -> ErrorObject<'static> {
    ErrorObject::new(error_code::INTERNAL_ERROR, "the wasm plugin is shut")
}

/// The request's progress token, if it asked for progress.
fn progress_token(request: &Request<'_>) -> Option<Value> {
    let params: Value = serde_json::from_str(request.params.as_ref()?.get()).ok()?;
    params.get("_meta")?.get("progressToken").cloned()
}

/// The plugin's answer to a request, as the request's result.
fn answer(answer: Option<String>) -> HandlerResult {
    let Some(text) = answer else {
        return Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            "it answered a request with nothing",
        ));
    };
    match Message::parse(text.as_bytes()) {
        Ok(Message::Response(response)) => Ok(response.result.into_owned()),
        Ok(Message::Error(error)) => Err(error.error.into_owned()),
        Ok(_) => Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            "it answered a request with a message that is not a response",
        )),
        Err(e) => Err(ErrorObject::new(
            error_code::INTERNAL_ERROR,
            format!("its answer is not a JSON-RPC response: {e}"),
        )),
    }
}

impl McpServer for WasmServer {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            let text = String::from_utf8(Message::Request(request.clone()).to_vec())
                .map_err(|e| ErrorObject::new(error_code::INTERNAL_ERROR, e.to_string()))?;
            if request.method == "initialize" {
                if let Ok(mut last) = self.inner.initialize.lock() {
                    *last = Some(text.clone());
                }
            }
            let call = Call {
                context,
                progress: progress_token(&request),
                logger: self.inner.logger.clone(),
            };
            match self.serve(&request.method, &text, Some(call)).await {
                Ok(reply) => answer(reply).map_err(|mut error| {
                    if error.code == error_code::INTERNAL_ERROR && error.data.is_none() {
                        error = self.error(Failure(error.message.into_owned()));
                    }
                    error
                }),
                Err(failure) => {
                    tracing::warn!(
                        plugin = %self.inner.component.name(),
                        method = %request.method,
                        "{}",
                        failure.0
                    );
                    Err(self.error(failure))
                }
            }
        })
    }

    fn handle_notification(
        &self,
        notification: Notification<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, ()> {
        let _ = context;
        Box::pin(async move {
            if notification.method == "notifications/cancelled" {
                // The runtime cancels by dropping the request's future,
                // which drops the instance that served it.
                return;
            }
            let text = Message::Notification(notification.clone()).to_vec();
            let Ok(text) = String::from_utf8(text) else {
                return;
            };
            if let Err(failure) = self.serve(&notification.method, &text, None).await {
                tracing::warn!(
                    plugin = %self.inner.component.name(),
                    method = %notification.method,
                    "{}",
                    failure.0
                );
            }
        })
    }
}
