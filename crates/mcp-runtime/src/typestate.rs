//! The type-state API: a server's lifecycle in its type.
//!
//! This is the one way to deploy a server: `Server<Configured>::deploy`
//! consumes the configured server and yields a `Server<Deployed>`, the only
//! state with `request` and a [`ServerHandle`]; a failed deployment yields a
//! `Server<Failed>` that says why and can be retried; `undeploy` takes a
//! deployed server back to configured. Mistakes such as sending a request
//! to a server that was never deployed do not compile.
//!
//! ```compile_fail
//! # async fn f(runtime: mcp_runtime::McpRuntime, spec: mcp_runtime::ServerSpec) {
//! let server = mcp_runtime::Server::new(runtime, spec);
//! // no `request` on Server<Configured>
//! server.request("ping", None, mcp_runtime::CallOptions::default()).await;
//! # }
//! ```
//!
//! ```compile_fail
//! # async fn f(server: mcp_runtime::Server<mcp_core::state::Deployed>) {
//! let again = server.deploy().await; // no `deploy` on Server<Deployed>
//! # }
//! ```

use std::borrow::Cow;
use std::marker::PhantomData;

use mcp_core::state::{Configured, Deployed, Failed, ServerState};
use mcp_protocol::raw::Raw;

use crate::error::{Error, Result};
use crate::runtime::McpRuntime;
use crate::server::{CallOptions, ServerHandle, ServerSpec};

/// A server in lifecycle state `S`.
pub struct Server<S: ServerState> {
    runtime: McpRuntime,
    spec: ServerSpec,
    handle: Option<ServerHandle>,
    error: Option<Error>,
    _state: PhantomData<S>,
}

impl<S: ServerState> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.spec.id)
            .field("state", &S::NAME)
            .finish_non_exhaustive()
    }
}

impl<S: ServerState> Server<S> {
    /// The server's spec.
    #[must_use]
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// The server's id.
    #[must_use]
    pub fn id(&self) -> &mcp_core::ServerId {
        &self.spec.id
    }

    fn into_state<T: ServerState>(
        self,
        handle: Option<ServerHandle>,
        error: Option<Error>,
    ) -> Server<T> {
        Server {
            runtime: self.runtime,
            spec: self.spec,
            handle,
            error,
            _state: PhantomData,
        }
    }
}

impl Server<Configured> {
    /// A server that `runtime` can deploy.
    #[must_use]
    pub fn new(runtime: McpRuntime, spec: ServerSpec) -> Self {
        Self {
            runtime,
            spec,
            handle: None,
            error: None,
            _state: PhantomData,
        }
    }

    /// Deploys the server and waits until it runs.
    ///
    /// # Errors
    ///
    /// A `Server<Failed>` that holds the reason and can be retried.
    pub async fn deploy(self) -> Result<Server<Deployed>, Server<Failed>> {
        match self.runtime.deploy(self.spec.clone()).await {
            Ok(handle) => Ok(self.into_state(Some(handle), None)),
            Err(error) => Err(self.into_state(None, Some(error))),
        }
    }
}

impl McpRuntime {
    /// The deployed server called `id`.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::NotFound`], or [`crate::ErrorKind::Unavailable`]
    /// while it starts.
    pub async fn server(&self, id: &mcp_core::ServerId) -> Result<Server<Deployed>> {
        let handle = self.handle(id).await?;
        Ok(Server::deployed(self.clone(), handle))
    }
}

impl Server<Deployed> {
    /// The deployed server behind `handle`, as the runtime found it.
    fn deployed(runtime: McpRuntime, handle: ServerHandle) -> Self {
        Self {
            runtime,
            spec: handle.spec().clone(),
            handle: Some(handle),
            error: None,
            _state: PhantomData,
        }
    }

    /// The handle, for hot paths and sharing.
    ///
    /// # Panics
    ///
    /// Never: a deployed server always has a handle.
    #[must_use]
    pub fn handle(&self) -> &ServerHandle {
        match &self.handle {
            Some(handle) => handle,
            None => unreachable!("a deployed server always has a handle"),
        }
    }

    /// The handle, keeping nothing else: for callers that only send
    /// requests (a gateway's backend, say).
    #[must_use]
    pub fn into_handle(self) -> ServerHandle {
        match self.handle {
            Some(handle) => handle,
            None => unreachable!("a deployed server always has a handle"),
        }
    }

    /// Sends a request and waits for its result: [`ServerHandle::request`].
    ///
    /// # Errors
    ///
    /// As [`ServerHandle::request`].
    pub async fn request(
        &self,
        method: impl Into<Cow<'static, str>>,
        params: Option<Raw<'static>>,
        options: CallOptions,
    ) -> Result<Raw<'static>> {
        self.handle().request(method, params, options).await
    }

    /// Runs `instances` copies: [`ServerHandle::scale`].
    ///
    /// # Errors
    ///
    /// A start-up error of a new instance.
    pub async fn scale(&self, instances: std::num::NonZeroU32) -> Result<()> {
        self.handle().scale(instances).await
    }

    /// Replaces every instance with a fresh one, new first:
    /// [`ServerHandle::restart`].
    ///
    /// # Errors
    ///
    /// A start-up error of a new instance; the old ones then keep serving.
    pub async fn restart(&self) -> Result<()> {
        self.handle().restart().await
    }

    /// Stops the server once its requests in flight are done (or their
    /// time is up); it can be deployed again.
    ///
    /// # Errors
    ///
    /// When the runtime has shut down or the server was already undeployed
    /// (then it is stopped all the same).
    pub async fn undeploy(self) -> std::result::Result<Server<Configured>, Error> {
        self.runtime.undeploy(&self.spec.id).await?;
        Ok(self.into_state(None, None))
    }
}

impl Server<Failed> {
    /// Why the deployment failed.
    ///
    /// # Panics
    ///
    /// Never: a failed server always has an error.
    #[must_use]
    pub fn error(&self) -> &Error {
        match &self.error {
            Some(error) => error,
            None => unreachable!("a failed server always has an error"),
        }
    }

    /// Why the deployment failed, keeping nothing else.
    #[must_use]
    pub fn into_error(self) -> Error {
        match self.error {
            Some(error) => error,
            None => unreachable!("a failed server always has an error"),
        }
    }

    /// Tries the deployment again.
    ///
    /// # Errors
    ///
    /// A `Server<Failed>` again, with the new reason.
    pub async fn retry(self) -> Result<Server<Deployed>, Server<Failed>> {
        self.into_state::<Configured>(None, None).deploy().await
    }

    /// Back to configured, to change nothing and deploy later.
    #[must_use]
    pub fn into_configured(self) -> Server<Configured> {
        self.into_state(None, None)
    }
}
