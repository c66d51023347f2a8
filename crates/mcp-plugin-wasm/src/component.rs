//! A compiled component, checked against the world, and what each of its
//! instances' stores holds: WASI's context, the limits the store enforces,
//! and the request being served, for the `host` calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mcp_core::RequestContext;
use mcp_protocol::Notification;
use mcp_protocol::raw::Raw;
use serde_json::{Value, json};
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::engine::engine;
use crate::error::{Error, ErrorKind};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "server",
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::mcp_manager::plugin::host;

/// A component compiled for this process and checked against the world:
/// it exports `handle`, and imports nothing but the manager's `host` and
/// WASI 0.2.
pub struct Component {
    name: String,
    path: PathBuf,
    pub(crate) fuel: bool,
    pub(crate) pre: bindings::ServerPre<State>,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Component {
    /// Reads and compiles the component at `path` (a `.wasm` file, or
    /// the component text format), called `name` in messages; with
    /// `fuel`, for the engine that meters fuel (needed by a [`Sandbox`](crate::Sandbox)
    /// with a fuel limit; without it calls run faster).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unreadable`] when the file cannot be read,
    /// [`ErrorKind::Invalid`] when it is not a valid component,
    /// [`ErrorKind::Incompatible`] when it imports what the manager does
    /// not offer or does not export `handle`.
    pub fn load(name: &str, path: &Path, fuel: bool) -> Result<Self, Error> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(ErrorKind::Unreadable, path, format!("cannot be read: {e}")))?;
        Self::from_bytes(name, path, &bytes, fuel)
    }

    /// Compiles a component from its bytes; `path` is only named in
    /// messages.
    ///
    /// # Errors
    ///
    /// As [`Component::load`], but for reading.
    pub fn from_bytes(name: &str, path: &Path, bytes: &[u8], fuel: bool) -> Result<Self, Error> {
        let engine = engine(fuel).map_err(|e| Error::new(ErrorKind::Engine, path, e))?;
        let component = wasmtime::component::Component::new(engine, bytes).map_err(|e| {
            Error::new(
                ErrorKind::Invalid,
                path,
                format!("not a WebAssembly component this manager can run: {e:#}"),
            )
        })?;
        let mut linker = Linker::<State>::new(engine);
        let linked = wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| bindings::Server::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s));
        linked.map_err(|e| Error::new(ErrorKind::Engine, path, format!("{e:#}")))?;
        let incompatible = |e: wasmtime::Error| {
            Error::new(
                ErrorKind::Incompatible,
                path,
                format!("not a component of the world {}: {e:#}", crate::WORLD),
            )
        };
        let pre = linker.instantiate_pre(&component).map_err(incompatible)?;
        let pre = bindings::ServerPre::new(pre).map_err(incompatible)?;
        Ok(Self {
            name: name.to_owned(),
            path: path.to_path_buf(),
            fuel,
            pre,
        })
    }

    /// Its name in messages.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it came from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it was compiled to meter fuel.
    #[must_use]
    pub fn fuel(&self) -> bool {
        self.fuel
    }
}

/// What a store holds: WASI's context and what the manager's `host`
/// interface needs.
pub(crate) struct State {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory_limit: u64,
    /// Set when growing memory was refused, so the trap can say why.
    pub(crate) over_memory: bool,
    /// When the message being served must be done.
    pub(crate) deadline: Instant,
    /// The request being served, for logging and progress.
    pub(crate) call: Option<Call>,
}

/// The request an instance serves.
pub(crate) struct Call {
    pub(crate) context: RequestContext,
    pub(crate) progress: Option<Value>,
    pub(crate) logger: Arc<str>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.memory_limit {
            self.over_memory = true;
            return Err(wasmtime::Error::msg(format!(
                "it asked for {desired} bytes of memory, past its limit of {} bytes",
                self.memory_limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

impl host::Host for State {
    async fn log(&mut self, level: host::Level, message: String) {
        let Some(call) = &self.call else { return };
        let level = match level {
            host::Level::Debug => "debug",
            host::Level::Info => "info",
            host::Level::Notice => "notice",
            host::Level::Warning => "warning",
            host::Level::Error => "error",
            host::Level::Critical => "critical",
            host::Level::Alert => "alert",
            host::Level::Emergency => "emergency",
        };
        let params = json!({"level": level, "logger": &*call.logger, "data": message});
        let context = call.context.clone();
        context
            .notify(Notification {
                method: "notifications/message".into(),
                params: Some(Raw::from_value(&params)),
            })
            .await;
    }

    async fn progress(&mut self, progress: f64, total: Option<f64>, message: Option<String>) {
        let Some(call) = &self.call else { return };
        let Some(token) = &call.progress else { return };
        let mut params = serde_json::Map::new();
        params.insert("progressToken".into(), token.clone());
        params.insert("progress".into(), json!(progress));
        if let Some(total) = total {
            params.insert("total".into(), json!(total));
        }
        if let Some(message) = message {
            params.insert("message".into(), json!(message));
        }
        let params = Value::Object(params);
        let context = call.context.clone();
        context
            .notify(Notification {
                method: "notifications/progress".into(),
                params: Some(Raw::from_value(&params)),
            })
            .await;
    }
}
